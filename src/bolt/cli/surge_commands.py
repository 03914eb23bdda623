"""``bolt surge up|down|ps|logs|start|stop|restart|scale|build|pull|images|top|events|run|exec``.

Each handler loads the Boltfile (exit 2 before anything starts when it is wrong), makes an
``Orchestrator`` and renders what it returns.  ``run`` and ``exec`` exit with the
container's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from bolt.errors import InvalidInput

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator

Add = Callable[..., argparse.ArgumentParser]


def _orchestrator(args: argparse.Namespace, *, quiet: bool = False) -> Orchestrator:
    from bolt.cli.surge import load, profiles
    from bolt.surge.orchestrator import Orchestrator

    boltfile = load(args)

    def report(subject: str, text: str) -> None:
        if not quiet:
            print(f"[+] {subject}: {text}", file=sys.stderr, flush=True)

    def build_progress(service: str) -> object:
        from bolt.cli.build import Lines

        return Lines(sys.stderr, quiet=quiet)

    return Orchestrator(
        boltfile,
        root=args.root,
        profiles=profiles(args),
        report=report,
        build_progress=build_progress,
    )


def _run(
    args: argparse.Namespace,
    work: Callable[[Orchestrator], Coroutine[Any, Any, int]],
    quiet: bool = False,
) -> int:
    orch = _orchestrator(args, quiet=quiet)
    try:
        return asyncio.run(work(orch))
    finally:
        orch.close()


def register(add: Add) -> None:
    p = add("up", "build, (re)create and start the project's services in dependency order")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="return once started (the default: services always run detached)",
    )
    p.add_argument("--build", action="store_true", help="build images before starting")
    p.add_argument(
        "--force-recreate", action="store_true", help="recreate even unchanged containers"
    )
    p.add_argument("--no-deps", action="store_true", help="do not start the services' dependencies")
    p.add_argument("--wait", action="store_true", help="return when all are running and healthy")
    p.add_argument("--wait-timeout", type=float, default=120.0, metavar="S")
    p.add_argument(
        "--remove-orphans",
        action="store_true",
        help="remove containers of services no longer in the file",
    )
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    p.set_defaults(handler=up, needs_root=True)

    p = add("down", "stop and remove the project's containers and networks")
    p.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    p.add_argument("-t", "--timeout", type=float, metavar="S", help="seconds to wait for a stop")
    p.set_defaults(handler=down, needs_root=True)

    for name in ("ps", "status"):
        p = add(name, "list the project's containers")
        p.add_argument("--json", action="store_true")
        p.add_argument("-a", "--all", action="store_true", help="include one-off (run) containers")
        p.set_defaults(handler=ps, needs_root=True)

    p = add("logs", "show services' logs, merged and prefixed")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, metavar="N")
    p.add_argument("--no-color", action="store_true")
    p.set_defaults(handler=logs, needs_root=True)

    for name, text in (
        ("start", "start existing containers"),
        ("stop", "stop running containers"),
        ("restart", "restart containers"),
    ):
        p = add(name, f"{text} of the project's services")
        p.add_argument("services", nargs="*", metavar="SERVICE")
        p.add_argument("-t", "--timeout", type=float, metavar="S")
        p.set_defaults(handler=lifecycle, needs_root=True, action=name)

    p = add("scale", "set the number of containers of services")
    p.add_argument("scales", nargs="+", metavar="SERVICE=N")
    p.set_defaults(handler=scale, needs_root=True)

    p = add("build", "build the images of services that have a build section")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(handler=build, needs_root=True)

    p = add("pull", "pull the images of services that name one")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(handler=pull, needs_root=True)

    p = add("images", "list the images the project's services use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show_images, needs_root=True)

    p = add("top", "list the processes running in the project's containers")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=top, needs_root=True)

    p = add("events", "stream the engine's events for the project's containers (JSON lines)")
    p.add_argument("--since", type=float, metavar="UNIX_TIME")
    p.add_argument("--no-follow", action="store_true", help="print past events and return")
    p.set_defaults(handler=events, needs_root=True)

    p = add("run", "run a one-off command in a new container of a service")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-deps", action="store_true")
    p.set_defaults(handler=run, needs_root=True)

    p = add("exec", "run a command in a service's running container")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--index", type=int, default=1, help="which replica (default 1)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.set_defaults(handler=exec_cmd, needs_root=True)


def _scales(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit() or int(count) > 1000:
            raise InvalidInput(f"invalid scale {item!r} (expected SERVICE=N, N from 0 to 1000)")
        out[name] = int(count)
    return out


def _command(cmd: list[str]) -> list[str]:
    return cmd[1:] if cmd and cmd[0] == "--" else cmd


def up(args: argparse.Namespace) -> int:
    scale_map = _scales(args.scale)

    async def work(o: Orchestrator) -> int:
        result = await o.surge_up(
            args.services,
            build=args.build,
            force_recreate=args.force_recreate,
            no_deps=args.no_deps,
            wait=args.wait,
            remove_orphans=args.remove_orphans,
            scale=scale_map,
            timeout=args.wait_timeout,
        )
        if not result.plan.changes and not result.built:
            print(f"[+] {o.project}: up to date", file=sys.stderr)
        return 0

    return _run(args, work)


def down(args: argparse.Namespace) -> int:
    async def work(o: Orchestrator) -> int:
        await o.surge_down(volumes=args.volumes, timeout=args.timeout)
        return 0

    return _run(args, work)


def ps(args: argparse.Namespace) -> int:
    async def work(o: Orchestrator) -> int:
        states = await o.status(None if args.all else False)
        if args.json:
            json.dump([s.to_json() for s in states], sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        rows = [("NAME", "SERVICE", "STATUS", "HEALTH", "RESTARTS", "PORTS")]
        for s in states:
            status = s.status + (f" ({s.exit_code})" if s.status == "exited" else "")
            ports = ", ".join(_port_text(p) for p in s.ports)
            rows.append((s.name, s.service, status, s.health or "", str(s.restart_count), ports))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        return 0

    return _run(args, work, quiet=True)


def _port_text(p: dict[str, Any]) -> str:
    host = p.get("host_ip") or "0.0.0.0"
    return f"{host}:{p.get('host_port')}->{p.get('container_port')}/{p.get('protocol', 'tcp')}"


def logs(args: argparse.Namespace) -> int:
    from bolt.surge.tools import stream_logs

    async def work(o: Orchestrator) -> int:
        color = sys.stdout.isatty() and not args.no_color
        await stream_logs(
            o, args.services, follow=args.follow, tail=args.tail, color=color, out=sys.stdout
        )
        return 0

    return _run(args, work, quiet=True)


def lifecycle(args: argparse.Namespace) -> int:
    from bolt.surge.tools import start_stop

    async def work(o: Orchestrator) -> int:
        await start_stop(o, args.action, args.services, timeout=args.timeout)
        return 0

    return _run(args, work)


def scale(args: argparse.Namespace) -> int:
    scale_map = _scales(args.scales)

    async def work(o: Orchestrator) -> int:
        await o.surge_up(list(scale_map), scale=scale_map, no_deps=True)
        return 0

    return _run(args, work)


def build(args: argparse.Namespace) -> int:
    async def work(o: Orchestrator) -> int:
        built = await o.build_images(args.services, args.no_cache)
        if not built:
            print("no service has a build section", file=sys.stderr)
        return 0

    return _run(args, work)


def pull(args: argparse.Namespace) -> int:
    from bolt.surge import images

    async def work(o: Orchestrator) -> int:
        names = o._selected(args.services) or list(o.boltfile.services)
        for name in names:
            svc = o.boltfile.services[name]
            if svc.image and svc.build is None:
                o.report(name, f"pulling {svc.image}")
                await asyncio.to_thread(images.pull_service, o.root, o.boltfile, name)
        return 0

    return _run(args, work)


def show_images(args: argparse.Namespace) -> int:
    from bolt.surge.tools import project_images

    async def work(o: Orchestrator) -> int:
        rows = await asyncio.to_thread(project_images, o)
        if args.json:
            json.dump(rows, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for r in rows:
                print(
                    f"{r['service']:<20} {r['image']:<40} {(r['id'] or 'missing')[7:19] if r['id'] else 'missing'}"
                )
        return 0

    return _run(args, work, quiet=True)


def top(args: argparse.Namespace) -> int:
    from bolt.surge.tools import processes

    async def work(o: Orchestrator) -> int:
        table = await processes(o, args.services)
        if args.json:
            json.dump(table, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        for name, procs in table.items():
            print(name)
            print(f"  {'PID':>7}  COMMAND")
            for p in procs:
                print(f"  {p['pid']:>7}  {p['command']}")
        return 0

    return _run(args, work, quiet=True)


def events(args: argparse.Namespace) -> int:
    from bolt.surge.tools import project_events

    orch = _orchestrator(args, quiet=True)
    try:
        for event in project_events(orch, args.since, follow=not args.no_follow):
            print(json.dumps(event), flush=True)
    finally:
        orch.close()
    return 0


def run(args: argparse.Namespace) -> int:
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidInput(f"invalid -e {item!r} (expected KEY=VALUE)")
        if not sep:
            import os

            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    command = _command(args.cmd) or None

    def stream(name: str, text: str) -> None:
        target = sys.stderr if name == "stderr" else sys.stdout
        target.write(text)
        target.flush()

    async def work(o: Orchestrator) -> int:
        return await o.run_service(
            args.service, command, remove=args.rm, env=env, no_deps=args.no_deps, stream=stream
        )

    return _run(args, work, quiet=True)


def exec_cmd(args: argparse.Namespace) -> int:
    command = _command(args.cmd)
    if not command:
        raise InvalidInput("exec: no command given", hint="bolt surge exec SERVICE -- CMD...")

    async def work(o: Orchestrator) -> int:
        result = await o.exec_in_service(
            args.service,
            command,
            index=args.index,
            env=args.env,
            user=args.user,
            workdir=args.workdir,
        )
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.exit_code

    return _run(args, work, quiet=True)
