"""The protocol state machines of one QUIC connection, server and client side (sans-I/O).

They are fed stream bytes and return actions, in aioquic's manner; they never touch a
socket, a clock or a file.  The wire protocol:

* Stream 0 (the client's first bidirectional stream) authenticates:
  client ``hello`` → server ``challenge`` (a fresh nonce and the server's certificate) →
  client ``auth`` (its Ed25519 public key and a signature over :func:`transcript`:
  the nonce, the server identity fingerprint the client verified in TLS, and the key) →
  server ``welcome`` (the principal the key maps to) or ``denied`` and a closed connection.
  The nonce is new for every connection, so a proof recorded on one connection fails on
  any other; the fingerprint binds it to the TLS peer the client checked.
* Every later stream carries one call: ``call`` {method, params} from the client, then
  ``event`` frames and a final ``result`` or ``error`` from the server, which then ends
  the stream.  While the call runs the client may send ``answer`` frames on it.
* A call may instead be *upgraded* (:meth:`ServerSession.upgrade`): the server answers
  with one ``open`` frame, and from then on the stream carries raw bytes both ways, as a
  TCP connection after HTTP's CONNECT does (each FIN is a half-close).  The client sends
  nothing after its ``call`` frame until it has read ``open`` (or the ``error`` that
  refuses the call).

Any malformed frame, a call before authentication, or a second hello closes the
connection it came on (and only that one).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bolt.network import framing, identity

VERSION = 1
AUTH_STREAM = 0
CONTEXT = b"bolt-quic-auth-v1\x00"


def transcript(nonce: bytes, server_fp: str, client_pub: bytes) -> bytes:
    return CONTEXT + nonce + b"\x00" + server_fp.encode() + b"\x00" + client_pub


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise framing.FrameError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise framing.FrameError(f"{what} is not valid base64") from None


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Send:
    stream_id: int
    data: bytes
    end: bool = False


@dataclass(frozen=True)
class Close:
    reason: str
    error_code: int = 0


@dataclass(frozen=True)
class Authenticated:
    key_fp: str
    principal: str


@dataclass(frozen=True)
class Call:
    stream_id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """A frame from the client on a running call's stream (e.g. an answer)."""

    stream_id: int
    message: dict[str, Any]


@dataclass(frozen=True)
class Data:
    """Raw bytes from the client on an upgraded stream (``end``: its half is finished)."""

    stream_id: int
    data: bytes
    end: bool = False


Action = Send | Close | Authenticated | Call | Message | Data

PROTOCOL_ERROR = 0x1  # application error codes in CONNECTION_CLOSE
AUTH_FAILED = 0x2
LIMIT = 0x3


# --------------------------------------------------------------------------- server


