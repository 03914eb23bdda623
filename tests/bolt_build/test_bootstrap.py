"""`bolt image bootstrap`: a Debian base image from debootstrap, with no registry. The
bootstrap itself runs once per test run (tests/debian_image.py); here its image runs and
builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.errors import InvalidInput
from bolt.images.bootstrap import apt_mirror, parse_target
from tests.bolt.conftest import Bolt
from tests.debian_image import BOOTSTRAP_TIMEOUT_S, IMAGE, Bootstrapped


def test_mirror_comes_from_apts_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: x\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://one.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://one.example/debian"


def test_mirror_defaults_to_debians(tmp_path: Path) -> None:
    assert apt_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_only_debian_suites_can_be_bootstrapped() -> None:
    assert parse_target("debian:bookworm") == ("debian", "bookworm")
    for bad in ("ubuntu:22.04", "debian", "debian:Book worm"):
        with pytest.raises(InvalidInput):
            parse_target(bad)


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.runtime
@pytest.mark.timeout(BOOTSTRAP_TIMEOUT_S + 300)
def test_bootstrapped_debian_builds_and_runs(
    bolt: Bolt, debian_bootstrap: Bootstrapped, tmp_path: Path
) -> None:
    # The image this run's `bolt image bootstrap` made, with --include python3,python3-venv
    # (tests/bolt_build/test_debootstrap.py checks the bootstrap and the image's files).
    loaded = bolt.ok("load", "-i", str(debian_bootstrap.check()))
    assert loaded.startswith(f"Loaded image: {IMAGE} sha256:"), loaded
    assert bolt.ok("run", "--rm", IMAGE, "cat", "/etc/debian_version").startswith("12.")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        f"FROM {IMAGE}\nRUN dpkg-query -W -f '${{Package}}\\n' python3-venv > /pkg\n"
        'CMD ["python3", "-c", "print(\'Hello, world!\')"]\n'
    )
    bolt.ok("build", "-t", "hello:1", str(ctx))
    assert bolt.ok("run", "--rm", "hello:1") == "Hello, world!\n"
    assert bolt.ok("run", "--rm", "hello:1", "cat", "/pkg") == "python3-venv\n"


def test_bootstrap_refuses_other_distributions_before_doing_anything(bolt: Bolt) -> None:
    proc = bolt("image", "bootstrap", "alpine:latest")
    assert proc.returncode == 2
    assert "cannot bootstrap 'alpine:latest'" in proc.stderr
