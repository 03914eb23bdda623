"""``nvctl --remote``: the same output and exit codes as a local run, fan-out to several
agents, and the dead-man's switch of remote transactions."""

from __future__ import annotations

import json
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.nvcontrol_control.helpers import settings_of
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]


def _volatile(doc: object) -> object:
    """Readings that move between two calls (energy, timestamps) blanked out."""
    if isinstance(doc, dict):
        return {
            k: None if k in ("energy_j", "time", "usage_w", "power_w") else _volatile(v)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_volatile(v) for v in doc]
    return doc


def test_remote_commands_print_what_local_ones_print(agent: Agent) -> None:
    c = agent.client("admin")
    for args in (
        ["gpu", "list", "--json"],
        ["gpu", "list"],
        ["power", "status", "--json"],
        ["fan", "status", "--json"],
        ["overclock", "status", "--json"],
        ["snapshot", "list", "--json"],
    ):
        local = agent.gpus.nvctl(*args)
        remote = agent.remote(c, *args)
        assert remote.returncode == local.returncode == 0, (args, remote.stderr)
        if "--json" in args:
            assert _volatile(json.loads(remote.stdout)) == _volatile(json.loads(local.stdout)), args
        else:
            assert remote.stdout == local.stdout
    info = json.loads(agent.remote(c, "gpu", "info", "-i", "1", "--json").stdout)
    assert [g["index"] for g in info["gpus"]] == [1]


def _connections(agent: Agent) -> float:
    text = agent.get("/metrics")
    return next(
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "nvcontrol_agent_connections"
        for s in f.samples
    )


def test_a_finished_cli_call_leaves_no_connection_on_the_agent(agent: Agent) -> None:
    # The CLI closes without QUIC's ~100 ms drain; the close still reaches the agent (an
    # unsent one would keep the connection until the agent's 2 s idle timeout here).
    # The agent handles the close in its own time after the CLI has exited: it may take a
    # moment, but far less than the idle timeout that an unsent close would take.
    c = agent.client("viewer")
    done = agent.remote(c, "gpu", "list", "--json")
    ended = time.monotonic()
    assert done.returncode == 0, done.stderr
    while _connections(agent) != 0:
        assert time.monotonic() - ended < 0.5, "the agent still holds the CLI's connection"
        time.sleep(0.02)


def test_remote_errors_keep_their_exit_codes(agent: Agent) -> None:
    c = agent.client("admin")
    for args, code in (
        (["power", "status", "-i", "7"], 2),
        (["power", "limit", "--watts", "5000", "--window", "0"], 2),
        (["snapshot", "show", "nope"], 2),
    ):
        local = agent.gpus.nvctl(*args)
        remote = agent.remote(c, *args)
        assert local.returncode == remote.returncode == code, (args, remote.stderr)
        assert remote.stderr.splitlines()[0] == local.stderr.splitlines()[0]
        assert "Traceback" not in remote.stderr


def test_commands_about_the_client_or_the_agent_process_are_refused_over_remote(
    agent: Agent,
) -> None:
    c = agent.client("admin")
    for args, why in (
        (["agent", "serve"], "runs the agent"),
        (["agent", "token", "list"], "dashboard tokens"),
        (["remote", "hosts"], "this client's own"),
    ):
        done = agent.remote(c, *args)
        assert done.returncode == 3, (args, done.stderr)
        assert "not available with --remote" in done.stderr and why in done.stderr, done.stderr


