"""Container lifecycle over the state database: create, stop, kill, remove, wait, reconcile.

``prepare`` turns a ``ContainerIntent`` into a bundle (overlay root file system +
config.json), records it with the intent and its hash, and ``launch`` hands it to a
monitor.  State changes that two callers could race for (start, remove) are
compare-and-set transitions of the row's status (``StateDB.transition``); the loser gets
``Conflict``.  Every other operation starts with ``reconcile``,
which compares a row with the live processes and the runtime, so a CLI or monitor killed
at any point leaves nothing that the next command does not repair or remove.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import time
from pathlib import Path
from typing import Any, NamedTuple

from bolt.engine.etc import etc_files, health_of
from bolt.errors import BoltError, InvalidInput
from bolt.runtime import linux, rootfs, runroot, spares
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.driver import OciRuntime, make_runtime, select_runtime
from bolt.runtime.flags import signal_number
from bolt.runtime.intent import ContainerIntent, to_dict
from bolt.runtime.layout import ContainerDir
from bolt.runtime.monitor import MonitorJob
from bolt.runtime.monitor_start import spawn_exec, spawn_forked
from bolt.runtime.request import anonymous_volumes, build_spec, cdi_names, network_of
from bolt.runtime.spec import Network, validate
from bolt.state.db import LIVE, ContainerRow, StateDB, now

# Every status a remove may take a row from (not one another remover holds).
NOT_REMOVING = ("creating", "created", "running", "paused", "restarting", "exited", "failed")


class Conflict(InvalidInput):
    """A compare-and-set transition lost to a concurrent caller (nothing changed: exit 2)."""


class Launched(NamedTuple):
    row: ContainerRow
    sock: socket.socket
    monitor_pid: int | None  # set when forked (the caller may reap it)
    layers: tuple[Path, ...] = ()  # the image's layers (a new container's only)


def _new_name(cid: str) -> str:
    return f"bolt-{cid[:8]}"


def _mount_fields(intent: ContainerIntent) -> list[str]:
    return ["--tmpfs" if m.kind == "tmpfs" else "-v" for m in intent.mounts]


def _join_container(root: Path, db: StateDB, ref: str) -> Network:
    """``container:NAME``: the running container's network namespace."""
    other = reconcile(root, db, db.get(ref.removeprefix("container:")))
    if other.status not in ("running", "paused") or not other.pid:
        raise InvalidInput(f"--network: container {other.name} is not running")
    return Network(kind="netns", path=f"/proc/{other.pid}/ns/net")


class Prepared(NamedTuple):
    row: ContainerRow
    runtime: OciRuntime
    layers: tuple[Path, ...]  # the image's unpacked layers, lowest first


class _SpareLost(Exception):
    """Another caller took the spare root file system first (or it was not mounted)."""


