"""The attach protocol between a monitor and the CLI that started it (sans I/O framing).

A frame is ``kind`` (1 byte) + payload length (4 bytes, big endian) + payload.  Output
flows monitor -> client; stdin, signals and terminal resizes flow client -> monitor.
``Decoder`` turns a byte stream into frames without doing any I/O itself.
"""

from __future__ import annotations

import struct

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
