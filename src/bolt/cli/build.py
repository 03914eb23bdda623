"""``bolt build`` and ``bolt image bootstrap``: argument parsing and progress output.

The work is ``bolt.build.executor.build`` and ``bolt.images.bootstrap.bootstrap``; both
are imported inside the handlers, so other commands do not pay for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bolt.errors import InvalidInput

if TYPE_CHECKING:
    from bolt.build.plan import Layer


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "build",
        help="build an image from a Dockerfile.bolt",
        description="Build an image from CONTEXT's Dockerfile.bolt (else Dockerfile). RUN "
        "steps run in containers with the host's network; every step's layer is cached.",
    )
    p.add_argument("context", metavar="CONTEXT", help="the build context directory")
    p.add_argument(
        "-t", "--tag", action="append", default=[], metavar="NAME:TAG", help="name (repeatable)"
    )
    p.add_argument("-f", "--file", metavar="FILE", help="the Dockerfile (default: in CONTEXT)")
    p.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an ARG (KEY alone takes the value from the environment)",
    )
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--target", metavar="STAGE", help="build this stage (and what it needs)")
    p.add_argument(
        "--runtime",
        choices=("auto", "crun", "runc"),
        default=os.environ.get("BOLT_RUNTIME", "auto"),
        help="OCI runtime for RUN steps (default: auto, or $BOLT_RUNTIME)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--json", action="store_true", help="progress on stderr, a JSON summary")
    p.set_defaults(handler=build_image, needs_root=True)


def add_bootstrap(image_subparsers: Any) -> None:
    """``bolt image bootstrap``, added to the ``image`` command group."""
    p = image_subparsers.add_parser(
        "bootstrap",
        help="make a Debian base image with debootstrap (no registry needed)",
        description="Run debootstrap --variant=minbase for debian:SUITE and import the "
        "result as an image. The mirror defaults to the Debian mirror apt uses.",
    )
    p.add_argument("target", metavar="debian:SUITE")
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PKGS",
        help="extra packages, comma-separated (repeatable)",
    )
    p.add_argument("--mirror", metavar="URL", help="Debian mirror (default: apt's)")
    p.add_argument("-t", "--tag", metavar="NAME:TAG", help="image name (default: TARGET)")
    p.add_argument("-q", "--quiet", action="store_true", help="no debootstrap output")
    p.set_defaults(handler=bootstrap_image, needs_root=True)


# --- handlers ------------------------------------------------------------------------------


def build_image(args: argparse.Namespace) -> int:
    from bolt.build.executor import BuildRequest, build

    request = BuildRequest(
        context=Path(args.context),
        dockerfile=Path(args.file) if args.file else None,
        tags=tuple(args.tag),
        build_args=_build_args(args.build_arg),
        no_cache=args.no_cache,
        target=args.target,
        runtime=args.runtime,
    )
    out = sys.stderr if (args.json or args.quiet) else sys.stdout
    progress = Lines(out, quiet=args.quiet)
    try:
        with _stopped_by(signal.SIGTERM, signal.SIGHUP):
            result = build(args.root, request, progress)
    except Stopped as stop:
        print(
            f"error: bolt build stopped by {stop.name}; no image was made (finished steps "
            "stay in the build cache)",
            file=sys.stderr,
        )
        return 128 + stop.number
    if args.json:
        doc = {
            "id": result.image.id,
            "tags": list(result.tags),
            "fully_cached": result.fully_cached,
            "seconds": round(result.seconds, 3),
            "steps": [
                {
                    "step": s.number,
                    "instruction": s.text,
                    "cached": s.cached,
                    "layer": s.layer,
                    "changes_files": s.changes_files,
                }
                for s in result.steps
            ],
        }
        print(json.dumps(doc, indent=2))
    elif args.quiet:
        print(result.image.id)
    else:
        steps = result.file_steps
        total = len(steps)
        summary = (
            f"fully cached ({total}/{total} RUN/COPY/ADD steps)"
            if result.fully_cached
            else f"{sum(s.cached for s in steps)}/{total} RUN/COPY/ADD steps from the cache"
        )
        print(f"Built {result.image.short_id} in {result.seconds:.1f} s, {summary}")
        for tag in result.tags:
            print(f"Tagged {tag}")
    return 0


def bootstrap_image(args: argparse.Namespace) -> int:
    from bolt.images.bootstrap import bootstrap
    from bolt.images.store import ImageStore

    include = [p.strip() for item in args.include for p in item.split(",") if p.strip()]
    started = time.monotonic()
    record = bootstrap(
        ImageStore(args.root),
        args.target,
        include=include,
        mirror=args.mirror,
        tag=args.tag,
        on_output=(lambda line: None)
        if args.quiet
        else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    if not args.quiet:
        print(f"Bootstrapped in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(f"{record.ref} {record.id}")
    return 0


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: raised where the build is, so that every clean-up on the
    way out runs (the RUN container deleted, overlays unmounted, scratch removed).  A
    BaseException, as KeyboardInterrupt is, so that no ``except BoltError`` swallows it."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number
        self.name = signal.Signals(number).name


@contextlib.contextmanager
def _stopped_by(*signals: signal.Signals) -> Iterator[None]:
    """Turn ``signals`` into :class:`Stopped` once; a second one during the clean-up is
    ignored, so that the clean-up itself is not cut short."""

    def handler(number: int, frame: object) -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(number)

    old = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _build_args(items: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidInput(f"--build-arg {item!r} is not KEY=VALUE")
        if not sep:
            if key not in os.environ:
                continue  # KEY alone: only when the environment has it, as in Docker
            value = os.environ[key]
        found[key] = value
    return found


class Lines:
    """Progress as plain lines: ``[2/9] RUN ...``, the step's output, ``---> ...``."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def step(self, number: int, total: int, text: str) -> None:
        self._print(f"[{number}/{total}] {text}")

    def cached(self) -> None:
        self._print(" ---> Using cache")

    def output(self, line: str) -> None:
        self._print(f"  | {line}")

    def layer(self, layer: Layer | None, seconds: float) -> None:
        if layer is None:
            self._print(f" ---> no changes ({seconds:.1f} s)")
        else:
            short = layer.digest.removeprefix("sha256:")[:12]
            from bolt.registry.progress import human_size

            self._print(f" ---> layer {short} ({human_size(layer.size)}, {seconds:.1f} s)")

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)
