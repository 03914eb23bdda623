#!/usr/bin/env python3
"""Pull plus unpack of one image from a local registry: ``bolt pull`` + unpacking its
layers (``ImageStore.layer_dirs``, what ``bolt run`` does on first use) against
``skopeo copy docker://… oci:DIR`` + ``umoci unpack``, measured in one run.

The image (busybox-static, then this machine's Python standard library, then its
zoneinfo and locale data: three gzip layers, about 90 MB) is built once with umoci and
cached under the temporary directory; a private ``docker-registry`` on 127.0.0.1 serves
it.  Each round starts both contenders from an empty store, in a shuffled order.  Prints
the median of each and the ratio bolt / peer, for the fetch, the unpack and both together.

Usage (as root): python bench/bolt_pull.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rootfs import busybox_rootfs

BOLT = str(Path(sys.executable).parent / "bolt")
CACHE = Path(tempfile.gettempdir()) / "bolt-bench-pull-image"
UNPACK = (
    "import sys; from pathlib import Path; from bolt.images.store import ImageStore; "
    "s = ImageStore(Path(sys.argv[1])); s.layer_dirs(s.resolve(sys.argv[2]))"
)


def sh(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:4]))}... failed: {proc.stderr[-400:]}")
    return proc.stdout


def build_image() -> Path:
    """An OCI layout with image ``bench``, built once and kept in the temp directory."""
    layout = CACHE / "layout"
    if (layout / "index.json").is_file():
        return layout
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    bundle = CACHE / "bundle"
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:bench")
    sh("umoci", "unpack", "--image", f"{layout}:bench", bundle)
    rootfs = bundle / "rootfs"
    shutil.copytree(busybox_rootfs(CACHE / "busybox"), rootfs, symlinks=True, dirs_exist_ok=True)
    sh("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:bench", bundle)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib, rootfs / "usr/lib" / stdlib.name, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test"))  # fmt: skip
    sh("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:bench", bundle)
    for extra in ("/usr/share/zoneinfo", "/usr/share/i18n", "/usr/share/locale"):
        if Path(extra).is_dir():
            shutil.copytree(extra, rootfs / extra.lstrip("/"), symlinks=True)
    sh("umoci", "repack", "--image", f"{layout}:bench", bundle)
    shutil.rmtree(bundle)
    return layout


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(work / "registry")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (work / "registry.yml").write_text(json.dumps(config))
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(work / "registry.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("docker-registry did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/bolt_pull.py needs root (umoci unpack, overlay whiteouts)", file=sys.stderr)
        return 4
    for tool in ("docker-registry", "skopeo", "umoci", "busybox"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (./project.sh setup installs it)", file=sys.stderr)
            return 3
    layout = build_image()
    work = Path(tempfile.mkdtemp(prefix="bolt-bench-pull-"))
    registry, host = start_registry(work)
    try:
        return run(work, layout, host, args.rounds)
    finally:
        registry.terminate()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, layout: Path, host: str, rounds: int) -> int:
    ref = f"{host}/bench/image:1"
    sh("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:bench", f"docker://{ref}")
    manifest = json.loads(sh("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"))
    size = sum(layer["size"] for layer in manifest["layers"])
    print(f"image: {len(manifest['layers'])} gzip layers, {size / 1e6:.1f} MB compressed")

    def bolt() -> tuple[float, float]:
        root = work / "bolt-root"
        shutil.rmtree(root, ignore_errors=True)
        env = dict(os.environ, BOLT_ROOT=str(root))
        start = time.perf_counter()
        sh(BOLT, "pull", "--insecure", "-q", ref, env=env)
        pulled = time.perf_counter()
        sh(sys.executable, "-c", UNPACK, root, ref)
        return pulled - start, time.perf_counter() - pulled

    def peer() -> tuple[float, float]:
        dest = work / "peer"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        start = time.perf_counter()
        sh("skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest / 'oci'}:1")
        copied = time.perf_counter()
        sh("umoci", "unpack", "--image", f"{dest / 'oci'}:1", dest / "bundle")
        return copied - start, time.perf_counter() - copied

    contenders = {"bolt": bolt, "skopeo+umoci": peer}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    bolt(), peer()  # warm the page cache and the registry
    for _ in range(rounds):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            results[name].append(contenders[name]())

    def median(name: str, part: int | None) -> float:
        return statistics.median(sum(r) if part is None else r[part] for r in results[name])

    print(f"{'median of ' + str(rounds) + ' rounds':24} {'bolt':>8} {'peer':>8} {'ratio':>6}")
    for label, part in (("fetch (pull / copy)", 0), ("unpack", 1), ("pull + unpack", None)):
        ours, theirs = median("bolt", part), median("skopeo+umoci", part)
        print(f"{label:24} {ours:7.2f}s {theirs:7.2f}s {ours / theirs:6.2f}")
    totals = sorted(sum(r) for r in results["bolt"])
    peers = sorted(sum(r) for r in results["skopeo+umoci"])
    print(f"range of pull + unpack: bolt {totals[0]:.2f}-{totals[-1]:.2f}s, "
          f"peer {peers[0]:.2f}-{peers[-1]:.2f}s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