def test_an_unconfirmed_remote_change_rolls_back_with_exit_5(agent: Agent) -> None:
    c = agent.client("operator")
    before = settings_of(agent.gpus)
    done = agent.remote(
        c, "power", "limit", "--watts", "300", "--confirm", "--confirm-timeout", "1",
        "--window", "0", "--json",
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    assert json.loads(done.stdout)["result"] == "rolled_back"
    assert "not confirmed" in done.stderr
    assert settings_of(agent.gpus) == before


def test_killing_the_client_in_the_confirm_window_reverts_on_the_gpu(agent: Agent) -> None:
    c = agent.client("operator")
    agent.remote(c, "gpu", "list")  # pin the agent
    before = settings_of(agent.gpus)
    proc = c.popen(
        "--remote", agent.endpoint, "power", "limit", "--watts", "300", "--confirm",
        "--confirm-timeout", "60", "--window", "0",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(g["power_limit_w"] == 300 for g in settings_of(agent.gpus)):
            break
        time.sleep(0.2)
    assert all(g["power_limit_w"] == 300 for g in settings_of(agent.gpus)), "not applied"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the agent's idle timeout is 2 s here: well inside the 60 s confirm window
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and settings_of(agent.gpus) != before:
        time.sleep(0.3)
    assert settings_of(agent.gpus) == before
    entry = next(e for e in agent.audit() if e["action"] == "set_power_limit")
    assert entry["result"] == "rolled_back" and "caller went away" in entry["message"]


def test_a_remote_confirm_keeps_the_change(agent: Agent) -> None:
    c = agent.client("operator")
    agent.remote(c, "gpu", "list")
    proc = c.popen(
        "--remote", agent.endpoint, "power", "limit", "-i", "0", "--watts", "310", "--confirm",
        "--confirm-timeout", "60", "--window", "0",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and settings_of(agent.gpus)[0]["power_limit_w"] != 310:
        time.sleep(0.2)
    done = agent.remote(c, "confirm", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "committed"
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "committed transaction" in out
    assert settings_of(agent.gpus)[0]["power_limit_w"] == 310


def test_fan_out_labels_each_host_and_a_dead_one_does_not_hide_the_others(agent: Agent) -> None:
    c = agent.client("viewer")
    agent.remote(c, "gpu", "list")
    dead = "127.0.0.1:9"  # nothing listens there
    ok = c.nvctl("--remote", f"{agent.endpoint},localhost:{agent.port}", "--accept-new-host",
                 "gpu", "list")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert any(ln.startswith(f"{agent.endpoint}: ") and "RTX 4090" in ln for ln in lines)
    assert any(ln.startswith(f"localhost:{agent.port}: ") and "RTX 4090" in ln for ln in lines)
    hosts = agent.tmp / "hosts"
    hosts.write_text(f"# lab\n{agent.endpoint}\n{dead}\n")
    mixed = c.nvctl("--hosts-file", str(hosts), "power", "status", "--json")
    assert mixed.returncode != 0
    docs = {d["host"]: d for d in json.loads(mixed.stdout)["hosts"]}
    assert docs[agent.endpoint]["exit_code"] == 0
    assert len(docs[agent.endpoint]["result"]["gpus"]) == 2
    assert docs[dead]["exit_code"] != 0 and docs[dead]["stderr"]


def test_an_admin_reads_the_audit_log_remotely_and_a_viewer_may_not(agent: Agent) -> None:
    admin, viewer = agent.client("admin"), agent.client("viewer")
    assert agent.remote(admin, "power", "limit", "-i", "0", "--watts", "320", "--window", "0").returncode == 0  # fmt: skip
    done = agent.remote(admin, "agent", "audit", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["audit"] == agent.audit()
    assert agent.remote(viewer, "agent", "audit").returncode == 4


def test_an_admin_authorizes_lists_and_revokes_keys_remotely(agent: Agent) -> None:
    admin, operator = agent.client("admin"), agent.client("operator")
    newcomer = agent.client(None, name="newcomer")  # a key nobody has authorized yet
    assert agent.remote(newcomer, "gpu", "list").returncode == 4
    denied = agent.remote(operator, "agent", "authorize", newcomer.public, "--role", "viewer")
    assert denied.returncode == 4, denied.stderr
    done = agent.remote(admin, "agent", "authorize", newcomer.public, "--role", "viewer", "--json")
    assert done.returncode == 0, done.stderr
    fp = json.loads(done.stdout)["fingerprint"]
    assert agent.remote(newcomer, "gpu", "list").returncode == 0
    listed = agent.remote(admin, "agent", "list", "--json")
    assert json.loads(listed.stdout) == json.loads(agent.admin("list", "--json").stdout)
    assert agent.remote(admin, "agent", "revoke", fp).returncode == 0
    assert agent.remote(newcomer, "gpu", "list").returncode == 4
    entry = next(
        e for e in agent.audit() if e["action"] == "authorize" and e["params"]["key"] == fp
    )
    assert (
        entry["origin"] == "quic"
        and entry["role"] == "admin"
        and entry["after"] == {"role": "viewer"}
    )
