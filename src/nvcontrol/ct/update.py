"""``nvctl ct update``: the driver update pipeline, host side.

1. **Stage**: ``--package PATH`` (and its ``PATH.sha256``) is copied into the host
   directory behind the driver-updater's ``/drivers`` volume.
2. **Verify, build and test**: a one-off driver-updater container
   (:mod:`nvcontrol.ct.updater`) does them on its own copy and reports; it gets the
   installed GPUs (read here, through NVML) in ``$NVCTL_UPDATE_GPUS``.
3. **Install** (``--install`` only), driven by :class:`~nvcontrol.ct.update_core.InstallRun`:
   a capsule snapshot of the stack and the GPUs (the Boltfile's ``[snapshots]`` keep rules
   prune these automatic snapshots), the install through the driver's backend, a health
   check in a fresh process, and a rollback to the previous driver when it fails (exit 5).
   The run is journaled in ``$NVCTL_STATE_DIR/ct-update.json``; a process killed after the
   install leaves a journal the next ``nvctl ct update`` finishes (it checks the driver's
   health, and rolls back when it is bad).

Backends: on nvsim (``$NVSIM_STATE``, else ``/run/nvsim``) the install is ``nvsim driver
install`` (it switches the virtual driver's version) and the rollback ``nvsim driver
rollback``.  On a real machine the package manager would do it; that path refuses
(exit 3) unless ``NVCTL_CT_UPDATE_PACKAGE_MANAGER=1`` is set (see docs/ct.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from basis.errors import ExitCode, InvalidInput, NotFound, Unsupported, UserError
from nvcontrol.ct import update_core as core

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator

Say = Callable[[str], None]
JOURNAL = "ct-update.json"
ALLOW_ENV = "NVCTL_CT_UPDATE_PACKAGE_MANAGER"
HEALTH_WINDOW_S = 2.0
UPDATER = "driver-updater"


def drivers_dir(orch: Orchestrator) -> Path:
    """The host directory behind the driver-updater's ``/drivers`` volume."""
    svc = orch.boltfile.services.get(UPDATER)
    for v in getattr(svc, "volumes", None) or []:
        if v.target == "/drivers" and v.type == "bind":
            return Path(v.source)
    raise NotFound(f"the stack's {UPDATER} has no /drivers volume",
                   hint='add "./drivers:/drivers" to its volumes')  # fmt: skip


def stage(package: Path, drivers: Path) -> str:
    """Copy ``package`` and its checksum file into ``drivers``; returns its name there."""
    from nvsim import bundle

    if not package.is_file():
        raise NotFound(f"no driver package at {package}")
    if not package.name.endswith(".tar.gz"):
        raise InvalidInput(f"{package} is not a driver bundle (*.tar.gz)")
    drivers.mkdir(parents=True, exist_ok=True)
    for source in (package, bundle.sidecar(package)):
        if source.is_file():
            tmp = drivers / f".{source.name}.staging"
            shutil.copyfile(source, tmp)
            os.replace(tmp, drivers / source.name)
        else:
            (drivers / source.name).unlink(missing_ok=True)  # never pair it with an old one
    return package.name


def inventory() -> list[core.Gpu]:
    """The installed GPUs and their architectures, as NVML reports them."""
    import pynvml

    from nvcontrol.nvml import Nvml
    from nvcontrol.readings import ARCHITECTURES

    with Nvml() as nvml:
        out = []
        for g in nvml.gpus:
            arch = g.get(pynvml.nvmlDeviceGetArchitecture)
            name = ARCHITECTURES.get(arch) if arch is not None else None
            out.append(core.Gpu(g.index, g.uuid, g.name, core.arch_key(name)))
        return out


