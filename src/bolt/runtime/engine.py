"""Container lifecycle over the state database: create, stop, kill, remove, wait, reconcile.

``create`` turns a ``RunRequest`` into a bundle (overlay root file system + config.json),
records it, and hands it to a monitor.  Every other operation starts with ``reconcile``,
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
from typing import NamedTuple

from bolt.errors import BoltError, InvalidInput
from bolt.runtime import linux, rootfs
from bolt.runtime.driver import OciRuntime, make_runtime, select_runtime
from bolt.runtime.layout import ContainerDir
from bolt.runtime.monitor import MonitorJob
from bolt.runtime.monitor_start import spawn_exec, spawn_forked
from bolt.runtime.request import RunRequest, build_spec, cdi_names
from bolt.runtime.spec import Mount, validate
from bolt.state.db import LIVE, ContainerRow, StateDB, now

CGROUP_BASE = "/sys/fs/cgroup"


class Launched(NamedTuple):
    row: ContainerRow
    sock: socket.socket
    monitor_pid: int | None  # set when forked (the caller may reap it)


def _etc_files(cdir: ContainerDir, hostname: str, network: str) -> list[Mount]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf for the container."""
    cdir.path.mkdir(parents=True, exist_ok=True)
    (cdir.path / "hostname").write_text(hostname + "\n")
    if network == "host":
        hosts = Path("/etc/hosts").read_text() if os.path.exists("/etc/hosts") else ""
    else:
        hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    (cdir.path / "hosts").write_text(hosts)
    resolv = Path("/etc/resolv.conf")
    (cdir.path / "resolv.conf").write_text(resolv.read_text() if resolv.exists() else "")
    return [
        Mount(destination=f"/etc/{n}", source=str(cdir.path / n))
        for n in ("hostname", "hosts", "resolv.conf")
    ]


def _new_name(cid: str) -> str:
    return f"bolt-{cid[:8]}"


def prepare(root: Path, req: RunRequest, db: StateDB) -> tuple[ContainerRow, OciRuntime, bool]:
    """Resolve, validate, record and lay out a container; nothing runs yet."""
    from bolt.runtime import imagecache
    from bolt.runtime.ocispec import generate

    rt = select_runtime(req.runtime, root)
    image = imagecache.resolve(root, db.conn, req.image)
    layers = image.layers
    cid = os.urandom(32).hex()
    name = req.name or _new_name(cid)
    cdir = ContainerDir.of(root, cid)
    spec = build_spec(
        req,
        cid=cid,
        name=name,
        root=root,
        rootfs=cdir.rootfs,
        image_config=image.config,
        layers_lowest_first=layers,
    )
    names = cdi_names(req)
    if names:
        from bolt.runtime import cdi

        spec = cdi.apply(spec, cdi.edits_for(names, cdi.load_registry()))
    validate(spec)
    row = ContainerRow(
        id=cid,
        name=name,
        image=req.image,
        image_id=image.id,
        runtime=rt.name,
        status="creating",
        created=now(),
        monitor_pid=os.getpid(),
        monitor_start=linux.proc_start_time(os.getpid()),
        auto_remove=int(req.auto_remove),
        command=json.dumps(list(spec.args)),
        labels=json.dumps(req.labels),
        details=json.dumps(
            {
                "stop_signal": str(image.config.get("StopSignal") or "SIGTERM"),
                "tty": req.tty,
                "interactive": req.interactive,
                "network": req.network,
                "cdi_devices": names,
                "runtime_path": rt.path,
            }
        ),
    )
    db.insert(row)
    try:
        taken = {m.destination for m in spec.mounts}
        extra = [
            m for m in _etc_files(cdir, spec.hostname, req.network) if m.destination not in taken
        ]
        spec = validate(spec._replace(mounts=(*extra, *spec.mounts)))
        # A container removed on exit never mounts its upper directory again, so its
        # writes need not reach the disk (unmounting a synced overlay waits for them).
        rootfs.mount_overlay(layers, cdir.path, cdir.rootfs, volatile=req.auto_remove)
        cdir.config.write_text(json.dumps(generate(spec)))
    except BaseException:
        discard(root, db, row)
        raise
    return row, rt, req.auto_remove


def launch(root: Path, req: RunRequest, *, start: bool = True, fork: bool = True) -> Launched:
    """Prepare the container and start its monitor (forked from this single-threaded
    process for speed, or a fresh interpreter for threaded callers)."""
    db = StateDB(root)
    try:
        row, rt, auto_remove = prepare(root, req, db)
    finally:
        db.close()  # before fork(): a child that inherits SQLite's state cannot open its own
    job = MonitorJob(
        root=str(root),
        cid=row.id,
        runtime=rt._asdict(),
        terminal=req.tty,
        interactive=req.interactive,
        start=start,
        auto_remove=auto_remove,
    )
    return _spawn(root, row, job, fork)


