"""A pull killed midway leaves a partial download in the staging area; both prunes remove
it, and a pull still running keeps its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.bolt_registry.conftest import Bolt, busybox_tree, make_bolt
from tests.bolt_registry.registry_fixture import Registry, TokenFront
from tests.conftest import tool

pytestmark = [pytest.mark.registry]


def _partial_downloads(b: Bolt) -> list[Path]:
    return sorted((b.root / "images/.staging").glob("*/download-*"))


def _pull_until_stalled(fresh: Bolt, ref: str) -> subprocess.Popen[str]:
    """``bolt pull`` with a layer half downloaded (the front holds the rest back)."""
    proc = subprocess.Popen(
        [tool("bolt"), "pull", "--insecure", ref],
        env=fresh.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size > 0 for p in _partial_downloads(fresh)):
        assert proc.poll() is None, "the pull ended before its layer was half downloaded"
        assert time.monotonic() < deadline, "the layer download never started"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("prune", [["image", "prune", "--json"], ["system", "prune", "-f"]])
def test_prune_removes_the_partial_download_of_a_killed_pull(
    bolt: Bolt, registry: Registry, tmp_path: Path, prune: list[str]
) -> None:
    if prune[0] == "system" and os.geteuid() != 0:
        pytest.fail("bolt system prune needs root (CI runs as root)")
    tree = busybox_tree(tmp_path / "big")
    (tree / "blob").write_bytes(os.urandom(4 << 20))  # half of it is more than one chunk
    bolt.store.import_path(tree, "big:1")
    bolt.ok("push", "--insecure", "big:1", f"{registry.host}/slow/bb:1")
    front = TokenFront(registry.host, open_access=True, stall_blobs=2).start()
    fresh = make_bolt(tmp_path / "fresh")
    try:
        # a pull running now keeps its staging area through a prune
        running = _pull_until_stalled(fresh, f"{front.host}/slow/bb:1")
        fresh.ok(*prune)
        assert _partial_downloads(fresh), "a prune took the download of a running pull"
        os.kill(running.pid, signal.SIGKILL)
        running.wait()
    finally:
        front.stop()
    left = _partial_downloads(fresh)
    assert left and sum(p.stat().st_size for p in left) > 0
    out = fresh.ok(*prune)
    assert _partial_downloads(fresh) == []
    assert list((fresh.root / "images/.staging").iterdir()) == []
    staging_dir = left[0].parent.name
    if prune[0] == "image":
        partial = json.loads(out)["partial_downloads"]
        assert [p["name"] for p in partial] == [staging_dir] and partial[0]["bytes"] > 0
    else:
        assert f"removed partial download {staging_dir}" in out
    assert fresh.ok("images", "-q") == ""
