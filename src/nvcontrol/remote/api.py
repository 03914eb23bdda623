"""The remote API: which ``GpuManager`` methods an agent serves, to which role, and how
their arguments and results cross the wire (JSON values).

One table serves both sides: the agent dispatches and checks roles with it, the client's
:class:`~nvcontrol.remote.backend.RemoteManager` encodes calls and decodes results with
it, so a remote command renders exactly what a local one does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from basis.errors import ExitCode, UserError
from nvcontrol.control.errors import RolledBack
from nvcontrol.control.fancurve import FanCurve
from nvcontrol.control.journal import TxRecord
from nvcontrol.control.runner import TxOptions, TxReport
from nvcontrol.control.snapshots import GpuSnapshot
from nvcontrol.control.transaction import Outcome

ROLES = ("viewer", "operator", "admin")


def role_allows(have: str, need: str) -> bool:
    return have in ROLES and ROLES.index(have) >= ROLES.index(need)


# --------------------------------------------------------------------------- values


def outcome_from_json(d: dict[str, Any]) -> Outcome:
    return Outcome(
        d["uuid"], d["gpu"], d["field"], d["requested"], d["before"], d["applied"],
        d["status"], d.get("error"),
    )  # fmt: skip


def report_from_json(d: dict[str, Any]) -> TxReport:
    return TxReport(
        id=d["transaction"],
        kind=d["kind"],
        description=d["description"],
        outcomes=[outcome_from_json(o) for o in d["changes"]],
        committed=d["result"] == "committed",
        cause=d.get("cause"),
        window_s=d.get("window_s", 0.0),
        seconds=d.get("seconds", 0.0),
        max_temperature_c=d.get("max_temperature_c") or {},
        restore_problems=d.get("restore_problems") or [],
    )


def record_from_json(d: dict[str, Any]) -> TxRecord:
    return TxRecord(
        id=d["id"],
        kind=d["kind"],
        description=d["description"],
        gpus=d["gpus"],
        before={},
        owner_pid=d["owner_pid"],
        owner_start=0,
        state=d["state"],
        created=d["created"],
        confirm_deadline=d.get("confirm_deadline"),
        confirmed=d["confirmed"],
        result=d.get("result"),
    )


def _record_json(r: TxRecord) -> dict[str, Any]:
    return r.to_json()


_PLAIN = (str, int, float, bool, type(None))


def encode_value(value: Any) -> Any:
    """Any result or argument as JSON."""
    # Most of a reading is plain leaves: test those first (a remote ``gpu info`` has ~250,
    # and six failed isinstance checks on each cost half as much as the NVML reads behind it).
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, TxReport):
        return value.to_json()
    if isinstance(value, Outcome):
        return value.to_json()
    if isinstance(value, TxRecord):
        return _record_json(value)
    if isinstance(value, GpuSnapshot):
        return value.to_dict()
    if isinstance(value, FanCurve):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    name: str
    role: str  # the least role that may call it
    mutates: bool
    decode: Callable[[Any], Any] = lambda v: v
    transaction: bool = False  # takes ``options`` (TxOptions) and streams progress
    job: bool = False  # a long job (its steps may be transactions; it is not one itself)


def _list_of(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: [fn(x) for x in v]


def _optional(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else fn(v)


def _snapshot(v: Any) -> GpuSnapshot:
    return GpuSnapshot.from_dict(v, source="agent")


_outcomes = _list_of(outcome_from_json)

# Names the seed uses for a method (``send_command("overclock", ...)``).
ALIASES = {"overclock": "apply_offsets"}

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("gpu_list", "viewer", False),
        Method("gpu_info", "viewer", False),
        Method("sample", "viewer", False),
        Method("offsets_status", "viewer", False),
        Method("power_status", "viewer", False),
        Method("fan_status", "viewer", False),
        Method("snapshot_list", "viewer", False),
        Method("snapshot_show", "viewer", False, _snapshot),
        Method("snapshot_diff", "viewer", False),
        Method("snapshot_notes", "viewer", False),
        Method("transactions", "viewer", False, _list_of(record_from_json)),
        Method("apply_offsets", "operator", True, report_from_json, transaction=True),
        Method("lock_clocks", "operator", True, report_from_json, transaction=True),
        Method("set_power_limit", "operator", True, report_from_json, transaction=True),
        Method("set_fans", "operator", True, report_from_json, transaction=True),
        Method("reset_offsets", "operator", True, _outcomes),
        Method("reset_clocks", "operator", True, _outcomes),
        Method("reset_power", "operator", True, _outcomes),
        Method("set_persistence", "operator", True, _outcomes),
        Method("fans_auto", "operator", True, _outcomes),
        Method("set_fan_curve", "operator", True),
        Method("snapshot_create", "operator", True, _snapshot),
        Method("confirm", "operator", True, record_from_json),
        Method("snapshot_restore", "admin", True, _optional(report_from_json), transaction=True),
        Method("snapshot_delete", "admin", True),
        Method("audit", "admin", False),
        # the agent's own (nvcontrol.agent.keyadmin), not GpuManager's
        Method("key_list", "admin", False),
        Method("key_authorize", "admin", True),
        Method("key_revoke", "admin", True),
        # what was host-only (nvcontrol.control.hostops)
        Method("snapshot_document", "viewer", False),
        Method("snapshot_store", "operator", True, _snapshot),
        Method("boot_show", "viewer", False),
        Method("boot_set", "admin", True),
        Method("boot_clear", "admin", True),
        Method("stability_test", "operator", True),
        Method("overclock_auto", "operator", True, transaction=True, job=True),
        Method("fan_curve_run", "operator", True, transaction=True, job=True),
    ]
}


def bind(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A method's positional and keyword arguments as one name → JSON value mapping."""
    bound = inspect.signature(method).bind(*args, **kwargs)
    params = dict(bound.arguments)
    params.pop("self", None)
    out = {}
    for k, v in params.items():
        if isinstance(v, TxOptions):
            out[k] = options_to_json(v)
        else:
            out[k] = encode_value(v)
    return out


