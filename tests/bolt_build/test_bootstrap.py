"""`bolt image bootstrap`: a Debian base image from debootstrap, with no registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.errors import InvalidInput
from bolt.images.bootstrap import apt_mirror, parse_target
from tests.bolt.conftest import Bolt


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
def test_bootstrapped_debian_builds_and_runs(bolt: Bolt, tmp_path: Path) -> None:
    out = bolt.ok("image", "bootstrap", "debian:bookworm", "--include", "hello", "-q", timeout=600)
    assert out.startswith("debian:bookworm sha256:")
    assert bolt.ok("run", "--rm", "debian:bookworm", "cat", "/etc/debian_version").startswith("12.")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        "FROM debian:bookworm\nRUN dpkg-query -W -f '${Package}\\n' hello > /pkg\n"
        'CMD ["/usr/bin/hello"]\n'
    )
    bolt.ok("build", "-t", "hello:1", str(ctx))
    assert bolt.ok("run", "--rm", "hello:1") == "Hello, world!\n"
    assert bolt.ok("run", "--rm", "hello:1", "cat", "/pkg") == "hello\n"
    assert not list((bolt.root / "tmp").glob("bootstrap-*"))  # scratch removed


def test_bootstrap_refuses_other_distributions_before_doing_anything(bolt: Bolt) -> None:
    proc = bolt("image", "bootstrap", "alpine:latest")
    assert proc.returncode == 2
    assert "cannot bootstrap 'alpine:latest'" in proc.stderr
