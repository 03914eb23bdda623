"""A monitor's error reaches the client with its message, hint and exit code; the runtime's
words for a missing or unrunnable command become exits 127 and 126, and nothing else does."""

from __future__ import annotations

import json

import pytest

from bolt.errors import BoltError, CannotInvoke, CommandNotFound, InvalidInput, PermissionDenied
from bolt.runtime import attach
from bolt.runtime.driver import command_error, runtime_message


@pytest.mark.parametrize(
    "err",
    [
        CommandNotFound("no /x", hint="check PATH"),
        CannotInvoke("/etc is a directory"),
        InvalidInput("bad --memory"),
        PermissionDenied("needs root", hint="sudo"),
        BoltError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_frame_keeps_class_hint_and_code(err: BoltError) -> None:
    back = attach.error_of(attach.error_payload(err))
    assert type(back) is type(err)
    assert (back.message, back.hint, back.exit_code) == (err.message, err.hint, err.exit_code)


def test_an_os_error_crosses_as_a_failure() -> None:
    back = attach.error_of(attach.error_payload(OSError(28, "No space left on device")))
    assert back.exit_code == 1 and "No space left" in back.message


@pytest.mark.parametrize(
    "payload",
    [
        b"plain words from an older monitor",
        b'{"message": "m", "hint": null, "exit_code": 0}',
        b'{"message": "m", "hint": null, "exit_code": 999}',
        b'{"message": "m", "hint": null, "exit_code": "127"}',
        b'{"message": 5, "hint": null, "exit_code": 127}',
        b'{"message": "m"}',
        b"[1, 2]",
        b"\xff\xfe",
    ],
)
def test_a_malformed_error_frame_is_a_plain_failure(payload: bytes) -> None:
    back = attach.error_of(payload)
    assert type(back) is BoltError and back.exit_code == 1
    assert back.message == payload.decode(errors="replace")


def test_a_hint_of_the_wrong_type_is_dropped() -> None:
    payload = json.dumps({"message": "m", "hint": ["x"], "exit_code": 127}).encode()
    back = attach.error_of(payload)
    assert isinstance(back, CommandNotFound) and back.hint is None


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("executable file `/nope` not found in $PATH: No such file or directory", CommandNotFound),
        ("open executable: Permission denied", CannotInvoke),
        ("open executable: Operation not permitted", CannotInvoke),
        (
            'time="2026-12-01T20:43:46Z" level=error msg="runc run failed: unable to start '
            'container process: exec: \\"/x\\": stat /x: no such file or directory"',
            CommandNotFound,
        ),
        (
            'time="t" level=error msg="exec failed: unable to start container process: '
            'exec: \\"x\\": executable file not found in $PATH"',
            CommandNotFound,
        ),
        ('time="t" level=error msg="exec: \\"/etc\\": permission denied"', CannotInvoke),
        ("mount `/src` to `/dst`: No such file or directory", None),
        ('time="t" level=error msg="stat /var/lib/x: no such file or directory"', None),
        ("cannot set memory limit: Permission denied", None),
        ("", None),
    ],
)
def test_which_runtime_messages_mean_the_command(stderr: str, kind: type | None) -> None:
    assert command_error(runtime_message(stderr)) is kind


def test_runc_logfmt_lines_give_their_message() -> None:
    line = 'time="t" level=error msg="runc run failed: exec: \\"/x\\": permission denied"'
    assert runtime_message(f"noise\n{line}\n") == 'runc run failed: exec: "/x": permission denied'
    assert runtime_message('time="t" level=error msg="unterminated') == (
        'time="t" level=error msg="unterminated'
    )
