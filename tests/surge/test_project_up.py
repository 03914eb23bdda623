"""Surge projects on the real engine, as root: orphans, scaling, the library API; every
test's ``down`` must leave nothing (checked by the ``surge_project`` fixture)."""

from __future__ import annotations

import json

import pytest

from tests.surge.project import Project

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def serve(marker: str, script: str) -> str:
    """A command array: ``script``, then idle until SIGTERM (exits 0 at once on it)."""
    body = f"trap 'exit 0' TERM; {script}; while true; do sleep 0.2; done"
    return json.dumps(["sh", "-c", body, marker])


def test_removed_service_is_an_orphan_until_remove_orphans(surge_project: Project):
    p = surge_project
    two = f"""
project = "{p.name}"
[services.a]
image = "busybox"
command = {serve(p.marker, "true")}
[services.b]
image = "busybox"
command = {serve(p.marker, "true")}
"""
    p.file.write_text(two)
    p.surge("up", check=True)
    p.file.write_text(two.split("[services.b]")[0])
    kept = p.surge("up", check=True)
    assert "remove them with --remove-orphans" in kept.stderr
    assert set(p.by_service()) == {"a", "b"}
    p.surge("up", "--remove-orphans", check=True)
    assert set(p.by_service()) == {"a"}


def test_scale_and_execute_in_service_library(surge_project: Project):
    import asyncio

    from basis.errors import ExecError
    from bolt.config import Boltfile
    from bolt.surge import Orchestrator

    p = surge_project
    p.file.write_text(
        f'project = "{p.name}"\n[services.w]\nimage = "busybox"\ncommand = {serve(p.marker, "true")}\n'
    )

    async def scenario() -> None:
        orch = Orchestrator(Boltfile.from_path(p.file), root=p.root)
        try:
            await orch.surge_up(scale={"w": 3})
            assert sorted(s.number for s in await orch.status()) == [1, 2, 3]
            out = await orch.execute_in_service("w", "echo hello from $HOSTNAME >&2; echo out")
            assert "out" in out.output and "hello from" in out.output
            with pytest.raises(ExecError) as err:
                await orch.execute_in_service("w", ["sh", "-c", "echo bad; exit 4"])
            assert err.value.returncode == 4 and "bad" in err.value.output
            await orch.surge_up(scale={"w": 1})
            assert [s.number for s in await orch.status()] == [1]
        finally:
            orch.close()

    asyncio.run(scenario())


def test_one_shot_dependency_must_complete_successfully(surge_project: Project):
    p = surge_project
    text = f"""
project = "{p.name}"
[services.migrate]
image = "busybox"
command = ["sh", "-c", "sleep 1; exit $CODE", "{p.marker}"]
env.CODE = "${{CODE:-0}}"
[services.app]
image = "busybox"
command = {serve(p.marker, "true")}
depends_on = {{ migrate = {{ condition = "service_completed_successfully" }} }}
"""
    p.file.write_text(text)
    p.surge("up", check=True)
    state = p.by_service()
    assert (state["migrate"]["status"], state["migrate"]["exit_code"]) == ("exited", 0)
    assert state["app"]["status"] == "running"
    assert "up to date" in p.surge("up", check=True).stderr  # a finished one-shot stays so

    p.surge("down", "-t", "1", check=True)
    p.env["CODE"] = "3"
    failed = p.surge("up")
    assert failed.returncode == 1
    assert "app: not started, dependency migrate failed" in failed.stderr
    assert "app" not in p.by_service()


def test_a_service_whose_command_is_missing_fails_up_with_127_naming_it(surge_project: Project):
    p = surge_project
    p.file.write_text(f"""
project = "{p.name}"
[services.ok]
image = "busybox"
command = {serve(p.marker, "true")}
[services.broken]
image = "busybox"
command = ["/no/such/daemon", "{p.marker}"]
""")  # fmt: skip
    up = p.surge("up")
    assert up.returncode == 127, up.stderr
    assert "error: service broken: " in up.stderr
    assert "could not create the container: " in up.stderr
    assert "/no/such/daemon" in up.stderr and "hint: " in up.stderr
    assert p.by_service()["ok"]["status"] == "running"  # the other service is not undone
    assert p.by_service()["broken"]["status"] == "failed"
