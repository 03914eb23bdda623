"""Installing a driver bundle on an instance: switching the virtual driver's version, and
switching back.

An install keeps each driver it has seen under ``$NVSIM_STATE/drivers/VERSION/`` (its
library and nvidia-smi) and records in ``$NVSIM_STATE/driver.json`` which one is current
and which was before it.  The switch itself is two atomic steps: the library and
nvidia-smi are renamed into ``lib/`` and ``bin/``, then the state header (driver, NVML and
CUDA versions, the driver's fault bits, the GPUs it does not bind) changes under the
state file's lock, so a reader sees the old driver or the new one.  The record names
the switch in progress (``pending``) before it starts; a process killed in between
leaves a record the next ``nvsim driver`` command finishes (rolled forward: applying a
driver again is idempotent).  ``rollback`` switches back to the previous driver.

As a real driver does, a bundle binds only the GPUs whose architecture it lists; the
others (and with ``fault = "gpu-missing"`` the last GPU) answer GPU_IS_LOST until a
driver that binds them is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from basis.errors import InvalidInput, UserError
from nvsim import build, bundle, instance, layout
from nvsim.state import StateFile

RECORD = "driver.json"
STORE = "drivers"

Entry = dict[str, Any]


def _record_path(state_dir: Path) -> Path:
    return state_dir / RECORD


def _load(state_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(_record_path(state_dir).read_text())
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise UserError(f"{_record_path(state_dir)} is damaged: {err}") from None
    return doc if isinstance(doc, dict) else None


def _save(state_dir: Path, doc: dict[str, Any]) -> None:
    path = _record_path(state_dir)
    tmp = path.with_name(f".{RECORD}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def _gpu_arch(gpu: layout.Gpu) -> str:
    return bundle.ARCH_NAMES.get(gpu.arch, f"arch{gpu.arch}")


def _first_entry(state_dir: Path, sf: StateFile) -> Entry:
    """The driver ``nvsim up`` installed, kept so that the first install can be undone."""
    version = sf.header.driver_version.decode()
    keep = state_dir / STORE / version
    if not keep.is_dir():
        _keep_files(keep, {bundle.LIBRARY: (state_dir / bundle.LIBRARY).read_bytes(),
                           bundle.SMI: _read_optional(state_dir / bundle.SMI)})  # fmt: skip
    archs = sorted({_gpu_arch(g) for g in sf.gpus()})
    return {"version": version, "branch": sf.header.driver_major, "architectures": archs,
            "fault": None, "unbound": [], "bundle": None, "installed": sf.header.start_us / 1e6}  # fmt: skip


def _read_optional(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _keep_files(directory: Path, files: dict[str, bytes]) -> None:
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)
        os.chmod(tmp / name, 0o755)
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, directory)


def _apply(state_dir: Path, sf: StateFile, entry: Entry, before: Entry | None) -> None:
    """Make ``entry`` the running driver (idempotent)."""
    kept = state_dir / STORE / entry["version"]
    for member, target in ((bundle.LIBRARY, state_dir / "lib" / build.LIB_NAME),
                           (bundle.SMI, state_dir / "bin" / build.SMI_NAME)):  # fmt: skip
        source = kept / member
        if source.is_file() and source.stat().st_size:
            _replace_file(source, target)
    driver = instance.parse_driver(entry["version"])
    fault = entry.get("fault")
    with sf.lock():
        h = sf.header
        h.driver_version = driver.version.encode()
        h.nvml_version = driver.nvml_version.encode()
        h.driver_major, h.driver_minor = driver.major, driver.minor
        h.cuda_version = driver.cuda_version
        h.driver_fault = (layout.DRIVER_FAULT_NVML if fault == "nvml" else 0) | (
            layout.DRIVER_FAULT_XID if fault == "xid" else 0
        )
        for gpu in sf.gpus():
            uuid = gpu.uuid.decode()
            if uuid in entry["unbound"]:
                gpu.lost = layout.LOST_YES
            elif before is not None and uuid in before.get("unbound", []):
                gpu.lost = layout.LOST_NONE  # the old driver did not bind it; this one does


def _replace_file(source: Path, target: Path) -> None:
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.name}.driver.tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


def _repair(state_dir: Path, sf: StateFile, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """Finish a switch a killed process left (roll it forward)."""
    if doc is None or not doc.get("pending"):
        return doc
    pending = doc["pending"]
    _apply(state_dir, sf, pending["to"], pending.get("from"))
    done = {"current": pending["to"], "previous": pending.get("from"), "pending": None}
    _save(state_dir, done)
    return done


def _current(state_dir: Path, sf: StateFile) -> tuple[Entry, Entry | None]:
    doc = _repair(state_dir, sf, _load(state_dir))
    if doc is None:
        return _first_entry(state_dir, sf), None
    return doc["current"], doc.get("previous")


def status(state_dir: Path) -> dict[str, Any]:
    """The installed driver and the one a rollback returns to."""
    with instance.open_state(state_dir, require_daemon=False) as sf:
        current, previous = _current(state_dir, sf)
    return {"current": current, "previous": previous}


def _switch(state_dir: Path, sf: StateFile, to: Entry, frm: Entry) -> None:
    _save(state_dir, {"current": frm, "previous": None, "pending": {"to": to, "from": frm}})
    hook = os.environ.get("NVSIM_DRIVER_TEST_PAUSE")
    if hook:  # tests: stop between the record and the switch, so a kill lands there
        Path(hook).touch()
        time.sleep(3600)
    _apply(state_dir, sf, to, frm)
    _save(state_dir, {"current": to, "previous": frm, "pending": None})


def install(state_dir: Path, path: Path) -> dict[str, Any]:
    """Install the bundle at ``path``; returns ``{"current", "previous"}``."""
    manifest, members = bundle.read(path)
    with instance.open_state(state_dir) as sf:
        current, _ = _current(state_dir, sf)
        if manifest.version == current["version"]:
            raise InvalidInput(f"driver {manifest.version} is already installed; nothing changed")
        gpus = sf.gpus()
        unbound = [g.uuid.decode() for g in gpus if _gpu_arch(g) not in manifest.architectures]
        if manifest.fault == "gpu-missing" and gpus and gpus[-1].uuid.decode() not in unbound:
            unbound.append(gpus[-1].uuid.decode())
        _keep_files(state_dir / STORE / manifest.version,
                    {m: members[m] for m in bundle.PAYLOAD})  # fmt: skip
        entry = {**manifest.to_json(), "unbound": unbound, "bundle": path.name,
                 "installed": time.time()}  # fmt: skip
        entry.pop("format")
        _switch(state_dir, sf, entry, current)
    return {"current": entry, "previous": current}


def rollback(state_dir: Path) -> dict[str, Any]:
    """Switch back to the previous driver (the current one becomes the previous)."""
    with instance.open_state(state_dir) as sf:
        current, previous = _current(state_dir, sf)
        if previous is None:
            raise InvalidInput("no previous driver to roll back to; nothing changed")
        _switch(state_dir, sf, previous, current)
    return {"current": previous, "previous": current}
