"""The rest of ``bolt surge``'s commands on a small project: logs, stop/start/restart,
top, images, build, events, the quic network's labels and ``bolt://`` endpoints."""

from __future__ import annotations

import asyncio
import json

import pytest

from bolt.config import Boltfile
from bolt.engine import Engine
from bolt.surge import Orchestrator
from bolt.surge.tools import resolve_endpoint
from tests.surge.project import Project, free_port
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_everyday_commands(surge_project: Project):
    p = surge_project
    port = free_port()
    (p.directory / "app").mkdir()
    (p.directory / "app" / "Dockerfile.bolt").write_text("FROM busybox:latest\nENV BUILT=yes\n")
    p.file.write_text(f"""
project = "{p.name}"

[services.api]
build = "./app"
command = {serve(p.marker, "echo api says hello; echo line two; httpd -p 3000 -h /")}
ports = ["127.0.0.1:{port}:3000"]

[services.client]
image = "busybox"
command = {serve(p.marker, "echo client ready")}
depends_on = ["api"]
env.API_ENDPOINT = "bolt://api:3000"

[network]
driver = "quic"
encryption = true
""")
    up = p.surge("up", check=True)
    assert f"building {p.name}-api:latest" in up.stderr

    # logs: merged, prefixed by container, --tail
    def lines(out: str) -> list[tuple[str, str]]:
        rows = (r.partition(" | ") for r in out.splitlines())
        return [(name.strip(), text) for name, _, text in rows]

    logs = lines(p.surge("logs", "--no-color", check=True).stdout)
    assert (f"{p.name}-api-1", "api says hello") in logs
    assert (f"{p.name}-client-1", "client ready") in logs
    tail = lines(p.surge("logs", "--tail", "1", "api", check=True).stdout)
    assert tail == [(f"{p.name}-api-1", "line two")]

    # the built image is the service's, with its ENV
    images = json.loads(p.surge("images", "--json", check=True).stdout)
    assert {r["service"]: r["image"] for r in images}["api"] == f"{p.name}-api:latest"
    assert all(r["id"] for r in images)
    assert p.surge("exec", "api", "--", "sh", "-c", 'test "$BUILT" = yes').returncode == 0

    # top: the processes in each container
    top = json.loads(p.surge("top", "--json", check=True).stdout)
    assert any("httpd" in proc["command"] for proc in top[f"{p.name}-api-1"])

    # stop, start, restart keep the containers (same ids)
    ids = {c["service"]: c["id"] for c in p.ps()}
    p.surge("stop", "-t", "2", check=True)
    assert {c["status"] for c in p.ps()} == {"exited"}
    p.surge("start", check=True)
    assert {c["status"] for c in p.ps()} == {"running"}
    p.surge("restart", "-t", "2", "client", check=True)
    assert {c["service"]: c["id"] for c in p.ps()} == ids

    # events: the project's containers only, as JSON lines
    events = [
        json.loads(line)
        for line in p.surge("events", "--since", "0", "--no-follow", check=True).stdout.splitlines()
    ]
    assert events and all(e["container"].startswith(f"{p.name}-") for e in events)
    assert {"started", "exited"} <= {e["type"] for e in events}

    # the quic driver: a bridge here, labelled for encrypted remote exposure
    with Engine(p.root) as eng:
        (net,) = [n for n in eng.network_list() if n.labels.get("bolt.surge.project") == p.name]
        api = eng.inspect(ids["api"])
    assert (
        net.labels["bolt.surge.driver"] == "quic" and net.labels["bolt.surge.encryption"] == "true"
    )
    assert api.labels["bolt.surge.expose"] == "quic"

    # bolt://SERVICE:PORT resolves to the service's address on the project network
    async def endpoint() -> tuple[str, int]:
        orch = Orchestrator(Boltfile.from_path(p.file), root=p.root)
        try:
            return resolve_endpoint(orch, "bolt://api:3000")
        finally:
            orch.close()

    address, port_number = asyncio.run(endpoint())
    assert port_number == 3000 and address == next(iter(api.networks.values())).split("/")[0]
    fetched = p.surge(
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        'wget -q -O /dev/null "http://${API_ENDPOINT#bolt://}/etc/passwd"',
    )
    assert fetched.returncode == 0, fetched.stderr
