"""The stack's offline base image, made before Surge builds the services on top of it.

1. ``nvcontrol-debian:bookworm``: ``bolt image bootstrap debian:bookworm --include
   python3,python3-venv`` from the apt mirror the host already uses.
2. ``nvcontrol-base:latest``: the stack's ``base/Dockerfile.bolt`` over it, with this
   project's wheel and its dependencies' wheels (made by ``./project.sh setup``) copied in
   and installed with ``pip --no-index``.

Each is made only when the store lacks it, so a later ``nvctl ct start`` reuses both.  The
base is also tagged ``nvcontrol-base:wDIGEST`` after its wheels and Dockerfile, so new
wheels make a new base; the caller then rebuilds the service images on top of it (Surge
caches those by tag).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from basis.errors import NotFound

TARGET = "debian:bookworm"  # what `bolt image bootstrap` makes, stored as DEBIAN
DEBIAN = "nvcontrol-debian:bookworm"
BASE = "nvcontrol-base:latest"
PACKAGES = ("python3", "python3-venv")
DISTRIBUTION = "nvcontrol_bolt"


def wheel_dir() -> Path:
    """``$NVCTL_CT_WHEELS``, else ``build/wheels`` of the checkout this package runs from."""
    env = os.environ.get("NVCTL_CT_WHEELS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "build" / "wheels"


def _present(root: Path, ref: str) -> bool:
    from bolt.images.store import ImageStore

    try:
        ImageStore(root).resolve(ref)
    except NotFound:
        return False
    return True


def ensure(
    root: Path, stack_dir: Path, say: Callable[[str], None], progress: object, rebuild: bool
) -> list[str]:
    """Make the missing base images; the names of those made."""
    made = []
    if not _present(root, DEBIAN):
        from bolt.images.bootstrap import bootstrap
        from bolt.images.store import ImageStore

        say(f"bootstrapping {DEBIAN} (debootstrap, {', '.join(PACKAGES)})")
        bootstrap(ImageStore(root), TARGET, include=PACKAGES, tag=DEBIAN, on_output=say)
        made.append(DEBIAN)
    wheels = wheel_dir()
    ours = sorted(wheels.glob(f"{DISTRIBUTION}-*.whl")) if wheels.is_dir() else []
    if not ours:
        raise NotFound(
            f"no {DISTRIBUTION} wheel in {wheels}",
            hint="run ./project.sh setup (it builds the wheels), or set NVCTL_CT_WHEELS",
        )
    versioned = versioned_base(wheels, stack_dir)
    if rebuild or not _present(root, versioned):
        say(f"building {BASE} from {len(list(wheels.glob('*.whl')))} local wheels")
        from bolt.build.executor import BuildRequest, build

        scratch = Path(tempfile.mkdtemp(prefix="ct-base-", dir=_scratch(root)))
        try:
            shutil.copy2(stack_dir / "base" / "Dockerfile.bolt", scratch / "Dockerfile.bolt")
            shutil.copytree(wheels, scratch / "wheels")
            request = BuildRequest(context=scratch, tags=(BASE, versioned), no_cache=rebuild)
            build(root, request, progress)  # type: ignore[arg-type]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        made.append(BASE)
    return made


def versioned_base(wheels: Path, stack_dir: Path) -> str:
    """``nvcontrol-base:wDIGEST``: the tag of the base these wheels and Dockerfile make."""
    return f"nvcontrol-base:w{_digest(wheels, stack_dir)}"


def _digest(wheels: Path, stack_dir: Path) -> str:
    """What the base image is made of: the wheels' names and contents, and its Dockerfile."""
    h = hashlib.sha256((stack_dir / "base" / "Dockerfile.bolt").read_bytes())
    for whl in sorted(wheels.glob("*.whl")):
        h.update(whl.name.encode())
        h.update(hashlib.sha256(whl.read_bytes()).digest())
    return h.hexdigest()[:12]


def _scratch(root: Path) -> Path:
    path = root / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
