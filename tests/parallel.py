"""Which tests may run beside others, for ``pytest -n 2 --dist loadgroup``.

Tests in ``PARALLEL_DIRS`` keep all their state in their own temporary directories (nvsim
instances, nvctl state and config, agents on ephemeral ports), so they may run while any
other test runs. Everything else touches what a host has once: containers and their
cgroups, netavark's bridges and firewall rules, network namespaces, the ct stack, overlay
mounts. Those all go to one group that a single worker runs one test at a time in file
order, as a serial run would. A new directory is serial until it is listed here, and a
module in ``SERIAL_MODULES`` is serial wherever it lives.

The serial group is handed out first, to one worker; the other worker starts with
``FIRST_MODULES``: work that serial tests later wait for, made while they run.

The groups are made by the scheduler from each test's file, not by ``xdist_group`` marks:
pytest 9 keeps a node's id where xdist 3.8's loadgroup cannot append the group to it, so
marks would be ignored and every test scheduled on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from xdist.scheduler import LoadScopeScheduling

PARALLEL_DIRS = {"nvsim", "nvsim_c", "nvcontrol", "nvcontrol_control", "remote"}
# The run's Debian bootstrap (minutes; debootstrap into a Bolt root of its own, no
# container, network or cgroup): the builder's run-and-build test and the ct stack, both
# serial, load the image it makes (tests/debian_image.py).
FIRST_MODULES = ("tests/bolt_build/test_debootstrap.py",)
PARALLEL_MODULES = {"tests/test_layering.py", *FIRST_MODULES}
SERIAL_MODULES = {
    "tests/remote/test_tunnel_netns.py",  # network namespaces and veths
    # Chromium aborts a page load with ERR_NETWORK_CHANGED when an interface comes or goes,
    # as the serial tests' container veths do: seen when it ran beside them.
    "tests/remote/test_dashboard.py",
}
SERIAL_GROUP = "host"


def group_of(module: str) -> str:
    """The work unit of a test module (its path relative to the repository): the module
    itself when it may run beside others (its module fixtures stay on one worker), else
    the one serial group."""
    parts = module.split("/")
    if module in SERIAL_MODULES:
        return SERIAL_GROUP
    if module in PARALLEL_MODULES or (len(parts) > 2 and parts[1] in PARALLEL_DIRS):
        return module
    return SERIAL_GROUP


class HostGroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with ``group_of`` as the scope: the serial group is handed
    out first, then ``FIRST_MODULES``, then the other modules, biggest first; they fill
    the other worker."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid.split("@", 1)[0].split("::", 1)[0])

    def _assign_work_unit(self, node: object) -> None:
        put_first(self.workqueue)
        super()._assign_work_unit(node)  # type: ignore[arg-type]


def put_first(queue: OrderedDict[str, Any]) -> None:
    """Move the serial group, then ``FIRST_MODULES``, to the head of a work queue."""
    for scope in (*reversed(FIRST_MODULES), SERIAL_GROUP):
        if scope in queue:
            queue.move_to_end(scope, last=False)
