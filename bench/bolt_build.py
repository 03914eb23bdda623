#!/usr/bin/env python3
"""Cold and warm ``bolt build`` against ``buildah bud`` (Debian's buildah), in one run.

Both build the same Dockerfile (only the FROM line differs) over the same context: a
busybox-static base, a source tree of a few hundred files plus a 16 MiB blob, two COPY
steps and three RUN steps.  The base image is made once in Bolt's store and exported as
an OCI layout (``bolt image export``) that buildah reads as ``FROM oci:DIR:latest``;
buildah pulls it into its private storage before timing starts, so neither side pays for
the base image.

* cold: ``bolt build --no-cache`` against ``buildah bud --layers --no-cache``;
* warm: ``bolt build`` against ``buildah bud --layers``, every step cached.

buildah runs with ``--isolation chroot`` and a private ``--root``/``--runroot`` under a
temporary directory; Bolt with a temporary ``BOLT_ROOT``.  Rounds are interleaved in a
shuffled order.  Prints each contender's median and the ratios bolt / buildah.

Usage (as root): python bench/bolt_build.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rootfs import busybox_rootfs
from bolt.runtime.linux import unmount_below

BOLT = str(Path(sys.executable).parent / "bolt")
STEPS = """\
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ ./src/
COPY blob.bin ./
RUN for i in $(seq 1 300); do echo "$i $MODE" > /app/gen-$i; done
RUN sha256sum blob.bin > blob.sha && cat src/*/*.txt | wc -l > lines
RUN rm -r /app/src/d0 && mkdir -p /var/log/app && echo done > /var/log/app/ok
CMD ["ls", "/app"]
"""


def make_context(ctx: Path) -> None:
    rng = random.Random(7)
    for d in range(10):
        sub = ctx / "src" / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(30):
            (sub / f"f{f}.txt").write_text("".join(f"line {rng.random()}\n" for _ in range(40)))
    (ctx / "blob.bin").write_bytes(rng.randbytes(16 << 20))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:5])}... failed: {proc.stderr.decode()[-600:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: builds mount overlays and run containers")
    if shutil.which("buildah") is None:
        raise SystemExit("buildah is not installed (apt-get install buildah)")
    work = Path(tempfile.mkdtemp(prefix="bolt-build-bench-"))
    try:
        return run(work, args.rounds)
    finally:
        unmount_below(work)  # buildah's storage, and what a failed round left
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rounds: int) -> int:
    env = dict(os.environ, BOLT_ROOT=str(work / "bolt"))
    rootfs = busybox_rootfs(work / "busybox")
    subprocess.run([BOLT, "image", "import", str(rootfs), "-t", "base:latest"], env=env, check=True)
    subprocess.run([BOLT, "image", "export", "base:latest", str(work / "oci")], env=env, check=True)
    ctx = work / "ctx"
    ctx.mkdir()
    make_context(ctx)
    (ctx / "Dockerfile.bolt").write_text("FROM base:latest\n" + STEPS)
    (ctx / "Dockerfile.buildah").write_text(f"FROM oci:{work / 'oci'}:latest\n" + STEPS)
    buildah = [
        "buildah",
        "--root",
        str(work / "buildah" / "root"),
        "--runroot",
        str(work / "buildah" / "run"),
    ]
    bud = [*buildah, "bud", "--layers", "--isolation", "chroot", "-q"]
    bud += ["-f", str(ctx / "Dockerfile.buildah"), "-t", "bench:1"]
    subprocess.run([*buildah, "pull", "-q", f"oci:{work / 'oci'}:latest"], check=True)
    contenders = {
        "bolt cold": [BOLT, "build", "-q", "--no-cache", "-t", "bench:1", str(ctx)],
        "buildah cold": [*bud, "--no-cache", str(ctx)],
        "bolt warm": [BOLT, "build", "-q", "-t", "bench:1", str(ctx)],
        "buildah warm": [*bud, str(ctx)],
    }
    # one untimed pass each, so that warm builds have a cache and files are in page cache
    for cmd in contenders.values():
        timed(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        names = list(contenders)
        random.shuffle(names)
        for name in names:
            times[name].append(timed(contenders[name], env))
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, value in med.items():
        print(f"{name:13s} median {value * 1000:8.1f} ms over {rounds} rounds")
    cold = med["bolt cold"] / med["buildah cold"]
    warm = med["bolt warm"] / med["buildah warm"]
    print(f"cold build: bolt / buildah = {cold:.2f}")
    print(f"warm build: bolt / buildah = {warm:.2f}")
    print(json.dumps({"median_s": med, "ratio_cold": cold, "ratio_warm": warm}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