def _spawn(root: Path, row: ContainerRow, job: MonitorJob, fork: bool) -> Launched:
    """Start the monitor.  It records itself in the row as soon as it has started the
    runtime; until then the row names this process, whose death before that point
    leaves the row to be repaired as ``failed``."""
    if not fork:
        return Launched(row=row, sock=spawn_exec(job), monitor_pid=None)
    pid, sock = spawn_forked(job)
    return Launched(row=row, sock=sock, monitor_pid=pid)


def start_again(root: Path, ref: str, *, fork: bool = True) -> Launched:
    """Run a stopped (exited or failed) container again: same bundle, same upper layer,
    and its log continues."""
    from bolt.runtime import imagecache

    db = StateDB(root)
    try:
        row = reconcile(root, db, db.get(ref))
        if is_live(row) or row.status == "creating":
            raise InvalidInput(f"container {row.name} is already {row.status}")
        wait_pid(row.monitor_pid, row.monitor_start, 10)  # a last run's monitor may linger
        image = imagecache.resolve(root, db.conn, row.image_id or row.image)
        cdir = ContainerDir.of(root, row.id)
        if not cdir.config.exists():
            raise InvalidInput(
                f"container {row.name} has no bundle left to start", hint=f"bolt rm {row.name}"
            )
        if not linux.is_mountpoint(str(cdir.rootfs)):
            rootfs.mount_overlay(
                image.layers, cdir.path, cdir.rootfs, volatile=bool(row.auto_remove)
            )
        cdir.exit_file.unlink(missing_ok=True)
        details = {k: v for k, v in row.details_dict.items() if k not in ("error", "unsupervised")}
        db.update(
            row.id,
            status="creating",
            exit_code=None,
            finished=None,
            pid=None,
            pid_start=None,
            monitor_pid=os.getpid(),
            monitor_start=linux.proc_start_time(os.getpid()),
            details=json.dumps(details),
        )
        row = db.refresh(row) or row
    finally:
        db.close()
    job = MonitorJob(
        root=str(root),
        cid=row.id,
        runtime=runtime_of(root, row)._asdict(),
        terminal=bool(details.get("tty")),  # config.json asks for a terminal either way
        interactive=False,
        start=True,
        auto_remove=bool(row.auto_remove),
    )
    return _spawn(root, row, job, fork)


# -- observing ---------------------------------------------------------------------------


def runtime_of(root: Path, row: ContainerRow) -> OciRuntime:
    return make_runtime(row.runtime, root)


def reconcile(root: Path, db: StateDB, row: ContainerRow) -> ContainerRow:
    """Make ``row`` tell the truth when its monitor (or creator) is gone."""
    if linux.process_alive(row.monitor_pid, row.monitor_start):
        return row
    cdir = ContainerDir.of(root, row.id)
    if row.status == "creating":
        db.update(
            row.id,
            status="failed",
            finished=now(),
            details=_with(row, error="interrupted while creating"),
        )
    elif row.status in LIVE:
        state = None
        with contextlib.suppress(BoltError):
            state = runtime_of(root, row).state(row.id)
        alive = linux.process_alive(row.pid, row.pid_start)
        if state is not None and state.get("status") in ("created", "running", "paused") and alive:
            if not row.details_dict.get("unsupervised"):
                db.update(row.id, details=_with(row, unsupervised=True))
        else:
            code = _exit_file(cdir)
            db.update(row.id, status="exited", exit_code=code, finished=row.finished or now())
            _release(root, row)
    return db.refresh(row) or row


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


def _signal_number(sig: str | int) -> int:
    if isinstance(sig, int) or str(sig).isdigit():
        return int(sig)
    name = str(sig).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidInput(
            f"signal {sig!r} is unknown", hint="use a name like TERM or a number"
        ) from None


def kill(root: Path, db: StateDB, row: ContainerRow, sig: str | int = "KILL") -> None:
    row = reconcile(root, db, row)
    if not is_live(row):
        raise InvalidInput(f"container {row.name} is not running")
    number = _signal_number(sig)
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


def stop(root: Path, db: StateDB, row: ContainerRow, timeout: float = 10) -> ContainerRow:
    row = reconcile(root, db, row)
    if not is_live(row):
        return row
    rt = runtime_of(root, row)
    rt.kill(row.id, _signal_number(row.details_dict.get("stop_signal", "SIGTERM")))
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


