"""``HEALTHCHECK`` in ``bolt build``: the image config carries it (docker's layout, times
in nanoseconds), ``bolt run`` honours it, and bad values are refused at build time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt
from tests.nvsim.helpers import wait_for

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def _build(bolt: Bolt, tmp_path: Path, dockerfile: str, tag: str) -> None:
    ctx = tmp_path / tag.replace(":", "-")
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(dockerfile)
    bolt.ok("build", "-t", tag, str(ctx), timeout=120)


def test_healthcheck_is_in_the_image_config_and_run_honours_it(bolt: Bolt, tmp_path: Path) -> None:
    _build(bolt, tmp_path, "FROM busybox\nHEALTHCHECK --interval=300ms --timeout=2s --retries=2 "
           "CMD test -e /tmp/ready\nCMD [\"sleep\", \"30\"]\n", "checked:1")  # fmt: skip
    config = json.loads(bolt.ok("image", "inspect", "checked:1"))["config"]
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -e /tmp/ready"],
        "Interval": 300_000_000,
        "Timeout": 2_000_000_000,
        "Retries": 2,
    }
    bolt.ok("run", "-d", "--name", "img-hc", "checked:1")
    assert wait_for(lambda: bolt.inspect("img-hc")["health"] == "unhealthy", timeout=15)
    bolt.ok("exec", "img-hc", "touch", "/tmp/ready")
    assert wait_for(lambda: bolt.inspect("img-hc")["health"] == "healthy", timeout=15)
    bolt.ok("run", "-d", "--name", "img-off", "--no-healthcheck", "checked:1")
    assert bolt.inspect("img-off")["health"] is None


def test_healthcheck_none_and_exec_form(bolt: Bolt, tmp_path: Path) -> None:
    _build(bolt, tmp_path, 'FROM busybox\nHEALTHCHECK CMD ["true"]\n', "exec-form:1")
    config = json.loads(bolt.ok("image", "inspect", "exec-form:1"))["config"]
    assert config["Healthcheck"] == {"Test": ["CMD", "true"]}
    _build(bolt, tmp_path, "FROM exec-form:1\nHEALTHCHECK NONE\n", "none:1")
    config = json.loads(bolt.ok("image", "inspect", "none:1"))["config"]
    assert config["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HEALTHCHECK --interval=soon CMD true", "--interval: 'soon' is not a duration"),
        ("HEALTHCHECK --retries=0 CMD true", "--retries: '0' is not a count"),
        ("HEALTHCHECK --bogus=1 CMD true", "HEALTHCHECK does not take --bogus"),
        ("HEALTHCHECK true", "HEALTHCHECK takes NONE or CMD command"),
    ],
)
def test_bad_healthcheck_is_refused_at_build_time(
    bolt: Bolt, tmp_path: Path, line: str, message: str
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(f"FROM busybox\n{line}\n")
    proc = bolt("build", "-t", "bad:1", str(ctx))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Dockerfile.bolt:2:" in proc.stderr
