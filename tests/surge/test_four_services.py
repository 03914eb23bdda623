"""A 4-service busybox project through ``bolt surge``, as root on the real engine:
dependency order with a healthy condition, name resolution both ways, a published port,
``run``/``exec`` exit codes, ``on-failure:3`` restarts, idempotent reconcile, and a
``down`` that leaves nothing (checked by the ``surge_project`` fixture)."""

from __future__ import annotations

import time
import urllib.request

import pytest

from bolt.engine import Engine
from tests.surge.project import Project, free_port
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def four_services(p: Project, port: int, web_greeting: str = "web") -> str:
    return f"""
project = "{p.name}"

[services.db]
image = "busybox"
command = {serve(p.marker, "sleep 1; touch /tmp/ready")}
healthcheck = {{ test = ["CMD", "test", "-f", "/tmp/ready"], interval = "0.3s", retries = 60 }}

[services.api]
image = "busybox"
command = {serve(p.marker, "mkdir -p /www && echo api > /www/index.html && httpd -p 8000 -h /www")}
depends_on = {{ db = {{ condition = "service_healthy" }} }}

[services.web]
image = "busybox"
command = {serve(p.marker, f"mkdir -p /www && echo {web_greeting} > /www/index.html && httpd -p 80 -h /www")}
ports = ["127.0.0.1:{port}:80"]
depends_on = ["api"]

[services.crash]
image = "busybox"
command = ["sh", "-c", "exit 3", "{p.marker}"]
restart = "on-failure:3"
"""


def wait_for(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_four_service_project(surge_project: Project):
    p = surge_project
    port = free_port()
    p.file.write_text(four_services(p, port))
    up = p.surge("up", "-d", check=True)
    state = p.by_service()
    assert {s: state[s]["status"] for s in ("db", "api", "web")} == dict.fromkeys(
        ("db", "api", "web"), "running"
    )

    # dependency order: api started only after db became healthy, web after api
    with Engine(p.root) as eng:
        events = list(eng.events(since=0, follow=False))
        db, api, web = (eng.inspect(state[s]["id"]) for s in ("db", "api", "web"))
    healthy = [
        e.time
        for e in events
        if e.id == db.id and e.type == "health" and e.attributes.get("health") == "healthy"
    ]
    assert healthy and api.started is not None and api.started >= healthy[0], up.stderr
    assert web.started is not None and web.started >= api.started

    # a published port answers from the host
    body = wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), what="the published port")
    assert body.strip() == "web"

    # name resolution both ways, by SERVICE and by SERVICE.PROJECT
    fetch = p.surge("exec", "web", "--", "wget", "-q", "-O-", "http://api:8000/")
    assert (fetch.returncode, fetch.stdout.strip()) == (0, "api"), fetch.stderr
    back = p.surge("exec", "api", "--", "wget", "-q", "-O-", f"http://web.{p.name}:80/")
    assert (back.returncode, back.stdout.strip()) == (0, "web"), back.stderr

    # exec and run pass exit codes through; run has the service's networks
    assert p.surge("exec", "api", "--", "sh", "-c", "exit 7").returncode == 7
    run = p.surge("run", "--rm", "web", "--", "sh", "-c", "wget -q -O- http://api:8000/; exit 5")
    assert (run.returncode, run.stdout.strip()) == (5, "api"), run.stderr

    # on-failure:3: three restarts, then it stays exited
    crash = wait_for(
        lambda: (
            (c := p.by_service()["crash"])["status"] == "exited" and c["restart_count"] == 3 and c
        ),
        timeout=60,
        what="three restarts of crash",
    )
    assert crash["exit_code"] == 3
    time.sleep(1.5)
    assert p.by_service()["crash"]["restart_count"] == 3

    # up again changes nothing
    ids = {s: c["id"] for s, c in p.by_service().items()}
    again = p.surge("up", "-d", check=True)
    assert "up to date" in again.stderr
    assert {s: c["id"] for s, c in p.by_service().items()} == ids

    # changing one service recreates only that one
    p.file.write_text(four_services(p, port, web_greeting="web2"))
    p.surge("up", "-d", check=True)
    after = {s: c["id"] for s, c in p.by_service().items()}
    assert after["web"] != ids["web"]
    assert {s: after[s] for s in ("db", "api", "crash")} == {
        s: ids[s] for s in ("db", "api", "crash")
    }
    assert wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), what="the new web").strip() == "web2"


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""
