"""``bolt snapshot create|list|restore|delete|prune``: capsule snapshots from the shell.

Thin over :mod:`bolt.capsules`: every command first finishes what a killed snapshot
command left (a restore is rolled back or forward from its journal, a half-made snapshot
removed), then does its work.  The library is imported lazily.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("snapshot", help="capsule snapshots: containers' files and GPU state")
    ssub = p.add_subparsers(dest="snapshot_command", metavar="COMMAND")
    ssub.required = True

    c = ssub.add_parser("create", help="take a snapshot (paused, consistent)")
    c.add_argument("name")
    c.add_argument(
        "--container",
        "-c",
        action="append",
        default=[],
        metavar="NAME",
        help="a container to include (repeatable; default: a project's, or all)",
    )
    c.add_argument("--project", help="the containers of this Surge project")
    c.add_argument(
        "--provider",
        action="append",
        default=None,
        metavar="NAME",
        help="only these state providers (repeatable; default: every installed one)",
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=create, needs_root=True)

    ls = ssub.add_parser("list", aliases=["ls"], help="list snapshots")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=list_snapshots, needs_root=True)

    r = ssub.add_parser("restore", help="restore a snapshot: all providers or none")
    r.add_argument("name")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=restore, needs_root=True)

    d = ssub.add_parser("delete", aliases=["rm"], help="delete snapshots")
    d.add_argument("names", nargs="+")
    d.set_defaults(handler=delete, needs_root=True)

    pr = ssub.add_parser("prune", help="delete the snapshots no keep rule keeps")
    for rule in ("last", "hourly", "daily", "weekly", "monthly"):
        pr.add_argument(f"--keep-{rule}", type=int, default=None, metavar="N")
    pr.add_argument("--project", help="only this project's snapshots")
    pr.add_argument(
        "--all", action="store_true", help="manual snapshots too (default: automatic ones)"
    )
    pr.add_argument("--dry-run", action="store_true", help="show what would be deleted")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=prune, needs_root=True)


def _repair(args: argparse.Namespace) -> None:
    from bolt.capsules.snapshots import repair, run

    run(repair(args.root))


def _progress(args: argparse.Namespace) -> Any:
    if args.json:
        return None
    return lambda provider, message: print(f"{provider}: {message}", file=sys.stderr)


def create(args: argparse.Namespace) -> int:
    from bolt.capsules.snapshots import Snapshot, run

    snap = run(
        Snapshot.create(
            args.name,
            containers=args.container,
            project=args.project,
            providers=args.provider,
            root=args.root,
            progress=_progress(args),
        )
    )
    if args.json:
        print(json.dumps(snap.summary(), indent=2))
    else:
        print(f"created snapshot {snap.name} ({', '.join(snap.providers)})")
    return 0


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def list_snapshots(args: argparse.Namespace) -> int:
    from bolt.capsules.snapshots import listing
    from bolt.registry.progress import human_size

    _repair(args)
    rows = listing(args.root)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<32} {'CREATED':<24} {'TRIGGER':<20} {'SIZE':>10}  PROVIDERS")
    for r in rows:
        if "damaged" in r:
            print(f"{r['name']:<32} DAMAGED: {r['damaged']}")
            continue
        print(
            f"{r['name']:<32} {_when(r['created']):<24} {r['trigger']:<20} "
            f"{human_size(r['size']):>10}  {', '.join(r['providers'])}"
        )
    return 0


def restore(args: argparse.Namespace) -> int:
    from bolt.capsules.snapshots import Snapshot, run

    _repair(args)
    report = run(Snapshot.get(args.name, root=args.root).restore(_progress(args)))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"restored snapshot {args.name} ({', '.join(report.providers)})")
    return 0


def delete(args: argparse.Namespace) -> int:
    from bolt.capsules.snapshots import Snapshot
    from bolt.cli import for_each

    _repair(args)

    def remove(name: str) -> str:
        Snapshot.delete(name, root=args.root)
        return f"deleted snapshot {name}"

    return for_each(args.names, remove)


def prune(args: argparse.Namespace) -> int:
    from bolt.capsules import retention

    table = {
        f"keep_{rule}": getattr(args, f"keep_{rule}")
        for rule in ("last", "hourly", "daily", "weekly", "monthly")
        if getattr(args, f"keep_{rule}") is not None
    }
    try:
        policy = retention.SnapshotPolicy.from_table(table, where="prune")
    except retention.PolicyError as err:
        flag = "--" + err.key.removeprefix("prune.").replace("_", "-")
        from bolt.errors import InvalidInput

        raise InvalidInput(err.message.replace(err.key, flag, 1)) from None
    if not policy.keeps_something:
        from bolt.errors import InvalidInput

        raise InvalidInput(
            "prune needs at least one keep rule; nothing was deleted",
            hint="e.g. --keep-last 5 or --keep-daily 7",
        )
    _repair(args)
    doomed = retention.prune(
        policy,
        project=args.project,
        include_manual=args.all,
        dry_run=args.dry_run,
        root=args.root,
    )
    if args.json:
        print(json.dumps({"deleted": [] if args.dry_run else doomed, "would_delete": doomed}))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        for name in doomed:
            print(f"{verb} snapshot {name}")
    return 0
