"""A monitor's life: run the container, supervise it, and while its restart policy asks
for it, wait out the back-off and run it again (``bolt.runtime.supervision`` decides).

Restarts and health checks run here, in the per-container monitor that outlives every
CLI (as conmon does for podman): see docs/decisions.md.
"""

from __future__ import annotations

import json
import socket

from bolt.errors import BoltError
from bolt.runtime import attach, linux
from bolt.runtime.monitor import Monitor, MonitorJob, identity
from bolt.state.db import StateDB, now


def serve(job: MonitorJob, attach_sock: socket.socket | None, db: StateDB | None = None) -> int:
    """The monitor's whole life, restarts included; returns its own exit status.  The
    process has already become the monitor (``monitor_start.become_monitor``); ``db``: a
    connection to the job's database it already holds."""
    import time

    restarts, quick_exits = job.restart_count, 0
    while True:
        mon = Monitor(job, attach_sock, db)
        db = None  # the first run's; a restart's monitor opens its own, as it did before
        began = time.monotonic()
        code = run_once(mon)
        if code is None:
            return 1
        policy, max_retries = job.restart[0], job.restart[1]
        if policy == "no":  # the common case: nothing more to load or to ask
            mon.finish(code)
            return 0
        from bolt.runtime.supervision import STEADY_AFTER, restart_delay

        delay = restart_delay(
            str(policy),
            max_retries,
            code,
            restarts,
            quick_exits,
            mon.stopped_by_user(),
        )
        if delay is None:
            mon.finish(code)
            return 0
        quick_exits = quick_exits + 1 if time.monotonic() - began < STEADY_AFTER else 0
        restarts += 1
        mon.between_runs(code, restarts)
        if not mon.sleep_unless_stopped(delay):
            mon.finish(code)
            return 0
        attach_sock = mon.client  # an attached client follows every run
        job = job._replace(start=True, restart_count=restarts)


def run_once(mon: Monitor) -> int | None:
    """Start the container and supervise it; its exit code (None: it never started)."""
    job = mon.job
    try:
        mon.launch()
    except (BoltError, OSError) as exc:
        message = str(exc)
        me = identity()
        row = mon.db.find(job.cid)
        details = {**(row.details_dict if row else {}), "error": message}
        mon.db.update(job.cid, status="failed", finished=now(), details=json.dumps(details), **me)
        mon.cleanup()
        mon.send(attach.ERROR, attach.error_payload(exc))
        mon.sweep()
        return None
    pid_start = linux.proc_start_time(mon.pid)
    status = "running" if job.start else "created"
    changes: dict[str, object] = {
        "status": status,
        "pid": mon.pid,
        "pid_start": pid_start,
        **identity(),
    }
    if job.start:
        changes["started"] = now()
    with mon.db.batch():  # whoever learns it started finds the row and the event so
        mon.db.update(job.cid, **changes)
        if job.start:
            mon.db.add_event(job.cid, mon._name(), "started", pid=mon.pid)
    mon.send(attach.STARTED, json.dumps({"pid": mon.pid, "status": status}).encode())
    if job.healthcheck is not None:
        from bolt.runtime.prober import Prober

        mon.prober = Prober(mon.rt, job.cid, job.healthcheck)
    return mon.supervise()