def prepare(
    root: Path,
    intent: ContainerIntent,
    db: StateDB,
    name: str | None = None,
    *,
    use_spare: bool = True,
) -> Prepared:
    """Resolve, validate, record and lay out a container; nothing runs yet.  A container
    removed on exit takes a spare root file system of its image if one is ready
    (``bolt.runtime.spares``; ``use_spare=False``: never)."""
    from bolt.runtime import imagecache
    from bolt.runtime.ocispec import generate

    intent = anonymous_volumes(intent.validate())
    rt = select_runtime(intent.runtime, root)
    image = imagecache.resolve(root, db.conn, intent.image)
    layers = image.layers
    spare = spares.find(root, image.id) if intent.auto_remove and use_spare else None
    cid = spare.cid if spare is not None else os.urandom(32).hex()
    given, name = name, name or _new_name(cid)
    cdir = ContainerDir.of(root, cid)
    mode = intent.network_mode
    network = (
        None
        if mode == "bridge"
        else _join_container(root, db, mode)
        if mode.startswith("container:")
        else network_of(intent)
    )
    spec = build_spec(
        intent,
        cid=cid,
        name=name,
        root=root,
        rootfs=cdir.rootfs,
        image_config=image.config,
        layers_lowest_first=layers,
        network=network or Network(kind="private"),
        mount_fields=_mount_fields(intent),
    )
    names = cdi_names(intent)
    if names:
        from bolt.runtime import cdi

        registry = cdi.load_registry()
        names = cdi.with_grants(names, registry, privileged=intent.privileged)
        spec = cdi.apply(spec, cdi.edits_for(names, registry))
    validate(spec)
    health = health_of(intent, image.config)
    row = ContainerRow(
        id=cid,
        name=name,
        image=intent.image,
        image_id=image.id,
        runtime=rt.name,
        status="creating",
        created=now(),
        monitor_pid=os.getpid(),
        monitor_start=linux.proc_start_time(os.getpid()),
        auto_remove=int(intent.auto_remove),
        command=json.dumps(list(spec.args)),
        labels=json.dumps(dict(intent.labels)),
        details=json.dumps(
            {
                "stop_signal": intent.stop_signal
                or str(image.config.get("StopSignal") or "SIGTERM"),
                "stop_timeout": intent.stop_timeout,
                "tty": intent.tty,
                "interactive": intent.interactive,
                "network": mode,
                "cdi_devices": names,
                "runtime_path": rt.path,
                "anonymous_volumes": [m.source for m in intent.mounts if m.kind == "anonymous"],
                "restart": list(intent.restart),
                "healthcheck": None if health is None else list(health),
            }
        ),
        intent=json.dumps(to_dict(intent)),
        spec_hash=intent.spec_hash(),
        health="starting" if health is not None else None,
    )
    try:
        db.insert(row)
    except InvalidInput:
        if spare is None:
            raise
        # Another container took this spare's id first; a taken name fails again below.
        return prepare(root, intent, db, given, use_spare=False)
    try:
        if spare is not None:
            _take_spare(spare, cdir)
        own_ips: list[str] = []
        nameservers: list[str] = []
        if mode == "bridge":
            from bolt.engine import networks

            attached = networks.attach(root, db, row, intent)
            spec = spec._replace(network=Network(kind="netns", path=attached.netns))
            own_ips, nameservers = attached.ips, attached.nameservers
        # A container removed on exit has its bundle on tmpfs; the runtime is given the
        # real paths (runc refuses a root file system reached through a link).
        files = cdir
        if spare is not None or (intent.auto_remove and runroot.make_bundle(root, cdir)):
            files = runroot.in_run_dir(root, cid)
            spec = spec._replace(rootfs=str(files.rootfs))
        taken = {m.destination for m in spec.mounts}
        extra = [
            m
            for m in etc_files(files, spec.hostname, intent, own_ips, nameservers)
            if m.destination not in taken
        ]
        spec = validate(spec._replace(mounts=(*extra, *spec.mounts)))
        # A container removed on exit never mounts its upper directory again, so its
        # writes need not reach the disk (unmounting a synced overlay waits for them).
        if spare is None:
            rootfs.mount_overlay(layers, cdir.path, cdir.rootfs, volatile=intent.auto_remove)
        cdir.config.write_text(json.dumps(generate(spec)))
    except _SpareLost:
        rootfs.delete_container_dir(cdir.path)  # what it holds of the spare, if anything
        db.delete(cid)  # never announced: no event
        return prepare(root, intent, db, given, use_spare=False)
    except BaseException:
        discard(root, db, row)
        raise
    db.add_event(cid, name, "created", image=intent.image)
    return Prepared(db.refresh(row) or row, rt, tuple(layers))


def _take_spare(spare: spares.Spare, cdir: ContainerDir) -> None:
    if not spares.take(spare, cdir) or not spares.mounted(cdir):
        raise _SpareLost


def launch(
    root: Path,
    intent: ContainerIntent,
    *,
    name: str | None = None,
    start: bool = True,
    fork: Any = True,
    db: StateDB | None = None,
) -> Launched:
    """Prepare the container and start its monitor (forked from this single-threaded
    process for speed, or a fresh interpreter for threaded callers).  ``db``: the
    caller's own connection, kept open (only where this process does not fork)."""
    if db is not None:
        done = prepare(root, intent, db, name)
    else:
        db = StateDB(root)
        try:
            done = prepare(root, intent, db, name)
        finally:
            db.close()  # before fork(): a child that inherits SQLite's state cannot open its own
    row, rt = done.row, done.runtime
    job = _job(root, row, rt, start=start, interactive=intent.interactive)
    return _spawn(root, row, job, fork)._replace(layers=done.layers)


def _job(
    root: Path, row: ContainerRow, rt: OciRuntime, *, start: bool, interactive: bool
) -> MonitorJob:
    details = row.details_dict
    restart = details.get("restart") or ("no", None)
    return MonitorJob(
        root=str(root),
        cid=row.id,
        runtime=rt._asdict(),
        terminal=bool(details.get("tty")),
        interactive=interactive,
        start=start,
        auto_remove=bool(row.auto_remove),
        restart=(str(restart[0]), restart[1]),
        healthcheck=tuple(details["healthcheck"]) if details.get("healthcheck") else None,
        restart_count=row.restart_count,
    )


