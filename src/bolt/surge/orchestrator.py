"""``Orchestrator``: a Boltfile project brought up, inspected and taken down on the Engine.

The I/O edge around :mod:`bolt.surge.plan`: it observes the project's containers (their
``bolt.surge.*`` labels), asks the planner what to do, and runs the actions, each service
as its own task that first waits for its dependencies' conditions.  Engine calls block, so
they run in threads.  Nothing here is remembered between runs but the containers and their
labels, which is why an ``up`` killed at any point is finished by the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basis.errors import ExecError, NotFound, Unsupported, UserError, from_exit_code
from bolt.config import Boltfile
from bolt.engine import ContainerInfo, Engine, ExecResult
from bolt.runtime.intent import ContainerIntent
from bolt.surge import capsule, images, intents, quicnet, resources, snapshots
from bolt.surge.plan import (
    COMPLETED,
    HEALTHY,
    CreateContainer,
    DesiredService,
    ObservedContainer,
    Plan,
    RemoveContainer,
    RestartContainer,
    ServicePlan,
    StartContainer,
    UpOptions,
    plan_down,
    plan_up,
)
from bolt.surge.results import ServiceState, UpResult

Report = Callable[[str, str], None]  # (subject, what happened)


def _silent(_subject: str, _text: str) -> None:
    return None


class Orchestrator:
    def __init__(
        self,
        boltfile: Boltfile,
        *,
        root: Path | str | None = None,
        profiles: Iterable[str] = (),
        report: Report | None = None,
        build_progress: Callable[[str], object] | None = None,
    ) -> None:
        self.boltfile = boltfile
        self.engine = Engine(root)
        self.root = self.engine.root
        self.profiles = set(profiles)
        self.report = report or _silent
        self.build_progress = build_progress
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.engine.close()

    async def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn`` in a worker thread.  The pool is wider than asyncio's default (cores + 4):
        a container start mostly waits on its runtime and netavark, so on a small machine
        the default would start only a handful at once."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=int(os.environ.get("BOLT_SURGE_WORKERS", "32")),
                thread_name_prefix="surge",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    @property
    def project(self) -> str:
        return self.boltfile.name

    # ------------------------------------------------------------------ observing

    def _containers(self, oneoff: bool | None = False) -> list[ContainerInfo]:
        labels = {intents.PROJECT: self.project}
        if oneoff is not None:
            labels[intents.ONEOFF] = "true" if oneoff else "false"
        return self.engine.list(all=True, labels=labels)

    @staticmethod
    def _observed(info: ContainerInfo) -> ObservedContainer:
        number = info.labels.get(intents.NUMBER, "0")
        return ObservedContainer(
            id=info.id,
            name=info.name,
            service=info.labels.get(intents.SERVICE, ""),
            number=int(number) if number.isdigit() else 0,
            status=info.status,
            spec_hash=info.labels.get(intents.HASH),
            exit_code=info.exit_code,
            restart_count=info.restart_count,
        )

    def _selected(self, services: Iterable[str]) -> list[str]:
        chosen = list(services)
        for name in chosen:
            if name not in self.boltfile.services:
                raise NotFound(
                    f"no service {name!r} in {self.boltfile.path}",
                    hint=f"services: {', '.join(self.boltfile.services)}",
                )
        return chosen

    def _active(self, services: Iterable[str] = ()) -> list[str]:
        chosen = set(self._selected(services))
        return [
            n
            for n in self.boltfile.services
            if n in chosen or n in self.boltfile.active_services(self.profiles)
        ]

    # ------------------------------------------------------------------ images

    async def ensure_images(
        self,
        services: Iterable[str],
        rebuild: bool = False,
        ids: images.ImageIds | None = None,
    ) -> UpResult:
        """Build, pull or make (from a capsule) the images ``services`` lack; ``ids`` is
        told which references changed."""
        ids = ids or images.ImageIds(self.root)
        names = list(services)
        for name in names:
            svc = self.boltfile.services[name]
            if svc.stdin_open and not svc.tty:
                raise Unsupported(
                    f"service {name}: stdin_open without tty: a detached container's stdin "
                    "is closed once `up` returns, so it cannot be kept open yet",
                    hint="add tty = true (the terminal stays open as the service's stdin), "
                    "or remove stdin_open",
                )
        present = lambda ref: ids(ref) is not None  # noqa: E731
        todo = await self._call(images.needs, self.boltfile, names, present, rebuild)
        result = UpResult(Plan(()))
        for name in names:
            if self.boltfile.services[name].capsule is not None:
                await self._call(capsule.ensure_image, self.root, self.boltfile, name)
                ids.forget(intents.image_ref(self.boltfile, name))
        if any(need.action == "build" for need in todo):
            await snapshots.before("before_build", self.boltfile, self.root, self.report)
        for need in todo:  # builds one after another: they share two cores and a cache
            if need.action == "build":
                self.report(need.service, f"building {need.ref}")
                progress = (
                    self.build_progress(need.service)
                    if self.build_progress
                    else images.SilentBuild()
                )
                await self._call(
                    images.build_service, self.root, self.boltfile, need.service, progress
                )
                result.built.append(need.service)
            else:
                self.report(need.service, f"pulling {need.ref}")
                await self._call(images.pull_service, self.root, self.boltfile, need.service)
                result.pulled.append(need.service)
            ids.forget(need.ref)
        return result

    async def build_images(self, services: Iterable[str] = (), no_cache: bool = False) -> list[str]:
        """Build the images of ``services`` (default: all) that have a ``build``; their names."""
        snapshots.check(self.boltfile)
        names = self._selected(services) or list(self.boltfile.services)
        built = [n for n in names if self.boltfile.services[n].build is not None]
        if built:
            await snapshots.before("before_build", self.boltfile, self.root, self.report)
        for name in built:
            self.report(name, f"building {intents.image_ref(self.boltfile, name)}")
            progress = self.build_progress(name) if self.build_progress else images.SilentBuild()
            await self._call(
                images.build_service, self.root, self.boltfile, name, progress, no_cache
            )
        return built

    # ------------------------------------------------------------------ up

    def _desired(
        self, services: Iterable[str], scale: Mapping[str, int], ids: images.ImageIds
    ) -> tuple[list[DesiredService], dict[str, Any]]:
        desired: list[DesiredService] = []
        intent_of: dict[str, Any] = {}
        quicnet.ensure_identity(self.root, self.boltfile)
        for name in services:
            svc = self.boltfile.services[name]
            intent = self._quic(intents.service_intent(self.boltfile, name)).validate()
            image = ids(intent.image) or ""
            spec_hash = intents.desired_hash(intent, image)
            intent_of[name] = (intent, spec_hash)
            desired.append(
                DesiredService(
                    name,
                    spec_hash,
                    replicas=scale.get(name, svc.scale),
                    depends_on={d: c.condition for d, c in svc.depends_on.items()},
                    restart=svc.restart.policy,
                    max_retries=svc.restart.max_retries,
                    optional=frozenset(d for d, c in svc.depends_on.items() if not c.required),
                    restart_with=frozenset(d for d, c in svc.depends_on.items() if c.restart),
                )
            )
        return desired, intent_of

    def _quic(self, intent: ContainerIntent) -> ContainerIntent:
        """What the ``quic`` network driver adds to a service (nothing for other networks)."""
        if not quicnet.active(self.boltfile):
            return intent
        return quicnet.extend(
            intent, self.boltfile, self.root, quicnet.image_config(self.root, intent.image)
        )

    async def surge_up(
        self,
        services: Iterable[str] = (),
        *,
        build: bool = False,
        force_recreate: bool = False,
        no_deps: bool = False,
        wait: bool = False,
        remove_orphans: bool = False,
        scale: Mapping[str, int] | None = None,
        timeout: float = 120.0,
    ) -> UpResult:
        """Converge the project: build/pull what is missing, create networks and volumes,
        then (re)create and start services in dependency order."""
        selected = self._selected(services)
        snapshots.check(self.boltfile)
        names = self._active(selected)
        if selected and not no_deps:
            names = self._with_dependencies(selected)
        warming = asyncio.ensure_future(self._call(_warm_monitor_server, self.engine))
        ids = images.ImageIds(self.root)
        result = await self.ensure_images(names, rebuild=build, ids=ids)
        await self._call(resources.ensure_networks, self.engine, self.boltfile, names, self.report)
        await self._call(resources.ensure_volumes, self.engine, self.boltfile, names, self.report)
        desired, intent_of = await self._call(self._desired, names, scale or {}, ids)
        containers = await self._call(self._containers)
        observed = [self._observed(c) for c in containers]
        options = UpOptions(
            services=frozenset(selected),
            no_deps=no_deps,
            force_recreate=force_recreate,
            remove_orphans=remove_orphans,
        )
        try:
            plan = plan_up(desired, observed, options)
        except ValueError as err:
            raise NotFound(str(err)) from None
        for warning in plan.warnings:
            self.report(self.project, f"warning: {warning}")
        result.plan = plan
        if plan.changes:
            await snapshots.before("before_surge_up", self.boltfile, self.root, self.report)
        await warming
        await self._execute(plan, intent_of, timeout)
        if wait:
            await self.wait_ready([s.service for s in plan.services], timeout)
        return result

    def _with_dependencies(self, selected: list[str]) -> list[str]:
        wanted: set[str] = set()
        stack = list(selected)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                deps = self.boltfile.services[name].depends_on
                stack.extend(d for d in deps if d in self.boltfile.services)
        return [n for n in self.boltfile.services if n in wanted]

    async def _execute(self, plan: Plan, intent_of: dict[str, Any], timeout: float) -> None:
        await asyncio.gather(*(self._remove(r) for r in plan.orphans))
        done: dict[str, asyncio.Task[None]] = {}
        ready: dict[tuple[str, str], asyncio.Task[None]] = {}

        async def condition(dep: str, cond: str) -> None:
            key = (dep, cond)
            if key not in ready:
                ready[key] = asyncio.ensure_future(self._meet(dep, cond, done[dep], timeout))
            await ready[key]

        async def run(sp: ServicePlan) -> None:
            for dep, cond in sp.requires.items():
                try:
                    await condition(dep, cond)
                except UserError as err:
                    if dep in sp.optional:
                        self.report(sp.service, f"warning: optional dependency {dep} failed: {err}")
                        continue
                    raise UserError(
                        f"{sp.service}: not started, dependency {dep} failed: {err}"
                    ) from None
            intent, spec_hash = intent_of[sp.service]
            try:
                for action in _merge_create_start(sp.actions):
                    await self._act(action, intent, spec_hash)
            except UserError as err:  # name the service; keep the code (127: no command)
                raise from_exit_code(
                    err.exit_code, f"service {sp.service}: {err.message}", err.hint
                ) from None

        for sp in plan.services:
            done[sp.service] = asyncio.ensure_future(run(sp))
        results = await asyncio.gather(*done.values(), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            first = next((e for e in errors if not isinstance(e, UserError)), None)
            if first is not None:
                raise first
            unique = list({str(e): e for e in errors}.values())
            if len(unique) == 1:
                raise unique[0]
            raise UserError("; ".join(str(e) for e in unique))

    async def _meet(
        self, service: str, cond: str, started: asyncio.Task[None], timeout: float
    ) -> None:
        await started
        for c in await self._call(self._containers):
            if c.labels.get(intents.SERVICE) != service:
                continue
            if cond == HEALTHY:
                self.report(c.name, "waiting to be healthy")
                try:
                    await self.engine.await_health(c.id, "healthy", timeout)
                except TimeoutError as err:
                    raise UserError(str(err)) from None
                self.report(c.name, "healthy")
            elif cond == COMPLETED:
                code = await self.engine.await_exit(c.id, timeout)
                if code != 0:
                    raise UserError(f"{c.name} exited with code {code}")
                self.report(c.name, "completed")

    async def _act(self, action: Any, intent: Any, spec_hash: str) -> None:
        if isinstance(action, RemoveContainer):
            await self._remove(action)
            return
        if isinstance(action, RestartContainer):
            await self._call(self.engine.stop, action.id)
            await self._call(self.engine.start, action.id)
            self.report(action.name, f"restarted ({action.because} changed)")
            return
        step = self._network_step
        if isinstance(action, _CreateStart):
            name = intents.container_name(self.project, action.service, action.number)
            full = intents.labelled(intent, self.boltfile, action.service, action.number, spec_hash)
            await step(action.service, self._launch, full, name, True)
            self.report(name, "started")
        elif isinstance(action, CreateContainer):
            name = intents.container_name(self.project, action.service, action.number)
            full = intents.labelled(intent, self.boltfile, action.service, action.number, spec_hash)
            await step(action.service, self._launch, full, name, False)
            self.report(name, "created")
        elif isinstance(action, StartContainer):
            ref = action.id or intents.container_name(self.project, action.service, action.number)
            info = await step(action.service, self.engine.start, ref)
            self.report(info.name, "started")

    def _launch(self, intent: ContainerIntent, name: str, start: bool) -> ContainerInfo:
        """``Engine.run``/``create``, and detached with a terminal or an open stdin for
        ``tty``/``stdin_open`` (which the engine's API refuses, as it attaches nothing):
        the container's monitor holds the terminal or stdin's open end and logs the output."""
        held = intent.tty or intent.interactive
        if start:
            return self.engine.run(intent, name, hold_terminal=held)
        return self.engine.create(intent, name, hold_terminal=held)

    async def _network_step(self, service: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a container-starting call.  Starts on one network may run in parallel: the
        engine holds a host-wide lock around each netavark call (its firewall set-up races
        with itself otherwise)."""
        return await self._call(fn, *args)

    async def _remove(self, action: RemoveContainer, timeout: float | None = None) -> None:
        try:
            await self._call(self.engine.stop, action.id, timeout)
        except NotFound:
            return
        except UserError:
            pass  # not running: removal below is what matters
        await self._call(self.engine.remove, action.id, True, True)
        self.report(action.name, f"removed ({action.reason})")

    async def wait_ready(self, services: Iterable[str], timeout: float = 120.0) -> None:
        """Every container of ``services`` running, and healthy where it has a check."""
        names = set(services)
        for c in await self._call(self._containers):
            if c.labels.get(intents.SERVICE) not in names:
                continue
            if c.status != "running":
                raise UserError(f"{c.name} is {c.status}, not running")
            if c.health is not None:
                await self.engine.await_health(c.id, "healthy", timeout)

    # ------------------------------------------------------------------ down, status

    async def surge_down(
        self, *, volumes: bool = False, timeout: float | None = None, services: Iterable[str] = ()
    ) -> list[str]:
        """Stop and remove the project's containers (dependents first), then its networks
        and, with ``volumes``, its named volumes.  Returns what was removed."""
        graph = {n: list(s.depends_on) for n, s in self.boltfile.services.items()}
        selected = frozenset(self._selected(services))
        observed = [self._observed(c) for c in await self._call(self._containers, None)]
        if observed:
            await snapshots.before("before_surge_down", self.boltfile, self.root, self.report)
        removed: list[str] = []
        # removals run in parallel: the engine serialises their netavark teardowns host-wide
        for wave in plan_down(graph, observed, selected):
            await asyncio.gather(*(self._remove(r, timeout) for r in wave))
            removed.extend(r.name for r in wave)
        if selected:
            return removed
        for net in await self._call(self.engine.network_list, {intents.PROJECT: self.project}):
            await self._call(self.engine.network_remove, net.name)
            self.report(net.name, "network removed")
            removed.append(net.name)
        if volumes:
            for vol in await self._call(self.engine.volume_list, {intents.PROJECT: self.project}):
                await self._call(self.engine.volume_remove, vol["name"])
                self.report(vol["name"], "volume removed")
                removed.append(vol["name"])
        return removed

    async def status(self, oneoff: bool | None = False) -> list[ServiceState]:
        out = []
        for c in await self._call(self._containers, oneoff):
            o = self._observed(c)
            out.append(
                ServiceState(
                    o.service,
                    c.name,
                    o.number,
                    c.status,
                    c.health,
                    c.exit_code,
                    c.restart_count,
                    c.image,
                    c.ports,
                    c.networks,
                    c.id,
                )
            )
        order = list(self.boltfile.services)
        return sorted(
            out,
            key=lambda s: (order.index(s.service) if s.service in order else len(order), s.number),
        )

    async def containers_of(self, service: str, running: bool = False) -> list[ServiceState]:
        self._selected([service])
        states = [s for s in await self.status() if s.service == service]
        return [s for s in states if s.status == "running"] if running else states

    # ------------------------------------------------------------------ exec, run

    async def _running_container(self, service: str, index: int = 1) -> ServiceState:
        running = await self.containers_of(service, running=True)
        chosen = [s for s in running if s.number == index] or running
        if not chosen:
            raise UserError(
                f"service {service} has no running container", hint="start it with bolt surge up"
            )
        return chosen[0]

    async def exec_in_service(
        self,
        name: str,
        cmd: str | list[str],
        *,
        index: int = 1,
        env: Iterable[str] = (),
        user: str | None = None,
        workdir: str | None = None,
    ) -> ExecResult:
        target = await self._running_container(name, index)
        result: ExecResult = await self._call(
            self.engine.exec, target.id, cmd, tuple(env), user, workdir
        )
        return result

    async def execute_in_service(self, name: str, cmd: str | list[str]) -> ExecResult:
        """Run ``cmd`` (a shell string or an argv) in the service's running container; its
        output, or ``ExecError`` with the exit code and output when it fails."""
        result = await self.exec_in_service(name, cmd)
        if result.exit_code != 0:
            text = cmd if isinstance(cmd, str) else " ".join(cmd)
            raise ExecError(text, result.exit_code, result.output)
        return result

    async def run_service(
        self,
        name: str,
        command: list[str] | None,
        *,
        remove: bool = False,
        env: Mapping[str, str] | None = None,
        no_deps: bool = False,
        stream: Callable[[str, str], None] | None = None,
    ) -> int:
        """A one-off container with the service's configuration (networks, GPUs, volumes),
        run in the foreground; its exit code.  Dependencies are brought up first."""
        self._selected([name])
        svc = self.boltfile.services[name]
        if svc.depends_on and not no_deps:
            await self.surge_up(list(svc.depends_on))
        else:
            await self.ensure_images([name])
            await self._call(
                resources.ensure_networks, self.engine, self.boltfile, [name], self.report
            )
            await self._call(
                resources.ensure_volumes, self.engine, self.boltfile, [name], self.report
            )
        await self._call(quicnet.ensure_identity, self.root, self.boltfile)
        base = self._quic(
            intents.service_intent(
                self.boltfile, name, command=command, extra_env=dict(env or {}), oneoff=True
            )
        )
        oneoff = intents.labelled(base, self.boltfile, name, 0, "", oneoff=True)
        import secrets

        container = f"{self.project}-{name}-run-{secrets.token_hex(4)}"
        intent = oneoff.replace(ports=(), auto_remove=remove).validate()
        code: int = await self._call(self.engine.run_oneshot, intent, container, stream)
        return code


def _warm_monitor_server(engine: Engine) -> None:
    """Start the engine's monitor server now, while ``up`` plans, rather than inside the
    first container start (an interpreter's boot, paid while every other start waits on
    that first one).  Best effort: a server that is not up yet starts on first use."""
    with contextlib.suppress(OSError):
        engine.warm_up()


@dataclass(frozen=True)
class _CreateStart:
    service: str
    number: int


def _merge_create_start(actions: Iterable[Any]) -> list[Any]:
    """A create followed by the start of the same slot is one ``run`` (one engine call)."""
    out: list[Any] = []
    for a in actions:
        if (
            isinstance(a, StartContainer)
            and a.id is None
            and out
            and isinstance(out[-1], CreateContainer)
            and (out[-1].service, out[-1].number) == (a.service, a.number)
        ):
            out[-1] = _CreateStart(a.service, a.number)
        else:
            out.append(a)
    return out


__all__ = ["Orchestrator", "ServiceState", "UpResult"]
