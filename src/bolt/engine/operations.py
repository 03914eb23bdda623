"""Engine operations beside the lifecycle: prune, rename, and exec (environment and
user resolved as the container has them)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from bolt.engine.containers import discard, is_live, reconcile, runtime_of
from bolt.errors import InvalidInput
from bolt.runtime import linux, rootfs, runroot
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.layout import ContainerDir, removed_dir
from bolt.state.db import ContainerRow, StateDB


def prune(root: Path, db: StateDB) -> list[str]:
    """Remove every stopped container and every spare root file system; also unmount
    stale rootfs mounts of unknown ids, and delete removed containers' files that a
    killed monitor left."""
    from bolt.runtime import spares

    spares.discard(root)  # first: a spare's mount holds its image's layers
    removed = []
    for row in db.all():
        row = reconcile(root, db, row)
        if not is_live(row) and row.status not in ("creating", "removed"):
            discard(root, db, row, volumes=False)
            removed.append(row.name)
    import shutil

    base = root / "containers"
    dirs = list(base.iterdir()) if base.is_dir() else []
    runs = runroot.run_dirs(root)
    # Spares and rows are read after the listing: a spare's disk part is made before its
    # run directory, and a container's row before any of its directories (a spare moves
    # into containers/ after its row is written), so a listed directory that is neither
    # now belongs to nobody, and one made meanwhile (a `bolt run` beside) was not listed.
    in_spares = spares.cids(root)
    known = {r.id for r in db.all()}
    for d in dirs:
        if d.name not in known:
            kill_cgroups(d.name)
            rootfs.delete_container_dir(d)
    for run in runs:
        if run.name not in known and run.name not in in_spares:  # its owner is gone
            rootfs.unmount(ContainerDir(run).rootfs)
            shutil.rmtree(run, ignore_errors=True)
    gone = removed_dir(root)  # what a killed monitor left, perhaps still mounted
    if gone.is_dir():
        for d in gone.iterdir():
            rootfs.delete_container_dir(d)
        with contextlib.suppress(OSError):
            gone.rmdir()
    return removed


def rename(root: Path, db: StateDB, row: ContainerRow, new_name: str) -> None:
    """A new name (unique); on user networks aardvark-dns answers for it, and no longer
    for the old one, at once."""
    from bolt.runtime.spec import NAME_RE

    if not NAME_RE.match(new_name):
        raise InvalidInput(f"rename: {new_name!r} is not a valid container name",
                           hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]*")  # fmt: skip
    if db.find(new_name) is not None:
        raise InvalidInput(f"rename: the name {new_name!r} is already in use")
    try:
        db.update(row.id, name=new_name)
    except sqlite3.IntegrityError:
        raise InvalidInput(f"rename: the name {new_name!r} is already in use") from None
    cdir = ContainerDir.of(root, row.id)
    if cdir.network_record.exists():
        from bolt.runtime import netavark

        netavark.rename_container(cdir, new_name)
    db.add_event(row.id, new_name, "renamed", old_name=row.name)


def exec_env(
    root: Path,
    row: ContainerRow,
    extra: list[str] | tuple[str, ...],
    process: dict[str, Any] | None = None,
) -> list[str]:
    """The container's environment with ``extra`` on top (crun replaces, runc appends: be
    explicit); ``process``: the container's ``config.json`` process, if already read."""
    from bolt.runtime.request import merge_env

    if not extra:
        return []
    base = _strings((process if process is not None else config_process(root, row)).get("env"))
    return merge_env(base, list(extra), os.environ)


def config_process(root: Path, row: ContainerRow) -> dict[str, Any]:
    """The ``process`` object of the container's ``config.json`` ({} if it cannot be read)."""
    try:
        process = json.loads(ContainerDir.of(root, row.id).config.read_text())["process"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return process if isinstance(process, dict) else {}


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def exec_user(root: Path, row: ContainerRow, user: str | None) -> str | None:
    """``name[:group]`` -> ``uid:gid`` from the running container's own /etc files."""
    if not user:
        return None
    from bolt.runtime.request import resolve_user

    uid, gid = resolve_user(user, [ContainerDir.of(root, row.id).rootfs])
    return f"{uid}:{gid}"


def check_command(row: ContainerRow, program: str, env: list[str], cwd: object) -> None:
    """Refuse, with exit 127 or 126, a command the running container does not have or
    cannot execute, as ``bolt run`` and the Engine's ``exec`` do; ``bolt exec`` becomes the
    runtime, which would exit 255.  Looked up as the runtime does: a path (a relative one
    from the exec's working directory), or each directory of the exec's ``PATH``, inside
    the container's own root and mounts.  ``env`` and ``cwd`` are the exec's own (the
    container's where not given).  Whatever cannot be told (no ``PATH``, a kernel without
    openat2, a container that just ended) is left to the runtime."""
    import stat

    from bolt.errors import CannotInvoke, CommandNotFound
    from bolt.runtime.driver import COMMAND_HINT

    if not row.pid or not program:
        return
    if "/" in program:
        if not program.startswith("/"):
            if not isinstance(cwd, str) or not cwd.startswith("/"):
                return
            candidates, where = [f"{cwd.rstrip('/')}/{program}"], f" (from {cwd})"
        else:
            candidates, where = [program], ""
    else:
        path = _env_value(env, "PATH")
        if path is None:
            return
        dirs = [d for d in path.split(":") if d.startswith("/")]
        if not dirs:  # only relative entries: they name the runtime's working directory
            return
        candidates, where = [f"{d.rstrip('/')}/{program}" for d in dirs], f" in $PATH ({path})"
    found = False
    for candidate in candidates:
        try:
            st = linux.stat_in_root(f"/proc/{row.pid}/root", candidate)
        except OSError:
            return
        if st is None:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return
        found = True
    if found:
        raise CannotInvoke(
            f"`{program}` cannot be executed in container {row.name}: it is a directory or "
            "has no execute permission",
            hint=COMMAND_HINT,
        )
    raise CommandNotFound(
        f"executable file `{program}` not found in container {row.name}{where}", hint=COMMAND_HINT
    )


def _env_value(env: list[str], key: str) -> str | None:
    for item in reversed(env):
        name, sep, value = item.partition("=")
        if sep and name == key:
            return value
    return None


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
    process = config_process(root, row)  # read once, for the environment and the check
    full_env = exec_env(root, row, env, process)
    check_command(row, cmd[0], full_env or _strings(process.get("env")), cwd or process.get("cwd"))
    argv = rt.exec_argv(
        row.id, cmd, env=full_env, cwd=cwd, tty=tty, user=exec_user(root, row, user)
    )
    db.close()
    if not interactive:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    os.execv(argv[0], argv)
