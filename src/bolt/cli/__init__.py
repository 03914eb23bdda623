"""The ``bolt`` command: argument parsing and rendering over the Bolt library.

argparse, not click: ``bolt run`` start-up time is part of every container start (see
docs/decisions.md).  Subcommand modules only declare arguments; their handlers import
the library lazily, so ``bolt run`` loads no more than it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bolt.errors import BoltError, ExitCode, PermissionDenied, render


def default_root() -> str:
    return os.environ.get("BOLT_ROOT") or "/var/lib/bolt"


# Which module declares each command: only that one is loaded and built for a call.
COMMAND_MODULES = {
    "run": "run",
    **dict.fromkeys(
        ("ps", "logs", "exec", "start", "stop", "kill", "rm", "inspect", "wait"), "containers"
    ),
    "gpu": "gpu",
    "system": "system",
    "volume": "system",
    "image": "image",
    "images": "image",
    "build": "build",
    **dict.fromkeys(("pull", "push", "tag", "login", "logout", "save", "load"), "registry"),
}
MODULE_ORDER = ("run", "containers", "image", "registry", "build", "gpu", "system")
CORE_MODULES = ("run", "containers", "gpu", "system")  # the rest ship separately


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

    parser = argparse.ArgumentParser(prog="bolt", description="Bolt: OCI containers on crun/runc.")
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


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        args.root = Path(args.root)
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
