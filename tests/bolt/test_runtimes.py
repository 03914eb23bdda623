"""Both OCI runtimes drive the same bundle; ``auto`` probes crun once and caches the answer."""

from __future__ import annotations

import json
import shutil

import pytest

from bolt.runtime.driver import hybrid_cgroups, select_runtime
from tests.bolt.conftest import Bolt

pytestmark = [pytest.mark.root, pytest.mark.runtime]


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_each_runtime_runs_isolates_and_reports_exit_codes(bolt: Bolt, runtime: str) -> None:
    assert shutil.which(runtime), f"{runtime} is not installed: run ./project.sh setup"
    out = bolt("run", "--rm", "--runtime", runtime, "--name", f"on-{runtime}", "--memory", "32m", "--cpus", "0.5",
               "busybox", "sh", "-c", "echo $$ $(hostname); cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
               "/sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max "
               "2>/dev/null; exit 4")  # fmt: skip
    assert out.returncode == 4
    lines = out.stdout.split()
    assert lines[:2] == ["1", f"on-{runtime}"]
    assert str(32 << 20) in lines[2:]
    assert "50000" in lines[2:]  # 0.5 CPU: 50 ms per 100 ms period


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_each_runtime_supports_detach_exec_and_stop(bolt: Bolt, runtime: str) -> None:
    bolt.ok("run", "-d", "--runtime", runtime, "--name", f"d-{runtime}", "busybox", "sleep", "60")
    assert bolt.inspect(f"d-{runtime}")["runtime"] == runtime
    assert bolt("exec", f"d-{runtime}", "sh", "-c", "exit 6").returncode == 6
    bolt.ok("stop", "-t", "0", f"d-{runtime}")
    assert bolt.inspect(f"d-{runtime}")["status"] == "exited"


def test_auto_uses_crun_where_it_works_and_caches_the_probe(bolt: Bolt) -> None:
    probe = bolt.root / "runtime-probe.json"
    probe.unlink(missing_ok=True)
    chosen = select_runtime("auto", bolt.root)
    cached = json.loads(probe.read_text())
    assert cached["crun_works"] is True, cached["reason"]
    assert chosen.name == "crun" and chosen.private_ns == hybrid_cgroups()
    before = probe.stat().st_mtime_ns
    assert select_runtime("auto", bolt.root).name == "crun"
    assert probe.stat().st_mtime_ns == before  # answered from the cache
    bolt.ok("run", "--name", "auto1", "busybox", "true")
    assert bolt.inspect("auto1")["runtime"] == "crun"
