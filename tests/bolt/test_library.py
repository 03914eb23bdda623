"""``bolt.runtime.oci.Container``: the asyncio API as DESIGN.md's table names it."""

from __future__ import annotations

import asyncio

import pytest

from bolt.errors import NotFound
from bolt.runtime.oci import Container
from tests.bolt.conftest import Bolt

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_create_start_wait_returns_the_exit_code(bolt: Bolt) -> None:
    async def scenario() -> tuple[str, str, int, list[tuple[str, str]]]:
        c = await Container.create(
            "busybox",
            ["sh", "-c", "echo out; echo err >&2; sleep 0.2; exit 3"],
            name="lib-job",
            root=bolt.root,
        )
        before = await c.status()
        await c.start()
        after = await c.status()
        code = await c.wait()
        logs = [(r["stream"], r["log"]) async for r in c.logs()]
        return before, after, code, logs

    before, after, code, logs = asyncio.run(scenario())
    assert (before, after, code) == ("created", "running", 3)
    assert sorted(logs) == [("stderr", "err\n"), ("stdout", "out\n")]


def test_attach_by_name_exec_and_stop(bolt: Bolt) -> None:
    bolt.ok("run", "-d", "--name", "svc", "-e", "FROM_RUN=1", "busybox", "sleep", "60")

    async def scenario() -> tuple[int, str, int | None]:
        c = Container("svc", root=bolt.root)
        result = await c.exec("echo $((6*7)) $FROM_RUN $EXTRA; exit 2", env=["EXTRA=x"])
        code = await c.stop(timeout=0)
        return result.exit_code, result.stdout, code

    assert asyncio.run(scenario()) == (2, "42 1 x\n", 137)


def test_start_runs_a_stopped_container_again_like_the_seed_updater(bolt: Bolt) -> None:
    """Container(name).start() then .wait(), run twice, as nvcontrol's driver update does."""
    script = "echo pass >> /count; exit $(wc -l < /count)"
    assert bolt("run", "--name", "updater", "busybox", "sh", "-c", script).returncode == 1

    async def once() -> int:
        c = Container("updater", root=bolt.root)
        await c.start()
        return await c.wait()

    assert asyncio.run(once()) == 2  # the container's own file system persists between runs
    assert asyncio.run(once()) == 3
    assert bolt.ok("logs", "updater") == ""


def test_unknown_name_raises_not_found(bolt: Bolt) -> None:
    with pytest.raises(NotFound):
        Container("missing", root=bolt.root)
