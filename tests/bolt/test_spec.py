"""Spec generation is pure: ContainerSpec in, config.json out, valid per the official schema."""

from __future__ import annotations

import pytest

from bolt.errors import InvalidInput
from bolt.runtime.defaults import DEFAULT_CAPS
from bolt.runtime.ocispec import generate
from bolt.runtime.spec import ContainerSpec, Device, Hook, Mount, Network, Resources, validate
from tests.bolt.oci_schema import schema_errors

CID = "ab" * 32


def spec(**kw: object) -> ContainerSpec:
    base: dict[str, object] = {
        "id": CID,
        "name": "web",
        "rootfs": "/var/lib/bolt/x/rootfs",
        "args": ("/bin/true",),
    }
    base.update(kw)
    return validate(ContainerSpec(**base))  # type: ignore[arg-type]


VARIANTS = {
    "defaults": {},
    "everything": {
        "env": ("A=1", "PATH=/bin"),
        "cwd": "/srv",
        "uid": 1000,
        "gid": 1000,
        "additional_gids": (10, 20),
        "hostname": "box",
        "terminal": True,
        "readonly_rootfs": True,
        "mounts": (
            Mount("/data", "/srv/data", readonly=True),
            Mount("/data/cache", "/srv/cache"),
            Mount("/tmp", "tmpfs", kind="tmpfs", options=("size=64m",)),
        ),
        "devices": (Device("/dev/nvidia0", "c", 195, 0, "rw", file_mode=0o666, uid=0, gid=0),),
        "hooks": (Hook("createContainer", "/usr/bin/hook", ("hook", "x"), ("K=V",), 5),),
        "resources": Resources(memory=64 << 20, cpus=0.5, pids=64),
        "cap_add": ("CAP_NET_ADMIN",),
        "cap_drop": ("CAP_MKNOD",),
        "annotations": (("org.bolt.config-hash", "sha256:00"),),
        "cgroups_path": "/bolt/" + CID,
    },
    "privileged": {"privileged": True},
    "host network": {"network": Network("host")},
    "joined netns": {"network": Network("netns", "/run/netns/proj")},
    "no network": {"network": Network("none")},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_generated_config_validates_against_the_runtime_spec_schema(variant: str) -> None:
    config = generate(spec(**VARIANTS[variant]))
    assert schema_errors(config) == []


def test_defaults_match_docker_isolation() -> None:
    config = generate(spec())
    namespaces = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert namespaces == {"pid", "mount", "uts", "ipc", "network"}
    caps = config["process"]["capabilities"]
    assert set(caps["bounding"]) == set(DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in caps["effective"]
    assert config["process"]["noNewPrivileges"] is True
    assert "/proc/kcore" in config["linux"]["maskedPaths"]
    assert "/proc/sys" in config["linux"]["readonlyPaths"]
    rules = config["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 195, "minor": 0, "access": "rwm"} not in rules
    assert config["hostname"] == "web"


def test_seccomp_denies_unisolated_syscalls_unless_privileged() -> None:
    seccomp = generate(spec())["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {name for rule in seccomp["syscalls"] for name in rule["names"]}
    assert {"unshare", "setns", "keyctl", "init_module", "userfaultfd", "clone3"} <= denied
    assert any(
        r["names"] == ["clone"] and r["args"][0]["value"] == 0x10000000 for r in seccomp["syscalls"]
    )
    with_admin = generate(spec(cap_add=("CAP_SYS_ADMIN",)))["linux"]["seccomp"]["syscalls"]
    admin_denied = {name for rule in with_admin for name in rule["names"]}
    assert (
        "unshare" not in admin_denied and "clone" not in admin_denied and "keyctl" in admin_denied
    )
    assert "seccomp" not in generate(spec(privileged=True))["linux"]
    assert "seccomp" not in generate(spec(seccomp_arches=()))["linux"]


def test_privileged_lifts_restrictions_only_when_asked() -> None:
    config = generate(spec(privileged=True))
    assert "CAP_SYS_ADMIN" in config["process"]["capabilities"]["effective"]
    assert "maskedPaths" not in config["linux"]
    assert config["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sysfs = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sysfs["options"]


def test_declared_device_gets_a_node_and_an_allow_rule() -> None:
    config = generate(spec(devices=(Device("/dev/fuse", "c", 10, 229, "rw"),)))
    assert {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229} in config["linux"][
        "devices"
    ]
    assert {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"} in config[
        "linux"
    ]["resources"]["devices"]


def test_limits_become_cgroup_resources() -> None:
    res = generate(spec(resources=Resources(memory=128 << 20, cpus=1.5, pids=10)))["linux"][
        "resources"
    ]
    assert res["memory"] == {"limit": 128 << 20}
    assert res["cpu"] == {"quota": 150000, "period": 100000}
    assert res["pids"] == {"limit": 10}


def test_joined_namespace_path_and_host_network() -> None:
    joined = generate(spec(network=Network("netns", "/run/netns/p")))["linux"]["namespaces"]
    assert {"type": "network", "path": "/run/netns/p"} in joined
    host = generate(spec(network=Network("host")))["linux"]["namespaces"]
    assert all(ns["type"] != "network" for ns in host)


def test_volumes_mount_parents_before_children() -> None:
    config = generate(spec(mounts=(Mount("/a/b", "/x"), Mount("/a", "/y"))))
    dests = [m["destination"] for m in config["mounts"]]
    assert dests.index("/a") < dests.index("/a/b")


def test_cap_drop_all_keeps_only_added() -> None:
    caps = generate(spec(cap_drop=("ALL",), cap_add=("CAP_CHOWN",)))["process"]["capabilities"][
        "bounding"
    ]
    assert caps == ["CAP_CHOWN"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "-bad", "name"),
        ("args", (), "no command"),
        ("env", ("NOEQUALS",), "env"),
        ("cwd", "relative", "workdir"),
        ("mounts", (Mount("/a", "/x"), Mount("/a", "/y")), "mounted twice"),
        ("devices", (Device("/dev/x", "c", 1, 1, "rwx"),), "device access"),
        ("resources", Resources(memory=1024), "memory"),
        ("resources", Resources(pids=0), "pids-limit"),
        ("cap_add", ("CAP_FLY",), "capability"),
        ("network", Network("netns"), "network"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        spec(**{field: value})
    assert message in str(exc.value)
