"""Fixtures for Bolt's runtime tests: one state root per session with a busybox image,
a ``bolt`` CLI runner, and a check after every test that nothing was left behind.

Images are made with the image store (``ImageStore.import_path``) from a busybox-static
root file system built here; containers run through the real crun/runc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bolt.runtime.layout import run_dir
from tests.bolt.oci_schema import schema_errors
from tests.conftest import tool

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def make_busybox_rootfs(target: Path) -> Path:
    """A minimal root file system: busybox-static and its applet links, /etc/passwd."""
    (target / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    listing = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in listing.split():
        link = target / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (target / "etc").mkdir()
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
    )
    (target / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for d in ("root", "tmp", "proc", "sys", "dev"):
        (target / d).mkdir(exist_ok=True)
    return target


@dataclass
class Bolt:
    root: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, check: bool = False, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [tool("bolt"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"bolt {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def ok(self, *args: str, **kw: object) -> str:
        return self(*args, check=True, **kw).stdout  # type: ignore[arg-type]

    def inspect(self, name: str) -> dict:
        return json.loads(self.ok("inspect", name))[0]

    def ps(self) -> list[dict]:
        return json.loads(self.ok("ps", "-a", "--json"))


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("Bolt's runtime tests need root (run them as CI does: ./project.sh test)")


@pytest.fixture(scope="session")
def bolt_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bolt]:
    require_root()
    from bolt.images.store import ImageStore

    base = tmp_path_factory.mktemp("bolt")
    root = base / "root"
    store = ImageStore(root)
    rootfs = make_busybox_rootfs(base / "busybox-rootfs")
    store.import_path(rootfs, "busybox:latest", config={"Cmd": ["/bin/sh"]})
    env = dict(os.environ)
    env["BOLT_ROOT"] = str(root)
    env.pop("BOLT_CDI_SPEC_DIRS", None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    yield Bolt(root=root, env=env)
    subprocess.run([tool("bolt"), "rm", "-f", *_names(root, env)], env=env, capture_output=True)


def _names(root: Path, env: dict[str, str]) -> list[str]:
    proc = subprocess.run([tool("bolt"), "ps", "-a", "-q"], env=env, capture_output=True, text=True)
    return proc.stdout.split()


@pytest.fixture
def bolt(bolt_session: Bolt) -> Iterator[Bolt]:
    """The session's Bolt.  After the test, every config.json its containers got must
    validate against the runtime-spec schema; then every container is removed, and
    removal must leave no mount, cgroup or process behind."""
    yield bolt_session
    for config in (bolt_session.root / "containers").glob("*/bundle/config.json"):
        errors = schema_errors(json.loads(config.read_text()))
        assert errors == [], f"{config} violates the runtime-spec schema: {errors}"
    ids = [c["id"] for c in bolt_session.ps()]
    if ids:
        bolt_session("rm", "-f", *ids, check=True)
    leftovers = leftover_resources(bolt_session.root)
    for cid in ids:
        leftovers += leftover_resources(bolt_session.root, cid)
    assert not leftovers, f"left behind after rm -f: {leftovers}"


def container_ids_on_disk(root: Path) -> list[str]:
    base = root / "containers"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def leftover_resources(root: Path, cid: str | None = None) -> list[str]:
    """Mounts and container directories under ``root``; with ``cid``, also that
    container's cgroups (cgroup names do not say which root a container belongs to)."""
    found = []
    bundles = run_dir(root)  # where the bundles of containers removed on exit are
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mountpoint = line.split()[4]
            if mountpoint.startswith((str(root / "containers"), f"{bundles}/")) and (
                cid is None or cid in mountpoint
            ):
                found.append(f"mount {mountpoint}")
    cgroup_base = Path("/sys/fs/cgroup")
    for controller in [cgroup_base, *cgroup_base.iterdir()] if cid else []:
        if (controller / "bolt" / cid).is_dir():
            found.append(f"cgroup {controller / 'bolt' / cid}")
    for d in container_ids_on_disk(root):
        if cid is None or d == cid:
            found.append(f"container dir {d}")
    for d in sorted(bundles.iterdir()) if bundles.is_dir() else []:
        if cid is None or d.name == cid:
            found.append(f"bundle {d}")
    return found


def processes_in_container_cgroup(cid: str) -> list[int]:
    """Live (non-zombie) processes whose cgroup path names the container."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cid in cgroups and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def unique_seconds(whole: int) -> str:
    """A sleep duration no other test run on this host uses at the same time (markers
    for ``processes_with_arg``: several suites may run at once)."""
    return f"{whole}.{int.from_bytes(os.urandom(3), 'big'):07d}"


def processes_with_arg(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in ("Z", "X") and "pytest" not in cmdline:
            pids.append(int(entry.name))
    return pids
