"""The attach protocol between a monitor and the CLI that started it (sans I/O framing).

A frame is ``kind`` (1 byte) + payload length (4 bytes, big endian) + payload.  Output
flows monitor -> client; stdin, signals and terminal resizes flow client -> monitor.
``Decoder`` turns a byte stream into frames without doing any I/O itself.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from basis.errors import UserError

OUT, ERR, IN, IN_EOF, SIGNAL, RESIZE, STARTED, ERROR, EXIT = range(1, 10)
_HEADER = struct.Struct("!BI")
MAX_PAYLOAD = 1 << 20


def encode(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


class Decoder:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buf) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buf)
            if length > MAX_PAYLOAD:
                raise ValueError(f"attach frame of {length} bytes is too large")
            end = _HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((kind, bytes(self._buf[_HEADER.size : end])))
            del self._buf[:end]
        return frames


def error_payload(err: BaseException) -> bytes:
    """An ERROR frame's payload: the error's message, hint and exit code, so the client
    raises what the monitor met (a missing command exits 127 there too)."""
    import json

    code = getattr(err, "exit_code", 1)
    hint = getattr(err, "hint", None)
    return json.dumps({"message": str(err), "hint": hint, "exit_code": int(code)}).encode()


def error_of(payload: bytes) -> UserError:
    """The user error an ERROR frame carries."""
    import json

    from basis.errors import UserError, from_exit_code

    text = payload.decode(errors="replace")
    try:
        fields = json.loads(text)
        message, hint, code = fields["message"], fields["hint"], fields["exit_code"]
        if not isinstance(message, str) or not isinstance(code, int) or not 0 < code < 256:
            raise TypeError(code)
    except (ValueError, TypeError, KeyError):
        return UserError(text)  # a bare message: exit 1
    return from_exit_code(code, message, hint if isinstance(hint, str) else None)