def _spawn(root: Path, row: ContainerRow, job: MonitorJob, fork: Any) -> Launched:
    """Start the monitor.  It records itself in the row as soon as it has started the
    runtime; until then the row names this process, whose death before that point
    leaves the row to be repaired as ``failed``.  ``fork``: True (a child of this
    short-lived process), "orphan" (a grandchild, for long-lived callers), or False (a
    fresh interpreter, for threaded callers), or a ``MonitorServer`` (which forks it)."""
    if not fork:
        return Launched(row=row, sock=spawn_exec(job), monitor_pid=None)
    if hasattr(fork, "spawn"):  # a MonitorServer
        return Launched(row=row, sock=fork.spawn(job), monitor_pid=None)
    pid, sock = spawn_forked(job, orphan=fork == "orphan")
    return Launched(row=row, sock=sock, monitor_pid=pid)


def start_again(root: Path, ref: str, *, fork: Any = True) -> Launched:
    """Run a stopped (exited or failed) container again: same bundle, same upper layer,
    and its log continues.  ``Conflict`` if another caller starts it first."""
    db = StateDB(root)
    try:
        row = reconcile(root, db, db.get(ref))
        if is_live(row) or row.status in ("creating", "removing"):
            raise Conflict(f"container {row.name} is already {row.status}")
        cdir = ContainerDir.of(root, row.id)
        if not cdir.config.exists():
            raise InvalidInput(
                f"container {row.name} has no bundle left to start", hint=f"bolt rm {row.name}"
            )
        details = {
            k: v
            for k, v in row.details_dict.items()
            if k not in ("error", "unsupervised", "stopped")
        }
        won = db.transition(
            row.id,
            (row.status,),
            status="creating",
            exit_code=None,
            finished=None,
            pid=None,
            pid_start=None,
            monitor_pid=os.getpid(),
            monitor_start=linux.proc_start_time(os.getpid()),
            details=json.dumps(details),
            health="starting" if details.get("healthcheck") else None,
        )
        if not won:
            raise Conflict(f"container {row.name} was started by another caller")
        try:
            wait_pid(row.monitor_pid, row.monitor_start, 10)  # a last run's monitor may linger
            _ensure_rootfs(root, db, row)
            cdir.exit_file.unlink(missing_ok=True)
        except BaseException:
            db.update(row.id, status="failed", finished=now())
            raise
        row = db.refresh(row) or row
    finally:
        db.close()
    job = _job(root, row, runtime_of(root, row), start=True, interactive=False)
    return _spawn(root, row, job, fork)


