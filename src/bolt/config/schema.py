"""The Boltfile's shape: one pydantic model per table, every short form made canonical.

A field that accepts several forms (``build = "./dir"`` or a table, ``depends_on`` as a list
or a table, ``ports`` as strings or tables...) has a *before* validator that turns the short
form into the long one, or rejects the value with a message listing every accepted form.
The models therefore hold one form per field, and what ``bolt surge config`` prints is
their dump.  Unknown keys and wrong types are pydantic's errors, located by
:mod:`bolt.config.errors`.  Cross-service rules (cycles, clashing ports, missing build
directories) are :mod:`bolt.config.semantics`' job, not this module's.
"""

from __future__ import annotations

import ipaddress
import math
import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bolt.config import values

# --------------------------------------------------------------------------- helpers


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("form", message)


def _parsed(parser: Any, value: Any) -> Any:
    try:
        return parser(value)
    except ValueError as err:
        raise _fail(str(err)) from None


def _scalar_text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return str(value)
    raise _fail(f"expected {what} to be a string, number or boolean, got {type_name(value)}")


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _argv(value: Any) -> Any:
    """A command as a string (split as a shell would, without running one) or an array."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            raise _fail(f"cannot split command {value!r}: {err}") from None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _fail("expected a string or an array of strings")


def _string_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _fail("expected a string or an array of strings")


def _key_values(what: str, *, from_env: bool) -> Any:
    """A table of scalars, or an array of ``"KEY=VALUE"`` (``"KEY"`` alone: from the env)."""

    def convert(value: Any, info: ValidationInfo) -> Any:
        env = (info.context or {}).get("env", {})
        if isinstance(value, dict):
            return {str(k): _scalar_text(v, f"{what} {k!r}") for k, v in value.items()}
        if isinstance(value, list):
            table: dict[str, str] = {}
            for item in value:
                if not isinstance(item, str):
                    raise _fail(f"expected {what} entries as 'KEY=VALUE' strings")
                key, sep, text = item.partition("=")
                if not key:
                    raise _fail(f"{what} entry {item!r} has no key")
                if sep:
                    table[key] = text
                elif from_env:
                    if key in env:
                        table[key] = env[key]
                else:
                    table[key] = ""
            return table
        raise _fail(f"expected a table or an array of 'KEY=VALUE' strings for {what}")

    return convert


def _ports(value: Any) -> Any:
    if not isinstance(value, list):
        raise _fail('expected an array of ports such as ["8080:80"]')
    out: list[Any] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append(item)
            continue
        try:
            out.extend(values.parse_port(item))
        except ValueError as err:
            raise _fail(f"entry {i}: {err}") from None
    return out


def _volumes(value: Any) -> Any:
    if not isinstance(value, list):
        raise _fail('expected an array of volumes such as ["./data:/data:ro"]')
    out: list[Any] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(values.parse_volume(item))
            except ValueError as err:
                raise _fail(f"entry {i}: {err}") from None
        else:
            raise _fail(f"entry {i}: expected a string or a table, got {type_name(item)}")
    return out


def _tmpfs(value: Any) -> Any:
    items = [value] if isinstance(value, str | dict) else value
    if not isinstance(items, list):
        raise _fail("expected a path, an array of paths or of tables")
    return [_parsed(values.parse_tmpfs, i) if isinstance(i, str) else i for i in items]


def _restart(value: Any) -> Any:
    if value is False:  # YAML's `no`, carried over by hand
        return {"policy": "no"}
    if isinstance(value, str):
        return _parsed(values.parse_restart, value)
    return value


def _table_or_list(value: Any, what: str) -> Any:
    """An array of names becomes a table of empty tables (``depends_on``, ``networks``)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _fail(f"expected an array of {what} names or a table")
        return {v: {} for v in value}
    if isinstance(value, dict):
        return value
    raise _fail(f"expected an array of {what} names or a table, got {type_name(value)}")


def _healthcheck_test(value: Any) -> Any:
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if value[0] in ("CMD", "CMD-SHELL", "NONE"):
            return value
        return ["CMD", *value]
    raise _fail("expected a shell command string or a non-empty array of strings")


