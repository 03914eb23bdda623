"""``generate``: a validated ``ContainerSpec`` -> an OCI runtime-spec ``config.json`` dict.

Pure: no file system, no clock.  The result validates against the official runtime-spec
JSON schema (tests check every variant).  Defaults follow ``docker run``: pid, mount, uts,
ipc and net namespaces; Docker's capability set; no-new-privileges; masked and read-only
/proc and /sys paths; only the standard device nodes allowed.  ``privileged`` lifts the
capability, path and device restrictions as Docker's ``--privileged`` does.
"""

from __future__ import annotations

from typing import Any

from bolt.runtime.defaults import (
    CLONE_NAMESPACE_FLAGS,
    CPU_PERIOD_US,
    DEFAULT_DEVICE_RULES,
    ENOSYS,
    EPERM,
    MASKED_PATHS,
    READONLY_PATHS,
    SECCOMP_DENIED,
    SECCOMP_DENIED_WITHOUT,
    SECCOMP_ENOSYS,
    SHM_SIZE,
)
from bolt.runtime.spec import ContainerSpec, Mount, effective_caps

OCI_VERSION = "1.0.2"


def _base_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    ro = [] if spec.privileged else ["ro"]
    sys_options = ["nosuid", "noexec", "nodev", *ro]
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    if spec.network.kind == "host":
        # A fresh sysfs needs a network namespace of our own; share the host's instead.
        mounts.append(
            {
                "destination": "/sys",
                "type": "bind",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", *ro],
            }
        )
    else:
        mounts.append(
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}
        )
    mounts.append(
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", *ro],
        }
    )
    return mounts


def _user_mount(m: Mount) -> dict[str, Any]:
    if m.kind == "tmpfs":
        options = ["nosuid", "nodev", *m.options]
        if m.readonly:
            options.append("ro")
        return {
            "destination": m.destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": options,
        }
    options = ["rbind", "rprivate", *m.options]
    options.append("ro" if m.readonly else "rw")
    return {"destination": m.destination, "type": "bind", "source": m.source, "options": options}


def _namespaces(spec: ContainerSpec) -> list[dict[str, str]]:
    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if spec.network.kind == "netns":
        namespaces.append({"type": "network", "path": spec.network.path or ""})
    elif spec.network.kind != "host":
        namespaces.append({"type": "network"})
    return namespaces


def _device_rules(spec: ContainerSpec) -> list[dict[str, Any]]:
    if spec.privileged:
        return [{"allow": True, "access": "rwm"}]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for kind, major, minor, access in DEFAULT_DEVICE_RULES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    for d in spec.devices:
        rules.append(
            {"allow": True, "type": d.type, "major": d.major, "minor": d.minor, "access": d.access}
        )
    return rules


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": _device_rules(spec)}
    r = spec.resources
    if r.memory is not None:
        res["memory"] = {"limit": r.memory}
    if r.cpus is not None:
        res["cpu"] = {"quota": max(1000, round(r.cpus * CPU_PERIOD_US)), "period": CPU_PERIOD_US}
    if r.pids is not None:
        res["pids"] = {"limit": r.pids}
    return res


def _hooks(spec: ContainerSpec) -> dict[str, list[dict[str, Any]]]:
    hooks: dict[str, list[dict[str, Any]]] = {}
    for h in spec.hooks:
        entry: dict[str, Any] = {"path": h.path}
        if h.args:
            entry["args"] = list(h.args)
        if h.env:
            entry["env"] = list(h.env)
        if h.timeout is not None:
            entry["timeout"] = h.timeout
        hooks.setdefault(h.stage, []).append(entry)
    return hooks


def _devices(spec: ContainerSpec) -> list[dict[str, Any]]:
    out = []
    for d in spec.devices:
        dev: dict[str, Any] = {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor}
        if d.file_mode is not None:
            dev["fileMode"] = d.file_mode
        if d.uid is not None:
            dev["uid"] = d.uid
        if d.gid is not None:
            dev["gid"] = d.gid
        out.append(dev)
    return out


def _seccomp(spec: ContainerSpec, caps: list[str]) -> dict[str, Any]:
    denied = list(SECCOMP_DENIED)
    for cap, names in SECCOMP_DENIED_WITHOUT.items():
        if cap not in caps:
            denied += names
    rules: list[dict[str, Any]] = [
        {"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
        {"names": list(SECCOMP_ENOSYS), "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    if "CAP_SYS_ADMIN" not in caps:
        for flag in CLONE_NAMESPACE_FLAGS:  # rules for one call are alternatives
            rules.append(
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": EPERM,
                    "args": [
                        {"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}
                    ],
                }
            )
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": list(spec.seccomp_arches),
        "syscalls": rules,
    }


def generate(spec: ContainerSpec) -> dict[str, Any]:
    """The complete ``config.json`` for ``spec`` (already validated)."""
    caps = effective_caps(spec)
    process: dict[str, Any] = {
        "terminal": spec.terminal,
        "user": {"uid": spec.uid, "gid": spec.gid},
        "args": list(spec.args),
        "env": list(spec.env),
        "cwd": spec.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": not spec.privileged,
    }
    if spec.additional_gids:
        process["user"]["additionalGids"] = list(spec.additional_gids)
    if spec.terminal:
        process["consoleSize"] = {"height": 24, "width": 80}
    # Parents before children, so a volume at /data/x is not hidden by one at /data.
    user_mounts = sorted(spec.mounts, key=lambda m: m.destination.rstrip("/").count("/"))
    linux: dict[str, Any] = {
        "namespaces": _namespaces(spec),
        "devices": _devices(spec),
        "resources": _resources(spec),
    }
    if spec.cgroups_path:
        linux["cgroupsPath"] = spec.cgroups_path
    if not spec.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        if spec.seccomp_arches:
            linux["seccomp"] = _seccomp(spec, caps)
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname or spec.name,
        "mounts": _base_mounts(spec) + [_user_mount(m) for m in user_mounts],
        "linux": linux,
    }
    hooks = _hooks(spec)
    if hooks:
        config["hooks"] = hooks
    if spec.annotations:
        config["annotations"] = dict(spec.annotations)
    return config
