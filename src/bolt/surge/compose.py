"""docker-compose.yml → Boltfile.toml: the compose-spec keys a Boltfile has, mapped one by one.

Pure: it takes the parsed compose document and returns the Boltfile document (plain data for
``tomli_w``) and the list of everything it could not carry over, each named by its dotted
compose key.  Nothing is dropped silently.  ``${VAR}`` references are kept as written: a
Boltfile interpolates them the same way.  Relative paths are rewritten for the directory the
Boltfile will live in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# service keys that carry over under the same name, unchanged
_SAME = (
    "image",
    "command",
    "entrypoint",
    "privileged",
    "devices",
    "cap_add",
    "cap_drop",
    "user",
    "working_dir",
    "hostname",
    "read_only",
    "stop_signal",
    "stop_grace_period",
    "profiles",
    "pids_limit",
    "cpus",
    "scale",
    "tty",
    "stdin_open",
    "dns",
)
_HEALTH_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")


@dataclass
class Migration:
    boltfile: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)  # "services.web.logging: why"


class _Converter:
    def __init__(self, source_dir: Path, target_dir: Path) -> None:
        self.source_dir = source_dir
        self.target_dir = target_dir
        self.unmapped: list[str] = []

    def skip(self, path: str, why: str = "no Boltfile equivalent") -> None:
        self.unmapped.append(f"{path}: {why}")

    def path(self, value: str) -> str:
        """A relative path of the compose file, relative to the Boltfile instead."""
        if not isinstance(value, str) or not value.startswith((".", "..")) or "$" in value:
            return value
        moved = os.path.relpath(self.source_dir / value, self.target_dir)
        return moved if moved.startswith("..") else "./" + moved if moved != "." else "."

    # ------------------------------------------------------------------ top level

    def convert(self, doc: dict[str, Any], name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        project = doc.get("name") or name
        if project:
            out["project"] = project
        services: dict[str, Any] = {}
        for key in doc:
            if key in ("name", "services", "networks", "volumes"):
                continue
            if key == "version":
                self.skip("version", "obsolete in the compose spec; ignored")
            elif str(key).startswith("x-"):
                self.skip(key, "extension field; its anchors were expanded where they are used")
            else:
                self.skip(key)
        for svc_name, svc in (doc.get("services") or {}).items():
            services[str(svc_name)] = self.service(f"services.{svc_name}", svc or {})
        out["services"] = services
        networks = {}
        for net_name, net in (doc.get("networks") or {}).items():
            networks[str(net_name)] = self.network(f"networks.{net_name}", net or {})
        if "default" in networks:
            default = networks.pop("default")
            if default:
                out["network"] = {k: v for k, v in default.items() if k in ("subnet", "internal")}
        if networks:
            out["networks"] = networks
        volumes = {}
        for vol_name, vol in (doc.get("volumes") or {}).items():
            volumes[str(vol_name)] = self.volume_def(f"volumes.{vol_name}", vol or {})
        if volumes:
            out["volumes"] = volumes
        return out

    def network(self, at: str, net: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in net.items():
            if key == "driver" and value in ("bridge", "default"):
                continue
            if key in ("internal", "external"):
                out[key] = bool(value)
            elif key == "labels":
                out["labels"] = _key_values(value)
            elif key == "ipam" and isinstance(value, dict):
                configs = value.get("config") or []
                for i, conf in enumerate(configs):
                    if i == 0 and isinstance(conf, dict) and "subnet" in conf:
                        out["subnet"] = conf["subnet"]
                        for extra in conf.keys() - {"subnet"}:
                            self.skip(f"{at}.ipam.config[0].{extra}")
                    else:
                        self.skip(f"{at}.ipam.config[{i}]", "only one subnet is supported")
                for extra in value.keys() - {"config"}:
                    self.skip(f"{at}.ipam.{extra}")
            else:
                self.skip(f"{at}.{key}")
        return out

    def volume_def(self, at: str, vol: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in vol.items():
            if key == "driver" and value == "local":
                continue
            if key == "external":
                out["external"] = bool(value)
            elif key == "labels":
                out["labels"] = _key_values(value)
            else:
                self.skip(f"{at}.{key}")
        return out

    # ------------------------------------------------------------------ services

    def service(self, at: str, svc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        handlers: dict[str, Callable[[str, Any, dict[str, Any]], None]] = {
            "build": self._build,
            "environment": self._environment,
            "env_file": self._env_file,
            "ports": self._ports,
            "volumes": self._volumes,
            "tmpfs": lambda _a, v, o: o.__setitem__("tmpfs", v),
            "depends_on": self._depends_on,
            "restart": lambda _a, v, o: o.__setitem__("restart", v),
            "healthcheck": self._healthcheck,
            "deploy": self._deploy,
            "networks": self._networks,
            "labels": lambda _a, v, o: o.__setitem__("labels", _key_values(v)),
            "mem_limit": lambda _a, v, o: o.__setitem__("memory", v),
            "runtime": self._runtime,
            "gpus": self._gpus,
            "extra_hosts": lambda _a, v, o: o.__setitem__("extra_hosts", v),
        }
        for key, value in svc.items():
            if key in _SAME:
                out[key] = value
            elif key in handlers:
                handlers[key](f"{at}.{key}", value, out)
            elif key == "container_name":
                self.skip(f"{at}.{key}", "containers are named PROJECT-SERVICE-N")
            elif key == "expose":
                self.skip(f"{at}.{key}", "ports are reachable on the project network anyway")
            else:
                self.skip(f"{at}.{key}")
        return out

    def _build(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, str):
            out["build"] = self.path(value)
            return
        build: dict[str, Any] = {}
        for key, v in value.items():
            if key == "context":
                build["context"] = self.path(v)
            elif key == "dockerfile":
                build["file"] = v
            elif key == "args":
                build["args"] = _key_values(v)
            elif key == "target":
                build["target"] = v
            else:
                self.skip(f"{at}.{key}")
        out["build"] = build

    def _environment(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, dict) and all(v is not None for v in value.values()):
            out["env"] = {k: _scalar(v) for k, v in value.items()}
        elif isinstance(value, dict):  # KEY: (null) takes the value from the environment
            out["env"] = [k if v is None else f"{k}={_scalar(v)}" for k, v in value.items()]
        else:
            out["env"] = list(value)

    def _env_file(self, at: str, value: Any, out: dict[str, Any]) -> None:
        files = [value] if isinstance(value, str | dict) else list(value)
        paths = []
        for i, item in enumerate(files):
            if isinstance(item, dict):
                paths.append(self.path(item.get("path", "")))
                if item.get("required") is False:
                    self.skip(f"{at}[{i}].required", "every env_file must exist")
            else:
                paths.append(self.path(item))
        out["env_file"] = paths

    def _ports(self, at: str, value: Any, out: dict[str, Any]) -> None:
        ports: list[Any] = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                port = {
                    k: item[k] for k in ("target", "published", "host_ip", "protocol") if k in item
                }
                if isinstance(port.get("published"), str) and port["published"].isdigit():
                    port["published"] = int(port["published"])
                for extra in item.keys() - port.keys():
                    self.skip(f"{at}[{i}].{extra}")
                ports.append(port)
            else:
                ports.append(str(item))
        out["ports"] = ports

    def _volumes(self, at: str, value: Any, out: dict[str, Any]) -> None:
        volumes: list[Any] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                source, sep, rest = item.partition(":")
                volumes.append(f"{self.path(source)}{sep}{rest}" if sep else item)
                continue
            kind = item.get("type", "volume")
            if kind == "tmpfs":
                out.setdefault("tmpfs", []).append(item["target"])
                continue
            vol = {"type": kind, "target": item.get("target")}
            if "source" in item:
                vol["source"] = self.path(item["source"]) if kind == "bind" else item["source"]
            if item.get("read_only"):
                vol["read_only"] = True
            for extra in item.keys() - {"type", "source", "target", "read_only"}:
                self.skip(f"{at}[{i}].{extra}")
            volumes.append(vol)
        out["volumes"] = volumes

    def _depends_on(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, list):
            out["depends_on"] = list(value)
            return
        deps: dict[str, Any] = {}
        for dep, cond in value.items():
            cond = cond or {}
            deps[dep] = {k: cond[k] for k in ("condition", "restart", "required") if k in cond}
            for extra in cond.keys() - deps[dep].keys():
                self.skip(f"{at}.{dep}.{extra}")
        out["depends_on"] = deps

    def _healthcheck(self, at: str, value: Any, out: dict[str, Any]) -> None:
        out["healthcheck"] = {k: v for k, v in value.items() if k in _HEALTH_KEYS}
        for extra in value.keys() - set(_HEALTH_KEYS):
            self.skip(f"{at}.{extra}")

    def _deploy(self, at: str, value: Any, out: dict[str, Any]) -> None:
        for key, v in value.items():
            if key == "replicas":
                out["scale"] = v
            elif key == "resources":
                self._resources(f"{at}.resources", v, out)
            elif key == "restart_policy":
                condition = v.get("condition", "any")
                policy = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(condition)
                if policy is None:
                    self.skip(f"{at}.restart_policy.condition", f"unknown condition {condition!r}")
                    continue
                if policy == "on-failure" and "max_attempts" in v:
                    policy = f"on-failure:{v['max_attempts']}"
                out["restart"] = policy
                for extra in v.keys() - {"condition", "max_attempts"}:
                    self.skip(f"{at}.restart_policy.{extra}")
            else:
                self.skip(f"{at}.{key}")

    def _resources(self, at: str, value: Any, out: dict[str, Any]) -> None:
        for key, v in value.items():
            if key == "limits":
                for limit, amount in v.items():
                    target = {"cpus": "cpus", "memory": "memory", "pids": "pids_limit"}.get(limit)
                    if target:
                        out[target] = amount
                    else:
                        self.skip(f"{at}.limits.{limit}")
            elif key == "reservations":
                for res, amount in v.items():
                    if res == "devices":
                        self._gpu_reservations(f"{at}.reservations.devices", amount, out)
                    else:
                        self.skip(f"{at}.reservations.{res}", "reservations are not enforced")
            else:
                self.skip(f"{at}.{key}")

    def _gpu_reservations(self, at: str, devices: Any, out: dict[str, Any]) -> None:
        for i, dev in enumerate(devices):
            caps = dev.get("capabilities") or []
            if dev.get("driver", "nvidia") != "nvidia" or "gpu" not in caps:
                self.skip(f"{at}[{i}]", "only NVIDIA GPU reservations are supported")
                continue
            gpu: dict[str, Any] = {}
            if "count" in dev:
                gpu["count"] = dev["count"]
            if "device_ids" in dev:
                gpu["devices"] = [str(d) for d in dev["device_ids"]]
            if caps != ["gpu"]:
                gpu["capabilities"] = list(caps)
            for extra in dev.keys() - {"driver", "count", "device_ids", "capabilities"}:
                self.skip(f"{at}[{i}].{extra}")
            out["gpu"] = {"nvidia": gpu or True}

    def _networks(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, list):
            out["networks"] = list(value)
            return
        nets: dict[str, Any] = {}
        for net, conf in value.items():
            conf = conf or {}
            nets[net] = {k: conf[k] for k in ("aliases", "ipv4_address") if k in conf}
            for extra in conf.keys() - nets[net].keys():
                self.skip(f"{at}.{net}.{extra}")
        out["networks"] = nets

    def _runtime(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if value == "nvidia":
            out.setdefault("gpu", {"nvidia": True})
        else:
            self.skip(at, f"runtime {value!r}: Bolt picks crun or runc itself")

    def _gpus(self, at: str, value: Any, out: dict[str, Any]) -> None:
        if value == "all":
            out["gpu"] = {"nvidia": True}
        else:
            self.skip(at, "use gpu.nvidia.devices")


def _scalar(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) else str(value)


def _key_values(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(_scalar(v)) for k, v in value.items()}
    return {k: v for k, _, v in (str(item).partition("=") for item in value)}


def convert(
    doc: dict[str, Any],
    *,
    source_dir: Path,
    target_dir: Path,
    project_name: str | None = None,
) -> Migration:
    """The Boltfile for a parsed compose document, and what could not be carried over."""
    converter = _Converter(source_dir.resolve(), target_dir.resolve())
    boltfile = converter.convert(doc, project_name)
    return Migration(boltfile, converter.unmapped)
