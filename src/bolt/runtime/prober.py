"""A monitor's health probes: ``<runtime> exec`` of the check's command every interval,
killed after its timeout; results go to ``bolt.runtime.supervision.HealthState``.

The probe is a child of the monitor, which reaps every child anyway; it hands the probe's
exit status over with ``finished``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from bolt.runtime.driver import SPAWN_DEFAULT_SIGNALS, OciRuntime
from bolt.runtime.supervision import HealthState


class Prober:
    def __init__(self, rt: OciRuntime, cid: str, check: tuple[object, ...]) -> None:
        test, interval, timeout, retries, start_period = check
        words = [str(w) for w in test]  # type: ignore[attr-defined]
        self.args = ["/bin/sh", "-c", words[1]] if words[0] == "CMD-SHELL" else words[1:]
        self.rt = rt
        self.cid = cid
        self.timeout = float(timeout)  # type: ignore[arg-type]
        self.state = HealthState(
            float(interval),  # type: ignore[arg-type]
            int(retries),  # type: ignore[call-overload]
            float(start_period),  # type: ignore[arg-type]
            time.monotonic(),
        )
        self.pid: int | None = None
        self.deadline = 0.0

    def wait(self) -> float:
        """Seconds until the prober has something to do."""
        if self.pid is not None:
            return 0.05  # a running probe's exit is seen by the monitor's reaping
        return max(0.01, self.state.next_at - time.monotonic())

    def tick(self) -> str | None:
        """Start a due probe, or fail one past its timeout; a new status, if any."""
        now = time.monotonic()
        if self.pid is not None:
            if now < self.deadline:
                return None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            return None  # its exit (a kill) is reported through ``finished``
        if self.state.poll(now).run:
            null = os.open(os.devnull, os.O_RDWR)
            try:
                argv = self.rt.exec_argv(self.cid, self.args)
                self.pid = os.posix_spawn(
                    argv[0], argv, os.environ,
                    file_actions=[(os.POSIX_SPAWN_DUP2, null, i) for i in range(3)],
                    setsigdef=SPAWN_DEFAULT_SIGNALS,
                )  # fmt: skip
            except OSError:
                return self.state.result(False, now)
            finally:
                os.close(null)
            self.deadline = now + self.timeout
        return None

    def finished(self, pid: int, status: int) -> tuple[bool, str | None]:
        """Whether ``pid`` was the probe; if so, the new status, if any."""
        if pid != self.pid:
            return False, None
        self.pid = None
        passed = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        return True, self.state.result(passed, time.monotonic())
