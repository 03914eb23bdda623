"""The post-install health check, run as a fresh process (``python -m
nvcontrol.ct.update_health --window S``) so that NVML loads the driver just installed
rather than one an older session holds.  Prints one :class:`HealthSample` as JSON; the
verdict is :func:`nvcontrol.ct.update_core.judge_health`'s.

It looks at what a driver that did not come up shows: nvmlInit failing, fewer GPUs than
before, GPUs that do not answer, and Xid errors during the window (NVML's event API).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from nvcontrol.ct.update_core import HealthSample


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def sample(window_s: float) -> HealthSample:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        return HealthSample(str(err), None, 0)
    try:
        version = _text(pynvml.nvmlSystemGetDriverVersion())
        count = pynvml.nvmlDeviceGetCount()
        lost: list[str] = []
        events = pynvml.nvmlEventSetCreate()
        handles: dict[Any, int] = {}
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                pynvml.nvmlDeviceGetName(handle)
                pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
                pynvml.nvmlDeviceRegisterEvents(
                    handle, pynvml.nvmlEventTypeXidCriticalError, events
                )
                handles[_text(pynvml.nvmlDeviceGetUUID(handle))] = index
            except pynvml.NVMLError as err:
                lost.append(f"{index} ({err})")
        xids: list[tuple[int, int]] = []
        deadline = time.monotonic() + window_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = pynvml.nvmlEventSetWait_v2(events, max(1, int(left * 1000)))
            except pynvml.NVMLError_Timeout:
                break
            uuid = _text(pynvml.nvmlDeviceGetUUID(data.device))
            xids.append((handles.get(uuid, -1), int(data.eventData)))
        pynvml.nvmlEventSetFree(events)
        return HealthSample(None, version, count, tuple(lost), tuple(xids))
    finally:
        pynvml.nvmlShutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvcontrol.ct.update_health")
    parser.add_argument("--window", type=float, default=2.0)
    args = parser.parse_args(argv)
    print(json.dumps(asdict(sample(args.window))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