def _cpus(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _fail(f"invalid cpus {value!r} (expected a number such as 0.5)") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"expected a number of CPUs, got {type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        raise _fail(f"cpus must be a positive finite number, got {value}")
    return float(value)


def _subnet(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ipaddress.ip_network(value)
        except ValueError as err:
            raise _fail(f"invalid subnet {value!r}: {err}") from None
    return value


def _nvidia(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


def _gpu_ids(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list) and all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value]
    raise _fail("expected GPU indexes or UUIDs: a string, an integer or an array of them")


def _extra_hosts(value: Any) -> Any:
    """``["host:ip"]`` (compose's list form; ``host=ip`` too) or a table of host -> ip."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        table: dict[str, str] = {}
        for item in value:
            sep = "=" if "=" in item else ":"
            host, found, ip = item.partition(sep)
            if not found or not host:
                raise _fail(f"expected 'HOST:IP' in extra_hosts, got {item!r}")
            table[host] = ip
        value = table
    if isinstance(value, dict):
        for host, ip in value.items():
            try:
                ipaddress.ip_address(ip if isinstance(ip, str) else "")
            except ValueError:
                raise _fail(f"extra_hosts {host!r}: {ip!r} is not an IP address") from None
        return value
    raise _fail("expected an array of 'HOST:IP' strings or a table of host = ip")


NonEmpty = Annotated[str, Field(min_length=1)]
Argv = Annotated[list[str], BeforeValidator(_argv)]
StringList = Annotated[list[str], BeforeValidator(_string_list)]
Duration = Annotated[float, BeforeValidator(lambda v: _parsed(values.parse_duration, v))]
Size = Annotated[int, BeforeValidator(lambda v: _parsed(values.parse_size, v))]
Port = Annotated[int, Field(ge=1, le=65535)]
Subnet = Annotated[str, BeforeValidator(_subnet)]


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        """``x-*`` keys are the user's own (as in compose): kept out of validation."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data


# --------------------------------------------------------------------------- services


class Build(Strict):
    context: NonEmpty = "."
    file: NonEmpty | None = Field(default=None, validation_alias=AliasChoices("file", "dockerfile"))
    args: Annotated[dict[str, str], BeforeValidator(_key_values("build arg", from_env=True))] = {}
    target: NonEmpty | None = None


class PortMapping(Strict):
    target: Port
    published: Port | None = None
    host_ip: str = ""
    protocol: Literal["tcp", "udp"] = "tcp"


class Volume(Strict):
    type: Literal["bind", "volume", "tmpfs"] = "volume"
    source: NonEmpty | None = None
    target: Annotated[str, Field(pattern=r"^/")]
    read_only: bool = False


class Tmpfs(Strict):
    target: Annotated[str, Field(pattern=r"^/")]
    size: Size | None = None
    mode: Annotated[str, Field(pattern=r"^[0-7]{3,4}$")] | None = None


class NvidiaGpu(Strict):
    count: Annotated[int, Field(ge=1)] | Literal["all"] | None = None
    devices: Annotated[list[str], BeforeValidator(_gpu_ids)] = []
    capabilities: StringList = ["gpu"]


class Gpu(Strict):
    """``gpu.nvidia = true`` | ``gpu.nvidia = {count, devices, capabilities}`` | the same
    three keys directly under ``gpu``."""

    nvidia: Annotated[NvidiaGpu | None, BeforeValidator(_nvidia)] = None
    count: Annotated[int, Field(ge=1)] | Literal["all"] | None = None
    devices: Annotated[list[str], BeforeValidator(_gpu_ids)] | None = None
    capabilities: StringList | None = None


class Dependency(Strict):
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = (
        "service_started"
    )
    restart: bool = False
    required: bool = True


class Restart(Strict):
    policy: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_retries: Annotated[int, Field(ge=0)] | None = None


class Healthcheck(Strict):
    test: Annotated[list[str], BeforeValidator(_healthcheck_test)] | None = None
    interval: Duration = 30.0
    timeout: Duration = 30.0
    retries: Annotated[int, Field(ge=1)] = 3
    start_period: Duration = 0.0
    disable: bool = False


class ServiceNetwork(Strict):
    aliases: list[NonEmpty] = []
    ipv4_address: str | None = None


class Service(Strict):
    image: NonEmpty | None = None
    build: Annotated[
        Build | None, BeforeValidator(lambda v: {"context": v} if isinstance(v, str) else v)
    ] = None
    capsule: NonEmpty | None = None
    command: Argv | None = None
    entrypoint: Argv | None = None
    env: Annotated[dict[str, str], BeforeValidator(_key_values("env", from_env=True))] = Field(
        default={}, validation_alias=AliasChoices("env", "environment")
    )
    env_file: StringList = []
    ports: Annotated[list[PortMapping], BeforeValidator(_ports)] = []
    volumes: Annotated[list[Volume], BeforeValidator(_volumes)] = []
    tmpfs: Annotated[list[Tmpfs], BeforeValidator(_tmpfs)] = []
    devices: list[NonEmpty] = []
    gpu: Gpu | None = None
    privileged: bool = False
    cap_add: list[NonEmpty] = []
    cap_drop: list[NonEmpty] = []
    user: NonEmpty | None = None
    working_dir: Annotated[str, Field(pattern=r"^/")] | None = None
    hostname: NonEmpty | None = None
    depends_on: Annotated[
        dict[str, Dependency], BeforeValidator(lambda v: _table_or_list(v, "service"))
    ] = {}
    restart: Annotated[Restart, BeforeValidator(_restart)] = Restart()
    healthcheck: Healthcheck | None = None
    cpus: Annotated[float, BeforeValidator(_cpus)] | None = None
    memory: Size | None = None
    pids_limit: Annotated[int, Field(ge=1)] | None = None
    labels: Annotated[dict[str, str], BeforeValidator(_key_values("label", from_env=False))] = {}
    networks: Annotated[
        dict[str, ServiceNetwork], BeforeValidator(lambda v: _table_or_list(v, "network"))
    ] = {}
    read_only: bool = False
    stop_signal: NonEmpty | None = None
    stop_grace_period: Duration | None = None
    profiles: list[NonEmpty] = []
    tty: bool = False
    stdin_open: bool = False
    extra_hosts: Annotated[dict[str, str], BeforeValidator(_extra_hosts)] = {}
    dns: StringList = []
    scale: Annotated[int, Field(ge=0, le=1000)] = 1

    @model_validator(mode="before")
    @classmethod
    def _one_env_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "env" in data and "environment" in data:
            raise _fail("give 'env' or 'environment', not both")
        return data


# --------------------------------------------------------------------------- top level


def _publish(value: Any) -> Any:
    if value is None:
        return None
    parsed = _parsed(values.parse_publish, value)
    return parsed if parsed is False else f"{parsed[0]}:{parsed[1]}"


class DefaultNetwork(Strict):
    driver: Literal["bridge", "host", "none", "quic"] = "bridge"
    subnet: Subnet | None = None
    encryption: bool = False
    internal: bool = False
    # quic: where this host publishes the listener's UDP port ([HOST_IP:]PORT, or false);
    # by default on every address, at the listener's own port (bolt.surge.quicnet)
    publish: Annotated[str | bool | None, BeforeValidator(_publish)] = None


class NetworkDef(Strict):
    driver: Literal["bridge", "quic"] = "bridge"
    subnet: Subnet | None = None
    encryption: bool = False
    internal: bool = False
    external: bool = False
    labels: Annotated[dict[str, str], BeforeValidator(_key_values("label", from_env=False))] = {}


class VolumeDef(Strict):
    driver: Literal["local"] = "local"
    external: bool = False
    labels: Annotated[dict[str, str], BeforeValidator(_key_values("label", from_env=False))] = {}


KeepCount = Annotated[int, Field(ge=0)]


class Snapshots(Strict):
    enabled: bool = True  # false switches the table's triggers off without deleting them
    keep_last: KeepCount | None = None
    keep_hourly: KeepCount | None = None
    keep_daily: KeepCount | None = None
    keep_weekly: KeepCount | None = None
    keep_monthly: KeepCount | None = None
    before_surge_up: bool = False
    before_surge_down: bool = False
    before_build: bool = False
    before_driver_update: bool = False
    before_gpu_change: bool = False


class BoltfileModel(Strict):
    project: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=63)] | None = None
    services: dict[str, Service] = {}
    network: DefaultNetwork = DefaultNetwork()
    networks: dict[str, NetworkDef] = {}
    volumes: Annotated[
        dict[str, VolumeDef], BeforeValidator(lambda v: _table_or_list(v, "volume"))
    ] = {}
    snapshots: Snapshots = Snapshots()
