"""Both OCI runtimes drive the same bundle; ``auto`` probes crun once and caches the answer."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

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


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_a_missing_or_unrunnable_command_exits_127_or_126_and_leaves_nothing(
    bolt: Bolt, runtime: str
) -> None:
    for command, code in (("/no/such/binary", 127), ("no-such-command", 127), ("/etc", 126)):
        done = bolt("run", "--rm", "--runtime", runtime, "busybox", command)
        assert done.returncode == code, (command, done.stderr)
        assert done.stderr.startswith(f"error: {runtime} could not create the container: ")
        assert "hint: " in done.stderr and "Traceback" not in done.stderr
    kept = bolt("run", "--runtime", runtime, "--name", f"nf-{runtime}", "busybox", "/nope")
    assert kept.returncode == 127
    assert bolt.inspect(f"nf-{runtime}")["status"] == "failed"
    assert [c["name"] for c in bolt.ps()] == [f"nf-{runtime}"]  # the --rm ones are gone


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_the_engine_raises_and_exec_reports_the_same_codes(bolt: Bolt, runtime: str) -> None:
    from bolt.engine import ContainerIntent, Engine
    from bolt.errors import CannotInvoke, CommandNotFound

    with Engine(bolt.root) as eng:
        with pytest.raises(CommandNotFound) as missing:
            eng.run_oneshot(
                ContainerIntent(
                    image="busybox", command=["/nope"], runtime=runtime, auto_remove=True
                )
            )
        assert missing.value.exit_code == 127 and "/nope" in missing.value.message
        with pytest.raises(CannotInvoke):
            eng.run_oneshot(
                ContainerIntent(
                    image="busybox", command=["/etc"], runtime=runtime, auto_remove=True
                )
            )
        eng.run(
            ContainerIntent(image="busybox", command=["sleep", "60"], runtime=runtime),
            name=f"ex-{runtime}",
        )
        try:
            assert eng.exec(f"ex-{runtime}", ["/nope"]).exit_code == 127
            assert eng.exec(f"ex-{runtime}", ["/etc"]).exit_code == 126
            assert eng.exec(f"ex-{runtime}", ["sh", "-c", "exit 255"]).exit_code == 255
            assert eng.exec(f"ex-{runtime}", ["sh", "-c", "exit 127"]).exit_code == 127
        finally:
            eng.remove(f"ex-{runtime}", force=True)


@pytest.mark.parametrize("runtime", ["crun", "runc"])
def test_bolt_exec_of_a_missing_command_exits_127_as_the_container_sees_it(
    bolt: Bolt, runtime: str, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "hello").write_text("#!/bin/sh\necho hello from a volume\n")
    (tools / "hello").chmod(0o755)
    name = f"ex-cli-{runtime}"
    bolt.ok("run", "-d", "--runtime", runtime, "--name", name, "-v", f"{tools}:/opt/tools:ro",
            "busybox", "sleep", "60")  # fmt: skip
    bolt.ok("exec", name, "sh", "-c", "mkdir /abs && ln -s /bin/busybox /abs/sh")
    bolt.ok("exec", name, "ln", "-s", sys.executable, "/host-python")  # absent inside
    for command, code in (
        (["/no/such/binary"], 127),
        (["no-such-command"], 127),
        (["/etc"], 126),
        (["/host-python", "-c", "0"], 127),  # the link resolves in the container, not here
    ):
        done = bolt("exec", name, *command)
        assert done.returncode == code, (command, done.stderr)
        assert done.stderr.startswith("error: ") and "hint: " in done.stderr
    assert bolt("exec", name, "/abs/sh", "-c", "exit 3").returncode == 3  # an absolute link
    assert bolt.ok("exec", name, "/opt/tools/hello").strip() == "hello from a volume"
    assert bolt("exec", "-e", "PATH=/opt/tools", name, "hello").returncode == 0
    assert bolt("exec", "-e", "PATH=/nowhere", name, "sh").returncode == 127
    assert bolt("exec", "-w", "/bin", name, "./sh", "-c", "exit 5").returncode == 5  # relative
    assert bolt("exec", "-w", "/bin", name, "./nope").returncode == 127
    assert bolt("exec", name, "./bin/sh", "-c", "exit 7").returncode == 7  # from the image's cwd
