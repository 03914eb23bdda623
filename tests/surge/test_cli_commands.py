"""``bolt surge pull``, ``logs -f``, ``build`` and ``scale`` as a user runs them, as root:
busybox images, a local docker-registry (Debian's) for ``pull``."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bolt_registry.registry_fixture import Registry, start_registry
from tests.conftest import tool
from tests.surge.project import Project
from tests.surge.test_project_up import serve

pytestmark = [pytest.mark.root, pytest.mark.runtime]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()


def _bolt(p: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("bolt"), "--root", str(p.root), *args], env=p.env, capture_output=True, text=True
    )


def _images(p: Project) -> dict[str, str | None]:
    rows = json.loads(p.surge("images", "--json", check=True).stdout)
    return {r["service"]: r["id"] for r in rows}


@pytest.mark.registry
def test_pull_fetches_the_images_services_name_and_up_then_pulls_nothing(
    surge_project: Project, registry: Registry
):
    p = surge_project
    ref = f"{registry.host}/{p.name}/busybox:1.0"
    config = p.root / "registries.toml"
    config.write_text(f'insecure = ["{registry.host}"]\n')
    try:
        pushed = _bolt(p, "push", "-q", "busybox:latest", ref)
        assert pushed.returncode == 0, pushed.stderr
        (p.directory / "ctx").mkdir()
        (p.directory / "ctx" / "Dockerfile.bolt").write_text("FROM busybox:latest\n")
        p.file.write_text(f"""
project = "{p.name}"

[services.remote]
image = "{ref}"
command = {serve(p.marker, "echo from the registry")}

[services.local]
build = "./ctx"
command = {serve(p.marker, "true")}
""")
        assert _images(p)["remote"] is None  # not in the store yet
        pulled = p.surge("pull", check=True)
        assert f"remote: pulling {ref}" in pulled.stderr
        assert "local" not in pulled.stderr  # a built service is not pulled
        assert _images(p)["remote"] == _images(p)["remote"] is not None
        up = p.surge("up", check=True)
        assert "pulling" not in up.stderr
        assert p.by_service()["remote"]["status"] == "running"
    finally:
        config.unlink(missing_ok=True)
        p.surge("down", "-t", "1")
        _bolt(p, "image", "rm", ref)
        _bolt(p, "image", "rm", f"{p.name}-local:latest")


def test_logs_follow_streams_new_lines_and_ends_when_the_containers_stop(surge_project: Project):
    p = surge_project
    p.file.write_text(f"""
project = "{p.name}"

[services.ticker]
image = "busybox"
command = ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.2; done", "{p.marker}"]
""")
    p.surge("up", check=True)
    follow = subprocess.Popen(
        p.surge_argv("logs", "-f", "--no-color"),
        env=p.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        assert first.startswith(f"{p.name}-ticker-1 | tick ")
        started = int(first.split()[-1])
        seen = [started]
        deadline = time.monotonic() + 20
        while len(seen) < 8:  # lines the container writes after logs -f began
            assert time.monotonic() < deadline
            line = follow.stdout.readline()
            match = re.fullmatch(rf"{p.name}-ticker-1 \| tick (\d+)\n", line)
            assert match, line
            seen.append(int(match.group(1)))
        assert seen == list(range(started, started + 8))  # in order, none lost
        p.surge("stop", "-t", "2", check=True)
        assert follow.wait(timeout=20) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_build_builds_services_and_no_cache_rebuilds(surge_project: Project):
    p = surge_project
    for name in ("one", "two"):
        (p.directory / name).mkdir()
        (p.directory / name / "Dockerfile.bolt").write_text(
            f"FROM busybox:latest\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nENV WHO={name}\n"
        )
    p.file.write_text(f"""
project = "{p.name}"

[services.one]
build = "./one"

[services.two]
build = "./two"

[services.plain]
image = "busybox"
""")
    try:
        only = p.surge("build", "one", check=True)
        assert f"one: building {p.name}-one:latest" in only.stderr and "two" not in only.stderr
        ids = _images(p)
        assert ids["one"] and ids["two"] is None
        every = p.surge("build", check=True)
        assert "two: building" in every.stderr and "plain" not in every.stderr
        ids = _images(p)
        assert p.surge("build", "one", check=True) and _images(p)["one"] == ids["one"]  # cached
        p.surge("build", "--no-cache", "one", check=True)
        rebuilt = _images(p)
        assert rebuilt["one"] != ids["one"] and rebuilt["two"] == ids["two"]
        stamp = _bolt(p, "run", "--rm", f"{p.name}-one:latest", "sh", "-c", "echo $WHO; cat /stamp")
        assert stamp.stdout.splitlines()[0] == "one" and len(stamp.stdout.splitlines()[1]) == 36

        p.file.write_text(f'project = "{p.name}"\n[services.plain]\nimage = "busybox"\n')
        none = p.surge("build", check=True)
        assert "no service has a build section" in none.stderr
    finally:
        for name in ("one", "two"):
            _bolt(p, "image", "rm", f"{p.name}-{name}:latest")


def test_scale_sets_the_replicas_and_refuses_bad_input(surge_project: Project):
    p = surge_project
    p.file.write_text(f"""
project = "{p.name}"

[services.w]
image = "busybox"
command = {serve(p.marker, "true")}

[services.other]
image = "busybox"
command = {serve(p.marker, "true")}
""")
    p.surge("up", check=True)

    def replicas(service: str) -> list[tuple[int, str]]:
        return sorted((c["number"], c["status"]) for c in p.ps() if c["service"] == service)

    p.surge("scale", "w=3", check=True)
    assert replicas("w") == [(1, "running"), (2, "running"), (3, "running")]
    other = p.by_service()["other"]["id"]
    p.surge("scale", "w=1", check=True)
    assert replicas("w") == [(1, "running")]
    assert p.by_service()["other"]["id"] == other  # untouched
    for bad in ("w=x", "w", "w=1001"):
        proc = p.surge("scale", bad)
        assert proc.returncode == 2 and "invalid scale" in proc.stderr, bad
    unknown = p.surge("scale", "nope=2")
    assert unknown.returncode == 2 and "no service 'nope'" in unknown.stderr
    assert replicas("w") == [(1, "running")]
    p.surge("scale", "w=0", check=True)
    assert replicas("w") == []
