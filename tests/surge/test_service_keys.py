"""Service keys with compose semantics, as root: ``tty``, ``stdin_open``,
``depends_on.X.required = false`` and ``depends_on.X.restart = true``; ``capsule``."""

from __future__ import annotations

import json
import time

import pytest

from tests.surge.project import Project
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def _log(p: Project, service: str) -> list[str]:
    out = p.surge("logs", "--no-color", service, check=True).stdout
    return [line.partition(" | ")[2].rstrip("\r") for line in out.splitlines()]


def _until(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_tty_and_stdin_open_as_compose_gives_them(surge_project: Project):
    p = surge_project
    probe = "test -t 1 && echo terminal || echo no-terminal; read x; echo read-returned"
    p.file.write_text(f"""
project = "{p.name}"

[services.term]
image = "busybox"
command = {serve(p.marker, probe)}
tty = true

[services.keep]
image = "busybox"
command = {serve(p.marker, probe)}
stdin_open = true
tty = true

[services.plain]
image = "busybox"
command = {serve(p.marker, probe)}
""")
    p.surge("up", check=True)
    _until(lambda: "read-returned" in _log(p, "plain"))
    assert _log(p, "plain")[0] == "no-terminal"  # stdin is /dev/null: read returns at once
    time.sleep(0.5)
    assert _log(p, "term") == ["terminal"]  # a terminal that nobody writes to: read waits
    assert _log(p, "keep") == ["terminal"]  # stdin is the terminal, held open: read waits
    assert all(c["status"] == "running" for c in p.ps())
    # turning the terminal off is a change of the service: it is recreated
    before = p.by_service()
    p.file.write_text(p.file.read_text().replace("tty = true\n", "", 1))
    p.surge("up", check=True)
    after = p.by_service()
    assert after["term"]["id"] != before["term"]["id"]
    assert after["keep"]["id"] == before["keep"]["id"]
    # stdin_open alone cannot be honoured (the engine closes a detached stdin): refused
    p.file.write_text(
        p.file.read_text().replace("stdin_open = true\ntty = true", "stdin_open = true")
    )
    refused = p.surge("up")
    assert refused.returncode == 3 and "service keep: stdin_open without tty" in refused.stderr
    assert p.by_service()["keep"]["id"] == before["keep"]["id"]  # nothing changed


def test_optional_dependency_failing_is_a_warning_and_required_one_an_error(
    surge_project: Project,
):
    p = surge_project
    text = f"""
project = "{p.name}"

[services.setup]
image = "busybox"
command = ["sh", "-c", "exit 4", "{p.marker}"]

[services.app]
image = "busybox"
command = {serve(p.marker, "echo app up")}
depends_on.setup = {{ condition = "service_completed_successfully", required = false }}
depends_on.metrics = {{ required = false }}
"""
    p.file.write_text(text)
    assert p.surge("validate").returncode == 0  # an absent optional dependency is allowed
    up = p.surge("up")
    assert up.returncode == 0, up.stderr
    assert "optional dependency setup failed" in up.stderr
    assert "optional dependency metrics is not part of this up" in up.stderr
    assert p.by_service()["app"]["status"] == "running"

    p.surge("down", "-t", "1", check=True)
    p.file.write_text(text.replace(", required = false }", " }", 1))
    failed = p.surge("up")
    assert failed.returncode == 1 and "dependency setup failed" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert "app" not in p.by_service()


def test_restart_true_follows_the_dependency_on_recreate_and_on_restart(surge_project: Project):
    p = surge_project
    text = f"""
project = "{p.name}"

[services.db]
image = "busybox"
command = {serve(p.marker, "echo db $GEN")}
env.GEN = "1"

[services.api]
image = "busybox"
command = {serve(p.marker, "echo api boot")}
depends_on.db = {{ restart = true }}

[services.web]
image = "busybox"
command = {serve(p.marker, "echo web boot")}
depends_on = ["db"]
"""
    p.file.write_text(text)
    p.surge("up", check=True)
    ids = {s: c["id"] for s, c in p.by_service().items()}
    assert _log(p, "api") == ["api boot"]

    p.file.write_text(text.replace('GEN = "1"', 'GEN = "2"'))
    up = p.surge("up", check=True)
    assert f"{p.name}-api-1: restarted (db changed)" in up.stderr
    now = {s: c["id"] for s, c in p.by_service().items()}
    assert now["db"] != ids["db"]  # recreated
    assert now["api"] == ids["api"] and now["web"] == ids["web"]  # same containers
    _until(lambda: _log(p, "api") == ["api boot", "api boot"])  # api restarted once
    assert _log(p, "web") == ["web boot"]  # web does not follow

    p.surge("restart", "db", check=True)
    _until(lambda: _log(p, "api") == ["api boot"] * 3)
    assert _log(p, "web") == ["web boot"]
    assert json.loads(p.surge("ps", "--json", check=True).stdout)  # all still listed
    assert all(c["status"] == "running" for c in p.ps())


def test_a_capsule_service_runs_from_the_snapshot_of_a_container(surge_project: Project):
    import subprocess

    from bolt.capsules.snapshots import Snapshot
    from tests.conftest import tool

    p = surge_project
    snap = f"{p.name}-keep"
    p.file.write_text(f"""
project = "{p.name}"

[services.web]
image = "busybox"
command = {serve(p.marker, "echo made-at-runtime > /state; mkdir -p /srv/data; echo kept > /srv/data/x")}
""")
    p.surge("up", check=True)
    _until(lambda: "x" in (p.surge("exec", "web", "--", "ls", "/srv/data").stdout))
    bolt = [tool("bolt"), "--root", str(p.root)]
    made = subprocess.run([*bolt, "snapshot", "create", snap, "--project", p.name], env=p.env)
    assert made.returncode == 0
    try:
        copy = f"""
[services.copy]
capsule = "{snap}:{p.name}-web-1"
command = {serve(p.marker, "cat /state /srv/data/x")}
"""
        p.file.write_text(p.file.read_text() + copy)
        p.surge("up", check=True)
        _until(lambda: _log(p, "copy") == ["made-at-runtime", "kept"])
        images = {r["service"]: r for r in json.loads(p.surge("images", "--json").stdout)}
        assert images["copy"]["image"] == f"{p.name}-copy:latest"
        first = p.by_service()["copy"]["id"]
        assert p.surge("up", check=True) and p.by_service()["copy"]["id"] == first  # reused

        p.file.write_text(p.file.read_text().replace(f":{p.name}-web-1", ":nobody"))
        missing = p.surge("up")
        assert missing.returncode == 2 and "has no container 'nobody'" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        Snapshot.delete(snap, root=p.root)
        subprocess.run(
            [*bolt, "image", "rm", f"{p.name}-copy:latest"], env=p.env, capture_output=True
        )
