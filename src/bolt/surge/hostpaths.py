"""Host paths a Boltfile names for the GPU driver, resolved on the host at hand.

The seed's gpu-manager names ``/dev/nvidia0``, ``/dev/nvidiactl``..., a bind of
``/usr/lib/x86_64-linux-gnu/libnvidia-ml.so`` and read-only binds of kernel trees
(``/sys/class/drm``, ``/lib/modules``, ``/usr/src``).  On a machine with the NVIDIA driver
these exist as written and nothing changes.  Where one is missing:

* a ``/dev/nvidia*`` node comes from the driver's device directory (on nvsim, the
  instance's ``dev/``), at the same path inside the container;
* a ``libnvidia-ml.so*`` bind takes the library NVML actually loads (nvsim's, on nvsim);
* a read-only bind of a kernel tree the host does not have is left out, with a warning
  (a container's view of a kernel tree that does not exist is empty either way).

Everything else is untouched, so a wrong path still fails where it is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from functools import cache

from bolt.runtime.intent import MountIntent

KERNEL_TREES = ("/sys/", "/lib/modules", "/usr/src", "/proc/")
_warned: set[str] = set()


def _warn(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        print(f"warning: {text}", file=sys.stderr, flush=True)


@cache
def _driver() -> tuple[str, str] | None:
    """(device directory, library path) of the NVML driver, or None without one."""
    try:
        from bolt.runtime.gpu.nvidia import NvidiaGpu

        driver = NvidiaGpu.driver()
    except Exception:  # no driver: nothing to resolve against; the paths stay as written
        return None
    return driver.dev_dir, driver.library


def devices(names: Iterable[str]) -> tuple[str, ...]:
    out = []
    for text in names:
        host, sep, rest = text.partition(":")
        if host.startswith("/dev/nvidia") and not os.path.exists(host):
            found = _driver()
            if found is not None:
                candidate = os.path.join(found[0], os.path.basename(host))
                if candidate != host and os.path.exists(candidate):
                    container = rest if rest.startswith("/") else host
                    perms = "" if rest.startswith("/") or not sep else f":{rest}"
                    text = f"{candidate}:{container}{perms}"
        out.append(text)
    return tuple(out)


def mounts(items: Iterable[MountIntent]) -> tuple[MountIntent, ...]:
    out = []
    for m in items:
        if m.kind == "bind" and m.source and not os.path.exists(m.source):
            if os.path.basename(m.source).startswith("libnvidia-ml.so"):
                found = _driver()
                if found is not None:
                    m = m._replace(source=found[1])
            elif m.readonly and (m.source + "/").startswith(KERNEL_TREES):
                _warn(f"this host has no {m.source}: {m.destination} is not mounted")
                continue
        out.append(m)
    return tuple(out)
