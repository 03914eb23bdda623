"""Bad ``bolt run``/``kill`` input is refused with exit 2, naming the flag, before the
runtime is called: no container row, directory or mount is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt, container_ids_on_disk

pytestmark = [pytest.mark.root, pytest.mark.runtime]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--cpus", "nan"], "--cpus"),
        (["--cpus", "inf"], "--cpus"),
        (["--cpus", "-1"], "--cpus"),
        (["--memory", "99999999t"], "--memory"),
        (["--memory", "1k"], "--memory"),
        (["-v", "/tmp:/"], "-v"),
        (["-v", ":/x"], "-v"),
        (["-v", "/x:rel"], "-v"),
        (["--tmpfs", "/t:size=1m,exec=yes"], "--tmpfs"),
        (["--tmpfs", "/t:mode=abc"], "--tmpfs"),
        (["--network", "ns:/nonexistent/netns"], "--network"),
        (["--network", "no-such-net"], "--network"),
        (["-p", "70000:80", "--network", "bridge"], "-p"),
        (["-p", "8080:80"], "--publish"),
        (["--restart", "sometimes"], "--restart"),
        (["--restart", "always", "--rm"], "--restart"),
        (["--health-cmd", "true", "--health-interval", "nan"], "--health-interval"),
        (["--health-interval", "1s"], "--health-cmd"),
        (["--stop-signal", "999"], "--stop-signal"),
        (["--add-host", "db"], "--add-host"),
        (["--dns", "not-an-ip"], "--dns"),
        (["--ip", "10.0.0.2"], "--ip"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_flag_values_are_refused_before_anything_is_created(
    bolt: Bolt, flags: list[str], named: str
) -> None:
    before = container_ids_on_disk(bolt.root)
    proc = bolt("run", "--name", "bad", *flags, "busybox", "true")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {named}"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert bolt.ps() == []
    assert container_ids_on_disk(bolt.root) == before


def test_a_non_utf8_env_file_is_refused(bolt: Bolt, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b"A=\xff\xfe\n")
    proc = bolt("run", "--env-file", str(env_file), "busybox", "true")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --env-file:") and "UTF-8" in proc.stderr
    assert bolt.ps() == []


@pytest.mark.parametrize("sig", ["999", "0", "NOPE"])
def test_kill_with_a_bad_signal_is_refused_and_the_container_runs_on(bolt: Bolt, sig: str) -> None:
    bolt.ok("run", "-d", "--name", "target", "busybox", "sleep", "30")
    proc = bolt("kill", "-s", sig, "target")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --signal:"), proc.stderr
    assert bolt.inspect("target")["status"] == "running"


def test_rm_removes_anonymous_volumes_and_keeps_named_ones(bolt: Bolt) -> None:
    before = set(bolt.ok("volume", "ls").split())
    code = bolt("run", "--rm", "-v", "/anon", "-v", "keep-me:/named", "busybox",
                "sh", "-c", "echo x > /anon/f; echo y > /named/f").returncode  # fmt: skip
    assert code == 0
    assert set(bolt.ok("volume", "ls").split()) - before == {"keep-me"}
    bolt.ok("run", "-d", "--name", "anon-kept", "-v", "/anon", "busybox", "sleep", "30")
    made = set(bolt.ok("volume", "ls").split()) - before - {"keep-me"}
    assert len(made) == 1  # without --rm the anonymous volume lives with the container
    bolt.ok("rm", "-f", "-v", "anon-kept")
    assert set(bolt.ok("volume", "ls").split()) - before == {"keep-me"}
    bolt.ok("volume", "rm", "keep-me")
