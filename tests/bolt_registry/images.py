"""Source images for the registry tests, made by the peer tools (umoci) or by our store."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from bolt.images.layout import INDEX_MEDIA_TYPE, REF_ANNOTATION
from tests.bolt_registry.conftest import busybox_tree, run_tool


def umoci_image(base: Path, marker: str = "built by umoci") -> Path:
    """An OCI layout ``base/layout`` with image ``:v1``: busybox in one layer, a second
    layer adding /srv/data, ``Cmd`` ``cat /etc/marker``."""
    layout = base / "layout"
    bundle = base / "bundle"
    run_tool("umoci", "init", "--layout", layout)
    run_tool("umoci", "new", "--image", f"{layout}:v1")
    run_tool("umoci", "unpack", "--image", f"{layout}:v1", bundle)
    tree = busybox_tree(base / "tree", marker)
    shutil.copytree(tree, bundle / "rootfs", symlinks=True, dirs_exist_ok=True)
    run_tool("umoci", "repack", "--refresh-bundle", "--image", f"{layout}:v1", bundle)
    (bundle / "rootfs/srv").mkdir(exist_ok=True)
    (bundle / "rootfs/srv/data").write_text("second layer\n")
    run_tool("umoci", "repack", "--image", f"{layout}:v1", bundle)
    run_tool(
        "umoci",
        "config",
        "--image",
        f"{layout}:v1",
        "--config.cmd",
        "cat",
        "--config.cmd",
        "/etc/marker",
    )
    return layout


def add_index(layout: Path, name: str, entries: list[tuple[str, str]]) -> None:
    """Name an image index in ``layout`` that lists the images named ``entries[i][0]`` as
    built for ``linux/<entries[i][1]>``."""
    index = json.loads((layout / "index.json").read_text())
    by_name = {d["annotations"][REF_ANNOTATION]: d for d in index["manifests"]}
    children = []
    for image, arch in entries:
        d = by_name[image]
        children.append(
            {
                "mediaType": d["mediaType"],
                "digest": d["digest"],
                "size": d["size"],
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": children})
    digest = hashlib.sha256(data.encode()).hexdigest()
    (layout / "blobs/sha256" / digest).write_text(data)
    index["manifests"].append(
        {
            "mediaType": INDEX_MEDIA_TYPE,
            "digest": f"sha256:{digest}",
            "size": len(data),
            "annotations": {REF_ANNOTATION: name},
        }
    )
    (layout / "index.json").write_text(json.dumps(index))
