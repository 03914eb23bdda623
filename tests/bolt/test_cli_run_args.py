"""``bolt run``'s command line: the fast reader agrees with argparse, and leaves to
argparse everything it does not read itself (help, errors, abbreviations)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from bolt.cli import build_parser, parse_args

ALIKE = [
    ["run", "busybox"],
    ["run", "--rm", "busybox", "/bin/true"],
    ["--root", "/tmp/r", "--debug", "run", "-d", "--name", "web", "busybox", "sleep", "9"],
    ["--root=/tmp/r", "run", "--rm", "-e", "A=1", "--env", "B", "--env=C=", "busybox"],
    ["run", "-v", "/a:/b:ro", "--volume=data:/data", "--tmpfs", "/t:size=1m", "busybox"],
    ["run", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "10", "busybox"],
    ["run", "--net", "host", "--runtime", "runc", "--read-only", "-i", "-t", "busybox", "sh"],
    ["run", "--entrypoint", "", "-l", "k=v", "--label", "x", "busybox", "-c", "--rm"],
    ["run", "--cap-add", "SYS_ADMIN", "--cap-drop", "ALL", "--privileged", "busybox"],
    ["run", "--device", "/dev/null:/dev/n:rw", "--gpus", "all", "-w", "/tmp", "-u", "1:2", "img"],
    ["run", "--hostname", "h", "--env-file", "/dev/null", "busybox", "-", "x"],
]
LEFT_TO_ARGPARSE = [
    ["run", "-it", "busybox"],  # combined short flags
    ["run", "-e=A", "busybox"],
    ["run", "--priv", "busybox"],  # an abbreviation
    ["run", "--", "busybox"],
    ["run", "-e", "-x", "busybox"],  # a value that looks like an option
    ["run", "--cpus", "many", "busybox"],
    ["run", "--runtime", "kata", "busybox"],
    ["run", "--rm=yes", "busybox"],
    ["run", "--rm"],  # no image
    ["run", "--help"],
    ["--ro", "/x", "run", "busybox"],
]


def _fields(args: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k != "handler"}


@pytest.mark.parametrize("argv", ALIKE, ids=" ".join)
def test_fast_reading_matches_argparse(argv: list[str]) -> None:
    from bolt.cli import _parse_run_fast

    fast = _parse_run_fast(argv)
    assert fast is not None
    slow = build_parser(argv).parse_args(argv)
    assert _fields(fast) == _fields(slow)
    assert fast.handler is slow.handler


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    from bolt.cli import _parse_run_fast

    assert _parse_run_fast(argv) is None


def test_argparse_still_reads_what_the_fast_reader_declines() -> None:
    args = parse_args(["run", "-it", "--priv", "busybox", "sh"])
    assert (args.interactive, args.tty, args.privileged, args.cmd) == (True, True, True, ["sh"])


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["run", "--help"], 0, "usage: bolt run"),
        (["run", "--no-such-flag", "busybox"], 2, "unrecognized arguments: --no-such-flag"),
        (["run", "--cpus", "many", "busybox"], 2, "invalid float value"),
        (["run"], 2, "required: image"),
    ],
)
def test_help_and_errors_come_from_argparse(argv: list[str], code: int, text: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bolt.cli import main; sys.exit(main(sys.argv[1:]))",
            *argv,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == code
    assert text in proc.stdout + proc.stderr
