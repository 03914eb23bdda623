"""A third-party state provider for the tests, installed through its entry point only
(this directory on PYTHONPATH).  It records each call in $CAPSULE_BLOCKER_DIR/calls, and
while the file ``block-<step>`` exists there, that step announces itself (``in-<step>``)
and waits: the test kills the process at that moment."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def _dir() -> Path | None:
    value = os.environ.get("CAPSULE_BLOCKER_DIR")
    return Path(value) if value else None


def _step(step: str) -> None:
    d = _dir()
    assert d is not None
    with open(d / "calls", "a") as f:
        f.write(step + "\n")
    if (d / f"block-{step}").exists():
        (d / f"in-{step}").touch()
        deadline = time.monotonic() + 60
        while (d / f"block-{step}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


class Blocker:
    name = "test-blocker"

    async def capture(self, ctx: Any) -> dict[str, Any] | None:
        return {"held": True} if _dir() else None

    def check(self, doc: dict[str, Any]) -> None:
        assert doc == {"held": True}

    async def prepare(self, doc: dict[str, Any], ctx: Any) -> dict[str, Any]:
        _step("prepare")
        return {"prepared": True}

    async def commit(self, doc: dict[str, Any], record: dict[str, Any], ctx: Any) -> None:
        assert record == {"prepared": True}
        _step("commit")
        if os.environ.get("CAPSULE_BLOCKER_FAIL"):
            raise RuntimeError("the test asked this commit to fail")

    async def abort(
        self, doc: dict[str, Any], record: dict[str, Any], ctx: Any, committed: bool
    ) -> None:
        _step("abort-committed" if committed else "abort")
        if os.environ.get("CAPSULE_BLOCKER_FAIL_ABORT"):
            raise RuntimeError("the test asked this abort to fail")

    async def finish(self, doc: dict[str, Any], record: dict[str, Any], ctx: Any) -> None:
        _step("finish")

    def discard(self, doc: dict[str, Any] | None, ctx: Any) -> None:
        return None
