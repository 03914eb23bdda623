"""``bolt pause|unpause|stats|top|events|port|rename|cp``: over the Engine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def register(sub: Any) -> None:
    for verb, text in (("pause", "freeze containers' processes"), ("unpause", "thaw them")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("names", nargs="+")
        p.set_defaults(handler=pause if verb == "pause" else unpause, needs_root=True)

    p = sub.add_parser("stats", help="CPU, memory, pids and network I/O of containers")
    p.add_argument("--no-stream", action="store_true", help="one sample, then exit")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.add_argument("names", nargs="*", help="default: every running container")
    p.set_defaults(handler=stats, needs_root=True)

    p = sub.add_parser("top", help="a container's processes")
    p.add_argument("--json", action="store_true")
    p.add_argument("name")
    p.set_defaults(handler=top, needs_root=True)

    p = sub.add_parser("events", help="container events as they happen")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.add_argument("--since", metavar="TIME", help="unix time, or a duration ago (10m)")
    p.add_argument("--until", metavar="TIME", help="stop at this time (unix time, or 'now')")
    p.set_defaults(handler=events, needs_root=True)

    p = sub.add_parser("port", help="a container's published ports")
    p.add_argument("name")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]")
    p.set_defaults(handler=port, needs_root=True)

    p = sub.add_parser("rename", help="rename a container")
    p.add_argument("name")
    p.add_argument("new_name")
    p.set_defaults(handler=rename, needs_root=True)

    p = sub.add_parser("cp", help="copy files between a running container and the host")
    p.add_argument("source", metavar="SRC", help="HOST_PATH or CONTAINER:PATH")
    p.add_argument("dest", metavar="DEST", help="HOST_PATH or CONTAINER:PATH")
    p.set_defaults(handler=cp, needs_root=True)


def _engine(args: argparse.Namespace) -> Any:
    from bolt.engine.api import Engine

    return Engine(args.root)


def _each(args: argparse.Namespace, method: str) -> int:
    from bolt.cli import for_each

    def act(name: str) -> str:
        getattr(eng, method)(name)
        return name

    with _engine(args) as eng:
        return for_each(args.names, act)


def pause(args: argparse.Namespace) -> int:
    return _each(args, "pause")


def unpause(args: argparse.Namespace) -> int:
    return _each(args, "unpause")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def stats(args: argparse.Namespace) -> int:
    from bolt.engine import containers as lifecycle
    from bolt.engine import stats as usage

    with _engine(args) as eng:
        db = eng.db
        rows = [lifecycle.reconcile(args.root, db, db.get(n)) for n in args.names] or [
            r for r in (lifecycle.reconcile(args.root, db, r) for r in db.all())
            if r.status in ("running", "paused")
        ]  # fmt: skip
        before = {r.id: usage.sample(r) for r in rows}
        while True:
            time.sleep(0.5 if args.no_stream else 1.0)
            now = {r.id: usage.sample(r) for r in rows}
            result = [usage.between(before[cid], now[cid]) for cid in now]
            if args.json:
                for s in result:
                    print(json.dumps(s._asdict()))
            else:
                print(f"{'CONTAINER ID':<14}{'NAME':<20}{'CPU %':>8}  {'MEM USAGE / LIMIT':<24}"
                      f"{'PIDS':>6}  NET I/O")  # fmt: skip
                for s in result:
                    mem = f"{_size(s.memory)} / {_size(s.memory_limit)}"
                    print(f"{s.id[:12]:<14}{s.name[:19]:<20}{s.cpu_percent:>7.2f}%  {mem:<24}"
                          f"{s.pids:>6}  {_size(s.net_rx)} / {_size(s.net_tx)}")  # fmt: skip
            sys.stdout.flush()
            if args.no_stream:
                return 0
            before = now


def top(args: argparse.Namespace) -> int:
    from bolt.engine import stats as usage
    from bolt.errors import InvalidInput

    with _engine(args) as eng:
        info = eng.inspect(args.name)
        if info.status not in ("running", "paused"):
            raise InvalidInput(f"container {info.name} is {info.status}, not running")
        rows = [usage.process_row(p) for p in usage.processes(eng.db.get(info.id))]
    procs = [r for r in rows if r is not None]
    if args.json:
        print(json.dumps(procs, indent=2))
        return 0
    print(f"{'PID':>8} {'UID':>6} {'S':1} {'TIME':>8}  COMMAND")
    for r in procs:
        print(f"{r['pid']:>8} {r['uid']:>6} {r['state']} {r['cpu_seconds']:>7.2f}s  {r['command']}")  # type: ignore[arg-type]
    return 0


def _when(text: str | None, flag: str) -> float | None:
    from bolt.runtime.flags import parse_duration
    from bolt.runtime.intent import IntentError

    if text is None:
        return None
    if text == "now":
        return time.time()
    try:
        value = float(text)
        if value > 1e9:
            return value
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(text, flag)
    except IntentError:
        raise IntentError(flag, f"{text!r} is not a unix time or a duration (10m)") from None


def events(args: argparse.Namespace) -> int:
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    with _engine(args) as eng:
        for ev in eng.events(since=since, follow=until is None or until > time.time()):
            if until is not None and ev.time > until:
                break
            if args.json:
                print(json.dumps({"time": ev.time, "id": ev.id, "name": ev.name,
                                  "type": ev.type, "attributes": ev.attributes}))  # fmt: skip
            else:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ev.time))
                attrs = ", ".join(f"{k}={v}" for k, v in ev.attributes.items())
                print(
                    f"{stamp}Z container {ev.type} {ev.id[:12]} ({ev.name}{', ' + attrs if attrs else ''})"
                )
            sys.stdout.flush()
    return 0


def port(args: argparse.Namespace) -> int:
    from bolt.errors import NotFound

    with _engine(args) as eng:
        info = eng.inspect(args.name)
    wanted = None
    if args.port:
        number, _, proto = args.port.partition("/")
        wanted = (int(number) if number.isdigit() else -1, proto or "tcp")
    shown = 0
    for p in info.ports:
        if wanted and (p["container_port"], p["protocol"]) != wanted:
            continue
        host = p["host_ip"] or "0.0.0.0"
        prefix = "" if wanted else f"{p['container_port']}/{p['protocol']} -> "
        print(f"{prefix}{host}:{p['host_port']}")
        shown += 1
    if wanted and not shown:
        raise NotFound(f"no public port {args.port} published for {info.name}")
    return 0


def rename(args: argparse.Namespace) -> int:
    from bolt.engine import operations

    with _engine(args) as eng:
        operations.rename(eng.root, eng.db, eng.db.get(args.name), args.new_name)
    return 0


def cp(args: argparse.Namespace) -> int:
    from bolt.engine import copy
    from bolt.errors import InvalidInput

    src, dst = copy.split(args.source), copy.split(args.dest)
    if (src[0] is None) == (dst[0] is None):
        raise InvalidInput("cp: exactly one of SRC and DEST is CONTAINER:PATH")
    with _engine(args) as eng:
        if src[0] is not None:
            copy.from_container(eng, src[0], src[1], dst[1])
        else:
            copy.to_container(eng, src[1], dst[0], dst[1])  # type: ignore[arg-type]
    return 0
