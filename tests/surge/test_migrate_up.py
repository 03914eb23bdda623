"""The three converted compose files come up on the real engine (and go down clean)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bolt.cli import main
from tests.conftest import tool
from tests.surge.project import Project, free_port

pytestmark = [pytest.mark.root, pytest.mark.runtime]

COMPOSE = Path(__file__).parent / "compose"


def converted(p: Project, name: str, file: str, replace: dict[str, str] | None = None) -> None:
    """The compose project copied into the test's directory (ports made free) and migrated
    with the test's project name."""
    shutil.copytree(COMPOSE / name, p.directory, dirs_exist_ok=True)
    source = p.directory / file
    text = source.read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    source.write_text(text)
    assert main(["migrate", str(source), "-o", str(p.file), "-p", p.name, "--force"]) == 0
    text = p.file.read_text()
    if "project =" not in text:
        p.file.write_text(text.replace("\n\n", f'\n\nproject = "{p.name}"\n', 1))


def wait_running(p: Project, services: set[str], timeout: float = 60) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        state = p.by_service()
        if all(state.get(s, {}).get("status") == "running" for s in services):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"not all of {services} running: {state}")
        time.sleep(0.3)


def test_web_db_cache_app_comes_up(surge_project: Project):
    p = surge_project
    port = free_port()
    p.env["WEB_PORT"] = str(port)
    converted(p, "webapp", "docker-compose.yml")
    up = p.surge("up", "--wait", check=True, timeout=300)
    assert "building shop/web:latest" in up.stderr
    state = wait_running(p, {"web", "db", "cache"})
    assert state["db"]["health"] == "healthy"
    page = subprocess.run(
        ["wget", "-q", "-O-", f"http://127.0.0.1:{port}/etc/passwd"], capture_output=True, text=True
    )
    assert "root:x:0:0" in page.stdout
    # the cache answers to its alias on the back network, the db is not on the front one
    alias = p.surge("exec", "web", "--", "nslookup", "redis")
    assert alias.returncode == 0, alias.stdout + alias.stderr


def test_gpu_inference_service_comes_up_with_one_gpu(surge_project: Project, nvsim_gpus, tmp_path):
    p = surge_project
    env = {**p.env, **{k: nvsim_gpus.env[k] for k in ("NVSIM_STATE", "LD_LIBRARY_PATH")}}
    env["BOLT_CDI_SPEC_DIRS"] = str(tmp_path / "cdi")
    p.env = env
    subprocess.run(
        [
            tool("bolt"),
            "--root",
            str(p.root),
            "gpu",
            "cdi",
            "generate",
            "--output",
            str(tmp_path / "cdi" / "nvidia.json"),
        ],
        env=env,
        check=True,
    )
    ports = {"18500": str(free_port()), "18501": str(free_port())}
    converted(p, "inference", "compose.yaml", ports)
    p.surge("up", check=True, timeout=300)
    wait_running(p, {"model-server"})
    nodes = p.surge("exec", "model-server", "--", "sh", "-c", "ls /dev | grep '^nvidia[0-9]'")
    assert nodes.stdout.split() == ["nvidia0"]
    models = p.surge("exec", "model-server", "--", "sh", "-c", "touch /models/x")
    assert models.returncode != 0  # mounted read-only
    ps = json.loads(p.surge("ps", "--json", check=True).stdout)
    assert sorted(pm["host_port"] for pm in ps[0]["ports"]) == sorted(
        int(v) for v in ports.values()
    )


def test_profiles_and_healthchecks_come_up(surge_project: Project):
    p = surge_project
    converted(p, "profiles", "docker-compose.yml")
    p.surge("up", "--wait", check=True, timeout=300)
    state = wait_running(p, {"api", "worker"})
    assert "debug-shell" not in state  # its profile was not asked for
    assert state["api"]["health"] == "healthy"
    p.surge("--profile", "debug", "up", check=True, timeout=300)
    assert wait_running(p, {"debug-shell"})["debug-shell"]["status"] == "running"
