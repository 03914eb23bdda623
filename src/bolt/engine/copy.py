"""``bolt cp``: files between the host and a running container, as a tar stream through
``<runtime> exec ... tar`` (so paths resolve inside the container's own mount namespace
and no symlink in it can point a host-side write outside), extracted on the host by the
image store's layer unpacker, the one extractor that refuses ``..``, absolute names,
hard links out of the archive and writes through symlinks (tarfile's ``data`` filter is
missing from the Python 3.11 releases some distributions ship)."""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bolt.engine import containers as lifecycle
from bolt.errors import BoltError, InvalidInput, NotFound
from bolt.images.unpack import unpack_layer


def split(text: str) -> tuple[str | None, str]:
    """``NAME:PATH`` -> (NAME, PATH); a host path -> (None, path)."""
    name, sep, path = text.partition(":")
    if sep and name and not name.startswith(("/", ".")) and path.startswith("/"):
        return name, path
    return None, text


def _exec_argv(eng: Any, ref: str, args: list[str]) -> list[str]:
    db = eng.db
    row = lifecycle.reconcile(eng.root, db, db.get(ref))
    if row.status != "running":
        raise InvalidInput(f"cp: container {row.name} is {row.status}, not running",
                           hint="bolt cp works on running containers")  # fmt: skip
    return list(lifecycle.runtime_of(eng.root, row).exec_argv(row.id, args))


def from_container(eng: Any, ref: str, path: str, dest: str) -> None:
    path = posixpath.normpath(path)
    argv = _exec_argv(eng, ref, ["tar", "-cf", "-", "-C", posixpath.dirname(path) or "/",
                                 posixpath.basename(path) or "."])  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise NotFound(f"cp: {ref}:{path}: {proc.stderr.decode(errors='replace').strip()}")
    target = Path(dest)
    into_dir = target.is_dir()
    parent = target if into_dir else target.parent
    if not parent.is_dir():
        raise NotFound(f"cp: {parent} is not a directory")
    scratch = Path(tempfile.mkdtemp(prefix=".bolt-cp-", dir=parent))
    try:
        unpack_layer(io.BytesIO(proc.stdout), scratch, mode="flatten")
        (item,) = list(scratch.iterdir())
        final = target / item.name if into_dir else target
        if final.is_dir() and item.is_dir():
            shutil.copytree(item, final, dirs_exist_ok=True, symlinks=True)
        else:
            os.replace(item, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def to_container(eng: Any, source: str, ref: str, dest: str) -> None:
    src = Path(source)
    if not src.exists() and not src.is_symlink():
        raise NotFound(f"cp: {source} does not exist")
    dest = posixpath.normpath(dest)
    probe = subprocess.run(_exec_argv(eng, ref, ["test", "-d", dest]), capture_output=True)
    if probe.returncode == 0:
        directory, name = dest, src.name
    else:
        directory, name = posixpath.dirname(dest) or "/", posixpath.basename(dest)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(src), arcname=name)
    proc = subprocess.run(
        _exec_argv(eng, ref, ["tar", "-xf", "-", "-C", directory]),
        input=buf.getvalue(), capture_output=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BoltError(f"cp: into {ref}:{dest}: {proc.stderr.decode(errors='replace').strip()}")
