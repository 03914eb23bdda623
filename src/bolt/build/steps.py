"""What RUN, COPY and ADD do to a mounted root file system (one build step's overlay).

The executor mounts the overlay and captures the upper directory; these functions only
change the merged tree.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bolt.build import container
from bolt.build.copy import Destination, copy_sources
from bolt.build.tree import Source, Tree
from bolt.errors import BoltError, InvalidInput, NotFound
from bolt.images import compression
from bolt.images.safefs import RootDir
from bolt.runtime.driver import OciRuntime


def run(
    rt: OciRuntime,
    root: Path,
    rootfs: Path,
    upper: Path,
    work: Path,
    argv: Sequence[str],
    *,
    env: Sequence[str],
    workdir: str,
    user: str,
    on_output: Callable[[str], None],
) -> int:
    """Run a RUN step's command; a missing working directory is made first, owned by
    the step's user (as BuildKit does)."""
    before = container.missing_mountpoints(rootfs)
    with RootDir(rootfs) as fs:
        ids = owner(rootfs, user, "USER") or (0, 0)
        Destination(fs, owner=ids, chown_dirs=True).ensure_dir(_parts(workdir))
    code = container.run_step(
        rt, root, rootfs, work, argv, env=env, workdir=workdir, user=user, on_output=on_output
    )
    container.drop_mountpoints(upper, before)
    return code


def owner(rootfs: Path, chown: str | None, what: str = "--chown") -> tuple[int, int] | None:
    """``USER[:GROUP]`` (``--chown``, ``USER``) as numbers, names looked up in the image's
    /etc files."""
    if not chown:
        return None
    from bolt.runtime.request import resolve_user

    try:
        uid, gid = resolve_user(chown, [rootfs])
    except NotFound as err:
        raise NotFound(err.message.replace("--user:", what + ":"), hint=err.hint) from None
    if ":" not in chown and not chown.isdigit():
        return uid, gid
    if ":" not in chown:
        return uid, uid  # --chown=1000 means 1000:1000, as in Docker
    return uid, gid


def parse_chmod(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidInput(f"--chmod={text}: give an octal mode such as 0755") from None
    if mode > 0o7777:
        raise InvalidInput(f"--chmod={text}: not a file mode")
    return mode


def copy(
    rootfs: Path,
    tree: Tree,
    sources: list[Source],
    dest: str,
    into_dir: bool,
    *,
    chown: str | None,
    chmod: str | None,
) -> None:
    with RootDir(rootfs) as fs:
        ids = owner(rootfs, chown)
        out = Destination(
            fs, owner=ids or (0, 0), chmod=parse_chmod(chmod), chown_dirs=ids is not None
        )
        copy_sources(tree, sources, dest, into_dir, out)


def add(
    rootfs: Path,
    tree: Tree,
    sources: list[Source],
    dest: str,
    into_dir: bool,
    *,
    chown: str | None,
    chmod: str | None,
) -> None:
    """COPY, except that a local tar archive (plain, gzip, bzip2, xz, zstd) is unpacked
    into ``dest`` with the image store's safe unpacker."""
    plain = [s for s in sources if not is_archive(tree, s)]
    archives = [s for s in sources if s not in plain]
    if plain:
        copy(rootfs, tree, plain, dest, into_dir or bool(archives), chown=chown, chmod=chmod)
    if archives:
        from bolt.images.unpack import unpack_layer

        with RootDir(rootfs) as fs:
            parts = _parts(dest)
            Destination(fs).ensure_dir(parts)
            fd = fs.open_dir(parts, create=False)
            assert fd is not None
            try:
                target = Path(os.readlink(f"/proc/self/fd/{fd}"))  # resolved inside the root
                for source in archives:
                    with tree.open_file(source) as fh:
                        unpack_layer(fh, target, mode="flatten")
            finally:
                os.close(fd)


def is_archive(tree: Tree, source: Source) -> bool:
    """Whether ``source`` is a regular file holding a tar archive (maybe compressed)."""
    if not tree.is_file(source):
        return False
    with tree.open_file(source) as fh:
        kind, buffered = compression.sniff(fh)
        try:
            head = compression.decompressor(buffered, kind).read(tarfile.BLOCKSIZE)
        except (BoltError, OSError):  # corrupt, or zstd without the module: a plain file
            return False
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]
