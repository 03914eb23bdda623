"""``ContainerIntent``: validation names the field, the text forms name the flag, and the
spec hash is stable and ignores labels."""

from __future__ import annotations

import math

import pytest

from bolt.runtime import flags
from bolt.runtime.intent import (
    ContainerIntent,
    HealthCheck,
    IntentError,
    MountIntent,
    NetworkAttachment,
    PortMapping,
    RestartPolicy,
    from_dict,
)


def _intent(**kw: object) -> ContainerIntent:
    return ContainerIntent(**{"image": "busybox", **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cpus": math.nan}, "cpus"),
        ({"cpus": math.inf}, "cpus"),
        ({"cpus": 0.0}, "cpus"),
        ({"memory": 1 << 60}, "memory"),
        ({"memory": 1024}, "memory"),
        ({"mounts": (MountIntent("bind", "/", "/tmp"),)}, "mounts[0].destination"),
        (
            {"mounts": (MountIntent("tmpfs", "/t", options=("size=1m", "exec=yes")),)},
            "mounts[0].options",
        ),
        ({"network_mode": "bridge", "ports": (PortMapping("", 80, 0),)}, "ports[0].container_port"),
        ({"network_mode": "bridge", "ports": (PortMapping("nope", 80, 80),)}, "ports[0].host_ip"),
        ({"ports": (PortMapping("", 80, 80),)}, "ports"),
        (
            {"network_mode": "bridge", "networks": (NetworkAttachment("a", ("bad alias",)),)},
            "networks[0].aliases",
        ),
        ({"restart": RestartPolicy("sometimes")}, "restart.name"),
        ({"restart": RestartPolicy("always", 3)}, "restart.max_retries"),
        ({"restart": RestartPolicy("always"), "auto_remove": True}, "restart"),
        (
            {"healthcheck": HealthCheck(("CMD-SHELL", "true"), interval=math.nan)},
            "healthcheck.interval",
        ),
        ({"healthcheck": HealthCheck(("CMD-SHELL", "true"), retries=0)}, "healthcheck.retries"),
        ({"stop_signal": "999"}, "stop_signal"),
        ({"network_mode": "container:"}, "network_mode"),
        ({"dns": ("8.8.8.x",)}, "dns[0]"),
        ({"image": " "}, "image"),
    ],
)
def test_invalid_values_name_their_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(IntentError) as err:
        _intent(**changes).validate()
    assert err.value.field == field


def test_a_valid_intent_round_trips_through_its_stored_form() -> None:
    intent = _intent(
        command=["sh", "-c", "true"],
        env={"A": "1"},
        mounts=(
            MountIntent("tmpfs", "/t", "tmpfs", options=("size=1m",)),
            MountIntent("volume", "/d", "data"),
        ),
        network_mode="bridge",
        networks=(NetworkAttachment("net", ("db",), "10.0.0.5"),),
        ports=(PortMapping("127.0.0.1", 8080, 80, "udp"),),
        extra_hosts=(("h", "10.0.0.1"),),
        restart=RestartPolicy("on-failure", 3),
        healthcheck=HealthCheck(("CMD", "true"), interval=1.0),
        labels={"k": "v"},
    ).validate()
    again = from_dict(intent.to_dict())
    assert again == intent
    assert again.spec_hash() == intent.spec_hash()


def test_spec_hash_ignores_labels_and_sees_everything_else() -> None:
    base = _intent(command=["true"])
    assert base.spec_hash() == base.replace(labels={"bolt.surge.hash": "x"}).spec_hash()
    assert base.spec_hash() != base.replace(command=["false"]).spec_hash()
    assert base.spec_hash() != base.replace(memory=64 << 20).spec_hash()


@pytest.mark.parametrize(
    ("text", "mapping"),
    [
        ("8080:80", PortMapping("", 8080, 80, "tcp")),
        ("127.0.0.1:8080:80/udp", PortMapping("127.0.0.1", 8080, 80, "udp")),
        ("127.0.0.1::80", PortMapping("127.0.0.1", 0, 80, "tcp")),
        ("80", PortMapping("", 0, 80, "tcp")),
        ("[::1]:53:53/udp", PortMapping("::1", 53, 53, "udp")),
    ],
)
def test_port_forms(text: str, mapping: PortMapping) -> None:
    assert flags.parse_port(text) == mapping


@pytest.mark.parametrize(
    "text", ["80:70000", "a:80", "1.2.3:80:80", "80/sctp", "1:2:3:4", "8080:0"]
)
def test_bad_ports_name_the_flag(text: str) -> None:
    with pytest.raises(IntentError) as err:
        flags.parse_port(text)
    assert err.value.field == "-p"


def test_text_forms() -> None:
    assert flags.parse_size("512m", "--memory") == 512 << 20
    assert flags.parse_duration("1m30s", "--health-interval") == 90.0
    assert flags.parse_duration("500ms", "x") == 0.5
    assert flags.parse_restart("on-failure:3") == RestartPolicy("on-failure", 3)
    assert flags.parse_volume("/ctr") == MountIntent("anonymous", "/ctr")
    assert flags.parse_volume("data:/d:ro") == MountIntent("volume", "/d", "data", readonly=True)
    assert flags.signal_number("term") == 15 and flags.signal_number("9") == 9
    assert flags.split_env(["A=1", "B", "A=2"]) == ({"A": "2"}, ["B"])


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: flags.parse_size("2e", "--memory"), "--memory"),
        (lambda: flags.parse_size("9999999t", "--memory"), "--memory"),
        (lambda: flags.parse_duration("5 minutes", "--health-interval"), "--health-interval"),
        (lambda: flags.parse_restart("always:3"), "--restart"),
        (lambda: flags.parse_volume(":/x"), "-v"),
        (lambda: flags.parse_volume("/tmp:/"), "-v"),
        (lambda: flags.parse_tmpfs("/t:size=1m,bogus"), "--tmpfs"),
        (lambda: flags.signal_number("999", "--signal"), "--signal"),
        (lambda: flags.signal_number("SIGNOPE", "--signal"), "--signal"),
        (lambda: flags.parse_extra_host("db"), "--add-host"),
        (lambda: flags.parse_size("\u0661\u0662m", "--memory"), "--memory"),  # non-ASCII digits
    ],
)
def test_bad_text_names_the_flag(call: object, field: str) -> None:
    with pytest.raises(IntentError) as err:
        call()  # type: ignore[operator]
    assert err.value.field == field
