"""Boltfile.from_path: the seed's files as written, every accepted form, interpolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt.cli import main
from bolt.config import Boltfile, BoltfileError
from tests.surge.conftest import seed_snippets, write_project

SEED_DIRS = ("containers/gpu-manager", "containers/monitor", "containers/driver-updater", "web")


def test_seed_boltfile_validates_and_config_json_shows_every_key(project_dir, capsys):
    path = write_project(project_dir, seed_snippets()["boltfile"], SEED_DIRS)
    assert main(["surge", "-f", str(path), "config", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["project"] == "nvcontrol"
    manager = doc["services"]["gpu-manager"]
    assert manager["build"]["context"] == str(project_dir / "containers/gpu-manager")
    assert manager["privileged"] is True
    assert manager["gpu"]["nvidia"]["capabilities"] == ["gpu"]
    assert manager["devices"] == [
        "/dev/nvidia0",
        "/dev/nvidia-uvm",
        "/dev/nvidia-modeset",
        "/dev/nvidiactl",
    ]
    assert manager["volumes"][0] == {
        "type": "bind",
        "source": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so",
        "target": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so",
        "read_only": True,
    }
    assert manager["volumes"][1]["source"] == "/sys/class/drm"
    assert manager["env"] == {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "all"}
    monitor = doc["services"]["gpu-monitor"]
    assert monitor["volumes"] == [
        {"type": "bind", "source": "/proc", "target": "/host/proc", "read_only": True}
    ]
    assert monitor["env"] == {"HOST_PROC": "/host/proc"}
    assert "nvidia" in monitor["gpu"]
    updater = doc["services"]["driver-updater"]
    assert updater["privileged"] is True
    assert [v["source"] for v in updater["volumes"]] == ["/lib/modules", "/usr/src"]
    assert "gpu" not in updater
    web = doc["services"]["web-interface"]
    assert web["ports"] == [{"target": 8080, "published": 8080, "host_ip": "", "protocol": "tcp"}]
    assert web["env"] == {"API_ENDPOINT": "bolt://gpu-manager:3000"}
    assert doc["network"] == {"driver": "quic", "encryption": True, "internal": False}


def test_seed_multi_gpu_snippet_selects_one_gpu_each(project_dir):
    path = write_project(project_dir, seed_snippets()["multi-gpu"], ("containers/gpu-manager",))
    bf = Boltfile.from_path(path)
    assert bf.name == "proj"  # no `project` key: the directory's name
    for i in (0, 1):
        gpu = bf.services[f"gpu-manager-{i}"].gpu
        assert gpu is not None and gpu.nvidia is not None
        assert gpu.nvidia.devices == [str(i)]


def test_seed_driver_test_snippet_resolves_relative_bind(project_dir):
    path = write_project(project_dir, seed_snippets()["driver-test"], ("containers/driver-test",))
    svc = Boltfile.from_path(path).services["driver-test"]
    assert svc.volumes[0].source == str(project_dir / "test-drivers")
    assert svc.volumes[0].type == "bind" and not svc.volumes[0].read_only
    assert svc.env["NVIDIA_DRIVER_VERSION"] == "535.154.05"


def test_every_service_key_in_its_long_and_short_forms(project_dir):
    (project_dir / "app.env").write_text("FROM_FILE=1\nSHARED=file\n")
    (project_dir / "ctx").mkdir()
    (project_dir / "ctx" / "Dockerfile.dev").write_text("FROM scratch\n")
    text = """
project = "full"
[services.app]
build = { context = "./ctx", file = "Dockerfile.dev", args = { V = 1 }, target = "dev" }
image = "full/app:dev"
command = "sh -c 'echo hi'"
entrypoint = ["/bin/sh"]
environment = ["A=1", "SHARED=inline"]
env_file = "app.env"
ports = ["127.0.0.1:8000-8001:80-81", "53:53/udp", 9000, "[::1]:7000:70"]
volumes = ["data:/data", "./src:/src:ro", "/anon", { type = "bind", source = "/etc", target = "/host-etc", read_only = true }]
tmpfs = ["/run:size=64m,mode=1777", "/tmp"]
devices = ["/dev/fuse"]
gpu = { count = 2, capabilities = ["gpu", "compute"] }
cap_add = ["NET_ADMIN"]
cap_drop = ["MKNOD"]
user = "1000:1000"
working_dir = "/src"
hostname = "apphost"
depends_on = { db = { condition = "service_healthy" }, init = { condition = "service_completed_successfully" } }
restart = "on-failure:3"
healthcheck = { test = "wget -q -O- localhost", interval = "1m30s", timeout = 5, retries = 2, start_period = "500ms" }
cpus = "1.5"
memory = "512m"
pids_limit = 100
labels = ["tier=web"]
networks = { front = { aliases = ["www"] } }
read_only = true
stop_signal = "SIGINT"
stop_grace_period = "20s"
profiles = ["web"]
x-note = "ignored"

[services.db]
image = "busybox"
depends_on = ["init"]
networks = ["front", "default"]
healthcheck.test = ["CMD", "true"]
scale = 2

[services.init]
image = "busybox"
restart = "no"

[networks.front]
subnet = "10.89.7.0/24"

[volumes.data]

[snapshots]
enabled = true
keep_last = 5
keep_daily = 7
before_surge_up = true
before_build = true
"""
    bf = Boltfile.from_path(write_project(project_dir, text))
    app = bf.services["app"]
    assert app.build is not None and app.build.file == str(project_dir / "ctx/Dockerfile.dev")
    assert app.build.args == {"V": "1"} and app.build.target == "dev"
    assert app.command == ["sh", "-c", "echo hi"]
    assert app.env == {"A": "1", "SHARED": "inline", "FROM_FILE": "1"}
    assert [(p.host_ip, p.published, p.target, p.protocol) for p in app.ports] == [
        ("127.0.0.1", 8000, 80, "tcp"),
        ("127.0.0.1", 8001, 81, "tcp"),
        ("", 53, 53, "udp"),
        ("", None, 9000, "tcp"),
        ("::1", 7000, 70, "tcp"),
    ]
    assert [(v.type, v.source, v.read_only) for v in app.volumes] == [
        ("volume", "data", False),
        ("bind", str(project_dir / "src"), True),
        ("volume", None, False),
        ("bind", "/etc", True),
    ]
    assert app.tmpfs[0].size == 64 * 1024 * 1024 and app.tmpfs[0].mode == "1777"
    assert app.gpu is not None and app.gpu.nvidia is not None and app.gpu.nvidia.count == 2
    assert app.depends_on["db"].condition == "service_healthy"
    assert app.restart.policy == "on-failure" and app.restart.max_retries == 3
    assert app.healthcheck is not None
    assert app.healthcheck.test == ["CMD-SHELL", "wget -q -O- localhost"]
    assert (app.healthcheck.interval, app.healthcheck.timeout) == (90.0, 5.0)
    assert app.healthcheck.start_period == 0.5
    assert app.cpus == 1.5 and app.memory == 512 * 1024 * 1024 and app.pids_limit == 100
    assert app.labels == {"tier": "web"} and app.networks["front"].aliases == ["www"]
    assert app.stop_grace_period == 20.0 and app.profiles == ["web"]
    assert bf.services["db"].depends_on["init"].condition == "service_started"
    assert bf.services["db"].scale == 2
    assert bf.snapshots.keep_last == 5 and bf.snapshots.before_surge_up
    assert bf.networks["front"].subnet == "10.89.7.0/24"
    assert bf.active_services() == ["db", "init"]
    assert bf.active_services({"web"}) == ["app", "db", "init"]


def test_interpolation_from_environment_and_dotenv(project_dir):
    (project_dir / ".env").write_text("# defaults\nTAG=1.36\nexport PORT='8081'\n")
    text = """
[services.web]
image = "busybox:${TAG}"
ports = ["${PORT}:80"]
env.GREETING = "${GREETING:-hello}"
env.EMPTY_OK = "${UNSET-}"
env.LITERAL = "$$HOME"
env.FROM_ENV = "$USER_NAME"
"""
    bf = Boltfile.from_path(
        write_project(project_dir, text), environ={"USER_NAME": "ann", "TAG": "1.37"}
    )
    web = bf.services["web"]
    assert web.image == "busybox:1.37"  # the environment wins over .env
    assert web.ports[0].published == 8081
    assert web.env == {"GREETING": "hello", "EMPTY_OK": "", "LITERAL": "$HOME", "FROM_ENV": "ann"}


def test_required_variable_names_key_and_line(project_dir):
    text = '[services.web]\nimage = "busybox"\nenv.TOKEN = "${TOKEN:?set TOKEN to the API token}"\n'
    with pytest.raises(BoltfileError) as err:
        Boltfile.from_path(write_project(project_dir, text), environ={})
    (problem,) = err.value.problems
    assert (problem.line, problem.path) == (3, "services.web.env.TOKEN")
    assert "set TOKEN to the API token" in problem.message


def test_project_name_option_wins(project_dir):
    path = write_project(project_dir, 'project = "a"\n[services.s]\nimage = "busybox"\n')
    assert Boltfile.from_path(path, project_name="b").name == "b"
    assert Boltfile.from_path(path).name == "a"


def test_boltfile_found_in_a_parent_directory(project_dir, monkeypatch, capsys):
    write_project(project_dir, '[services.s]\nimage = "busybox"\n')
    deeper = project_dir / "a" / "b"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert main(["surge", "config", "--services"]) == 0
    assert capsys.readouterr().out.split() == ["s"]


def test_no_boltfile_anywhere_is_invalid_input(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["surge", "validate"]) == 2
    assert "no Boltfile.toml" in capsys.readouterr().err
