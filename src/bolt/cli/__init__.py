"""The ``bolt`` command: argument parsing and rendering over the Bolt library.

argparse, not click: ``bolt run`` start-up time is part of every container start (see
docs/decisions.md).  Subcommand modules only declare arguments; their handlers import
the library lazily, so ``bolt run`` loads no more than it uses.  A plain ``bolt run``
command line is read without argparse at all (``bolt.cli.run.parse_fast``); help and
errors always come from argparse.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bolt.errors import BoltError, ExitCode, PermissionDenied, render

if TYPE_CHECKING:
    import argparse

T = TypeVar("T")


def default_root() -> str:
    return os.environ.get("BOLT_ROOT") or "/var/lib/bolt"


# Which module declares each command: only that one is loaded and built for a call.
COMMAND_MODULES = {
    "run": "run",
    **dict.fromkeys(
        ("ps", "logs", "exec", "start", "stop", "kill", "rm", "inspect", "wait"), "containers"
    ),
    "gpu": "gpu",
    "network": "network",
    **dict.fromkeys(
        ("pause", "unpause", "stats", "top", "events", "port", "rename", "cp"), "manage"
    ),
    "system": "system",
    "volume": "system",
    "image": "image",
    "images": "image",
    "build": "build",
    **dict.fromkeys(("pull", "push", "tag", "login", "logout", "save", "load"), "registry"),
    "surge": "surge",
    "migrate": "surge",
    "snapshot": "snapshot",
}
MODULE_ORDER = (
    "run", "containers", "manage", "network", "image", "registry", "build", "gpu", "snapshot",
    "system", "surge",
)  # fmt: skip
CORE_MODULES = (
    "run",
    "containers",
    "manage",
    "network",
    "gpu",
    "system",
)  # the rest ship separately


def for_each(items: Iterable[T], action: Callable[[T], str | None]) -> int:
    """Run ``action`` on every item, as ``rm a b c`` does: a failure does not stop the
    others.  Each returned line is printed.  Every failure but the last is reported on
    stderr as it happens; the last is raised, so the exit code is its own."""
    failure: BoltError | None = None
    for item in items:
        try:
            out = action(item)
        except BoltError as err:
            if failure is not None:
                print(render(failure), file=sys.stderr)
            failure = err
            continue
        if out is not None:
            print(out)
    if failure is not None:
        raise failure
    return 0


def _command_of(argv: Sequence[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command, only that command's module is loaded."""
    import importlib

    from bolt.cli.parsing import Parser

    parser = Parser(prog="bolt", description="Bolt: OCI containers on crun/runc.")
    parser.add_argument(
        "--root",
        default=default_root(),
        help="state directory (default: $BOLT_ROOT or /var/lib/bolt)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = COMMAND_MODULES.get(_command_of(argv) or "")
    for name in (wanted,) if wanted else MODULE_ORDER:
        try:
            module = importlib.import_module(f"bolt.cli.{name}")
        except ImportError:
            if name not in CORE_MODULES:  # a command group that is not installed
                continue
            raise
        if name == "image" and hasattr(module, "set_in_use_provider"):
            module.set_in_use_provider(_images_in_use)
        module.register(sub)
    return parser


def _images_in_use(root: Path) -> Callable[[str], bool]:
    """For ``bolt image rm``: whether any container (running or not) uses an image id."""
    from bolt.state.db import StateDB

    db = StateDB(root)
    used = {row.image_id for row in db.all()}
    db.close()
    return used.__contains__


def _parse_run_fast(argv: Sequence[str]) -> Any:
    """``[--root DIR] [--debug] run ...`` read without argparse, or None (see run.parse_fast)."""
    root, debug = default_root(), False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--debug":
            debug = True
        elif arg == "--root" and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            root = argv[i + 1]
            i += 1
        elif arg.startswith("--root="):
            root = arg.removeprefix("--root=")
        else:
            break
        i += 1
    if i >= len(argv) or argv[i] != "run":
        return None
    from bolt.cli.run import parse_fast

    args = parse_fast(argv[i + 1 :])
    if args is not None:
        args.root, args.debug, args.command = root, debug, "run"
    return args


def parse_args(argv: Sequence[str]) -> Any:
    """The command line as an argparse namespace (or the same fields, read without it)."""
    args = _parse_run_fast(argv)
    if args is None:
        args = build_parser(argv).parse_args(argv)
    # Absolute: the monitor changes mount namespaces, which resets its working directory.
    args.root = Path(os.path.abspath(args.root))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        args = parse_args(args_list)
        if getattr(args, "needs_root", False) and os.geteuid() != 0:
            raise PermissionDenied(
                f"bolt {args.command} needs root (it mounts file systems and drives crun/runc)",
                hint="run it as root; rootless containers are not supported",
            )
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
        # Exit without tearing the interpreter down: nothing is left to clean up, and
        # finalising every module costs milliseconds on each container start.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        os._exit(code)
    return code