async def check(
    orch: Orchestrator, gpus: list[core.Gpu], version: str | None, package: str | None
) -> dict[str, Any]:
    """Run the driver-updater job once; its report, with its exit code."""
    from nvcontrol.ct.updater import GPUS_ENV

    argv = ["python3", "-m", "nvcontrol.ct.updater"]
    argv += ["--version", version] if version else []
    argv += ["--package", package] if package else []
    out: list[str] = []

    def collect(stream: str, text: str) -> None:
        if stream == "stdout":
            out.append(text)

    code = await orch.run_service(UPDATER, argv, remove=True, no_deps=True, stream=collect,
                                  env={GPUS_ENV: json.dumps([g.to_json() for g in gpus])})  # fmt: skip
    lines = [ln for ln in "".join(out).splitlines() if ln.startswith("{")]
    if not lines:
        raise UserError(f"the {UPDATER} job exited {code} without a report",
                        hint=f"see: nvctl ct logs {UPDATER}")  # fmt: skip
    report: dict[str, Any] = json.loads(lines[-1])
    report["exit_code"] = code
    return report


# ---------------------------------------------------------------------------- backends


class Backend(Protocol):
    name: str

    def current(self) -> str: ...
    def install(self, package: Path) -> None: ...
    def rollback(self) -> None: ...


class NvsimBackend:
    """The virtual driver: ``nvsim driver install|rollback|status``."""

    name = "nvsim"

    def __init__(self, state: Path) -> None:
        self.state = state

    def _nvsim(self, *args: str) -> dict[str, Any]:
        exe = Path(sys.executable).with_name("nvsim")
        argv = [str(exe) if exe.exists() else "nvsim", "--state", str(self.state), *args]
        done = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise UserError(f"nvsim {' '.join(args[:2])}: {done.stderr.strip()}")
        return dict(json.loads(done.stdout))

    def current(self) -> str:
        return str(self._nvsim("driver", "status")["current"]["version"])

    def install(self, package: Path) -> None:
        self._nvsim("driver", "install", str(package))

    def rollback(self) -> None:
        self._nvsim("driver", "rollback")


def backend() -> Backend:
    state = Path(os.environ.get("NVSIM_STATE") or "/run/nvsim")
    if (state / "state").is_file():
        return NvsimBackend(state)
    if os.environ.get(ALLOW_ENV) != "1":
        raise Unsupported(
            "no nvsim driver here, and installing a real driver through the package "
            "manager is off; nothing was changed",
            hint=f"to allow it set {ALLOW_ENV}=1 (see docs/ct.md, 'Driver updates')",
        )
    raise Unsupported(
        f"{ALLOW_ENV}=1, but this version installs only nvsim driver bundles; install the "
        "NVIDIA packages with the distribution's package manager (docs/ct.md lists the steps)"
    )


# ---------------------------------------------------------------------------- install


def _journal_path() -> Path:
    from nvcontrol.control import paths

    return paths.state_dir() / JOURNAL


