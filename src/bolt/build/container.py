"""Running one RUN step: a throw-away container over the step's mounted root file system.

The container gets what ``bolt run`` gives (``bolt.runtime.request.build_spec``: the same
namespaces, capabilities, masked paths and device rules, validated and written by
``bolt.runtime.ocispec``) except the network, which is the host's, as for ``docker
build``.  It runs through the runtime's one-shot foreground run
(``bolt.runtime.oneshot.run_spec``), which hands its output line by line to the caller
and leaves no runtime state or cgroup behind.

The runtime makes mount points for ``/proc``, ``/dev``, ``/etc/hosts`` ... in the root
file system when they are missing, which would land in the step's layer: those it made
(empty, and absent before the step) are taken out of the upper directory again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bolt.errors import NotFound
from bolt.images.safefs import RootDir, lstat_at
from bolt.runtime import oneshot
from bolt.runtime.driver import OciRuntime
from bolt.runtime.intent import ContainerIntent
from bolt.runtime.oneshot import run_spec
from bolt.runtime.request import build_spec
from bolt.runtime.spec import Mount

# where runtimes mount something even when the spec does not name it
RUNTIME_MOUNTS = ("/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


def run_step(
    rt: OciRuntime,
    root: Path,
    rootfs: Path,
    work: Path,
    argv: Sequence[str],
    *,
    env: Sequence[str],
    workdir: str,
    user: str,
    on_output: Callable[[str], None],
) -> int:
    """Run ``argv`` in a container over ``rootfs`` (mounted); its exit code."""
    cid = os.urandom(32).hex()
    etc = _etc_files(work / "etc")
    intent = ContainerIntent(
        image="bolt-build",
        command=list(argv),
        entrypoint=[],
        network_mode="host",
        workdir=workdir or "/",
        user=user or None,
    )
    try:
        spec = build_spec(
            intent,
            cid=cid,
            name=f"bolt-build-{cid[:8]}",
            root=root,
            rootfs=rootfs,
            image_config={"Env": list(env)},
            layers_lowest_first=[rootfs],
            extra_mounts=etc,
        )
    except NotFound as err:
        raise NotFound(err.message.replace("--user: ", "USER: "), hint=err.hint) from None
    return run_spec(rt, spec, work, on_output)


def reap(step_scratch: Path, root: Path) -> None:
    """Stop and delete the container a killed build left running in ``step_scratch``."""
    oneshot.reap(step_scratch, root)


def _etc_files(where: Path) -> list[Mount]:
    """Copies of the host's /etc/hosts and /etc/resolv.conf (never the host's files: a
    step that writes them must not change the host)."""
    where.mkdir(parents=True, exist_ok=True)
    mounts = []
    for name in ("hosts", "resolv.conf"):
        host = Path("/etc") / name
        (where / name).write_bytes(host.read_bytes() if host.exists() else b"")
        mounts.append(Mount(destination=f"/etc/{name}", source=str(where / name)))
    return mounts


def missing_mountpoints(rootfs: Path) -> dict[str, Any]:
    """Which runtime mount points (and their parents) the root file system lacks now:
    path -> None when missing, else its (mode, uid, gid)."""
    found: dict[str, Any] = {}
    with RootDir(rootfs) as root:
        for dest in RUNTIME_MOUNTS:
            parts = [p for p in dest.split("/") if p]
            for k in range(1, len(parts) + 1):
                path = "/".join(parts[:k])
                parent = root.open_parent(parts[:k], create=False)
                st = None if parent is None else lstat_at(parent, parts[k - 1])
                if parent is not None:
                    os.close(parent)
                found[path] = None if st is None else (st.st_mode, st.st_uid, st.st_gid)
    return found


def drop_mountpoints(upper: Path, before: dict[str, Any]) -> None:
    """Remove from ``upper`` the empty mount points the runtime made, deepest first, and
    directories copied up only to hold them (unchanged and now empty)."""
    for path in sorted(before, key=lambda p: -p.count("/")):
        target = upper / path
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            continue
        if any(stat.S_ISLNK(os.lstat(upper / q).st_mode) for q in _ancestors(path)):
            continue
        old = before[path]
        if stat.S_ISDIR(st.st_mode):
            empty = not os.listdir(target)
            unchanged = old is None or (
                (st.st_mode, st.st_uid, st.st_gid) == old
                and not _has_xattr(target, "trusted.overlay.opaque")
            )
            if empty and unchanged:
                os.rmdir(target)
        elif stat.S_ISREG(st.st_mode) and old is None and st.st_size == 0:
            os.unlink(target)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:k]) for k in range(1, len(parts))]


def _has_xattr(path: Path, name: str) -> bool:
    try:
        return name in os.listxattr(path, follow_symlinks=False)
    except OSError:
        return False
