"""The ``bolt`` command: argument parsing and rendering over the Bolt library.

argparse, not click: ``bolt run`` start-up time is part of every container start (see
docs/decisions.md).  Subcommand modules only declare arguments; their handlers import
the library lazily, so ``bolt run`` loads no more than it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bolt.errors import BoltError, ExitCode, render


def default_root() -> str:
    return os.environ.get("BOLT_ROOT") or "/var/lib/bolt"


def build_parser() -> argparse.ArgumentParser:
    from bolt.cli import containers, gpu, run, system

    parser = argparse.ArgumentParser(prog="bolt", description="Bolt: OCI containers on crun/runc.")
    parser.add_argument(
        "--root",
        default=default_root(),
        help="state directory (default: $BOLT_ROOT or /var/lib/bolt)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run.register(sub)
    containers.register(sub)
    gpu.register(sub)
    system.register(sub)
    try:
        from bolt.cli import image
    except ImportError:
        image = None  # type: ignore[assignment]
    if image is not None:
        image.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        args.root = Path(args.root)
        code = int(args.handler(args))
    except BoltError as err:
        if debug:
            import traceback

            traceback.print_exc()
        print(render(err), file=sys.stderr)
        code = int(err.exit_code)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = int(ExitCode.FAILURE)
    except PermissionError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(
            render(BoltError(f"permission denied: {exc}", hint="bolt needs root")), file=sys.stderr
        )
        code = int(ExitCode.PERMISSION)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = int(ExitCode.FAILURE)
    if argv is None:
        sys.stdout.flush()
        raise SystemExit(code)
    return code
