"""Turn a rootfs tarball, a rootfs directory or an OCI image layout into verified, staged
blobs and the manifest descriptor that names them.  Nothing here touches the index; the
store commits what was staged, or drops it."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from bolt.errors import InvalidInput, NotFound
from bolt.images import compression, refs
from bolt.images.errors import CorruptBlob
from bolt.images.layout import (
    CONFIG_MEDIA_TYPE,
    INDEX_TYPES,
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    MANIFEST_MEDIA_TYPE,
    MANIFEST_TYPES,
    REF_ANNOTATION,
    Layout,
    Staging,
    dumps,
    is_layout,
)
from bolt.images.tarlayer import LayerScan, scan_layer, tar_tree

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINERD_NAME = "io.containerd.image.name"
_MEDIA_BY_COMPRESSION = {
    compression.NONE: LAYER_TAR,
    compression.GZIP: LAYER_GZIP,
    compression.ZSTD: LAYER_ZSTD,
}
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
}


def host_arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


Descriptor = dict[str, Any]


def stage_import(
    stage: Staging, source: Path, overrides: dict[str, Any]
) -> tuple[Descriptor, str | None]:
    """Stage the image ``source`` names; return its manifest descriptor and the name the
    source gives it (layouts and OCI archives only)."""
    path, wanted = split_source(source)
    if is_layout(path):
        return _from_layout(stage, Layout(path), wanted, overrides, path.resolve().name)
    if not path.exists():
        raise NotFound(
            f"{source} does not exist",
            hint="give a rootfs tarball, a rootfs directory or an OCI image layout",
        )
    if path.is_dir():
        tmp = stage.scratch()
        with open(tmp, "wb") as out:
            diff_id = tar_tree(path, out)
        layer = _staged_layer(stage, stage.adopt(tmp, diff_id), LAYER_TAR)
    else:
        layer, scan = _stage_tarball(stage, path)
        diff_id = scan.diff_id
        if scan.oci_archive:
            return _from_archive(stage, path, layer["digest"], wanted, overrides)
    if wanted is not None:
        raise InvalidInput(f"{path} is not an OCI image layout: it has no image {wanted!r}")
    return _rootfs_image(stage, layer, diff_id, path.name, overrides), None


def _from_archive(
    stage: Staging, path: Path, blob: str, wanted: str | None, overrides: dict[str, Any]
) -> tuple[Descriptor, str | None]:
    """An OCI archive (a tar of a layout, as ``skopeo copy … oci-archive:``) is unpacked
    into the staging area, with the same safety as any layer, and imported from there."""
    from bolt.images.unpack import unpack_layer

    extracted = stage.path / "archive"
    extracted.mkdir()
    unpack_layer(stage.blobs[blob], extracted, mode="flatten")
    stage.drop(blob)
    base = path.name.split(".")[0] or path.name
    return _from_layout(stage, Layout(extracted), wanted, overrides, base)


def _from_layout(
    stage: Staging, src: Layout, wanted: str | None, overrides: dict[str, Any], base: str
) -> tuple[Descriptor, str | None]:
    if overrides:
        raise InvalidInput("config changes apply to rootfs tarball and directory imports")
    descriptor, name = choose_manifest(src, wanted, base)
    return stage_layout_image(stage, src, descriptor), name


def _rootfs_image(
    stage: Staging, layer: Descriptor, diff_id: str, source_name: str, overrides: dict[str, Any]
) -> Descriptor:
    """A one-layer image around a staged rootfs layer."""
    config_obj: dict[str, Any] = {"Env": [DEFAULT_PATH]}
    config_obj.update(overrides)
    created = now_rfc3339()
    config = {
        "created": created,
        "architecture": host_arch(),
        "os": "linux",
        "config": config_obj,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"bolt image import {source_name}"}],
    }
    config_digest, config_size = stage.add_bytes(dumps(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": [layer],
    }
    digest, size = stage.add_bytes(dumps(manifest))
    return {"mediaType": MANIFEST_MEDIA_TYPE, "digest": digest, "size": size}


def _stage_tarball(stage: Staging, source: Path) -> tuple[Descriptor, LayerScan]:
    """Stage a tarball as a layer and return it with what scanning it found: tar, gzip and
    zstd are kept byte for byte; xz and bzip2 (not OCI layer media types) are stored
    decompressed."""
    with open(source, "rb") as fh:
        kind = compression.detect(fh.read(8))
    media_type = _MEDIA_BY_COMPRESSION.get(kind)
    if media_type is not None:
        with open(source, "rb") as fh:
            digest, _ = stage.add_stream(fh)
        scan = scan_layer(stage.blobs[digest], label=str(source))
        return _staged_layer(stage, digest, media_type), scan
    tmp = stage.scratch()
    with open(tmp, "wb") as out:
        scan = scan_layer(source, plain_out=out)
    return _staged_layer(stage, stage.adopt(tmp, scan.diff_id), LAYER_TAR), scan


def _staged_layer(stage: Staging, digest: str, media_type: str) -> Descriptor:
    size = stage.blobs[digest].stat().st_size
    return {"mediaType": media_type, "digest": digest, "size": size}


# --- OCI image layouts -------------------------------------------------------------------


def split_source(source: Path) -> tuple[Path, str | None]:
    """``PATH`` or ``PATH:REFNAME`` (as skopeo's ``oci:DIR:REF``), when ``PATH`` exists."""
    if source.exists():
        return source, None
    text = str(source)
    colon = text.rfind(":")
    if colon > 0 and Path(text[:colon]).exists():
        return Path(text[:colon]), text[colon + 1 :]
    return source, None


def choose_manifest(src: Layout, wanted: str | None, base: str) -> tuple[Descriptor, str | None]:
    """The manifest descriptor to import and the image name its index gives, if any."""
    entries = [
        d for d in src.read_index().get("manifests", []) if isinstance(d, dict) and "digest" in d
    ]
    if wanted is not None:
        matches = [d for d in entries if _ref_names(d) & {wanted, refs.split(wanted)[1]}]
        if not matches:
            raise InvalidInput(
                f"{src.path} has no image named {wanted!r}",
                hint=f"it has: {', '.join(sorted(_names(entries))) or 'no named images'}",
            )
        entries = matches[:1]
    if len(entries) != 1:
        raise InvalidInput(
            f"{src.path} holds {len(entries)} images; say which one",
            hint=f"use {src.path}:REFNAME with one of: {', '.join(sorted(_names(entries)))}",
        )
    descriptor = _platform_manifest(src, entries[0])
    return descriptor, _image_name(entries[0], base)


def _ref_names(descriptor: Descriptor) -> set[str]:
    annotations = descriptor.get("annotations") or {}
    return {str(v) for k, v in annotations.items() if k in (REF_ANNOTATION, CONTAINERD_NAME)}


def _names(entries: list[Descriptor]) -> set[str]:
    found: set[str] = set()
    for d in entries:
        found |= _ref_names(d)
    return found


def _image_name(descriptor: Descriptor, base: str) -> str | None:
    """containerd's full name if present, else the ref name: a full reference as it is, a
    bare tag (as umoci and skopeo write) under ``base`` (the layout directory's name)."""
    annotations = descriptor.get("annotations") or {}
    if CONTAINERD_NAME in annotations:
        return str(annotations[CONTAINERD_NAME])
    ref = annotations.get(REF_ANNOTATION)
    if not ref:
        return None
    ref = str(ref)
    if "/" in ref or ":" in ref:
        return ref
    return f"{base.lower()}:{ref}"


def _platform_manifest(src: Layout, descriptor: Descriptor, depth: int = 0) -> Descriptor:
    """Follow image indexes down to the manifest for this host's platform."""
    media = descriptor.get("mediaType")
    if media in MANIFEST_TYPES:
        return descriptor
    if media not in INDEX_TYPES or depth > 4:
        raise InvalidInput(f"unsupported manifest media type {media!r} in {src.path}")
    index = src.read_json(descriptor)
    for child in index.get("manifests", []):
        plat = child.get("platform") or {}
        if (
            plat.get("os", "linux") == "linux"
            and plat.get("architecture", host_arch()) == host_arch()
        ):
            return _platform_manifest(src, child, depth + 1)
    raise InvalidInput(
        f"{src.path} has no image for linux/{host_arch()}",
        hint="import an image built for this machine's platform",
    )


def stage_layout_image(stage: Staging, src: Layout, descriptor: Descriptor) -> Descriptor:
    """Copy one image (manifest, config, layers) from ``src``, verifying every digest and
    every layer's diff id against the config."""
    manifest = src.read_json(descriptor)
    config_desc = manifest.get("config") or {}
    config = src.read_json(config_desc)
    layers = manifest.get("layers") or []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise CorruptBlob(
            f"image {descriptor['digest']} in {src.path}: {len(layers)} layers but "
            f"{len(diff_ids)} diff ids in its config"
        )
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        path = _copy_blob(stage, src, layer)
        scan = scan_layer(path, label=f"layer {layer['digest']} of {src.path}")
        if scan.diff_id != diff_id:
            raise CorruptBlob(
                f"layer {layer['digest']} in {src.path} unpacks to {scan.diff_id}, but the "
                f"image config says {diff_id}",
                hint="the layout is damaged; export it again",
            )
    _copy_blob(stage, src, config_desc)
    _copy_blob(stage, src, descriptor)
    return {
        "mediaType": descriptor.get("mediaType", MANIFEST_MEDIA_TYPE),
        "digest": descriptor["digest"],
        "size": descriptor["size"],
    }


def _copy_blob(stage: Staging, src: Layout, descriptor: Descriptor) -> Path:
    digest = str(descriptor.get("digest", ""))
    path = src.blob_path(digest)
    if not path.is_file():
        raise CorruptBlob(
            f"blob {digest} is missing from {src.path}", hint="the layout is incomplete"
        )
    with open(path, "rb") as fh:
        stage.add_stream(fh, expected=descriptor)
    return stage.blobs[digest]
