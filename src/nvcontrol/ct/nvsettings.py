"""An ``nvidia-settings -a`` for the gpu-manager image: the seed's overclock command
(``nvidia-settings -a '[gpu:0]/GPUMemoryTransferRateOffset[3]=1000'``) applied through
``nvctl overclock apply``, an nvcontrol transaction (read back, rolled back on failure).

Only the two clock-offset attributes are understood, at the highest performance level
(``[3]``, NVML's P0); anything else exits 2 with nothing changed.  The transfer rate
counts twice the memory clock, so ``GPUMemoryTransferRateOffset=1000`` is NVML's
``--memory-offset 500``.
"""

from __future__ import annotations

import re
import subprocess
import sys

ASSIGNMENT = re.compile(
    r"^\[gpu:(?P<gpu>\d+)\]/(?P<attr>GPUGraphicsClockOffset|GPUMemoryTransferRateOffset)"
    r"\[(?P<level>\d+)\]=(?P<value>-?\d+)$"
)
TOP_LEVEL = 3


def to_nvctl(assignment: str) -> list[str]:
    """The ``nvctl overclock apply`` arguments for one ``-a`` assignment; ValueError when
    it is not one this shim understands."""
    m = ASSIGNMENT.match(assignment.strip())
    if m is None:
        raise ValueError(
            f"{assignment!r}: expected [gpu:N]/GPUGraphicsClockOffset[3]=MHZ or "
            "[gpu:N]/GPUMemoryTransferRateOffset[3]=MHZ"
        )
    if int(m["level"]) != TOP_LEVEL:
        raise ValueError(f"{assignment!r}: only performance level [{TOP_LEVEL}] (P0) is supported")
    value = int(m["value"])
    if m["attr"] == "GPUGraphicsClockOffset":
        offset = ["--gpu-offset", str(value)]
    else:
        offset = ["--memory-offset", str(value // 2)]
    return ["nvctl", "overclock", "apply", "-i", m["gpu"], *offset, "--pstate", "P0",
            "--no-confirm", "--window", "0"]  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("-a", "--assign"):
        print("usage: nvidia-settings -a '[gpu:N]/ATTRIBUTE[3]=VALUE'", file=sys.stderr)
        return 2
    try:
        command = to_nvctl(argv[1])
    except ValueError as err:
        print(f"nvidia-settings: {err}", file=sys.stderr)
        return 2
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
