"""``bolt system prune`` and ``bolt volume ls|rm``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("system", help="system-wide maintenance")
    ssub = p.add_subparsers(dest="system_command", metavar="COMMAND")
    ssub.required = True
    pr = ssub.add_parser(
        "prune",
        help="remove stopped containers, spare root file systems, unused layers, stale mounts"
        " and what killed builds and pulls left",
    )
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(handler=prune, needs_root=True)

    v = sub.add_parser("volume", help="named volumes")
    vsub = v.add_subparsers(dest="volume_command", metavar="COMMAND")
    vsub.required = True
    ls = vsub.add_parser("ls", help="list volumes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=volume_ls, needs_root=True)
    rm = vsub.add_parser("rm", help="remove volumes")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(handler=volume_rm, needs_root=True)


def prune(args: argparse.Namespace) -> int:
    from bolt.engine import operations as engine
    from bolt.state.db import StateDB

    if not args.force:
        if not sys.stdin.isatty():
            from bolt.errors import InvalidInput

            raise InvalidInput("prune needs confirmation", hint="use -f to prune without asking")
        answer = input(
            "Remove all stopped containers, spare root file systems, unused layers and stale"
            " mounts? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            return 2
    from bolt.build.scratch import reap_killed_builds

    for name in reap_killed_builds(args.root):  # first: their overlays hold layers
        print(f"removed the scratch of a killed build ({name})")
    db = StateDB(args.root)
    removed = engine.prune(args.root, db)
    for name in removed:
        print(f"removed container {name}")
    layers: list[str] = []
    try:
        from bolt.images.store import ImageStore
    except ImportError:
        ImageStore = None  # type: ignore[assignment,misc]
    if ImageStore is not None:
        from bolt.registry.progress import human_size

        store = ImageStore(args.root)
        for name, size in store.prune_staging():
            print(f"removed partial download {name} ({human_size(size)})")
        keep = _layers_in_use(args.root, db)
        layers = store.prune_layers(keep=keep)
    for layer in layers:
        print(f"removed layer {layer}")
    return 0


def _layers_in_use(root: Any, db: Any) -> set[str]:
    """diff ids of the images that containers still reference."""
    from bolt.errors import BoltError
    from bolt.images.store import ImageStore

    store = ImageStore(root)
    keep: set[str] = set()
    for row in db.all():
        try:
            keep.update(store.resolve(row.image_id or row.image).diff_ids)
        except BoltError:
            continue
    return keep


def volume_ls(args: argparse.Namespace) -> int:
    import json

    from bolt import volumes

    names = volumes.names(args.root)
    if args.json:
        print(
            json.dumps([{"name": n, "path": str(volumes.volume_dir(args.root, n))} for n in names])
        )
    else:
        for n in names:
            print(n)
    return 0


def volume_rm(args: argparse.Namespace) -> int:
    from bolt import volumes

    for n in args.names:
        volumes.remove(args.root, n)
        print(n)
    return 0