def options_to_json(o: TxOptions) -> dict[str, Any]:
    return {
        "window_s": o.window_s,
        "confirm": o.confirm,
        "confirm_timeout_s": o.confirm_timeout_s,
        "temp_guard_c": o.temp_guard_c,
    }


# Arguments whose JSON form is not what the method takes.
def decode_params(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if isinstance(out.get("curve"), dict):
        out["curve"] = FanCurve.from_dict(out["curve"])
    for k in ("graphics", "memory"):
        if isinstance(out.get(k), list):
            out[k] = tuple(out[k])
    return out


# --------------------------------------------------------------------------- errors


class RemoteUserError(UserError):
    """An error the agent reported, with the agent's exit code."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def encode_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RolledBack):
        report = exc.report.to_json() if isinstance(exc.report, TxReport) else None
        return {
            "type": "rolled_back",
            "message": exc.message,
            "cause": exc.cause,
            "hint": exc.hint,
            "code": int(exc.exit_code),
            "report": report,
        }
    if isinstance(exc, UserError):
        return {
            "type": "user",
            "message": exc.message,
            "hint": exc.hint,
            "code": int(exc.exit_code),
        }
    return {
        "type": "internal",
        "message": f"internal error on the agent: {exc.__class__.__name__}: {exc}",
        "hint": "the agent's log has the details",
        "code": int(ExitCode.FAILURE),
    }


def decode_error(err: dict[str, Any], host: str) -> UserError:
    if err.get("type") == "rolled_back":
        report = err.get("report")
        return RolledBack(
            str(err.get("cause")),
            hint=err.get("hint"),
            report=report_from_json(report) if report else None,
        )
    code = err.get("code")
    return RemoteUserError(
        str(err.get("message")),
        hint=err.get("hint"),
        exit_code=code if isinstance(code, int) and 0 < code < 256 else int(ExitCode.FAILURE),
    )
