"""Images in and out of files: ``bolt image export`` (an OCI image layout directory),
``bolt save`` (a docker-archive tar, or an OCI archive) and ``bolt load`` (either kind).

docker-archive is what ``docker save`` writes and ``docker load``/``podman load`` read:
``manifest.json`` (config file, repo tags and layer files of each image), ``repositories``,
each config as ``<hex>.json`` and each layer as an uncompressed ``<diff id hex>/layer.tar``.
Exports use OCI media types throughout, so that umoci (which reads nothing else) accepts
them; a Docker schema 2 manifest is rewritten with the same config and layer blobs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from bolt.errors import InvalidInput, NotFound
from bolt.images import compression, refs
from bolt.images.errors import CorruptBlob
from bolt.images.layout import (
    CONFIG_MEDIA_TYPE,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    MANIFEST_MEDIA_TYPE,
    REF_ANNOTATION,
    Layout,
    Staging,
    create_atomic,
    dumps,
)
from bolt.images.safefs import member_parts
from bolt.images.store import ImageRecord, ImageStore

DOCKER_ARCHIVE = "docker-archive"
OCI_ARCHIVE = "oci-archive"
FORMATS = (DOCKER_ARCHIVE, OCI_ARCHIVE)
_OCI_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_TAR,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": LAYER_ZSTD,
}
_MEDIA_BY_COMPRESSION = {
    compression.NONE: LAYER_TAR,
    compression.GZIP: LAYER_GZIP,
    compression.ZSTD: LAYER_ZSTD,
}


# --- export: an OCI image layout -------------------------------------------------------------


def oci_manifest(store: ImageStore, record: ImageRecord) -> bytes:
    """The image's manifest with OCI media types (as stored, if it has them already)."""
    data = store.layout.blob_path(record.manifest_digest).read_bytes()
    manifest = json.loads(data)
    if manifest.get("mediaType", MANIFEST_MEDIA_TYPE) != DOCKER_MANIFEST:
        return data
    converted = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {**manifest["config"], "mediaType": CONFIG_MEDIA_TYPE},
        "layers": [
            {**layer, "mediaType": _OCI_LAYER.get(layer.get("mediaType", ""), LAYER_GZIP)}
            for layer in manifest["layers"]
        ],
    }
    return dumps(converted)


def export_layout(store: ImageStore, ref: str, dest: Path, refname: str | None = None) -> str:
    """Write image ``ref`` into the OCI layout ``dest`` (created, or added to), named
    ``refname`` in its index (default: the image's tag, as umoci and skopeo name images).
    Returns the name used."""
    record = store.resolve(ref)
    name = refname or refs.split(record.ref)[1]
    target = Layout(dest)
    if dest.exists() and any(dest.iterdir()) and not (dest / "oci-layout").is_file():
        raise InvalidInput(
            f"{dest} exists and is not an OCI image layout",
            hint="give a new or empty directory, or an existing layout",
        )
    target.ensure()
    data = oci_manifest(store, record)
    for digest in (record.id, *record.layers):
        _copy_blob(store.layout.blob_path(digest), target.blob_path(digest))
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    create_atomic(target.blob_path(digest), data)
    index = target.read_index()
    index["manifests"] = [
        d
        for d in index.get("manifests", [])
        if (d.get("annotations") or {}).get(REF_ANNOTATION) != name
    ] + [
        {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest,
            "size": len(data),
            "annotations": {REF_ANNOTATION: name},
        }
    ]
    target.write_index(index)
    return name


