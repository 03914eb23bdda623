"""`FROM bolt://NAME:TAG` resolves through the configured default registry and pulls the
base image when the store does not have it (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt
from tests.bolt_registry.registry_fixture import Registry, start_registry

pytestmark = [pytest.mark.root, pytest.mark.runtime, pytest.mark.registry]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()


def test_from_bolt_scheme_pulls_from_the_default_registry(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    (bolt.root / "registries.toml").write_text(
        f'default_registry = "{registry.host}"\ninsecure = ["{registry.host}"]\n'
    )
    bolt.ok("push", "-q", "busybox:latest", f"{registry.host}/tools/busybox:1.0")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        'FROM bolt://tools/busybox:1.0\nRUN echo pulled > /marker\nCMD ["cat", "/marker"]\n'
    )
    assert "tools/busybox:1.0" not in bolt.ok("images")
    bolt.ok("build", "-t", "from-registry:1", str(ctx))
    assert "tools/busybox" in bolt.ok("images")  # pulled into the store
    assert bolt.ok("run", "--rm", "from-registry:1") == "pulled\n"
    # the second build finds the base in the store and is fully cached
    assert "fully cached" in bolt.ok("build", "-t", "from-registry:1", str(ctx))


def test_missing_base_without_a_registry_is_a_clear_error(bolt: Bolt, tmp_path: Path) -> None:
    (bolt.root / "registries.toml").write_text(
        'default_registry = "127.0.0.1:9"\ninsecure = ["127.0.0.1:9"]\n'
    )
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text("FROM bolt://ubuntu:22.04\nRUN true\n")
    proc = bolt("build", str(ctx))
    assert proc.returncode != 0
    assert f"{ctx / 'Dockerfile.bolt'}:1:" in proc.stderr
    assert "ubuntu:22.04" in proc.stderr and "Traceback" not in proc.stderr
