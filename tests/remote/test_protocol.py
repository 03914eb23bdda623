"""The wire protocol's pure core, without sockets: framing and the auth state machine."""

from __future__ import annotations

import json
import struct

import pytest

from bolt.network import framing, identity, quic, session


def _server(keys: dict[str, str], nonce: bytes = b"n" * 32, **kw: object) -> session.ServerSession:
    _k, cert = identity.new_server_identity("test", ["localhost"])
    return session.ServerSession(
        server_fp=identity.cert_fingerprint(cert),
        cert_pem=identity.cert_pem(cert),
        nonce=nonce,
        authorize=lambda fp: (keys.get(fp), "unknown key"),
        **kw,  # type: ignore[arg-type]
    )


def _frames(actions: list[session.Action], stream: int) -> list[dict]:
    out = []
    for a in actions:
        if isinstance(a, session.Send) and a.stream_id == stream:
            out += framing.FrameDecoder().feed(a.data)
    return out


def _handshake(srv: session.ServerSession, key: object) -> tuple[list[session.Action], bytes]:
    hs = session.ClientHandshake(key)
    challenge = srv.stream_data(0, hs.hello(), False)
    sends = [a for a in challenge if isinstance(a, session.Send)]
    proof = hs.feed(sends[0].data)[0]
    assert isinstance(proof, bytes)
    return srv.stream_data(0, proof, False), proof


def test_frames_round_trip_in_pieces() -> None:
    data = framing.encode({"t": "call", "n": 1}) + framing.encode({"t": "x"})
    dec = framing.FrameDecoder()
    got = []
    for i in range(len(data)):
        got += dec.feed(data[i : i + 1])
    assert got == [{"t": "call", "n": 1}, {"t": "x"}]


@pytest.mark.parametrize(
    "raw, why",
    [
        (struct.pack(">I", 5) + b"hello", "not JSON"),
        (struct.pack(">I", 2) + b"[]", "not a JSON object"),
        (struct.pack(">I", 9) + b'{"a":NaN}', "NaN"),
        (struct.pack(">I", 16) + b'{"a":[1, 1e999]}', "non-finite"),
        (struct.pack(">I", 5007) + b'{"a":' + b"9" * 5001 + b"}", "not JSON"),
        (struct.pack(">I", 4) + b"\xff\xfe{}", "not JSON"),
        (struct.pack(">I", 2_000_000), "exceeds"),
    ],
)
def test_malformed_frames_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(framing.FrameError, match=why):
        framing.FrameDecoder(max_size=1 << 20).feed(raw)


def test_large_frames_are_compressed_and_bombs_refused() -> None:
    import zlib

    big = {"t": "result", "value": ["GPU-0123456789"] * 500}
    data = framing.encode(big)
    assert len(data) < 1000 and framing.FrameDecoder().feed(data) == [big]
    bomb = zlib.compress(b"{" + b" " * 5_000_000 + b"}")
    frame = struct.pack(">I", len(bomb) | framing.COMPRESSED) + bomb
    with pytest.raises(framing.FrameError, match="expands beyond"):
        framing.FrameDecoder(max_size=1 << 20).feed(frame)
    junk = struct.pack(">I", 4 | framing.COMPRESSED) + b"abcd"
    with pytest.raises(framing.FrameError, match="corrupt"):
        framing.FrameDecoder().feed(junk)


def test_a_stream_that_ends_inside_a_frame_is_refused() -> None:
    data = framing.encode({"t": "call"})
    with pytest.raises(framing.FrameError, match="ended inside a frame"):
        framing.FrameDecoder().feed(data[:-3], end=True)


def test_authorized_key_is_welcomed_with_its_role() -> None:
    key = identity.new_client_key()
    fp = identity.fingerprint(identity.raw_public(key))
    srv = _server({fp: "viewer"})
    actions, _proof = _handshake(srv, key)
    assert session.Authenticated(fp, "viewer") in actions
    assert _frames(actions, 0)[0]["t"] == "welcome"
    call = srv.stream_data(4, framing.encode({"t": "call", "method": "m", "params": {}}), False)
    assert call == [session.Call(4, "m", {})]