def _save(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def health() -> core.HealthSample:
    done = subprocess.run([sys.executable, "-m", "nvcontrol.ct.update_health", "--window",
                           str(HEALTH_WINDOW_S)], capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode:
        return core.HealthSample(f"the health check failed: {done.stderr.strip()[-400:]}", None, 0)
    doc = json.loads(done.stdout)
    return core.HealthSample(doc["nvml_error"], doc["driver_version"], doc["visible"],
                             tuple(doc["lost"]), tuple(tuple(x) for x in doc["xids"]))  # type: ignore[misc]  # fmt: skip


def _policy(orch: Orchestrator) -> Any:
    from bolt.capsules.retention import SnapshotPolicy

    table = orch.boltfile.snapshots
    known = {f.name for f in fields(SnapshotPolicy)}
    values = {k: getattr(table, k) for k in known if getattr(table, k, None) is not None}
    # The install always takes its snapshot; the keep rules prune the automatic ones.
    return SnapshotPolicy(**{**values, "before_driver_update": True})


async def drive(
    run: core.InstallRun, actions: list[core.Action], *, orch: Orchestrator | None,
    be: Backend, package: Path | None, gpus: int, journal: Path, say: Say,
) -> core.Done:  # fmt: skip
    """Carry out the machine's actions, journaling before each change."""
    from bolt.capsules import retention

    def keep() -> None:
        _save(journal, {"run": run.to_json(), "gpus": gpus})

    queue = list(actions)
    while queue:
        action = queue.pop(0)
        try:
            if isinstance(action, core.TakeSnapshot):
                assert orch is not None
                snap = await retention.before_driver_update(
                    orch.project, _policy(orch), root=orch.root
                )
                say(f"snapshot {snap.name} taken")
                queue = run.snapshot_taken(snap.name) + queue
            elif isinstance(action, core.Install):
                assert package is not None
                keep()
                say(f"installing driver {action.version} ({be.name})")
                be.install(package)
                keep()
                queue = run.installed() + queue
            elif isinstance(action, core.CheckHealth):
                problems = core.judge_health(health(), gpus, run.version)
                say("health check: " + ("; ".join(problems) or "all GPUs visible, NVML "
                                        "answers, no Xid"))  # fmt: skip
                queue = run.health(problems) + queue
            elif isinstance(action, core.RollBack):
                keep()
                say(f"rolling back to driver {action.to}")
                if be.current() != action.to:
                    be.rollback()
                if be.current() != action.to:
                    raise UserError(f"the driver is {be.current()} after the rollback")
                queue = run.rolled_back() + queue
            else:
                journal.unlink(missing_ok=True)
                return action
        except UserError as err:
            queue = run.failed(type(action).__name__, err.message)
    raise RuntimeError("the install machine stopped without an outcome")


async def repair(say: Say) -> core.Done | None:
    """Finish an install whose process died (see the module docstring)."""
    journal = _journal_path()
    try:
        doc = json.loads(journal.read_text())
    except FileNotFoundError:
        return None
    run, actions = core.InstallRun.resume(doc["run"])
    say(f"finishing the interrupted update to driver {run.version}")
    return await drive(run, actions, orch=None, be=backend(), package=None,
                       gpus=int(doc["gpus"]), journal=journal, say=say)  # fmt: skip


async def update(
    orch: Orchestrator, *, version: str | None, package: Path | None, install: bool, say: Say
) -> tuple[dict[str, Any], int]:
    """The whole pipeline; the report and the exit code."""
    await repair(say)
    be = backend() if install else None  # refuse early, before anything is staged
    drivers = drivers_dir(orch)
    name = stage(package, drivers) if package is not None else None
    if name:
        say(f"staged {name} in {drivers}")
    gpus = inventory()
    say(f"{UPDATER}: stage, verify, build and test")
    report = await check(orch, gpus, version, name)
    code = int(report["exit_code"])
    if install and not code and report["package"] is None:
        raise InvalidInput("nothing to install: no driver package is staged",
                           hint="stage one with --package PATH")  # fmt: skip
    if code or not install:
        return report, code
    assert be is not None
    chosen = report["manifest"]["version"]
    run = core.InstallRun(chosen, be.current())
    if chosen == run.previous:
        raise InvalidInput(f"driver {chosen} is already installed; nothing changed")
    done = await drive(run, run.begin(), orch=orch, be=be, package=drivers / report["package"],
                       gpus=len(gpus), journal=_journal_path(), say=say)  # fmt: skip
    report["install"] = {**run.to_json(), "installed": done.installed,
                         "rolled_back": done.rolled_back, "cause": done.cause,
                         "driver": be.current()}  # fmt: skip
    return report, done.exit_code


EXIT_MEANING = {
    int(ExitCode.OK): "ok",
    int(ExitCode.INVALID_INPUT): "the package is bad or does not fit; nothing changed",
    int(ExitCode.UNSUPPORTED): "this machine cannot take it; nothing changed",
    int(ExitCode.ROLLED_BACK): "installed, failed its health check, rolled back",
}
