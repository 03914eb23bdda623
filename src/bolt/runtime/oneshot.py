"""The one way to run a spec to completion without a monitor: ``run_spec`` writes the
bundle, starts ``<runtime> run`` in the foreground (``OciRuntime.spawn``, as the monitor
does), hands each line of output (stdout and stderr together) to the caller, and returns
the exit code, leaving no runtime state, cgroup or bundle behind.

``bolt build``'s RUN steps and the runtime probe use it; a container with a record in
the state database runs through ``Engine.run_oneshot`` instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bolt.errors import BoltError
from bolt.runtime.cgroups import kill_cgroups
from bolt.runtime.driver import OciRuntime
from bolt.runtime.spec import ContainerSpec, validate

CID_FILE = "container-id"  # in ``work`` while its container runs (for ``reap``)


def run_spec(
    rt: OciRuntime,
    spec: ContainerSpec,
    work: Path,
    on_output: Callable[[str], None],
    *,
    timeout: float | None = None,
) -> int:
    """Run ``spec`` in the foreground; its exit code (128+N when killed by signal N)."""
    from bolt.runtime.ocispec import generate

    bundle = work / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(generate(validate(spec))))
    (work / CID_FILE).write_text(f"{rt.name} {spec.id}\n")
    read_fd, write_fd = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        try:
            pid = rt.spawn(
                "run", "--bundle", str(bundle), spec.id, stdio=(null, write_fd, write_fd)
            )
        finally:
            os.close(null)
            os.close(write_fd)
        _pump(read_fd, on_output, pid, timeout)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(read_fd)
        with contextlib.suppress(BoltError, OSError):
            rt.delete(spec.id, force=True)
        kill_cgroups(spec.id)
        shutil.rmtree(bundle, ignore_errors=True)
        (work / CID_FILE).unlink(missing_ok=True)


def _pump(fd: int, on_output: Callable[[str], None], pid: int, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    partial = b""
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            raise BoltError(f"the container did not finish within {timeout:g}s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, partial = (partial + chunk).split(b"\n")
        for line in lines:
            on_output(line.decode("utf-8", "replace"))
    if partial:
        on_output(partial.decode("utf-8", "replace"))


def reap(work: Path, root: Path) -> None:
    """Stop and delete the container a killed caller left running in ``work``."""
    from bolt.runtime.driver import make_runtime

    try:
        name, cid = (work / CID_FILE).read_text().split()
    except (OSError, ValueError):
        return
    kill_cgroups(cid)  # SIGKILL everything in its cgroups, then remove them
    with contextlib.suppress(BoltError, OSError):
        make_runtime(name, root).delete(cid, force=True)
    (work / CID_FILE).unlink(missing_ok=True)
