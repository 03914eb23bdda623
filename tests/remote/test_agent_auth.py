"""Who gets in: keys, roles, revocation, replayed proofs, pinning of the agent identity."""

from __future__ import annotations

import asyncio
import json

import pytest

from bolt.network import framing, identity, quic, session
from tests.nvcontrol_control.helpers import settings_of
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]


def _no_mutation_audited(agent: Agent) -> bool:
    return not [e for e in agent.audit() if e["origin"] == "quic" and e["result"] == "ok"]


def test_a_client_without_a_key_is_told_to_make_one(agent: Agent) -> None:
    c = agent.client(role=None)
    (c.config / "client_key.pem").unlink()
    before = settings_of(agent.gpus)
    done = agent.remote(c, "power", "limit", "--watts", "300")
    assert done.returncode == 2, done.stderr
    assert "no client key" in done.stderr and "nvctl remote keygen" in done.stderr
    assert settings_of(agent.gpus) == before


def test_an_unknown_key_is_rejected_before_any_command_runs(agent: Agent) -> None:
    c = agent.client(role=None)
    before = settings_of(agent.gpus)
    done = agent.remote(c, "power", "limit", "--watts", "300", "--window", "0")
    assert done.returncode == 4, done.stderr
    assert "not authorized here (unknown key)" in done.stderr
    assert "Traceback" not in done.stderr
    assert settings_of(agent.gpus) == before
    assert _no_mutation_audited(agent)


def test_a_revoked_key_is_rejected(agent: Agent) -> None:
    c = agent.client("admin")
    assert agent.remote(c, "gpu", "list", "--json").returncode == 0
    fp = json.loads(agent.admin("list", "--json").stdout)["keys"][0]["fingerprint"]
    assert agent.admin("revoke", fp[:16]).returncode == 0
    before = settings_of(agent.gpus)
    done = agent.remote(c, "power", "limit", "--watts", "300", "--window", "0")
    assert done.returncode == 4
    assert "revoked" in done.stderr
    assert settings_of(agent.gpus) == before
    listed = json.loads(agent.admin("list", "--json").stdout)["keys"]
    assert [k["active"] for k in listed] == [False]


def test_a_replayed_proof_fails_on_a_new_connection(agent: Agent) -> None:
    """Record a valid proof on one connection, send it on another: refused, no call runs."""
    c = agent.client("admin")
    key = identity.load_client_key(c.config / "client_key.pem")
    cert = (agent.tmp / "agent-state" / "agent" / "cert.pem").read_text()

    async def main() -> tuple[str | None, str]:
        ok = await quic.QuicClient.connect(agent.endpoint, key=key, pinned_cert=cert)
        assert ok.principal == "admin"
        await ok.close()
        # a proof made for some earlier connection (its nonce), then replayed
        hs = session.ClientHandshake(key, identity.cert_fingerprint(identity.load_cert(cert)))
        stale = framing.encode({"t": "challenge", "nonce": session.b64(b"x" * 32), "cert": cert})
        proof = hs.feed(stale)[0]
        assert isinstance(proof, bytes)
        raw = await quic.QuicClient.connect(
            agent.endpoint, verify=False, keepalive_s=None
        )  # only reads the challenge
        proto = raw._proto
        q = raw._open(0)
        proto._quic.send_stream_data(0, proof)
        proto._quic.send_stream_data(
            4, framing.encode({"t": "call", "method": "reset_power", "params": {}})
        )
        proto.transmit()
        seen = b""
        for _ in range(20):
            try:
                data, end = await asyncio.wait_for(q.get(), 3)
            except TimeoutError:
                break
            seen += data
            if end:
                break
        await asyncio.sleep(0.3)
        reason = proto.terminated
        await raw.close()
        return reason, seen.decode(errors="replace")

    reason, _seen = asyncio.run(main())
    assert reason is not None and "does not verify" in reason
    assert not [e for e in agent.audit() if e["action"] == "reset_power"]


