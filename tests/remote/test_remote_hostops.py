"""What once only worked in a shell on the GPU host, over ``--remote``: snapshot files
(the document crosses, the file stays on the client), the agent host's boot unit, and the
long jobs (``fan curve run``, ``overclock test|auto``) run by the agent for as long as
their caller, with the clean-up done there when the caller stops or dies."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.nvcontrol_control.helpers import settings_of
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]


def test_snapshot_export_writes_the_agents_snapshot_to_a_client_file(agent: Agent) -> None:
    c = agent.client("operator")
    assert agent.remote(c, "snapshot", "create", "base").returncode == 0
    here = agent.tmp / "client-copy.toml"
    done = agent.remote(c, "snapshot", "export", "base", str(here))
    assert done.returncode == 0, done.stderr
    on_host = agent.tmp / "host-copy.toml"
    local = agent.host("snapshot", "export", "base", str(on_host))
    assert local.returncode == 0, local.stderr
    assert done.stdout == local.stdout.replace(str(on_host), str(here))
    assert here.read_text() == on_host.read_text()
    missing = agent.remote(c, "snapshot", "export", "nope", str(agent.tmp / "nope.toml"))
    assert missing.returncode == 2 and not (agent.tmp / "nope.toml").exists()


def test_snapshot_import_stores_a_client_file_on_the_agent(agent: Agent) -> None:
    op, viewer = agent.client("operator"), agent.client("viewer")
    assert agent.remote(op, "snapshot", "create", "base").returncode == 0
    doc = agent.tmp / "doc.toml"
    assert agent.remote(op, "snapshot", "export", "base", str(doc)).returncode == 0
    done = agent.remote(op, "snapshot", "import", str(doc), "--name", "copied", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "copied"
    names = [s["name"] for s in json.loads(agent.host("snapshot", "list", "--json").stdout)["snapshots"]]  # fmt: skip
    assert sorted(names) == ["base", "copied"]
    # a bad file is refused on the client, naming it; a viewer may not store one
    bad = agent.tmp / "bad.toml"
    bad.write_text("name = [\n")
    refused = agent.remote(op, "snapshot", "import", str(bad))
    assert refused.returncode == 2 and str(bad) in refused.stderr
    denied = agent.remote(viewer, "snapshot", "import", str(doc), "--name", "other")
    assert denied.returncode == 4, denied.stderr
    after = [s["name"] for s in json.loads(agent.host("snapshot", "list", "--json").stdout)["snapshots"]]  # fmt: skip
    assert sorted(after) == ["base", "copied"]


def test_boot_unit_of_the_agent_host_is_set_shown_and_cleared_remotely(agent: Agent) -> None:
    admin, viewer = agent.client("admin"), agent.client("viewer")
    units = Path(agent.env["NVCTL_SYSTEMD_DIR"])
    assert agent.remote(admin, "snapshot", "create", "daily").returncode == 0
    denied = agent.remote(viewer, "boot", "set", "daily")
    assert denied.returncode == 4 and not any(units.glob("*.service"))
    done = agent.remote(admin, "boot", "set", "daily", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["snapshot"] == "daily"
    assert [p.name for p in units.glob("*.service")] != []
    shown = agent.remote(viewer, "boot", "show")
    local = agent.host("boot", "show")
    assert shown.returncode == local.returncode == 0 and shown.stdout == local.stdout
    assert agent.remote(admin, "boot", "clear").returncode == 0
    assert not any(units.glob("*.service"))


def _start_curve(agent: Agent, c: object) -> object:
    proc = c.popen("--remote", agent.endpoint, "fan", "curve", "run", "-i", "0", "--interval", "0.2")  # type: ignore[attr-defined]  # fmt: skip
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if all(p == "manual" for p, _ in settings_of(agent.gpus)[0]["fans"]):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the agent never took the fans: {proc.communicate()}")


def test_fan_curve_runs_on_the_agent_until_the_client_stops_it(agent: Agent) -> None:
    c = agent.client("operator")
    assert agent.remote(c, "fan", "curve", "set", "20:45,90:100", "-i", "0").returncode == 0
    proc = _start_curve(agent, c)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # type: ignore[attr-defined]
    out, err = proc.communicate(timeout=20)  # type: ignore[attr-defined]
    assert proc.returncode == 0, err  # type: ignore[attr-defined]
    assert "-> fans" in out and "automatic control again" in out
    assert settings_of(agent.gpus)[0]["fans"] == [("auto", None), ("auto", None)]


def test_a_killed_fan_curve_client_gives_the_fans_back_on_the_agent(agent: Agent) -> None:
    c = agent.client("operator")
    assert agent.remote(c, "fan", "curve", "set", "20:45,90:100", "-i", "0").returncode == 0
    proc = _start_curve(agent, c)
    proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
    proc.wait()  # type: ignore[attr-defined]
    # the agent's idle timeout is 2 s here
    end = time.monotonic() + 15
    while time.monotonic() < end and settings_of(agent.gpus)[0]["fans"] != [("auto", None)] * 2:
        time.sleep(0.2)
    assert settings_of(agent.gpus)[0]["fans"] == [("auto", None), ("auto", None)]
    entry = next(e for e in agent.audit() if e["action"] == "fan_curve_run")
    assert "caller went away" in (entry["message"] or "")


def test_overclock_test_and_auto_run_on_the_agent(agent: Agent) -> None:
    c, viewer = agent.client("operator"), agent.client("viewer")
    before = settings_of(agent.gpus)
    done = agent.remote(c, "overclock", "test", "-i", "0", "--duration", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stable"] is True and [g["index"] for g in result["gpus"]] == [0]
    assert settings_of(agent.gpus) == before
    assert agent.remote(viewer, "overclock", "test", "--duration", "1").returncode == 4
    auto = agent.remote(
        c, "overclock", "auto", "-i", "0", "--max-gpu-offset", "30", "--gpu-step", "15",
        "--max-memory-offset", "100", "--memory-step", "100", "--step-duration", "0.5",
        "--save", "tuned", "--json",
    )  # fmt: skip
    assert auto.returncode == 0, auto.stderr
    found = json.loads(auto.stdout)
    assert found["snapshot"] == "tuned"
    assert "under load" in auto.stderr and "highest stable" in auto.stderr  # progress lines
    truth = settings_of(agent.gpus)[0]["offsets"]["P0"]
    g = found["gpus"][0]
    assert truth == {"gpc": g["graphics_offset_mhz"], "mem": g["memory_offset_mhz"]}
    listed = json.loads(agent.host("snapshot", "list", "--json").stdout)["snapshots"]
    assert "tuned" in [s["name"] for s in listed]