def start_created(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    """Start a container that is only created: ``Conflict`` if another caller did."""
    row = reconcile(root, db, row)
    if row.status != "created":
        raise Conflict(f"container {row.name} is {row.status}, not created")
    if not db.transition(row.id, ("created",), status="running", started=now()):
        raise Conflict(f"container {row.name} was started by another caller")
    try:
        runtime_of(root, row).start(row.id)
    except BoltError:
        db.update(row.id, status="failed", finished=now())
        raise
    db.add_event(row.id, row.name, "started")
    return db.refresh(row) or row


# -- observing ---------------------------------------------------------------------------


def runtime_of(root: Path, row: ContainerRow) -> OciRuntime:
    return make_runtime(row.runtime, root)


def reconcile(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    """Make ``row`` tell the truth when its monitor (or creator) is gone."""
    if linux.process_alive(row.monitor_pid, row.monitor_start):
        return row
    cdir = ContainerDir.of(root, row.id)
    if row.status == "removing":  # its remover died: finish the job
        discard(root, db, row)
        return row._replace(status="removed")
    if row.status == "creating":
        if row.auto_remove:  # a --rm container that never ran: nothing of it is kept
            discard(root, db, row)
            return row._replace(status="removed")
        _fail(db, row, "interrupted while creating")
    elif row.status in LIVE and _restarts(row):
        from bolt.engine.revive import revive

        return revive(root, db, row)
    elif row.status in LIVE:
        state = None
        with contextlib.suppress(BoltError):
            state = runtime_of(root, row).state(row.id)
        alive = linux.process_alive(row.pid, row.pid_start)
        if state is not None and state.get("status") in ("created", "running", "paused") and alive:
            if not row.details_dict.get("unsupervised"):
                db.update(row.id, details=_with(row, unsupervised=True))
        elif row.auto_remove and row.status != "created":  # it ran and ended: --rm holds
            code = _exit_file(cdir)
            discard(root, db, row)
            return row._replace(status="removed", exit_code=code)
        else:
            code = _exit_file(cdir)
            db.update(row.id, status="exited", exit_code=code, finished=row.finished or now())
            _release(root, row)
    return db.refresh(row) or row


def _restarts(row: ContainerRow) -> bool:
    """Whether the restart policy would run the container again (its monitor is gone)."""
    details = row.details_dict
    name, max_retries = (details.get("restart") or ("no", None))[:2]
    if details.get("stopped") or name == "no" or row.status == "created":
        return False
    return name != "on-failure" or max_retries is None or row.restart_count < max_retries


def _ensure_rootfs(root: Path, db: StateDB, row: ContainerRow) -> None:
    from bolt.runtime import imagecache

    cdir = ContainerDir.of(root, row.id)
    if not linux.is_mountpoint(str(cdir.rootfs)):
        image = imagecache.resolve(root, db.conn, row.image_id or row.image)
        rootfs.mount_overlay(image.layers, cdir.path, cdir.rootfs, volatile=bool(row.auto_remove))


class MonitorLost(BoltError):
    """The monitor's socket closed before it reported the outcome."""


def await_started(sock: socket.socket) -> None:
    """Until a monitor reports its container started (or raise the error it reports)."""
    from bolt.runtime import attach

    decoder = attach.Decoder()
    while True:
        data = sock.recv(65536)
        if not data:
            raise MonitorLost("the container's monitor exited before starting the container")
        for kind, payload in decoder.feed(data):
            if kind == attach.ERROR:
                raise attach.error_of(payload)
            if kind == attach.STARTED:
                return


def _with(row: ContainerRow, **extra: object) -> str:
    return json.dumps({**row.details_dict, **extra})


def _exit_file(cdir: ContainerDir) -> int | None:
    try:
        return int(cdir.exit_file.read_text().strip())
    except (OSError, ValueError):
        return None


def is_live(row: ContainerRow) -> bool:
    return row.status in LIVE


# -- changing ----------------------------------------------------------------------------


def kill(root: Path, db: StateDB, row: ContainerRow, sig: str | int = "KILL") -> None:
    number = signal_number(sig, "--signal")
    row = reconcile(root, db, row)
    if not is_live(row):
        raise InvalidInput(f"container {row.name} is not running")
    _mark_stopped(db, row)
    if (
        not runtime_of(root, row).kill(row.id, number)
        and row.pid
        and linux.process_alive(row.pid, row.pid_start)
    ):
        os.kill(row.pid, number)


def wait_pid(pid: int | None, start: int | None, timeout: float | None) -> bool:
    """Wait for any process (not only a child) to end; True if it did."""
    if not pid or not linux.process_alive(pid, start):
        return True
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], 0.2 if left is None else min(0.2, left))
            if ready or not linux.process_alive(pid, start):  # a zombie counts as ended
                return True
            if left == 0.0:
                return False
    finally:
        os.close(fd)


def _mark_stopped(db: StateDB, row: ContainerRow) -> None:
    """Tell the monitor that a user stopped the container: no restart follows."""
    if not row.details_dict.get("stopped"):
        db.update(row.id, details=_with(row, stopped=True))


def stop(root: Path, db: StateDB, row: ContainerRow, timeout: float | None = None) -> ContainerRow:
    row = reconcile(root, db, row)
    if not is_live(row):
        return row
    _mark_stopped(db, row)
    if timeout is None:
        timeout = row.details_dict.get("stop_timeout")
        timeout = 10.0 if timeout is None else float(timeout)
    rt = runtime_of(root, row)
    if row.status == "paused":
        rt.resume(row.id)
    rt.kill(row.id, signal_number(row.details_dict.get("stop_signal") or "SIGTERM"))
    if not wait_pid(row.pid, row.pid_start, timeout):
        rt.kill(row.id, signal.SIGKILL, all_processes=True)
        wait_pid(row.pid, row.pid_start, 10)
    wait_pid(row.monitor_pid, row.monitor_start, 10)
    return reconcile(root, db, db.refresh(row) or row)


def wait(root: Path, db: StateDB, row: ContainerRow, timeout: float | None = None) -> int | None:
    """Block until the container exits; its exit code (None if nobody could see it)."""
    row = reconcile(root, db, row)
    if row.status == "creating":
        wait_pid(row.monitor_pid, row.monitor_start, timeout)
        row = reconcile(root, db, db.refresh(row) or row)
    if is_live(row):
        if linux.process_alive(row.monitor_pid, row.monitor_start):
            wait_pid(row.monitor_pid, row.monitor_start, timeout)
        else:
            wait_pid(row.pid, row.pid_start, timeout)
        row = reconcile(root, db, db.refresh(row) or row)
    return row.exit_code


