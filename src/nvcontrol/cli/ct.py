"""``nvctl ct start|stop|status|logs|exec|update`` and ``nvctl ct snapshot create|restore|list|
delete``: the GPU management stack as a Bolt project (see docs/ct.md).

Thin over :mod:`nvcontrol.ct.control`, :class:`bolt.surge.Orchestrator` and
:class:`bolt.capsules.snapshots.Snapshot`; ``exec`` exits with the command's own code.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from nvcontrol.cli.common import emit_json, json_option

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator


class CtContext:
    def __init__(self, file: str | None, root: str | None) -> None:
        self.file = file
        self.root = root

    def orchestrator(self, quiet: bool = False) -> Orchestrator:
        from bolt.surge.orchestrator import Orchestrator
        from nvcontrol.ct.stack import load

        def report(subject: str, text: str) -> None:
            if not quiet:
                click.echo(f"[+] {subject}: {text}", err=True)

        def build_progress(_service: str) -> object:
            from bolt.cli.build import Lines

            return Lines(sys.stderr, quiet=quiet)

        return Orchestrator(
            load(self.file),  # type: ignore[arg-type]
            root=self.root,
            report=report,
            build_progress=build_progress,
        )

    def run(
        self, work: Callable[[Orchestrator], Coroutine[Any, Any, Any]], quiet: bool = False
    ) -> Any:
        orch = self.orchestrator(quiet)
        try:
            return asyncio.run(work(orch))
        finally:
            orch.close()


pass_ct = click.make_pass_decorator(CtContext)


@click.group()
@click.option("-f", "--file", "file", metavar="FILE",
              help="The stack's Boltfile.toml (default: $NVCTL_CT_STACK, else the shipped "
              "stacks/nvcontrol).")  # fmt: skip
@click.option("--root", metavar="DIR", default=None,
              help="Bolt's state root (default: $BOLT_ROOT, else /var/lib/bolt).")  # fmt: skip
@click.pass_context
def ct(ctx: click.Context, file: str | None, root: str | None) -> None:
    """The GPU management stack (gpu-manager, gpu-monitor, driver-updater, web-interface)
    run as isolated Bolt services."""
    ctx.obj = CtContext(file, root)


@ct.command("start")
@click.option("--build", "rebuild", is_flag=True, help="Rebuild the base and service images.")
@pass_ct
def start_cmd(c: CtContext, rebuild: bool) -> None:
    """Build what is missing (offline), start the services and wait until healthy."""
    from bolt.cli.build import Lines
    from nvcontrol.ct import control

    def say(text: str) -> None:
        click.echo(f"[+] {text}", err=True)

    async def work(o: Orchestrator) -> tuple[control.StartReport, dict[str, Any], list[str]]:
        report = await control.start(o, say, Lines(sys.stderr), rebuild=rebuild)
        doc = await control.status(o)
        return report, doc, control.quic_listeners(doc, o.root)

    report, doc, listeners = c.run(work)
    made = ", ".join(report.images + report.built) or "none (all cached)"
    click.echo(f"✅ GPU management services started in {report.seconds:.1f} s (built: {made})")
    for url in control.dashboard_urls(doc):
        click.echo(f"dashboard: {url}")
    for listener in listeners:
        click.echo(f"quic listener: {listener}")


@ct.command("stop")
@click.option("-t", "--timeout", type=click.FloatRange(0, 3600), default=None, metavar="S",
              help="Seconds to wait for each service to stop.")  # fmt: skip
@pass_ct
def stop_cmd(c: CtContext, timeout: float | None) -> None:
    """Stop and remove the stack's containers and networks (images and volumes stay)."""
    from nvcontrol.ct import control

    removed = c.run(lambda o: control.stop(o, timeout))
    click.echo(f"stopped: {len(removed)} removed" if removed else "nothing was running")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _show(v: Any, unit: str = "") -> str:
    return "-" if v is None else f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def render_status(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    services = Table(title=f"stack {doc['project']}", title_justify="left")
    for col in ("service", "state", "health", "uptime", "restarts", "gpus"):
        services.add_column(col)
    for s in doc["services"]:
        state = s["state"] if s["state"] != "exited" else f"exited ({s['exit_code']})"
        services.add_row(s["service"], state, s["health"] or "-", _age(s["uptime_s"]),
                         str(s["restarts"]), str(len(s["gpus"])))  # fmt: skip
    if not doc["services"]:
        services.add_row("(not started)", "-", "-", "-", "-", "-")
    console.print(services)
    gpus = Table(title="GPUs", title_justify="left")
    for col in ("gpu", "model", "temp", "power", "graphics", "memory", "offsets g/m", "services"):
        gpus.add_column(col)
    for g in doc["gpus"]:
        o = g["offsets_mhz"]
        gpus.add_row(str(g["index"]), g["model"], _show(g["temperature_c"], " °C"),
                     _show(g["power_w"], " W"), _show(g["clocks_mhz"]["graphics"], " MHz"),
                     _show(g["clocks_mhz"]["memory"], " MHz"),
                     f"{_show(o['graphics'])}/{_show(o['memory'])} MHz",
                     ", ".join(g["services"]) or "-")  # fmt: skip
    console.print(gpus)
    if "gpu_error" in doc:
        console.print(f"GPUs: {doc['gpu_error']}")


@ct.command("status")
@json_option
@pass_ct
def status_cmd(c: CtContext, as_json: bool) -> None:
    """Each service (state, health, uptime, restarts) and each GPU (model, temperature,
    power, clocks, offsets, and the services that use it)."""
    from nvcontrol.ct import control

    doc = c.run(control.status, quiet=True)
    if as_json:
        emit_json(doc)
    else:
        render_status(doc)


@ct.command("logs")
@click.argument("services", nargs=-1, metavar="[SVC]...")
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", type=click.IntRange(0), default=None, metavar="N")
@pass_ct
def logs_cmd(c: CtContext, services: tuple[str, ...], follow: bool, tail: int | None) -> None:
    """The services' logs, merged and prefixed with the container's name."""
    from bolt.surge.tools import stream_logs

    async def work(o: Orchestrator) -> None:
        await stream_logs(
            o, services, follow=follow, tail=tail, color=sys.stdout.isatty(), out=sys.stdout
        )

    c.run(work, quiet=True)


@ct.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ct
def exec_cmd(c: CtContext, service: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in SERVICE's running container (nvctl ct exec SVC -- CMD...); exits
    with its exit code."""

    async def work(o: Orchestrator) -> int:
        result = await o.exec_in_service(service, list(command))
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return int(result.exit_code)

    code = c.run(work, quiet=True)
    sys.exit(code)


@ct.command("monitor")
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=None, metavar="S",
              help="Text and JSON: show a sample at most every S seconds (default: each "
              "sample gpu-monitor takes, once a second in the stack).")  # fmt: skip
@click.option("--count", type=click.IntRange(1), default=None, metavar="N",
              help="Text and JSON: stop after N samples (default: until Ctrl-C).")  # fmt: skip
@click.option("--plain", is_flag=True, help="Plain text lines even on a terminal.")
@click.option("--url", metavar="URL", default=None,
              help="Read another gpu-monitor (any nvctl agent's HTTPS listener, "
              "https://HOST:PORT) instead of the stack's; its viewer token is read from "
              "$NVCTL_TOKEN.")  # fmt: skip
@click.option("--cert", "cert", metavar="PEM", default=None, type=click.Path(dir_okay=False),
              help="With --url: trust exactly this agent certificate (default: not "
              "verified).")  # fmt: skip
@json_option
@pass_ct
def monitor_cmd(
    c: CtContext,
    interval: float | None,
    count: int | None,
    plain: bool,
    url: str | None,
    cert: str | None,
    as_json: bool,
) -> None:
    """Live GPU samples from the gpu-monitor service: a full-screen view with per-GPU
    history graphs on a terminal (q quits, p pauses), plain text lines otherwise or with
    --plain, JSON lines with --json."""
    from nvcontrol.ct import monitor_feed

    full_screen = not (as_json or plain) and sys.stdout.isatty() and sys.stdin.isatty()

    async def work(o: Orchestrator | None) -> None:
        if url is not None:
            source = monitor_feed.Source(
                _monitor_url(url), os.environ.get("NVCTL_TOKEN") or None,
                monitor_feed.pinned(cert) if cert else False,
            )  # fmt: skip
            services: dict[str, list[str]] | None = None
        else:
            assert o is not None
            source = await monitor_feed.stack_source(o)
            services = await monitor_feed.services_by_gpu(o) if full_screen else {}
        if full_screen:
            from nvcontrol.ct.monitor_app import MonitorApp

            await MonitorApp(lambda: monitor_feed.events(source), source.url, services).run_async()
            return
        await _monitor_lines(monitor_feed.events(source, history=1), interval, count, as_json)

    try:
        if url is not None:
            asyncio.run(work(None))
        else:
            c.run(work, quiet=True)
    except KeyboardInterrupt:
        pass


def _monitor_url(url: str) -> str:
    from urllib.parse import urlsplit

    from basis.errors import InvalidInput

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidInput(f"--url {url!r}: expected https://HOST:PORT")
    return url.rstrip("/")


async def _monitor_lines(
    events: Any, interval: float | None, count: int | None, as_json: bool
) -> None:
    """The plain-text (or JSON lines) view: one block per sample.  A gpu-monitor that
    cannot be reached at first is an error; one lost later is reported and retried."""
    from basis.errors import PermissionDenied, UserError
    from nvcontrol.cli.common import emit_json_line
    from nvcontrol.ct.monitor import frame, line

    names: dict[str, Any] = {}
    shown, last, connected = 0, 0.0, False
    async for event in events:
        kind = event.get("t")
        if kind == "down" or kind == "error":
            if event.get("fatal") or kind == "error":
                raise PermissionDenied(str(event.get("message")))
            if not connected:
                raise UserError(str(event["message"]),
                                hint="is the stack running? see `nvctl ct status`")  # fmt: skip
            click.echo(f"{event['message']}; retrying", err=True)
            continue
        if kind == "hello":
            connected = True
            names = event.get("names") or {}
            samples = event.get("history") or []
        elif kind == "sample":
            samples = [event]
        else:
            continue
        for sample in samples:
            now = time.monotonic()
            if interval is not None and shown and now - last < interval:
                continue
            last = now
            doc = frame(sample, names)
            if as_json:
                emit_json_line(doc)
            else:
                click.echo(time.strftime("%H:%M:%S", time.localtime(doc["time"] or time.time())))
                for g in doc["gpus"]:
                    click.echo("  " + line(g))
            shown += 1
            if count is not None and shown >= count:
                return


# ---------------------------------------------------------------------------- update


@ct.command("update")
@click.option("--version", "version", metavar="V", default=None,
              help="The staged package of driver V (default: the newest staged).")  # fmt: skip
@click.option("--package", type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="PATH", help="Stage this driver package (and PATH.sha256) first.")  # fmt: skip
@click.option("--install", is_flag=True,
              help="Install it: snapshot, install, health check, roll back on failure.")  # fmt: skip
@json_option
@pass_ct
def update_cmd(
    c: CtContext, version: str | None, package: Path | None, install: bool, as_json: bool
) -> None:
    """Stage a driver package in the driver-updater, verify it (checksum, GPU
    architectures, kernel headers), build and test it in isolation, and with --install
    install it (exit 5 when its health check failed and it was rolled back)."""
    from nvcontrol.ct import update

    def say(text: str) -> None:
        if not as_json:
            click.echo(f"[+] {text}", err=True)

    doc, code = c.run(
        lambda o: update.update(o, version=version, package=package, install=install, say=say),
        quiet=True,
    )
    if as_json:
        emit_json(doc)
        sys.exit(code)
    for p in doc["problems"]:
        click.echo(f"error: {p['check']}: {p['message']}", err=True)
    checks = doc.get("checks", {})
    if "sha256" in checks:
        click.echo(f"checksum: ok ({checks['sha256'][:16]}…)")
    if "architectures" in checks:
        click.echo(f"architectures: {checks['architectures']}")
    if doc.get("build"):
        click.echo(f"build and test: {doc['build']['library']}")
    inst = doc.get("install")
    if inst is None:
        hint = " (run again with --install)" if doc["result"] == "ready to install" else ""
        click.echo(f"{doc['package'] or 'no package'}: {doc['result']}{hint}")
    elif inst["installed"]:
        click.echo(f"✅ driver {inst['version']} installed (was {inst['previous']}); "
                   f"snapshot {inst['snapshot']}")  # fmt: skip
    elif inst["rolled_back"]:
        click.echo(f"❌ driver {inst['version']} failed its health check ({inst['cause']}); "
                   f"rolled back to {inst['driver']}; snapshot {inst['snapshot']} kept", err=True)  # fmt: skip
    else:
        click.echo(f"❌ the update failed: {inst['cause']}; driver is {inst['driver']}", err=True)
    sys.exit(code)


# ---------------------------------------------------------------------------- snapshots


@ct.group("snapshot")
@pass_ct
def snapshot(c: CtContext) -> None:
    """Capsule snapshots of the stack: its containers' file systems (taken paused) and the
    GPU configuration, restored all or nothing."""
    from bolt.capsules.snapshots import repair

    # As every bolt snapshot command does: first finish what a killed restore left.
    asyncio.run(repair(_root(c)))


def _root(c: CtContext) -> Path:
    from nvcontrol.ct.control import default_root

    return Path(c.root) if c.root else default_root()


def _project(c: CtContext) -> str:
    from nvcontrol.ct.stack import load

    return str(load(c.file).name)  # type: ignore[attr-defined]


@snapshot.command("create")
@click.argument("name")
@json_option
@pass_ct
def snapshot_create(c: CtContext, name: str, as_json: bool) -> None:
    """Take snapshot NAME of the running stack and of the GPUs."""
    from bolt.capsules.snapshots import Snapshot

    began = time.monotonic()
    snap = asyncio.run(Snapshot.create(name, project=_project(c), root=_root(c)))
    if as_json:
        emit_json(snap.summary())
        return
    click.echo(f"snapshot {name}: {', '.join(snap.providers)} in {time.monotonic() - began:.2f} s")


@snapshot.command("restore")
@click.argument("name")
@json_option
@pass_ct
def snapshot_restore(c: CtContext, name: str, as_json: bool) -> None:
    """Bring the stack's containers and the GPUs back to NAME (all or nothing; exit 5
    when a part failed and everything was rolled back)."""
    from bolt.capsules.snapshots import Snapshot

    report = asyncio.run(Snapshot.get(name, root=_root(c)).restore())
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(f"restored {name}")


@snapshot.command("list")
@json_option
@pass_ct
def snapshot_list(c: CtContext, as_json: bool) -> None:
    """The stack's snapshots, oldest first."""
    from bolt.capsules.snapshots import Snapshot

    project = _project(c)
    snaps = [s.summary() for s in Snapshot.list(root=_root(c)) if s.project == project]
    if as_json:
        emit_json({"snapshots": snaps})
        return
    if not snaps:
        click.echo("no snapshots")
    for s in snaps:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["created"]))
        click.echo(f"{s['name']}  {created}  {s['trigger']}  {', '.join(s['providers'])}")


@snapshot.command("delete")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@pass_ct
def snapshot_delete(c: CtContext, names: tuple[str, ...]) -> None:
    """Delete snapshots."""
    from bolt.capsules.snapshots import Snapshot

    for name in names:
        Snapshot.delete(name, root=_root(c))
        click.echo(f"deleted {name}")