def _copy_blob(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# --- save: docker-archive or OCI archive ------------------------------------------------------


def save(store: ImageStore, names: list[str], out: IO[bytes], fmt: str = DOCKER_ARCHIVE) -> None:
    """Write the images ``names`` as one tar to ``out`` (a file, or a pipe)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown archive format {fmt!r}", hint=f"use {' or '.join(FORMATS)}")
    records = [store.resolve(n) for n in names]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if fmt == OCI_ARCHIVE:
            with store.layout.staging() as stage:
                layout = stage.path / "layout"
                for name, record in zip(names, records, strict=True):
                    tag = name if refs.is_valid(name) else record.ref
                    export_layout(store, record.ref, layout, refs.normalize(tag))
                for path in sorted(layout.rglob("*")):
                    tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
            return
        _save_docker(store, names, records, tar)


def _save_docker(
    store: ImageStore, names: list[str], records: list[ImageRecord], tar: tarfile.TarFile
) -> None:
    entries: dict[str, dict[str, Any]] = {}
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for name, record in zip(names, records, strict=True):
        tag = refs.normalize(name) if refs.is_valid(name) else record.ref
        entry = entries.get(record.id)
        if entry is not None:
            if tag not in entry["RepoTags"]:
                entry["RepoTags"].append(tag)
        else:
            config_name = record.id.removeprefix("sha256:") + ".json"
            _add_file(tar, config_name, store.layout.blob_path(record.id))
            layer_names = []
            for blob, diff_id in zip(record.layers, record.diff_ids, strict=True):
                layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
                if layer_name not in written:
                    _add_layer(tar, layer_name, store.layout.blob_path(blob))
                    written.add(layer_name)
                layer_names.append(layer_name)
            entry = {"Config": config_name, "RepoTags": [tag], "Layers": layer_names}
            entries[record.id] = entry
        repo, version = refs.split(tag)
        if record.diff_ids:
            repositories.setdefault(repo, {})[version] = record.diff_ids[-1].removeprefix("sha256:")
    _add_bytes(tar, "manifest.json", json.dumps(list(entries.values())).encode())
    _add_bytes(tar, "repositories", json.dumps(repositories).encode())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size = path.stat().st_size
    info.mode = 0o644
    with open(path, "rb") as fh:
        tar.addfile(info, fh)


def _add_layer(tar: tarfile.TarFile, name: str, blob: Path) -> None:
    """A layer, uncompressed (its digest is then its diff id, as docker-archive wants)."""
    with open(blob, "rb") as raw:
        kind, buffered = compression.sniff(raw)
        if kind == compression.NONE:
            _add_file(tar, name, blob)
            return
        with tempfile.TemporaryFile(dir=blob.parent.parent.parent) as plain:
            shutil.copyfileobj(compression.decompressor(buffered, kind), plain, 1 << 20)
            info = tarfile.TarInfo(name)
            info.size = plain.tell()
            info.mode = 0o644
            plain.seek(0)
            tar.addfile(info, plain)


# --- load ---------------------------------------------------------------------------------------


def load(store: ImageStore, source: Path) -> list[ImageRecord]:
    """Store every image of a docker-archive or OCI archive tar (any compression)."""
    if not source.is_file():
        raise NotFound(f"{source} does not exist or is not a file")
    top = _top_level_names(source)
    if "manifest.json" in top:
        return _load_docker(store, source)
    if {"oci-layout", "index.json"} <= top:
        return _load_oci(store, source)
    raise InvalidInput(
        f"{source} is neither a docker-archive nor an OCI archive",
        hint="give a tar written by `bolt save`, `docker save`, `podman save` or skopeo",
    )


def _top_level_names(source: Path) -> set[str]:
    names: set[str] = set()
    with _plain_tar(source) as tar:
        for member in tar:
            parts = member_parts(member.name)
            if parts:
                names.add(parts[0])
    return names


@contextmanager
def _plain_tar(source: Path) -> Iterator[tarfile.TarFile]:
    with open(source, "rb") as raw:
        kind, buffered = compression.sniff(raw)
        try:
            with tarfile.open(fileobj=compression.decompressor(buffered, kind), mode="r|") as tar:
                yield tar
        except tarfile.TarError as err:
            raise CorruptBlob(f"{source} is not a valid tar archive: {err}") from err


def _load_oci(store: ImageStore, source: Path) -> list[ImageRecord]:
    """Every named image of an OCI archive (an index entry's platform image for this
    machine), staged and verified together, then stored under its names."""
    from bolt.images.importer import host_arch, stage_layout_image

    loaded: list[tuple[dict[str, Any], str]] = []
    with store.layout.staging() as stage:
        src = Layout(_extract(source, stage.path))
        entries = [d for d in src.read_index().get("manifests", []) if isinstance(d, dict)]
        for entry in entries:
            name = str((entry.get("annotations") or {}).get(REF_ANNOTATION, ""))
            descriptor = entry
            if entry.get("mediaType") in INDEX_TYPES:
                children = [
                    c
                    for c in src.read_json(entry).get("manifests", [])
                    if (c.get("platform") or {}).get("os") == "linux"
                    and (c.get("platform") or {}).get("architecture") == host_arch()
                ]
                if not children:
                    raise InvalidInput(
                        f"{source}: {name or 'an image'} has no linux/{host_arch()} image"
                    )
                descriptor = children[0]
            manifest = stage_layout_image(stage, src, descriptor)
            loaded.append((manifest, _oci_name(name, source)))
        records = []
        for manifest, ref in loaded:
            doc = src.read_json(manifest)
            blobs = [str(doc["config"]["digest"]), *(str(d["digest"]) for d in doc["layers"])]
            records.append(store.commit_image(stage, manifest, ref, reused=blobs))
    return records


def _oci_name(name: str, source: Path) -> str:
    base = source.name.split(".")[0].lower() or "image"
    if not name:
        return f"{base}:latest"
    if refs.is_valid(name) and ("/" in name or ":" in name):
        return name
    return f"{base}:{name}"


def _extract(source: Path, dest: Path) -> Path:
    from bolt.images.unpack import unpack_layer

    target = dest / "archive"
    target.mkdir()
    unpack_layer(source, target, mode="flatten")
    return target


def _load_docker(store: ImageStore, source: Path) -> list[ImageRecord]:
    loaded: list[ImageRecord] = []
    with store.layout.staging() as stage:
        extracted = _extract(source, stage.path)
        try:
            entries = json.loads(_member_file(extracted, "manifest.json").read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CorruptBlob(f"{source}: manifest.json is not JSON: {err}") from err
        if not isinstance(entries, list) or not entries:
            raise CorruptBlob(f"{source}: manifest.json lists no images")
        named: list[tuple[dict[str, Any], list[str], list[str]]] = []
        for entry in entries:
            manifest, blobs = _stage_docker_image(stage, extracted, entry, source)
            tags = [str(t) for t in entry.get("RepoTags") or []]
            if not tags:
                tags = ["image-" + manifest["digest"].removeprefix("sha256:")[:12]]
            named.append((manifest, blobs, tags))
        for manifest, blobs, tags in named:
            for tag in tags:
                loaded.append(store.commit_image(stage, manifest, tag, reused=blobs))
    return loaded


def _stage_docker_image(
    stage: Staging, base: Path, entry: Any, source: Path
) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
        raise CorruptBlob(f"{source}: a manifest.json entry has no Config")
    config_data = _member_file(base, entry["Config"]).read_bytes()
    config_digest, config_size = stage.add_bytes(config_data)
    try:
        config = json.loads(config_data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptBlob(f"{source}: {entry['Config']} is not JSON: {err}") from err
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    layer_names = entry.get("Layers") or []
    if len(diff_ids) != len(layer_names):
        raise CorruptBlob(
            f"{source}: {len(layer_names)} layers but {len(diff_ids)} diff ids in {entry['Config']}"
        )
    from bolt.images.tarlayer import scan_layer

    layers = []
    for name, diff_id in zip(layer_names, diff_ids, strict=True):
        path = _member_file(base, str(name))
        with open(path, "rb") as fh:
            digest, size = stage.add_stream(fh)
        scan = scan_layer(stage.blobs[digest], label=f"{name} in {source}")
        if scan.diff_id != diff_id:
            raise CorruptBlob(
                f"{source}: {name} unpacks to {scan.diff_id}, but its config says {diff_id}",
                hint="the archive is damaged; save it again",
            )
        media = _MEDIA_BY_COMPRESSION.get(scan.compression)
        if media is None:
            raise CorruptBlob(f"{source}: {name} is {scan.compression}, not an OCI layer type")
        layers.append({"mediaType": media, "digest": digest, "size": size})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": layers,
    }
    digest, size = stage.add_bytes(dumps(manifest))
    blobs = [config_digest, *(str(layer["digest"]) for layer in layers)]
    return {"mediaType": MANIFEST_MEDIA_TYPE, "digest": digest, "size": size}, blobs


def _member_file(base: Path, name: str) -> Path:
    """A regular file of the extracted archive.  Symlinks inside it (``podman save`` links
    ``<id>/layer.tar`` to ``../<digest>.tar``) are followed by hand, and only within it."""
    pending = member_parts(name)
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not done:
                raise CorruptBlob(f"{name!r} in the archive points outside it")
            done.pop()
            continue
        path = base.joinpath(*done, part)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise CorruptBlob(f"the archive has no {name!r}") from None
        if stat.S_ISLNK(mode):
            hops += 1
            target = os.readlink(path)
            if hops > 16 or target.startswith("/"):
                raise CorruptBlob(f"{name!r} in the archive is a link that leads outside it")
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        done.append(part)
    path = base.joinpath(*done)
    if not done or not stat.S_ISREG(path.lstat().st_mode):
        raise CorruptBlob(f"{name!r} in the archive is not a regular file")
    return path