@dataclass
class ServerSession:
    """One connection as the server sees it."""

    server_fp: str
    cert_pem: str
    nonce: bytes
    # key fingerprint -> principal (e.g. a role), or None when the key is not authorized;
    # the second value says why (unknown, revoked) for the denial message.
    authorize: Callable[[str], tuple[str | None, str]]
    max_frame: int = framing.DEFAULT_MAX_FRAME
    max_calls: int = 32
    principal: str | None = None
    key_fp: str | None = None
    closed: bool = False
    _decoders: dict[int, framing.FrameDecoder] = field(default_factory=dict)
    _calls: set[int] = field(default_factory=set)
    _said_hello: bool = False
    _raw_in: set[int] = field(default_factory=set)  # upgraded streams the client may send on
    _raw_out: set[int] = field(default_factory=set)  # ... and that the server may send on

    def stream_data(self, stream_id: int, data: bytes, end: bool) -> list[Action]:
        if self.closed:
            return []
        if stream_id in self._raw_in:
            if end:
                self._raw_in.discard(stream_id)
            return [Data(stream_id, data, end)]
        dec = self._decoders.setdefault(stream_id, framing.FrameDecoder(self.max_frame))
        try:
            messages = dec.feed(data, end)
        except framing.FrameError as err:
            return self._close(f"malformed frame: {err}", PROTOCOL_ERROR)
        actions: list[Action] = []
        for msg in messages:
            actions += self._message(stream_id, msg)
            if self.closed:
                break
        if end:
            self._decoders.pop(stream_id, None)
        return actions

    def reply(self, stream_id: int, message: dict[str, Any], end: bool = False) -> list[Action]:
        """A frame the application sends on a call's stream; ``end`` finishes the call."""
        if self.closed or stream_id not in self._calls:
            return []
        try:
            data = framing.encode(message, self.max_frame)
        except framing.FrameError as err:
            data = framing.encode({"t": "error", "error": {"message": str(err), "code": 1}})
            end = True
        return self.reply_frame(stream_id, data, end)

    def reply_frame(self, stream_id: int, data: bytes, end: bool = False) -> list[Action]:
        """Like :meth:`reply`, with the frame already encoded (``framing.encode``)."""
        if self.closed or stream_id not in self._calls:
            return []
        if end:
            self._calls.discard(stream_id)
        return [Send(stream_id, data, end)]

    def upgrade(self, stream_id: int, message: dict[str, Any]) -> list[Action]:
        """Turn a running call's stream into a raw byte stream: ``message`` (the ``open``
        frame) is its last frame; any bytes the client sent early are handed on as data."""
        if self.closed or stream_id not in self._calls:
            return []
        self._calls.discard(stream_id)
        self._raw_in.add(stream_id)
        self._raw_out.add(stream_id)
        actions: list[Action] = [Send(stream_id, framing.encode({**message, "t": "open"}))]
        dec = self._decoders.pop(stream_id, None)
        early = dec.take_rest() if dec is not None else b""
        if early:
            actions.append(Data(stream_id, early))
        return actions

    def send_raw(self, stream_id: int, data: bytes, end: bool = False) -> list[Action]:
        """Bytes the server sends on an upgraded stream (``end``: its half is finished)."""
        if self.closed or stream_id not in self._raw_out:
            return []
        if end:
            self._raw_out.discard(stream_id)
        return [Send(stream_id, data, end)]

    def raw_gone(self, stream_id: int) -> None:
        """An upgraded stream was reset or abandoned: forget it."""
        self._raw_in.discard(stream_id)
        self._raw_out.discard(stream_id)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def _message(self, stream_id: int, msg: dict[str, Any]) -> list[Action]:
        kind = msg.get("t")
        if stream_id == AUTH_STREAM:
            if kind == "hello" and not self._said_hello:
                self._said_hello = True
                reply = {"t": "challenge", "v": VERSION, "nonce": b64(self.nonce)}
                reply["cert"] = self.cert_pem
                return [Send(AUTH_STREAM, framing.encode(reply))]
            if kind == "auth" and self._said_hello and self.principal is None:
                return self._auth(msg)
            return self._close(f"unexpected {kind!r} frame on the auth stream", PROTOCOL_ERROR)
        if self.principal is None:
            return self._close("a call before authentication", AUTH_FAILED)
        if kind == "call" and stream_id not in self._calls:
            method, params = msg.get("method"), msg.get("params", {})
            if not isinstance(method, str) or not isinstance(params, dict):
                return self._close("a call needs a method name and a params object")
            if len(self._calls) >= self.max_calls:
                err = {"message": f"more than {self.max_calls} calls at once", "code": 1}
                return [Send(stream_id, framing.encode({"t": "error", "error": err}), True)]
            self._calls.add(stream_id)
            return [Call(stream_id, method, params)]
        if stream_id in self._calls:
            return [Message(stream_id, msg)]
        return self._close(f"unexpected {kind!r} frame on stream {stream_id}", PROTOCOL_ERROR)

    def _auth(self, msg: dict[str, Any]) -> list[Action]:
        try:
            pub = unb64(msg.get("key"), "key")
            sig = unb64(msg.get("sig"), "sig")
        except framing.FrameError as err:
            return self._close(str(err), PROTOCOL_ERROR)
        fp = identity.fingerprint(pub)
        if len(pub) != 32 or not identity.verify(
            pub, sig, transcript(self.nonce, self.server_fp, pub)
        ):
            return self._deny(f"the proof for key {fp} does not verify on this connection")
        principal, why = self.authorize(fp)
        if principal is None:
            return self._deny(f"key {fp} is not authorized here ({why})")
        self.principal, self.key_fp = principal, fp
        welcome = {"t": "welcome", "principal": principal, "key": fp}
        return [Authenticated(fp, principal), Send(AUTH_STREAM, framing.encode(welcome), True)]

    def _deny(self, reason: str) -> list[Action]:
        frame = framing.encode({"t": "denied", "error": reason})
        return [Send(AUTH_STREAM, frame, True), *self._close(reason, AUTH_FAILED)]

    def _close(self, reason: str, code: int = PROTOCOL_ERROR) -> list[Action]:
        self.closed = True
        self._calls.clear()
        self._raw_in.clear()
        self._raw_out.clear()
        return [Close(reason, code)]


# --------------------------------------------------------------------------- client


class AuthRefused(Exception):
    """The server refused this client's key (the message says why)."""


@dataclass
class ClientHandshake:
    """The client half of stream 0: hello, then sign the challenge."""

    key: Any  # Ed25519PrivateKey, or None to learn the server's certificate only
    server_fp: str | None = None  # the fingerprint of the certificate TLS verified
    decoder: framing.FrameDecoder = field(default_factory=framing.FrameDecoder)
    cert_pem: str | None = None
    principal: str | None = None

    def hello(self) -> bytes:
        return framing.encode({"t": "hello", "v": VERSION})

    def feed(self, data: bytes, end: bool = False) -> list[bytes | str]:
        """Bytes to send, or a final principal (str) once welcomed; raises on refusal."""
        out: list[bytes | str] = []
        for msg in self.decoder.feed(data, end):
            kind = msg.get("t")
            if kind == "challenge":
                nonce = unb64(msg.get("nonce"), "nonce")
                cert = msg.get("cert")
                if not isinstance(cert, str):
                    raise framing.FrameError("the challenge carries no certificate")
                self.cert_pem = cert
                if self.key is None:
                    continue
                fp = self.server_fp or identity.cert_fingerprint(identity.load_cert(cert))
                pub = identity.raw_public(self.key)
                sig = identity.sign(self.key, transcript(nonce, fp, pub))
                out.append(framing.encode({"t": "auth", "key": b64(pub), "sig": b64(sig)}))
            elif kind == "welcome":
                self.principal = str(msg.get("principal"))
                out.append(self.principal)
            elif kind == "denied":
                raise AuthRefused(str(msg.get("error")))
            else:
                raise framing.FrameError(f"unexpected {kind!r} frame during the handshake")
        return out