def remove(root: Path, db: StateDB, row: ContainerRow, force: bool = False) -> None:
    row = reconcile(root, db, row)
    if is_live(row) or row.status == "creating":
        if not force:
            raise InvalidInput(
                f"container {row.name} is {row.status}",
                hint=f"stop it first, or use 'bolt rm -f {row.name}'",
            )
        rt = runtime_of(root, row)
        rt.kill(row.id, signal.SIGKILL, all_processes=True)
        with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
            if row.pid and linux.process_alive(row.pid, row.pid_start):
                os.kill(row.pid, signal.SIGKILL)
        wait_pid(row.pid, row.pid_start, 10)
        wait_pid(row.monitor_pid, row.monitor_start, 10)
        if linux.process_alive(row.monitor_pid, row.monitor_start) and row.status == "creating":
            os.kill(row.monitor_pid or 0, signal.SIGKILL)
    discard(root, db, row)


def _release(root: Path, row: ContainerRow) -> None:
    """Free what a stopped container holds: runtime state, cgroups, the rootfs mount."""
    with contextlib.suppress(BoltError, OSError):
        runtime_of(root, row).delete(row.id, force=True)
    kill_cgroups(row.id)
    rootfs.unmount(ContainerDir.of(root, row.id).rootfs)


def discard(root: Path, db: StateDB, row: ContainerRow) -> None:
    import shutil

    _release(root, row)
    shutil.rmtree(ContainerDir.of(root, row.id).path, ignore_errors=True)
    db.delete(row.id)


def cgroup_dirs(cid: str) -> list[Path]:
    base = Path(CGROUP_BASE)
    candidates = [base / "bolt" / cid, base / "unified" / "bolt" / cid]
    if base.is_dir():
        candidates += [p / "bolt" / cid for p in base.iterdir() if p.is_dir()]
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def kill_cgroups(cid: str) -> None:
    """SIGKILL whatever is left in the container's cgroups, then remove them."""
    for _ in range(50):
        dirs = cgroup_dirs(cid)
        if not dirs:
            return
        for d in dirs:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            with contextlib.suppress(OSError):
                d.rmdir()
        time.sleep(0.02)


def prune(root: Path, db: StateDB) -> list[str]:
    """Remove every stopped container; also unmount stale rootfs mounts of unknown ids."""
    removed = []
    for row in db.all():
        row = reconcile(root, db, row)
        if not is_live(row) and row.status != "creating":
            discard(root, db, row)
            removed.append(row.name)
    import shutil

    known = {r.id for r in db.all()}
    base = root / "containers"
    if base.is_dir():
        for d in base.iterdir():
            if d.name not in known:
                rootfs.unmount(d / "bundle" / "rootfs")
                kill_cgroups(d.name)
                shutil.rmtree(d, ignore_errors=True)
    return removed


def exec_env(root: Path, row: ContainerRow, extra: list[str] | tuple[str, ...]) -> list[str]:
    """The container's environment with ``extra`` on top (crun replaces, runc appends: be explicit)."""
    from bolt.runtime.request import merge_env

    if not extra:
        return []
    try:
        base = json.loads(ContainerDir.of(root, row.id).config.read_text())["process"]["env"]
    except (OSError, ValueError, KeyError):
        base = []
    return merge_env(base, list(extra), os.environ)


def exec_user(root: Path, row: ContainerRow, user: str | None) -> str | None:
    """``name[:group]`` -> ``uid:gid`` from the running container's own /etc files."""
    if not user:
        return None
    from bolt.runtime.request import resolve_user

    uid, gid = resolve_user(user, [ContainerDir.of(root, row.id).rootfs])
    return f"{uid}:{gid}"


def exec_replace(
    root: Path,
    db: StateDB,
    row: ContainerRow,
    cmd: list[str],
    *,
    env: list[str],
    cwd: str | None,
    user: str | None,
    tty: bool,
    interactive: bool,
) -> None:
    """Become ``<runtime> exec``: its exit code is ours and it forwards signals itself."""
    row = reconcile(root, db, row)
    if row.status != "running":
        raise InvalidInput(
            f"container {row.name} is not running",
            hint=f"start one with 'bolt run ... {row.image}'",
        )
    rt = runtime_of(root, row)
    argv = rt.exec_argv(
        row.id, cmd, env=exec_env(root, row, env), cwd=cwd, tty=tty, user=exec_user(root, row, user)
    )
    db.close()
    if not interactive:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    os.execv(argv[0], argv)