def test_unknown_key_is_denied_and_the_connection_closed() -> None:
    srv = _server({})
    actions, _ = _handshake(srv, identity.new_client_key())
    assert any(isinstance(a, session.Close) and "not authorized" in a.reason for a in actions)
    assert _frames(actions, 0)[0]["t"] == "denied"
    assert srv.principal is None
    # nothing more is accepted on it
    assert srv.stream_data(4, framing.encode({"t": "call", "method": "m"}), False) == []


def test_a_proof_replayed_on_another_connection_fails() -> None:
    key = identity.new_client_key()
    fp = identity.fingerprint(identity.raw_public(key))
    first = _server({fp: "admin"}, nonce=b"a" * 32)
    actions, proof = _handshake(first, key)
    assert any(isinstance(a, session.Authenticated) for a in actions)
    second = _server({fp: "admin"}, nonce=b"b" * 32)
    second.stream_data(0, session.ClientHandshake(None).hello(), False)
    replayed = second.stream_data(0, proof, False)
    assert any(isinstance(a, session.Close) and "does not verify" in a.reason for a in replayed)
    assert second.principal is None


def test_a_call_before_authentication_closes_the_connection() -> None:
    srv = _server({})
    actions = srv.stream_data(4, framing.encode({"t": "call", "method": "set_power_limit"}), False)
    assert not any(isinstance(a, session.Call) for a in actions)
    assert any(isinstance(a, session.Close) for a in actions)


def test_garbage_on_an_authenticated_stream_closes_only_that_connection() -> None:
    key = identity.new_client_key()
    fp = identity.fingerprint(identity.raw_public(key))
    srv, other = _server({fp: "admin"}), _server({fp: "admin"})
    _handshake(srv, key)
    _handshake(other, key)
    bad = srv.stream_data(8, b"\x00\x00\x00\x03abc", False)
    assert any(isinstance(a, session.Close) for a in bad) and srv.closed
    ok = other.stream_data(8, framing.encode({"t": "call", "method": "m", "params": {}}), False)
    assert ok == [session.Call(8, "m", {})]


def test_too_many_concurrent_calls_are_answered_with_an_error() -> None:
    key = identity.new_client_key()
    fp = identity.fingerprint(identity.raw_public(key))
    srv = _server({fp: "admin"}, max_calls=2)
    _handshake(srv, key)
    call = framing.encode({"t": "call", "method": "m", "params": {}})
    assert isinstance(srv.stream_data(4, call, False)[0], session.Call)
    assert isinstance(srv.stream_data(8, call, False)[0], session.Call)
    third = srv.stream_data(12, call, False)
    assert _frames(third, 12)[0]["t"] == "error" and not srv.closed


def test_public_key_lines_round_trip_and_bad_ones_are_refused() -> None:
    key = identity.new_client_key()
    line = identity.public_line(key, "me@host")
    assert identity.parse_public_line(line) == identity.raw_public(key)
    for bad in ["", "ssh-ed25519 AAAA", "bolt-ed25519 !!!", "bolt-ed25519 " + "QUFB"]:
        with pytest.raises(identity.KeyError_):
            identity.parse_public_line(bad)
    assert json.dumps(line)  # one printable line


def test_the_ack_delay_we_tune_is_still_aioquics_attribute() -> None:
    # bolt.network.quic sets a private aioquic attribute (see ACK_DELAY_S): if aioquic
    # renames or retypes it, this fails instead of the tuning silently doing nothing.
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    conn = QuicConnection(configuration=QuicConfiguration(is_client=True))
    assert isinstance(conn._ack_delay, float) and conn._ack_delay < quic.ACK_DELAY_S
    quic.tune_ack_delay(conn)
    assert conn._ack_delay == quic.ACK_DELAY_S < 0.025  # below the max_ack_delay advertised
