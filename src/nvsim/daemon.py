"""The tick loop: moves every GPU of one nvsim instance forward in time.

``nvsim up`` starts ``python -m nvsim.daemon STATE_DIR`` in its own session with its
output in ``STATE_DIR/daemon.log``.  Ten times a second the daemon takes the state file's
lock, runs :func:`nvsim.model.step` on each GPU with the elapsed real time multiplied by
``header.time_scale``, appends the events the model returned, and stamps ``tick_us``
(the lock moves the ``seq`` seqlock on by two per tick).  It exits on SIGTERM/SIGINT, when the state file is removed or replaced, or when
another daemon has taken the instance over; on a clean exit it clears ``daemon_pid``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from nvsim import instance, layout, model
from nvsim.state import StateFile, StateFileError, append_event

TICK_HZ = 10
MAX_REAL_DT_S = 10.0  # after a long stop (SIGSTOP, suspend) do not replay hours of physics


def now_us() -> int:
    return time.time_ns() // 1000


XID_GSP_TIMEOUT = 119  # what a broken driver install looks like (see nvsim.driver)
DRIVER_XID_PERIOD_US = 1_000_000


def _driver_xid(gpu: layout.Gpu, time_us: int) -> bool:
    """A driver installed with ``fault = "xid"`` reports Xid 119 on GPU 0 each second."""
    if gpu.event_head:
        last = gpu.events[(gpu.event_head - 1) % layout.EVENT_RING]
        recent = time_us - last.time_us < DRIVER_XID_PERIOD_US
        if last.type == layout.EVENT_XID_CRITICAL and last.data == XID_GSP_TIMEOUT and recent:
            return False
    append_event(gpu, layout.EVENT_XID_CRITICAL, XID_GSP_TIMEOUT, time_us)
    gpu.xid_count += 1
    return True


def tick(sf: StateFile, dt: float, time_us: int) -> int:
    """One step of every GPU under the lock; returns how many events were appended."""
    appended = 0
    with sf.lock():
        for gpu in sf.gpus():
            for event in model.step(gpu, dt, time_us):
                append_event(gpu, event.type, event.data, event.time_us)
                appended += 1
        gpus = sf.gpus()
        if sf.header.driver_fault & layout.DRIVER_FAULT_XID and gpus:
            appended += _driver_xid(gpus[0], time_us)
        sf.header.tick_us = time_us
    return appended


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} nvsim-daemon[{os.getpid()}]: {message}", flush=True)


def run(state_dir: Path) -> int:
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        sf = StateFile.open(state_dir)
    except StateFileError as err:
        _log(f"cannot start: {err}")
        return 1
    pid = os.getpid()
    sf.header.daemon_pidns = instance.pid_namespace()
    sf.header.daemon_pid = pid
    _log(f"ticking {len(sf.gpus())} GPU(s) in {state_dir} at {TICK_HZ} Hz")
    period = 1.0 / TICK_HZ
    last = time.monotonic()
    reason = "stopped"
    try:
        while not stopping:
            if sf.replaced():
                reason = "state file removed"
                break
            if sf.header.daemon_pid != pid:
                reason = f"instance taken over by pid {sf.header.daemon_pid}"
                break
            now = time.monotonic()
            real_dt = min(MAX_REAL_DT_S, now - last)
            last = now
            scale = sf.header.time_scale if sf.header.time_scale > 0 else 1.0
            tick(sf, real_dt * scale, now_us())
            time.sleep(max(0.0, period - (time.monotonic() - now)))
        if stopping:
            reason = f"signal {signal.Signals(stopping[0]).name}"
    finally:
        if not sf.replaced() and sf.header.daemon_pid == pid:
            sf.header.daemon_pid = 0
        sf.close()
        _log(f"exiting: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nvsim.daemon STATE_DIR", file=sys.stderr)
        return 2
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
