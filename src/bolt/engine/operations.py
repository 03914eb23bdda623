"""Engine operations beside the lifecycle: prune, rename, and exec (environment and
user resolved as the container has them)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

from bolt.engine.containers import discard, is_live, reconcile, runtime_of
from bolt.errors import InvalidInput
from bolt.runtime import rootfs, runroot
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.layout import ContainerDir, removed_dir
from bolt.state.db import ContainerRow, StateDB


def prune(root: Path, db: StateDB) -> list[str]:
    """Remove every stopped container; also unmount stale rootfs mounts of unknown ids,
    and delete removed containers' files that a killed monitor left."""
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
    # Rows are read after the listing: a container's row is written before any of its
    # directories, so a listed directory without a row now belongs to no container, and
    # a container created meanwhile (a `bolt run` beside the prune) was not listed.
    known = {r.id for r in db.all()}
    for d in dirs:
        if d.name not in known:
            kill_cgroups(d.name)
            rootfs.delete_container_dir(d)
    for run in runs:
        if run.name not in known:  # its container directory is gone
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
