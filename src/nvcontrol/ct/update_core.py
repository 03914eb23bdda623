"""The driver update pipeline's decisions, without I/O: which staged package, whether it
may be installed here, whether the driver came up healthy, and what to do next.

:class:`InstallRun` is the install as a state machine in the manner of
:mod:`nvcontrol.control.transaction`: it is fed outcomes and answers with actions
(snapshot, install, health check, roll back, done).  The I/O adapters are
:mod:`nvcontrol.ct.updater` (inside the driver-updater container: stage, verify, build and
test) and :mod:`nvcontrol.ct.update` (on the host: snapshot, install, health, rollback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from basis.errors import ExitCode

# NVML's architecture names (nvcontrol.readings) → the names driver packages list.
ARCH_KEYS = {
    "Kepler": "kepler", "Maxwell": "maxwell", "Pascal": "pascal", "Volta": "volta",
    "Turing": "turing", "Ampere": "ampere", "Ada Lovelace": "ada", "Hopper": "hopper",
    "Blackwell": "blackwell",
}  # fmt: skip


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    architecture: str  # a package's name for it: "ada", "ampere"...

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Gpu:
        return cls(int(str(doc["index"])), str(doc["uuid"]), str(doc["name"]),
                   str(doc["architecture"]))  # fmt: skip

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "uuid": self.uuid, "name": self.name,
                "architecture": self.architecture}  # fmt: skip


def arch_key(nvml_name: str | None) -> str:
    return ARCH_KEYS.get(nvml_name or "", (nvml_name or "unknown").lower())


@dataclass(frozen=True)
class Problem:
    check: str  # "checksum" | "package" | "architecture" | "kernel-headers" | "build"
    message: str
    exit_code: int = ExitCode.INVALID_INPUT

    def to_json(self) -> dict[str, object]:
        return {"check": self.check, "message": self.message, "exit_code": int(self.exit_code)}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def choose(staged: dict[str, str | None], version: str | None, package: str | None) -> str:
    """The staged package to use: ``package`` by name, else the one of ``version``, else the
    newest.  ``staged`` maps file names to their versions (None: unreadable).  Raises
    ValueError with the reason."""
    if package is not None:
        if package not in staged:
            raise ValueError(f"{package} is not staged in the drivers volume")
        return package
    readable = {n: v for n, v in staged.items() if v is not None}
    if version is not None:
        named = sorted(n for n, v in readable.items() if v == version)
        if not named:
            have = ", ".join(sorted(set(readable.values()))) or "none"
            raise ValueError(f"no staged package has driver {version} (staged: {have})")
        return named[0]
    if not readable:
        raise ValueError("no driver package is staged")
    return max(readable, key=lambda n: (version_key(readable[n] or ""), n))


def check_architectures(supported: Iterable[str], gpus: Sequence[Gpu]) -> list[Problem]:
    """Every installed GPU's architecture must be one the package's branch supports."""
    have = set(supported)
    return [
        Problem("architecture",
                f"GPU {g.index} ({g.name}, {g.uuid}) is {g.architecture}, which this driver "
                f"does not support (it supports {', '.join(sorted(have)) or 'nothing'})")
        for g in gpus if g.architecture not in have
    ]  # fmt: skip


def check_kernel_headers(release: str, present: bool) -> list[Problem]:
    if present:
        return []
    return [Problem("kernel-headers",
                    f"no kernel headers for the running kernel {release} "
                    f"(/lib/modules/{release}/build is missing in the driver-updater)",
                    ExitCode.UNSUPPORTED)]  # fmt: skip


def exit_code_of(problems: Sequence[Problem]) -> int:
    """The first problem's code decides (checks run in order: what the package is, then
    whether this machine can take it)."""
    return int(problems[0].exit_code) if problems else int(ExitCode.OK)


# ----------------------------------------------------------------------------- health


@dataclass(frozen=True)
class HealthSample:
    """What a fresh NVML client saw after the install."""

    nvml_error: str | None  # nvmlInit failed: why
    driver_version: str | None
    visible: int  # nvmlDeviceGetCount
    lost: tuple[str, ...] = ()  # GPUs that did not answer (UUID or index)
    xids: tuple[tuple[int, int], ...] = ()  # (GPU index, Xid) seen in the window


def judge_health(sample: HealthSample, expected_gpus: int, expected_version: str) -> list[str]:
    """Why the driver is not healthy (empty: it is): NVML answers, every GPU is visible and
    answers, no Xid, and the driver reports the installed version."""
    if sample.nvml_error is not None:
        return [f"NVML does not answer: {sample.nvml_error}"]
    problems = []
    if sample.driver_version != expected_version:
        problems.append(f"the driver reports {sample.driver_version}, not {expected_version}")
    if sample.visible < expected_gpus:
        problems.append(f"{sample.visible} of {expected_gpus} GPUs are visible")
    problems += [f"GPU {gpu} does not answer (lost)" for gpu in sample.lost]
    problems += [f"Xid {xid} on GPU {gpu}" for gpu, xid in sample.xids]
    return problems


# ----------------------------------------------------------------------------- install


@dataclass(frozen=True)
class TakeSnapshot:
    pass


@dataclass(frozen=True)
class Install:
    version: str


@dataclass(frozen=True)
class CheckHealth:
    pass


@dataclass(frozen=True)
class RollBack:
    to: str
    cause: str


@dataclass(frozen=True)
class Done:
    installed: bool
    rolled_back: bool
    cause: str | None = None

    @property
    def exit_code(self) -> int:
        if self.installed:
            return int(ExitCode.OK)
        return int(ExitCode.ROLLED_BACK if self.rolled_back else ExitCode.FAILURE)


Action = TakeSnapshot | Install | CheckHealth | RollBack | Done


@dataclass
class InstallRun:
    """snapshot → install → health check → done, or roll back to ``previous``.

    ``phase`` is what a journal keeps: a process that dies after ``installing`` resumes at
    the health check (:meth:`resume`), so a driver that was never checked is checked (and
    rolled back when bad) by the next command.
    """

    version: str
    previous: str
    phase: str = "new"  # new | snapshot | installing | checking | rolling-back | done
    snapshot: str | None = None
    problems: list[str] = field(default_factory=list)

    def begin(self) -> list[Action]:
        self.phase = "snapshot"
        return [TakeSnapshot()]

    def snapshot_taken(self, name: str) -> list[Action]:
        self.snapshot, self.phase = name, "installing"
        return [Install(self.version)]

    def installed(self) -> list[Action]:
        self.phase = "checking"
        return [CheckHealth()]

    def health(self, problems: Sequence[str]) -> list[Action]:
        if not problems:
            self.phase = "done"
            return [Done(True, False)]
        self.problems = list(problems)
        self.phase = "rolling-back"
        return [RollBack(self.previous, "; ".join(problems))]

    def failed(self, step: str, cause: str) -> list[Action]:
        """A step raised: before the install nothing changed; from the install on, undo."""
        self.problems.append(f"{step}: {cause}")
        if self.phase in ("new", "snapshot"):
            self.phase = "done"
            return [Done(False, False, "; ".join(self.problems))]
        if self.phase == "rolling-back":
            self.phase = "done"
            return [Done(False, False, "; ".join(self.problems) + " (the rollback failed)")]
        self.phase = "rolling-back"
        return [RollBack(self.previous, "; ".join(self.problems))]

    def rolled_back(self) -> list[Action]:
        self.phase = "done"
        return [Done(False, True, "; ".join(self.problems))]

    @classmethod
    def resume(cls, doc: dict[str, object]) -> tuple[InstallRun, list[Action]]:
        """Continue a journaled run whose process died."""
        snapshot = doc.get("snapshot")
        run = cls(str(doc["version"]), str(doc["previous"]), str(doc["phase"]),
                  str(snapshot) if snapshot else None)  # fmt: skip
        if run.phase in ("installing", "checking"):
            run.phase = "checking"
            return run, [CheckHealth()]
        if run.phase == "rolling-back":
            return run, [RollBack(run.previous, "the update was interrupted")]
        run.phase = "done"
        return run, [Done(False, False, "the update was interrupted before the install")]

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "previous": self.previous, "phase": self.phase,
                "snapshot": self.snapshot, "problems": self.problems}  # fmt: skip
