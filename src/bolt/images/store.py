"""The image store: images named ``name:tag`` in an OCI image layout under
``<root>/images``, and their layers unpacked once under ``<root>/layers``.

The store never imports the runtime: whether a container uses an image is asked through
the ``in_use`` predicate the caller passes to :meth:`ImageStore.remove`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bolt.errors import InvalidInput, NotFound
from bolt.images import refs
from bolt.images.digests import digest_hex, is_digest
from bolt.images.errors import CorruptBlob, ImageInUse
from bolt.images.layercache import LayerCache
from bolt.images.layout import (
    INDEX_ANNOTATION,
    INDEX_MEDIA_TYPE,
    MANIFEST_TYPES,
    PLATFORM_ANNOTATION,
    REF_ANNOTATION,
    Layout,
    Staging,
    platform_name,
)

MIN_ID_PREFIX = 4


@dataclass(frozen=True)
class ImageRecord:
    ref: str  # "name:tag"
    id: str  # "sha256:<config digest hex>"
    manifest_digest: str
    # the image config's "config" object (Env, Cmd, Entrypoint, ...); not hashed (a dict)
    config: dict[str, Any] = field(hash=False)
    layers: tuple[str, ...]  # layer blob digests, lowest first
    diff_ids: tuple[str, ...]
    created: str
    size: int  # bytes the image's blobs take in the store (manifest, config, layers)
    # pulled through an index (multi-platform): its digest (the index blob is kept) and
    # the platform of this image's entry there
    index_digest: str | None = None
    platform: str | None = None

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "id": self.id,
            "manifest_digest": self.manifest_digest,
            "config": self.config,
            "layers": list(self.layers),
            "diff_ids": list(self.diff_ids),
            "created": self.created,
            "size": self.size,
            "index_digest": self.index_digest,
            "platform": self.platform,
        }


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()  # overlayfs and runtimes want absolute paths
        self.layout = Layout(self.root / "images")
        self.layers = LayerCache(self.root / "layers")

    # --- reading -----------------------------------------------------------------------

    def list(self) -> builtins.list[ImageRecord]:
        records: builtins.list[ImageRecord] = []
        for descriptor in self._named_descriptors():
            records.append(self._record(descriptor))
        return sorted(records, key=lambda r: r.ref)

    def resolve(self, ref: str) -> ImageRecord:
        """An image by ``name:tag``, ``name`` (``:latest``), or a prefix of its ID or
        manifest digest (``sha256:`` optional, at least 4 hex digits)."""
        return self._resolve(ref)[0]

    def _resolve(self, ref: str) -> tuple[ImageRecord, bool]:
        """The image, and whether ``ref`` named it by ID rather than by name."""
        named = self._named_descriptors()
        if refs.is_valid(ref):
            wanted = refs.normalize(ref)
            for descriptor in named:
                if _ref_of(descriptor) == wanted:
                    return self._record(descriptor), False
        hex_prefix = ref.removeprefix("sha256:")
        if len(hex_prefix) >= MIN_ID_PREFIX and set(hex_prefix) <= set("0123456789abcdef"):
            records = [self._record(d) for d in named]
            hits = [
                r
                for r in records
                if digest_hex(r.id).startswith(hex_prefix)
                or digest_hex(r.manifest_digest).startswith(hex_prefix)
                or (r.index_digest and digest_hex(r.index_digest).startswith(hex_prefix))
            ]
            if len({r.id for r in hits}) > 1:
                raise InvalidInput(
                    f"{ref!r} matches more than one image: "
                    + ", ".join(sorted({r.short_id for r in hits})),
                    hint="give more digits of the ID, or the image's name",
                )
            if hits:
                return sorted(hits, key=lambda r: r.ref)[0], True
        raise NotFound(
            f"no image {ref!r} in {self.layout.path}",
            hint="`bolt images` lists the images; `bolt image import` adds one",
        )

    def layer_dirs(self, image: ImageRecord) -> builtins.list[Path]:
        """The unpacked layer directories of ``image``, lowest first (reverse them for
        overlayfs ``lowerdir=``); layers not yet unpacked are unpacked now."""
        return [
            self.layers.ensure(diff_id, self.layout.blob_path(digest), digest)
            for digest, diff_id in zip(image.layers, image.diff_ids, strict=True)
        ]

    # --- changing ------------------------------------------------------------------------

    def import_path(
        self, source: Path, ref: str | None = None, *, config: dict[str, Any] | None = None
    ) -> ImageRecord:
        """Import a rootfs tarball (tar, gzip, xz, bzip2, zstd with ``zstandard``), a rootfs
        directory, an OCI image layout or an OCI archive (a tar of a layout; ``PATH`` or
        ``PATH:REFNAME`` for both) as ``ref``.

        For a layout or archive, ``ref`` defaults to the name its index gives the image.
        ``config`` sets keys of the new image's config object (``Cmd``, ``Env``, ...) for
        rootfs tarballs and directories.  Every blob is verified before anything becomes visible; on any error
        nothing is stored."""
        from bolt.images.importer import stage_import  # tarfile and co.: imports only

        target = refs.normalize(ref) if ref is not None else None
        with self.layout.staging() as stage:
            manifest, name = stage_import(stage, Path(source), config or {})
            target = target or (refs.normalize(name) if name else None)
            if target is None:
                raise InvalidInput(
                    f"no name given for the image from {source}", hint="use -t NAME:TAG"
                )
            with self.layout.locked():
                self.layout.commit(stage)
                index = self.layout.read_index()
                index["manifests"] = [
                    d for d in index.get("manifests", []) if _ref_of(d) != target
                ] + [{**manifest, "annotations": {REF_ANNOTATION: target}}]
                self.layout.write_index(index)
        return self.resolve(target)

    def has_blob(self, digest: str) -> bool:
        return self.layout.blob_path(digest).is_file()

    def descriptor(self, ref: str) -> dict[str, Any]:
        """The index entry of an image (media type, digest, size, annotations)."""
        record = self.resolve(ref)
        for descriptor in self._named_descriptors():
            if _ref_of(descriptor) == record.ref:
                return dict(descriptor)
        raise NotFound(f"no image {ref!r} in {self.layout.path}")  # removed meanwhile

    def commit_image(
        self,
        stage: Staging,
        manifest: dict[str, Any],
        ref: str,
        *,
        reused: Iterable[str] = (),
        annotations: dict[str, str] | None = None,
    ) -> ImageRecord:
        """Make an image whose blobs were verified into ``stage`` visible as ``ref``.
        ``manifest`` is its manifest descriptor; ``reused`` names the blobs it needs that
        were not staged because the store has them (checked again under the lock)."""
        target = refs.normalize(ref)
        with self.layout.locked():
            missing = [d for d in reused if d not in stage.blobs and not self.has_blob(d)]
            if missing:
                raise NotFound(
                    f"blob {missing[0]} left the image store while {target} was stored",
                    hint="an image was removed at the same time; try again",
                )
            self.layout.commit(stage)
            self._name(manifest, target, annotations)
        return self.resolve(target)

    def tag(self, source: str, target: str) -> ImageRecord:
        """Give the image ``source`` names the further name ``target`` (moved if taken)."""
        descriptor = self.descriptor(source)
        name = refs.normalize(target)
        with self.layout.locked():
            annotations = dict(descriptor.get("annotations") or {})
            annotations.pop(REF_ANNOTATION, None)
            self._name(descriptor, name, annotations)
        return self.resolve(name)

    def _name(
        self, descriptor: dict[str, Any], ref: str, annotations: dict[str, str] | None
    ) -> None:
        """Point ``ref`` at a manifest; call with the layout lock held."""
        entry = {k: descriptor[k] for k in ("mediaType", "digest", "size")}
        entry["annotations"] = {**(annotations or {}), REF_ANNOTATION: ref}
        index = self.layout.read_index()
        index["manifests"] = [d for d in index.get("manifests", []) if _ref_of(d) != ref] + [entry]
        self.layout.write_index(index)

    def remove(
        self, ref: str, force: bool = False, in_use: Callable[[str], bool] | None = None
    ) -> builtins.list[str]:
        """Untag ``ref``; blobs no other tag needs are deleted, and its unpacked layers too
        unless a container uses the image.  By ID, every tag of the image goes (more than
        one only with ``force``).  ``in_use(image_id)`` says whether a container uses the
        image; if so, removal is refused unless ``force``.  Returns the refs removed."""
        record, by_id = self._resolve(ref)
        targets = [record.ref]
        if by_id:
            targets = [r.ref for r in self.list() if r.id == record.id]
            if len(targets) > 1 and not force:
                raise InvalidInput(
                    f"image {record.short_id} has several names: {', '.join(targets)}",
                    hint="remove one name at a time, or use -f to remove them all",
                )
        used = in_use is not None and in_use(record.id)
        if used and not force:
            raise ImageInUse(
                f"image {record.ref} ({record.short_id}) is used by a container",
                hint="remove the container first, or use -f (its layers stay until pruned)",
            )
        with self.layout.locked():
            index = self.layout.read_index()
            index["manifests"] = [
                d for d in index.get("manifests", []) if _ref_of(d) not in targets
            ]
            self.layout.write_index(index)
            self._collect_blobs(index)
            still_needed = self._needed_diff_ids()
        if not used:
            for diff_id in set(record.diff_ids) - still_needed:
                self.layers.remove(diff_id)
        return targets

    def prune_layers(self, keep: set[str] | None = None) -> builtins.list[str]:
        """Drop unpacked layers and blobs that no image references.  ``keep`` names layers
        to keep anyway (diff ids, with or without ``sha256:``: those under containers);
        layers an overlay mount uses as lower dirs are always kept.
        Returns the diff ids of the layers removed, then the digests of the blobs removed."""
        kept = {k if k.startswith("sha256:") else "sha256:" + k for k in keep or set()}
        with self.layout.locked():
            removed_blobs = self._collect_blobs(self.layout.read_index())
            needed = self._needed_diff_ids() | kept
        self.layers.clean_leftovers()
        removed_layers = [
            d for d in self.layers.unpacked() if d not in needed and self.layers.remove(d)
        ]
        return removed_layers + removed_blobs

    def offered_platforms(self, record: ImageRecord) -> builtins.list[str]:
        """The platforms the index ``record`` was pulled from offers (empty if none)."""
        if record.index_digest is None or not self.has_blob(record.index_digest):
            return []
        index = self.layout.read_json({"digest": record.index_digest})
        return [platform_name(d) for d in index.get("manifests") or [] if isinstance(d, dict)]

    def prune_staging(self) -> builtins.list[tuple[str, int]]:
        """Remove what killed imports and pulls left in the staging area (partial
        downloads, unverified blobs); returns each staging directory's name and size."""
        return self.layout.clean_staging()

    # --- internals -----------------------------------------------------------------------

    def _named_descriptors(self) -> builtins.list[dict[str, Any]]:
        return [
            d
            for d in self.layout.read_index().get("manifests", [])
            if isinstance(d, dict) and d.get("mediaType") in MANIFEST_TYPES and _ref_of(d)
        ]

    def _record(self, descriptor: dict[str, Any]) -> ImageRecord:
        manifest = self.layout.read_json(descriptor)
        config_desc = manifest.get("config") or {}
        config = self.layout.read_json(config_desc)
        layers = manifest.get("layers") or []
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(layers) != len(diff_ids):
            raise CorruptBlob(f"image {descriptor['digest']}: layers and diff ids disagree")
        annotations = descriptor.get("annotations") or {}
        index = annotations.get(INDEX_ANNOTATION)
        return ImageRecord(
            index_digest=str(index) if index and is_digest(str(index)) else None,
            platform=str(annotations[PLATFORM_ANNOTATION]) if index else None,
            ref=_ref_of(descriptor) or "",
            id=str(config_desc["digest"]),
            manifest_digest=str(descriptor["digest"]),
            config=dict(config.get("config") or {}),
            layers=tuple(str(layer["digest"]) for layer in layers),
            diff_ids=tuple(str(d) for d in diff_ids),
            created=str(config.get("created", "")),
            size=int(descriptor.get("size", 0))
            + int(config_desc.get("size", 0))
            + sum(int(layer.get("size", 0)) for layer in layers),
        )

    def _needed_diff_ids(self) -> set[str]:
        return {d for r in self.list() for d in r.diff_ids}

    def _collect_blobs(self, index: dict[str, Any]) -> builtins.list[str]:
        """Delete blobs unreachable from ``index``; call with the layout lock held."""
        reachable: set[str] = set()
        pending = [d for d in index.get("manifests", []) if isinstance(d, dict)]
        pending += [  # the indexes pulled images were picked from: kept with them
            {"mediaType": INDEX_MEDIA_TYPE, "digest": str(kept)}
            for d in list(pending)
            if (kept := (d.get("annotations") or {}).get(INDEX_ANNOTATION))
        ]
        while pending:
            descriptor = pending.pop()
            digest = str(descriptor.get("digest", ""))
            if not is_digest(digest) or digest in reachable:
                continue
            reachable.add(digest)
            if not self.layout.blob_path(digest).is_file():
                continue
            media = descriptor.get("mediaType", "")
            if media in MANIFEST_TYPES or "index" in media or "list" in media:
                doc = self.layout.read_json(descriptor)
                pending.extend(d for d in doc.get("manifests", []) if isinstance(d, dict))
                if isinstance(doc.get("config"), dict):
                    pending.append(doc["config"])
                pending.extend(d for d in doc.get("layers", []) if isinstance(d, dict))
        removed: builtins.list[str] = []
        for entry in os.scandir(self.layout.blobs):
            digest = "sha256:" + entry.name
            if digest not in reachable and is_digest(digest):
                os.unlink(entry.path)
                removed.append(digest)
        return sorted(removed)


def _ref_of(descriptor: dict[str, Any]) -> str | None:
    annotations = descriptor.get("annotations") or {}
    ref = annotations.get(REF_ANNOTATION)
    return str(ref) if ref else None
