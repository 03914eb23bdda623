"""A Boltfile's ``[snapshots]`` table, applied by Surge as root: ``before_surge_up`` captures
the project before an ``up`` changes it, ``before_surge_down`` before ``down``, and the
``keep_*`` rules prune the automatic snapshots; an unhonourable trigger is refused."""

from __future__ import annotations

import pytest

from bolt.capsules.snapshots import Snapshot
from tests.surge.project import Project
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def _boltfile(p: Project, version: int, table: str) -> str:
    return f"""
project = "{p.name}"

[services.web]
image = "busybox"
command = {serve(p.marker, "echo $VERSION > /version")}
env.VERSION = "{version}"

[snapshots]
{table}
"""


def _mine(p: Project) -> list[Snapshot]:
    return sorted(
        (s for s in Snapshot.list(root=p.root) if s.project == p.name), key=lambda s: s.created
    )


def test_up_and_down_take_snapshots_and_keep_last_prunes(surge_project: Project):
    p = surge_project
    table = "keep_last = 2\nbefore_surge_up = true\nbefore_surge_down = true"
    try:
        p.file.write_text(_boltfile(p, 1, table))
        first = p.surge("up", check=True)
        assert "no before_surge_up snapshot: nothing to snapshot" in first.stderr
        assert _mine(p) == []

        old_id = p.by_service()["web"]["id"]
        p.file.write_text(_boltfile(p, 2, table))
        second = p.surge("up", check=True)
        [snap] = _mine(p)
        assert f"snapshot {snap.name} taken (before_surge_up)" in second.stderr
        assert snap.trigger == "before_surge_up"
        # taken before the change: it holds the container that ``up`` then replaced
        [kept] = snap.documents["containers"]["containers"]
        assert kept["id"] == old_id and kept["name"] == f"{p.name}-web-1"
        assert p.by_service()["web"]["id"] != old_id

        unchanged = p.surge("up", check=True)  # nothing to change: no snapshot
        assert "snapshot" not in unchanged.stderr and len(_mine(p)) == 1

        for version in (3, 4):
            p.file.write_text(_boltfile(p, version, table))
            p.surge("up", check=True)
        names = [s.name for s in _mine(p)]
        assert len(names) == 2 and snap.name not in names  # keep_last = 2: the oldest went

        p.surge("down", "-t", "1", check=True)
        after = _mine(p)
        assert [s.trigger for s in after] == ["before_surge_up", "before_surge_down"]
        assert after[0].name == names[1]
    finally:
        for s in _mine(p):
            Snapshot.delete(s.name, root=p.root)


def test_disabled_table_takes_nothing_and_gpu_change_trigger_is_refused(
    surge_project: Project,
):
    p = surge_project
    p.file.write_text(_boltfile(p, 1, "enabled = false\nbefore_surge_up = true"))
    p.surge("up", check=True)
    p.file.write_text(_boltfile(p, 2, "enabled = false\nbefore_surge_up = true"))
    p.surge("up", check=True)
    assert _mine(p) == []

    p.file.write_text(_boltfile(p, 3, "before_gpu_change = true"))
    refused = p.surge("up")
    assert refused.returncode == 3
    assert "snapshots.before_gpu_change" in refused.stderr and "Traceback" not in refused.stderr
    assert p.by_service()["web"]["status"] == "running"  # nothing changed
