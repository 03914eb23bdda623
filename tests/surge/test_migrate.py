"""bolt migrate: three real-world-style compose files convert, list what they drop, validate."""

from __future__ import annotations

import shutil
from pathlib import Path

from bolt.cli import main
from bolt.config import Boltfile
from bolt.surge import compose, yaml12

COMPOSE = Path(__file__).parent / "compose"


def migrate(tmp_path: Path, name: str, file: str, capsys) -> tuple[Boltfile, str]:
    project = tmp_path / name
    shutil.copytree(COMPOSE / name, project)
    out = project / "Boltfile.toml"
    assert main(["migrate", str(project / file), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    return Boltfile.from_path(out, environ={}), err


def test_web_db_cache_app(tmp_path, capsys):
    bf, err = migrate(tmp_path, "webapp", "docker-compose.yml", capsys)
    assert bf.name == "webapp"
    web = bf.services["web"]
    assert web.build is not None and web.build.context == str(tmp_path / "webapp" / "web")
    assert web.build.args == {"APP_VERSION": "1.4"}
    assert web.restart.policy == "unless-stopped"  # from the YAML anchor
    assert web.ports[0].published == 18080 and web.ports[0].target == 80
    assert web.depends_on["db"].condition == "service_healthy"
    assert set(web.networks) == {"front", "back"}
    db = bf.services["db"]
    assert db.env == {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "secret"}
    assert db.volumes[0].type == "volume" and db.volumes[0].source == "dbdata"
    assert db.healthcheck is not None and db.healthcheck.retries == 30
    cache = bf.services["cache"]
    assert cache.memory == 256 * 1024**2 and cache.cpus == 0.5
    assert cache.networks["back"].aliases == ["redis"]
    assert bf.networks["back"].internal
    for dropped in (
        "services.web.logging",
        "services.web.container_name",
        "services.db.expose",
        "version",
        "x-common",
    ):
        assert f"not carried over: {dropped}:" in err
    assert (tmp_path / "webapp" / "Boltfile.toml").read_text().count("#   ") == 6


def test_gpu_inference_service(tmp_path, capsys):
    bf, err = migrate(tmp_path, "inference", "compose.yaml", capsys)
    assert bf.name == "inference"
    svc = bf.services["model-server"]
    assert svc.gpu is not None and svc.gpu.nvidia is not None and svc.gpu.nvidia.count == 1
    assert svc.memory == 8 * 1024**3
    assert svc.restart.policy == "on-failure" and svc.restart.max_retries == 3
    assert [(p.host_ip, p.published) for p in svc.ports] == [
        ("127.0.0.1", 18500),
        ("127.0.0.1", 18501),
    ]
    assert svc.volumes[0].read_only and svc.volumes[0].source.endswith("inference/models")
    assert svc.healthcheck is not None and svc.healthcheck.start_period == 5.0
    for dropped in ("deploy.resources.reservations.memory", "ulimits", "shm_size"):
        assert f"services.model-server.{dropped}:" in err


def test_profiles_and_healthchecks(tmp_path, capsys):
    bf, err = migrate(tmp_path, "profiles", "docker-compose.yml", capsys)
    assert bf.active_services() == ["api", "worker"]
    assert bf.active_services({"debug"}) == ["api", "worker", "debug-shell"]
    api = bf.services["api"]
    assert api.healthcheck is not None and api.healthcheck.test[0] == "CMD"
    assert api.restart.max_retries == 2 and api.labels == {"com.example.tier": "api"}
    assert bf.services["worker"].depends_on["api"].condition == "service_healthy"
    assert bf.services["debug-shell"].tty and bf.services["debug-shell"].stdin_open
    assert "services.api.healthcheck.start_interval:" in err
    assert "services.worker.init:" in err


def test_relative_paths_follow_the_output_directory(tmp_path):
    doc = yaml12.load("services:\n  s:\n    build: ./app\n    volumes: ['./data:/data']\n", "c.yml")
    result = compose.convert(doc, source_dir=tmp_path / "src", target_dir=tmp_path / "out")
    svc = result.boltfile["services"]["s"]
    assert svc["build"] == "../src/app"
    assert svc["volumes"] == ["../src/data:/data"]


def test_yaml_1_2_scalars_keep_ports_and_restart_as_strings():
    doc = yaml12.load(
        "services:\n  s:\n    image: busybox\n    ports: [22:22]\n    restart: no\n", "c.yml"
    )
    assert doc["services"]["s"]["ports"] == ["22:22"] and doc["services"]["s"]["restart"] == "no"


def test_invalid_compose_is_rejected_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: [unclosed\n")
    assert main(["migrate", str(bad), "-o", str(tmp_path / "Boltfile.toml")]) == 2
    assert "docker-compose.yml:4" in capsys.readouterr().err
    assert not (tmp_path / "Boltfile.toml").exists()


def test_result_that_would_not_validate_is_not_written(tmp_path, capsys):
    src = tmp_path / "docker-compose.yml"
    src.write_text("services:\n  web:\n    build: ./missing\n")
    assert main(["migrate", str(src), "-o", str(tmp_path / "Boltfile.toml")]) == 2
    assert "build directory" in capsys.readouterr().err
    assert not (tmp_path / "Boltfile.toml").exists()


def test_existing_output_needs_force(tmp_path, capsys):
    src = tmp_path / "docker-compose.yml"
    src.write_text("services:\n  web:\n    image: busybox\n")
    out = tmp_path / "Boltfile.toml"
    out.write_text("keep me")
    assert main(["migrate", str(src), "-o", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert main(["migrate", str(src), "-o", str(out), "--force"]) == 0
    assert Boltfile.from_path(out).services["web"].image == "busybox"