def remove(
    root: Path, db: StateDB, row: ContainerRow, force: bool = False, volumes: bool = False
) -> None:
    row = reconcile(root, db, row)
    if (is_live(row) or row.status == "creating") and not force:
        raise InvalidInput(
            f"container {row.name} is {row.status}",
            hint=f"stop it first, or use 'bolt rm -f {row.name}'",
        )
    if row.status == "creating" and not linux.is_monitor(row.monitor_pid):
        row = _handed_over(root, db, row)
    me = {"monitor_pid": os.getpid(), "monitor_start": linux.proc_start_time(os.getpid())}
    if not db.transition(row.id, NOT_REMOVING, status="removing", **me):
        raise Conflict(f"container {row.name} is being removed by another caller")
    rt = runtime_of(root, row)
    if row.status == "paused":
        rt.resume(row.id)
    rt.kill(row.id, signal.SIGKILL, all_processes=True)
    with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
        if row.pid and linux.process_alive(row.pid, row.pid_start):
            os.kill(row.pid, signal.SIGKILL)
    wait_pid(row.pid, row.pid_start, 10)
    if (
        row.status == "creating"
        and linux.process_alive(row.monitor_pid, row.monitor_start)
        and linux.is_monitor(row.monitor_pid)
    ):
        os.kill(row.monitor_pid or 0, signal.SIGKILL)
    wait_pid(row.monitor_pid, row.monitor_start, 10)
    discard(root, db, row, volumes=volumes)


def _handed_over(root: Path, db: StateDB, row: ContainerRow, timeout: float = 10) -> ContainerRow:
    """A container still being created names its creator (a CLI, or a program using the
    library), which must never be killed for it: wait until a monitor has it or the
    creator is gone (then ``reconcile`` marks it failed)."""
    deadline = time.monotonic() + timeout
    while row.status == "creating" and not linux.is_monitor(row.monitor_pid):
        if not linux.process_alive(row.monitor_pid, row.monitor_start):
            return reconcile(root, db, row)
        if time.monotonic() > deadline:
            raise Conflict(
                f"container {row.name} is still being created by process {row.monitor_pid}",
                hint="try again when that process has started it or ended",
            )
        time.sleep(0.02)
        row = db.refresh(row) or row._replace(status="removed")
    return row


def abandon_if_lost(root: Path, db: StateDB, row: ContainerRow) -> None:
    """This process created ``row`` and its monitor vanished before it started the
    container: say the container failed (or remove it, for ``--rm``), rather than leave
    it "creating", in our name or in that of a monitor still on its way out (its socket
    closes before the kernel shows it dead; give it a second)."""
    fresh = db.refresh(row)
    if fresh is None or fresh.status != "creating":
        return
    if fresh.monitor_pid == os.getpid():
        if fresh.auto_remove:  # --rm: the caller's MonitorLost is all that is left of it
            discard(root, db, fresh)
        else:
            _fail(db, fresh, "its monitor exited before starting it")
        return
    deadline = time.monotonic() + 1.0
    while linux.process_alive(fresh.monitor_pid, fresh.monitor_start):
        if time.monotonic() > deadline:
            return  # alive after all: it still owns the row
        time.sleep(0.005)
    reconcile(root, db, fresh)


def _fail(db: StateDB, row: ContainerRow, error: str) -> None:
    """A container that never started: ``failed``, with the reason in its details."""
    db.update(row.id, status="failed", finished=now(), details=_with(row, error=error))


def _release(root: Path, row: ContainerRow) -> None:
    """Free what a stopped container holds: runtime state, cgroups, the rootfs mount."""
    with contextlib.suppress(BoltError, OSError):
        runtime_of(root, row).delete(row.id, force=True)
    kill_cgroups(row.id)
    rootfs.unmount(ContainerDir.of(root, row.id).rootfs)


def discard(root: Path, db: StateDB, row: ContainerRow, volumes: bool = True) -> None:
    """Remove every trace of a container: network attachments, runtime state, its
    directory, its anonymous volumes (named ones only stay), and the row."""
    _release(root, row)
    if ContainerDir.of(root, row.id).network_record.exists():
        from bolt.runtime import netavark

        with contextlib.suppress(BoltError, OSError):
            netavark.teardown_container(ContainerDir.of(root, row.id))
    rootfs.delete_container_dir(ContainerDir.of(root, row.id).path)
    if volumes:
        from bolt import volumes as named

        for volume in row.details_dict.get("anonymous_volumes") or ():
            with contextlib.suppress(BoltError, OSError):
                named.remove(root, volume)
    db.delete(row.id)
    db.add_event(row.id, row.name, "removed")
