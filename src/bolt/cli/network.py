"""``bolt network create|ls|inspect|rm|prune``: user networks (bridges, DNS, ports)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("network", help="user networks (bridge + DNS via netavark)")
    nsub = p.add_subparsers(dest="network_command", metavar="COMMAND")
    nsub.required = True
    c = nsub.add_parser("create", help="define a network")
    c.add_argument("--subnet", metavar="CIDR", help="IPv4 subnet (default: a free /24)")
    c.add_argument("--internal", action="store_true", help="no route out of the network")
    c.add_argument("-l", "--label", action="append", default=[], metavar="K=V")
    c.add_argument("name")
    c.set_defaults(handler=create, needs_root=True)
    ls = nsub.add_parser("ls", help="list networks")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.set_defaults(handler=ls_, needs_root=True)
    i = nsub.add_parser("inspect", help="networks' details as JSON")
    i.add_argument("names", nargs="+")
    i.set_defaults(handler=inspect, needs_root=True)
    r = nsub.add_parser("rm", help="remove networks (no container may use them)")
    r.add_argument("names", nargs="+")
    r.set_defaults(handler=rm, needs_root=True)
    pr = nsub.add_parser("prune", help="remove every network no container uses")
    pr.set_defaults(handler=prune, needs_root=True)


def _engine(args: argparse.Namespace) -> Any:
    from bolt.engine.api import Engine

    return Engine(args.root)


def create(args: argparse.Namespace) -> int:
    from bolt.cli.run import _labels

    with _engine(args) as eng:
        net = eng.network_create(args.name, args.subnet, args.internal, _labels(args.label))
    print(net.name)
    return 0


def ls_(args: argparse.Namespace) -> int:
    with _engine(args) as eng:
        nets = eng.network_list()
    if args.json:
        print(json.dumps([n.describe() for n in nets], indent=2))
    elif args.quiet:
        for n in nets:
            print(n.name)
    else:
        print(f"{'NAME':<20}{'SUBNET':<20}{'BRIDGE':<16}{'CONTAINERS':<11}INTERNAL")
        for n in nets:
            print(f"{n.name:<20}{n.subnet:<20}{n.bridge:<16}{len(n.containers):<11}{n.internal}")
    return 0


def inspect(args: argparse.Namespace) -> int:
    with _engine(args) as eng:
        print(json.dumps([eng.network_inspect(n).describe() for n in args.names], indent=2))
    return 0


def rm(args: argparse.Namespace) -> int:
    with _engine(args) as eng:
        for n in args.names:
            eng.network_remove(n)
            print(n)
    return 0


def prune(args: argparse.Namespace) -> int:
    from bolt.engine import networks

    with _engine(args) as eng:
        for n in networks.prune(eng.root, eng.db):
            print(n)
    return 0
