"""``bolt image import|ls|rm|inspect|prune`` and the top-level ``bolt images``.

Argument parsing and rendering only; the work is :class:`bolt.images.store.ImageStore`'s.
Each subcommand stores its handler as ``args.handler`` (``handler(args) -> int``); the
store's root is ``args.root`` (set by the global ``--root``), else ``$BOLT_ROOT``, else
``/var/lib/bolt``.  Imports stay inside the handlers: every ``bolt`` command pays for what
this module imports at start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bolt.errors import InvalidInput, fs_errors

if TYPE_CHECKING:
    from bolt.images.store import ImageRecord, ImageStore

DEFAULT_ROOT = "/var/lib/bolt"
InUse = Callable[[str], bool]
_in_use_provider: Callable[[Path], InUse] | None = None


def set_in_use_provider(provider: Callable[[Path], InUse] | None) -> None:
    """Let ``bolt image rm`` ask whether a container uses an image: ``provider(root)``
    returns a predicate over image IDs (``sha256:...``).  Called only when ``rm`` runs."""
    global _in_use_provider
    _in_use_provider = provider


def register(subparsers: Any) -> None:
    """Add ``image`` (with its subcommands) and ``images`` to a CLI's subparsers."""
    image = subparsers.add_parser("image", help="manage images")
    sub = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)

    imp = sub.add_parser(
        "import",
        help="import a rootfs tarball or directory, or an OCI image layout",
        description="Import SOURCE: a rootfs tarball (tar, tar.gz, tar.xz, tar.bz2), a rootfs "
        "directory, or an OCI image layout (DIR, or DIR:REFNAME to pick one of its images).",
    )
    imp.add_argument("source", metavar="TARBALL|ROOTFS_DIR|OCI_LAYOUT")
    imp.add_argument(
        "-t",
        "--tag",
        metavar="NAME:TAG",
        help="the image's name (for a layout: defaults to the name in its index)",
    )
    imp.add_argument("--cmd", help="default command: a JSON array or a shell-style string")
    imp.add_argument("--entrypoint", help="entrypoint: a JSON array or a shell-style string")
    imp.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    imp.add_argument("-w", "--workdir", help="working directory")
    imp.add_argument("-u", "--user", help="user (name or UID[:GID])")
    imp.set_defaults(handler=import_image)

    for name, aliases in (("ls", ["list"]),):
        ls = sub.add_parser(name, aliases=aliases, help="list images")
        _list_options(ls)
    images = subparsers.add_parser("images", help="list images (same as `image ls`)")
    _list_options(images)

    rm = sub.add_parser("rm", help="remove images")
    rm.add_argument("refs", nargs="+", metavar="REF")
    rm.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="remove even if a container uses it, or all names of an ID",
    )
    rm.set_defaults(handler=remove_images)

    inspect = sub.add_parser("inspect", help="show an image as JSON")
    inspect.add_argument("ref", metavar="REF")
    inspect.set_defaults(handler=inspect_image)

    prune = sub.add_parser("prune", help="remove unpacked layers and blobs no image uses")
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=prune_images)

    from bolt.cli.build import add_bootstrap

    add_bootstrap(sub)

    from bolt.cli.registry import add_export

    add_export(sub)


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("-q", "--quiet", action="store_true", help="image IDs only")
    parser.set_defaults(handler=list_images)


# --- handlers ------------------------------------------------------------------------------


def import_image(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.cmd is not None:
        overrides["Cmd"] = _argv(args.cmd, "--cmd")
    if args.entrypoint is not None:
        overrides["Entrypoint"] = _argv(args.entrypoint, "--entrypoint")
    if args.env:
        from bolt.images.importer import DEFAULT_PATH

        for item in args.env:
            if "=" not in item:
                raise InvalidInput(f"--env {item!r} is not KEY=VALUE")
        keys = {item.split("=", 1)[0] for item in args.env}
        default = [] if "PATH" in keys else [DEFAULT_PATH]
        overrides["Env"] = default + list(args.env)
    if args.workdir:
        overrides["WorkingDir"] = args.workdir
    if args.user:
        overrides["User"] = args.user
    with _store(args) as store:
        record = store.import_path(Path(args.source), args.tag, config=overrides or None)
    print(f"{record.ref} {record.id}")
    return 0


def list_images(args: argparse.Namespace) -> int:
    with _store(args) as store:
        records = store.list()
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
    elif args.quiet:
        for short_id in dict.fromkeys(r.short_id for r in records):
            print(short_id)
    else:
        print(_table(records))
    return 0


def remove_images(args: argparse.Namespace) -> int:
    from bolt.cli import for_each

    with _store(args) as store:
        in_use = _in_use_provider(store.root) if _in_use_provider is not None else None

        def remove(ref: str) -> str:
            from bolt.runtime import spares

            spares.discard(store.root, image_id=store.resolve(ref).id)  # they hold its layers
            removed = store.remove(ref, force=args.force, in_use=in_use)
            return "\n".join(f"Untagged: {r}" for r in removed)

        return for_each(args.refs, remove)


def inspect_image(args: argparse.Namespace) -> int:
    with _store(args) as store:
        record = store.resolve(args.ref)
        doc = record.to_json()
        if record.index_digest is not None:
            doc["index_platforms"] = store.offered_platforms(record)
    print(json.dumps(doc, indent=2))
    return 0


def prune_images(args: argparse.Namespace) -> int:
    from bolt.runtime import spares

    with _store(args) as store:
        partial = store.prune_staging()
        named = {r.id for r in store.list()}
        for image_id in spares.image_ids(store.root):  # an untagged image's hold its layers
            if image_id not in named:
                spares.discard(store.root, image_id=image_id)
        removed = store.prune_layers()
    from bolt.registry.progress import human_size

    if args.json:
        staged = [{"name": name, "bytes": size} for name, size in partial]
        print(json.dumps({"removed": removed, "partial_downloads": staged}))
    else:
        for name, size in partial:
            print(f"Deleted: partial download {name} ({human_size(size)})")
        for digest in removed:
            print(f"Deleted: {digest}")
    return 0


# --- helpers -------------------------------------------------------------------------------


def root_of(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "root", None) or os.environ.get("BOLT_ROOT") or DEFAULT_ROOT)


@contextlib.contextmanager
def _store(args: argparse.Namespace) -> Iterator[ImageStore]:
    """The store at the command's root; file-system errors become user errors."""
    from bolt.images.store import ImageStore

    root = root_of(args)
    with fs_errors(root):
        yield ImageStore(root)


def _argv(text: str, option: str) -> list[str]:
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{option} is not a valid JSON array: {err}") from err
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{option} must be a JSON array of strings")
        return value
    import shlex

    try:
        return shlex.split(text)
    except ValueError as err:
        raise InvalidInput(f"{option}: {err}") from err


def _table(records: list[ImageRecord]) -> str:
    from bolt.images.refs import split
    from bolt.registry.progress import human_size

    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for r in records:
        name, tag = split(r.ref)
        created = r.created.replace("T", " ")[:16] if r.created else "-"
        rows.append((name, tag, r.short_id, created, human_size(r.size, sep="")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
