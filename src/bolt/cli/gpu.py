"""``bolt gpu list`` and ``bolt gpu cdi generate``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from basis.errors import ExitCode


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
    """Every GPU the driver lists; a lost GPU (fallen off the bus) is shown as lost, never
    hiding the healthy ones, and the command then exits with GPU_LOST (6)."""
    from bolt.runtime.gpu.nvidia import NvidiaGpu

    try:
        rows = [{**g.to_json(), "lost": False} for g in NvidiaGpu.discover()]
    except Exception as err:  # only a lost GPU is handled here; anything else propagates
        if "GpuIsLost" not in type(err).__name__:
            raise
        rows = _list_around_lost_gpus()
    if args.json:
        print(json.dumps(rows, indent=2))
    for g in rows:
        if args.json:
            break
        if g["lost"]:
            print(f"GPU {g['index']}: LOST, fallen off the bus (UUID: {g['uuid']})")
        else:
            print(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']}) /dev/nvidia{g['minor']}")
    lost = [g for g in rows if g["lost"]]
    if lost:
        names = ", ".join(f"GPU {g['index']} ({g['uuid']})" for g in lost)
        print(
            f"error: {names} lost (fallen off the bus); the other GPUs are listed\n"
            "hint: the GPU needs a reset (on nvsim: `nvsim reset`; on hardware: a reboot)",
            file=sys.stderr,
        )
        return int(ExitCode.GPU_LOST)
    return 0


def _list_around_lost_gpus() -> list[dict[str, Any]]:
    """GPU by GPU, so that one lost GPU (which still answers with its UUID and bus id)
    leaves the others listed."""
    from bolt.runtime.gpu.nvidia import NvidiaGpu, _nvml, _text

    rows: list[dict[str, Any]] = []
    with _nvml() as nv:
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            uuid = _text(nv.nvmlDeviceGetUUID(h))
            bus = _text(nv.nvmlDeviceGetPciInfo(h).busId)
            try:
                name = _text(nv.nvmlDeviceGetName(h))
                memory = int(nv.nvmlDeviceGetMemoryInfo(h).total)
                try:
                    minor = int(nv.nvmlDeviceGetMinorNumber(h))
                except nv.NVMLError:
                    minor = i
            except nv.NVMLError as err:
                if err.value != nv.NVML_ERROR_GPU_IS_LOST:
                    raise
                rows.append({"index": i, "uuid": uuid, "pci_bus_id": bus, "lost": True})
                continue
            gpu = NvidiaGpu(i, uuid, name, minor, bus, memory)
            rows.append({**gpu.to_json(), "lost": False})
    return rows


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
