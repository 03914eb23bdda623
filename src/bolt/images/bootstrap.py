"""Base images without a registry: ``debootstrap --variant=minbase`` into a scratch
directory, imported into the store as a one-layer image.

The mirror defaults to the first Debian mirror apt is configured with (``/etc/apt/
sources.list`` and ``sources.list.d``, one-line or deb822 format), so a machine that can
install Debian packages can make Debian base images.  Nothing here imports the runtime.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bolt.errors import BoltError, InvalidInput, PermissionDenied, Unsupported
from bolt.images import refs
from bolt.images.store import ImageRecord, ImageStore
from bolt.runtime import linux

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DISTRIBUTIONS = {"debian"}
_SUITE = re.compile(r"^[a-z][a-z0-9-]*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first ``deb`` URI of a Debian archive (not -security) apt uses, else Debian's
    default mirror."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in _uris(text, path.suffix == ".sources"):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def _uris(text: str, deb822: bool) -> list[str]:
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if deb822 and line.lower().startswith("uris:"):
            found += line.split(":", 1)[1].split()
        elif not deb822 and line.startswith("deb "):
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 2 and "://" in words[1]:
                found.append(words[1])
    return found


def parse_target(text: str) -> tuple[str, str]:
    """``debian:SUITE`` -> (distribution, suite)."""
    name, _, suite = text.partition(":")
    if name not in DISTRIBUTIONS or not suite or not _SUITE.match(suite):
        raise InvalidInput(
            f"cannot bootstrap {text!r}",
            hint="give debian:SUITE, e.g. debian:bookworm or debian:trixie",
        )
    return name, suite


def bootstrap(
    store: ImageStore,
    target: str,
    *,
    include: Sequence[str] = (),
    mirror: str | None = None,
    tag: str | None = None,
    on_output: Callable[[str], None] = print,
) -> ImageRecord:
    """Make the image ``target`` (``debian:SUITE``) with debootstrap and store it as
    ``tag`` (default: ``target``)."""
    _, suite = parse_target(target)
    name = refs.normalize(tag or target)
    for package in include:
        if not _PACKAGE.match(package):
            raise InvalidInput(f"--include: {package!r} is not a Debian package name")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise Unsupported("debootstrap is not installed", hint="apt-get install debootstrap")
    scratch_base = store.root / "tmp"
    try:
        scratch_base.mkdir(parents=True, exist_ok=True)
    except PermissionError as err:
        raise PermissionDenied(f"cannot write {scratch_base}", hint="run as root") from err
    scratch = Path(tempfile.mkdtemp(prefix="bootstrap-", dir=scratch_base))
    rootfs = scratch / "rootfs"
    argv = [debootstrap, "--variant=minbase"]
    if include:
        argv.append("--include=" + ",".join(include))
    argv += [suite, str(rootfs), mirror or apt_mirror()]
    try:
        _run(argv, on_output)
        _tidy(rootfs)
        return store.import_path(rootfs, name, config={"Cmd": ["/bin/bash"]})
    except subprocess.CalledProcessError:
        raise BoltError(
            f"debootstrap {suite} failed: {tail_of(rootfs) or 'see its output above'}",
            hint="check the mirror (--mirror URL) and the package names (--include)",
        ) from None
    finally:
        linux.unmount_below(rootfs)  # debootstrap's /proc and /sys, after a failed run
        shutil.rmtree(scratch, ignore_errors=True)


def _run(argv: list[str], on_output: Callable[[str], None]) -> None:
    lines: list[str] = []
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            on_output(line)
        code = proc.wait()
    if code == 1 and any("must be root" in ln.lower() for ln in lines):
        raise PermissionDenied("debootstrap needs root", hint="run bolt image bootstrap as root")
    if code != 0:
        raise subprocess.CalledProcessError(code, argv)


def tail_of(rootfs: Path) -> str:
    log = rootfs / "debootstrap" / "debootstrap.log"
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _tidy(rootfs: Path) -> None:
    """Drop what only installing needed: downloaded packages, apt's package caches and
    lists (``apt-get update`` in the image makes them again)."""
    apt_cache = rootfs / "var" / "cache" / "apt"
    lists = rootfs / "var" / "lib" / "apt" / "lists"
    for pattern in (apt_cache / "archives", apt_cache, lists):
        if pattern.is_dir():
            for entry in pattern.iterdir():
                if entry.is_file() and not entry.is_symlink() and entry.name != "lock":
                    entry.unlink()
