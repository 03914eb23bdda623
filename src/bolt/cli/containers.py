"""``bolt ps|logs|exec|stop|kill|rm|inspect|wait``: container commands over the engine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=ps, needs_root=True)

    p = sub.add_parser("logs", help="show a container's output")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, metavar="N")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("--json", action="store_true", help="the raw JSON lines")
    p.add_argument("name")
    p.set_defaults(handler=logs, needs_root=True)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("name")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(handler=exec_, needs_root=True)

    p = sub.add_parser("start", help="run stopped containers again")
    p.add_argument("-a", "--attach", action="store_true", help="attach; exit with its code")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=start, needs_root=True)

    p = sub.add_parser("stop", help="stop containers (stop signal, then SIGKILL)")
    p.add_argument("-t", "--time", type=float, default=10, help="seconds before SIGKILL")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=stop, needs_root=True)

    p = sub.add_parser("kill", help="send a signal to containers")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=kill, needs_root=True)

    p = sub.add_parser("rm", help="remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill running ones first")
    p.add_argument("-v", "--volumes", action="store_true", help="also remove anonymous volumes")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=rm, needs_root=True)

    p = sub.add_parser("inspect", help="a container's details as JSON")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=inspect, needs_root=True)

    p = sub.add_parser("wait", help="wait for containers to exit; print their exit codes")
    p.add_argument("--json", action="store_true", help="one JSON line per container")
    p.add_argument("names", nargs="+")
    p.set_defaults(handler=wait, needs_root=True)


def _db(args: argparse.Namespace) -> Any:
    from bolt.state.db import StateDB

    return StateDB(args.root)


def describe(row: Any) -> dict[str, Any]:
    return dict(row.describe())


def _status_text(d: dict[str, Any]) -> str:
    if d["status"] in ("running", "paused"):
        up = int(time.time() - (d["started"] or d["created"]))
        text = f"Up {up}s"
        if d["status"] == "paused":
            text += " (Paused)"
        elif d.get("health"):
            text += f" ({d['health']})"
        if not d["supervised"]:
            text += " (monitor lost)"
    elif d["status"] == "exited":
        code = "?" if d["exit_code"] is None else d["exit_code"]
        text = f"Exited ({code})"
    else:
        text = d["status"].capitalize()
    if d.get("restart_count"):
        text += f" restarts={d['restart_count']}"
    return text


def ps(args: argparse.Namespace) -> int:
    from bolt.engine.containers import is_live, reconcile

    db = _db(args)
    rows = [reconcile(args.root, db, r) for r in db.all()]
    rows = [r for r in rows if r.status != "removed"]
    if not args.all:
        rows = [r for r in rows if is_live(r)]
    items = [describe(r) for r in rows]
    if args.json:
        print(json.dumps(items, indent=2))
    elif args.quiet:
        for d in items:
            print(d["id"][:12])
    else:
        print(f"{'CONTAINER ID':<14}{'IMAGE':<24}{'COMMAND':<24}{'STATUS':<22}NAMES")
        for d in items:
            cmd = " ".join(d["command"])
            cmd = cmd if len(cmd) <= 22 else cmd[:19] + "..."
            print(
                f"{d['id'][:12]:<14}{d['image'][:23]:<24}{cmd:<24}{_status_text(d):<22}{d['name']}"
            )
    return 0


def logs(args: argparse.Namespace) -> int:
    from bolt.engine.logs import follow_lines

    db = _db(args)
    row = db.get(args.name)
    for record in follow_lines(args.root, db, row, tail=args.tail, follow=args.follow):
        if args.json:
            sys.stdout.write(json.dumps(record) + "\n")
        else:
            text = record["log"]
            if args.timestamps:
                text = f"{record['time']} {text}"
            stream = sys.stdout if record["stream"] == "stdout" else sys.stderr
            stream.write(text)
        if args.follow:
            sys.stdout.flush()
    return 0


def exec_(args: argparse.Namespace) -> int:
    from bolt.engine.operations import exec_replace
    from bolt.errors import InvalidInput

    if not args.cmd:
        raise InvalidInput("exec: no command given", hint="bolt exec NAME CMD...")
    db = _db(args)
    row = db.get(args.name)
    exec_replace(
        args.root,
        db,
        row,
        args.cmd,
        env=args.env,
        cwd=args.workdir,
        user=args.user,
        tty=args.tty,
        interactive=args.interactive,
    )
    return 1  # not reached: the process became the runtime's exec


def _each(args: argparse.Namespace, action: Any) -> int:
    from bolt.cli import for_each

    db = _db(args)
    return for_each(args.names, lambda name: action(db, db.get(name)))


def start(args: argparse.Namespace) -> int:
    from bolt.cli.run import Attached
    from bolt.errors import BoltError, InvalidInput, render

    if args.attach and len(args.names) > 1:
        raise InvalidInput("start -a attaches to one container", hint="give one name")
    if args.attach:
        launched = _start(args, args.names[0])
        if launched is None:
            raise InvalidInput("start -a: the container was only created; it is now running")
        tty = bool(launched.row.details_dict.get("tty"))
        with launched.sock:
            return Attached(launched.sock, interactive=False, tty=tty).run(
                detach=False, cid=launched.row.id
            )

    failed = 0
    for name in args.names:  # no database connection may be open across the monitor's fork
        try:
            launched = _start(args, name)
            if launched is not None:
                with launched.sock:
                    Attached(launched.sock, interactive=False, tty=False).wait_started()
        except BoltError as err:
            print(render(err), file=sys.stderr)
            failed = failed or int(err.exit_code)
            continue
        print(name)
    return failed


def _start(args: argparse.Namespace, name: str) -> Any:
    """Start a created container (None), or run a stopped one again (its launch)."""
    from bolt.engine.containers import reconcile, start_again, start_created

    db = _db(args)
    try:
        row = reconcile(args.root, db, db.get(name))
        if row.status == "created":
            start_created(args.root, db, row)
            return None
    finally:
        db.close()  # no database connection may be open across the monitor's fork
    return start_again(args.root, row.id)


def stop(args: argparse.Namespace) -> int:
    from bolt.engine import containers as engine

    def one(db: Any, row: Any) -> str:
        engine.stop(args.root, db, row, args.time)
        return str(row.name)

    return _each(args, one)


def kill(args: argparse.Namespace) -> int:
    from bolt.engine import containers as engine
    from bolt.runtime.flags import signal_number

    signal_number(args.signal, "--signal")  # refused before any container is touched

    def one(db: Any, row: Any) -> str:
        engine.kill(args.root, db, row, args.signal)
        return str(row.name)

    return _each(args, one)


def rm(args: argparse.Namespace) -> int:
    from bolt.engine import containers as engine

    def one(db: Any, row: Any) -> str:
        engine.remove(args.root, db, row, args.force, args.volumes)
        return str(row.name)

    return _each(args, one)


def wait(args: argparse.Namespace) -> int:
    from bolt.engine import containers as engine

    def one(db: Any, row: Any) -> str:
        code = engine.wait(args.root, db, row)
        if args.json:
            return json.dumps({"name": row.name, "id": row.id, "exit_code": code})
        return "unknown" if code is None else str(code)

    return _each(args, one)


def inspect(args: argparse.Namespace) -> int:
    from bolt.engine.containers import reconcile
    from bolt.runtime.layout import ContainerDir

    db = _db(args)
    out = []
    for name in args.names:
        row = reconcile(args.root, db, db.get(name))
        item = describe(row)
        cdir = ContainerDir.of(args.root, row.id)
        item["details"] = row.details_dict
        item["bundle"] = str(cdir.bundle)
        item["log_path"] = str(cdir.log)
        try:
            item["config"] = json.loads(cdir.config.read_text())
        except (OSError, ValueError):
            item["config"] = None
        out.append(item)
    print(json.dumps(out, indent=2))
    return 0
