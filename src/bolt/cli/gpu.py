"""``bolt gpu list`` and ``bolt gpu cdi generate``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("gpu", help="NVIDIA GPUs for containers")
    gsub = p.add_subparsers(dest="gpu_command", metavar="COMMAND")
    gsub.required = True
    ls = gsub.add_parser("list", help="GPUs the driver reports")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=gpu_list)
    cdi = gsub.add_parser("cdi", help="Container Device Interface specs")
    csub = cdi.add_subparsers(dest="cdi_command", metavar="COMMAND")
    csub.required = True
    gen = csub.add_parser("generate", help="write the nvidia.com/gpu CDI spec from NVML")
    gen.add_argument("--output", "-o", help="file to write (default: stdout)")
    gen.set_defaults(handler=cdi_generate)
    cls = csub.add_parser("list", help="CDI device names Bolt can resolve")
    cls.add_argument("--json", action="store_true")
    cls.set_defaults(handler=cdi_list)


def gpu_list(args: argparse.Namespace) -> int:
    from bolt.runtime.gpu.nvidia import NvidiaGpu

    gpus = NvidiaGpu.discover()
    if args.json:
        print(json.dumps([g.to_json() for g in gpus], indent=2))
        return 0
    for g in gpus:
        print(f"GPU {g.index}: {g.name} (UUID: {g.uuid}) /dev/nvidia{g.minor}")
    return 0


def cdi_generate(args: argparse.Namespace) -> int:
    from bolt.runtime.gpu.nvidia import NvidiaGpu, write_spec

    text = json.dumps(NvidiaGpu.cdi_spec(), indent=2) + "\n"
    if args.output:
        write_spec(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cdi_list(args: argparse.Namespace) -> int:
    from bolt.runtime import cdi

    registry = cdi.load_registry()
    names = sorted(f"{kind}={dev}" for kind, spec in registry.items() for dev in spec.devices)
    if args.json:
        print(json.dumps(names))
    else:
        for n in names:
            print(n)
    return 0