def test_roles_viewer_reads_only_operator_changes_and_both_are_audited(agent: Agent) -> None:
    viewer, operator = agent.client("viewer"), agent.client("operator")
    before = settings_of(agent.gpus)
    assert agent.remote(viewer, "power", "status", "--json").returncode == 0
    for args in (
        ["power", "limit", "--watts", "300", "--window", "0"],
        ["overclock", "apply", "--gpu-offset", "100", "--window", "0"],
        ["fan", "set", "60", "--window", "0"],
        ["power", "reset"],
        ["snapshot", "create", "v"],
    ):
        done = agent.remote(viewer, *args)
        assert done.returncode == 4, (args, done.stderr)
        assert "role viewer may not" in done.stderr
    assert settings_of(agent.gpus) == before

    done = agent.remote(
        operator, "power", "limit", "-i", "1", "--watts", "320", "--window", "0", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == "committed"
    after = settings_of(agent.gpus)
    assert after[1]["power_limit_w"] == 320 and after[0] == before[0]

    entries = agent.audit()
    denied = [e for e in entries if e["result"] == "denied"]
    assert len(denied) == 5 and {e["role"] for e in denied} == {"viewer"}
    change = next(e for e in entries if e["action"] == "set_power_limit" and e["result"] == "ok")
    uuid = after[1]["uuid"]
    assert change["role"] == "operator" and change["key"].startswith("SHA256:")
    assert change["before"] == {uuid: {"power_limit_w": before[1]["power_limit_w"]}}
    assert change["after"] == {uuid: {"power_limit_w": 320.0}}


def test_the_audit_log_refuses_rewrites(agent: Agent) -> None:
    import sqlite3

    c = agent.client("operator")
    assert agent.remote(c, "power", "reset").returncode == 0
    db = sqlite3.connect(agent.tmp / "agent-state" / "agent" / "agent.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET result = 'ok'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")


def test_first_contact_needs_a_decision_and_pins_the_identity(agent: Agent) -> None:
    c = agent.client("viewer")
    done = c.nvctl("--remote", agent.endpoint, "gpu", "list")
    assert done.returncode == 4
    assert "not a known host" in done.stderr and agent.fingerprint in done.stderr
    wrong = c.nvctl("--remote", agent.endpoint, "--host-fingerprint", "SHA256:nope", "gpu", "list")
    assert wrong.returncode == 4 and "not the expected" in wrong.stderr
    first = c.nvctl("--remote", agent.endpoint, "--accept-new-host", "gpu", "list", "--json")
    assert first.returncode == 0, first.stderr
    again = c.nvctl("--remote", agent.endpoint, "gpu", "list", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(first.stdout)


def test_a_changed_agent_identity_is_refused_with_a_warning(agent: Agent) -> None:
    c = agent.client("admin")
    assert agent.remote(c, "gpu", "list").returncode == 0  # pinned now
    old = agent.fingerprint
    agent.stop()
    for f in ("key.pem", "cert.pem"):
        (agent.tmp / "agent-state" / "agent" / f).unlink()
    agent.proc, agent.port, agent.http_port = None, 0, 0
    port = None
    agent.start("--idle-timeout", "2")
    assert agent.fingerprint != old
    del port
    before = settings_of(agent.gpus)
    done = c.nvctl("--remote", agent.endpoint, "power", "limit", "--watts", "300")
    # the new agent listens on a new ephemeral port: pin the old identity to it first
    from nvcontrol.remote import trust  # noqa: F401  (the known_hosts format is ours)

    kh = c.config / "known_hosts"
    lines = kh.read_text().splitlines()
    lines = [lines[0]] + [f"127.0.0.1:{agent.port} " + ln.split(" ", 1)[1] for ln in lines[1:]]
    kh.write_text("\n".join(lines) + "\n")
    done = c.nvctl("--remote", agent.endpoint, "power", "limit", "--watts", "300")
    assert done.returncode == 4, done.stderr
    assert "WARNING" in done.stderr and "CHANGED" in done.stderr
    assert old in done.stderr and agent.fingerprint in done.stderr
    assert settings_of(agent.gpus) == before


def test_a_ca_file_verifies_the_agent(agent: Agent) -> None:
    c = agent.client("viewer")
    ca = agent.tmp / "agent-state" / "agent" / "cert.pem"  # self-signed: its own CA
    done = c.nvctl("--remote", f"localhost:{agent.port}", "--ca-file", str(ca), "gpu", "list")
    assert done.returncode == 0, done.stderr
    other = agent.tmp / "other-ca.pem"
    _k, cert = identity.new_server_identity("someone else", ["localhost"])
    other.write_text(identity.cert_pem(cert))
    bad = c.nvctl("--remote", f"localhost:{agent.port}", "--ca-file", str(other), "gpu", "list")
    assert bad.returncode == 1 and "cannot reach the agent" in bad.stderr
