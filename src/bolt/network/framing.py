"""Length-prefixed JSON frames: the wire format of every QUIC stream (sans-I/O).

A frame is a 4-byte big-endian header followed by a body of UTF-8 JSON, which must be an
object.  The header's low 31 bits are the body's length; its top bit says the body is
zlib-compressed (bodies over :data:`COMPRESS_OVER` bytes are: a GPU's full info shrinks
about 4x, to one QUIC packet).  :class:`FrameDecoder` is fed bytes as they arrive and returns whole
messages; anything malformed (oversized, not JSON, not an object, cut off at the end of
the stream) raises :class:`FrameError`, which closes only the connection it came on.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from typing import Any

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 1 << 20  # 1 MiB: far above any command, far below memory trouble
COMPRESSED = 0x8000_0000
COMPRESS_OVER = 1024


class FrameError(Exception):
    """The peer sent bytes that are not a valid frame."""


def _reject_constant(name: str) -> float:
    raise FrameError(f"{name} is not allowed in a frame")


def encode(message: dict[str, Any], max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if len(body) > max_size:
        raise FrameError(f"frame of {len(body)} bytes exceeds the {max_size}-byte limit")
    if len(body) > COMPRESS_OVER:
        packed = zlib.compress(body, 1)
        return HEADER.pack(len(packed) | COMPRESSED) + packed
    return HEADER.pack(len(body)) + body


def _inflate(data: bytes, max_size: int) -> bytes:
    """Decompress at most ``max_size`` bytes (a small frame cannot expand into a huge one)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, max_size)
    except zlib.error as err:
        raise FrameError(f"compressed frame is corrupt: {err}") from None
    if d.unconsumed_tail or not d.eof:
        raise FrameError(f"compressed frame expands beyond the {max_size}-byte limit or is cut off")
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # ``1e999`` parses to infinity
        raise FrameError("frame holds a non-finite number")
    return value


def decode_body(body: bytes) -> dict[str, Any]:
    # Finiteness is checked as each number is parsed (``parse_float``/``parse_constant``),
    # not by a second walk over the decoded value: that walk cost more than the parse.
    try:
        value = json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # ValueError: JSON, or
        raise FrameError(f"frame is not JSON: {err}") from None  # an int of > 4300 digits
    if not isinstance(value, dict):
        raise FrameError("frame is not a JSON object")
    return value


class FrameDecoder:
    """Reassembles frames from one stream's bytes."""

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes, end: bool = False) -> list[dict[str, Any]]:
        self._buf += data
        out: list[dict[str, Any]] = []
        while len(self._buf) >= HEADER.size:
            (word,) = HEADER.unpack_from(self._buf)
            size = word & ~COMPRESSED
            if size > self.max_size:
                raise FrameError(f"frame of {size} bytes exceeds the {self.max_size}-byte limit")
            if len(self._buf) < HEADER.size + size:
                break
            body = bytes(self._buf[HEADER.size : HEADER.size + size])
            del self._buf[: HEADER.size + size]
            if word & COMPRESSED:
                body = _inflate(body, self.max_size)
            out.append(decode_body(body))
        if end and self._buf:
            raise FrameError(f"stream ended inside a frame ({len(self._buf)} bytes left over)")
        return out

    def feed_one(self, data: bytes) -> tuple[dict[str, Any] | None, bytes]:
        """At most one frame, and the bytes after it (for a stream that turns raw after its
        first frame); (None, b"") until the frame is whole."""
        self._buf += data
        if len(self._buf) < HEADER.size:
            return None, b""
        (word,) = HEADER.unpack_from(self._buf)
        size = word & ~COMPRESSED
        if size > self.max_size:
            raise FrameError(f"frame of {size} bytes exceeds the {self.max_size}-byte limit")
        if len(self._buf) < HEADER.size + size:
            return None, b""
        body = bytes(self._buf[HEADER.size : HEADER.size + size])
        rest = self.take_rest()[HEADER.size + size :]
        if word & COMPRESSED:
            body = _inflate(body, self.max_size)
        return decode_body(body), rest

    def take_rest(self) -> bytes:
        """The bytes not yet consumed (the decoder is empty afterwards)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest
