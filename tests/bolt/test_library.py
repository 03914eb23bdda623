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
    bolt.ok("run", "-d", "--name", "svc", "busybox", "sleep", "60")

    async def scenario() -> tuple[int, str, int | None]:
        c = Container("svc", root=bolt.root)
        result = await c.exec("echo $((6*7)); exit 2")
        code = await c.stop(timeout=0)
        return result.exit_code, result.stdout, code

    assert asyncio.run(scenario()) == (2, "42\n", 137)


def test_unknown_name_raises_not_found(bolt: Bolt) -> None:
    with pytest.raises(NotFound):
        Container("missing", root=bolt.root)
