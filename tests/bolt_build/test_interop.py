"""What `bolt build` makes is an ordinary OCI image: umoci unpacks it (whiteouts and
opaque directories included) and skopeo reads it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_umoci_and_skopeo_accept_a_built_image(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        "FROM busybox\nRUN touch /root/old\n"
        "RUN rm /bin/vi && rm -r /root && mkdir /root && touch /root/new\n"
        'LABEL built.by=bolt\nCMD ["sh"]\n'
    )
    bolt.ok("build", "-t", "interop:1", str(ctx))
    layout = tmp_path / "layout"
    bolt.ok("image", "export", "interop:1", str(layout))
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", str(bundle)], check=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin" / "sh").is_symlink()
    assert not (rootfs / "bin" / "vi").exists()  # .wh.vi applied
    assert [p.name for p in (rootfs / "root").iterdir()] == ["new"]  # opaque directory
    info = subprocess.run(
        ["skopeo", "inspect", f"oci:{layout}:1"], capture_output=True, text=True, check=True
    )
    assert json.loads(info.stdout)["Labels"] == {"built.by": "bolt"}
