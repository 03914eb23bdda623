"""The pure parts of nvctl ct: the shipped Boltfile is the seed's, the nvidia-settings
shim's mapping, the web proxy's endpoint, driver host paths, and the status join."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bolt.config import Boltfile
from bolt.runtime.intent import MountIntent
from bolt.surge import hostpaths
from nvcontrol.ct import baseimage, control, nvsettings, webproxy
from nvcontrol.ct.stack import SHIPPED, boltfile_path
from tests import debian_image
from tests.surge.conftest import seed_snippets

STACK = SHIPPED.parent


def test_shipped_boltfile_is_the_seeds_plus_the_drivers_volume() -> None:
    seed = seed_snippets()["boltfile"].strip()
    # The one addition: the driver-updater's /drivers volume, where packages are staged.
    with_drivers = seed.replace(
        '"/usr/src:/usr/src:ro"\n]', '"/usr/src:/usr/src:ro",\n    "./drivers:/drivers"\n]'
    )
    assert with_drivers != seed
    assert SHIPPED.read_text().strip() == with_drivers
    bf = Boltfile.from_path(SHIPPED)
    assert list(bf.services) == ["gpu-manager", "gpu-monitor", "driver-updater", "web-interface"]
    assert bf.network.driver == "quic" and bf.network.encryption is True
    assert bf.services["web-interface"].env["API_ENDPOINT"] == "bolt://gpu-manager:3000"
    assert bf.services["gpu-manager"].privileged and bf.services["driver-updater"].privileged


def test_every_service_has_its_dockerfile_on_the_offline_base() -> None:
    for d in ("containers/gpu-manager", "containers/monitor", "containers/driver-updater", "web"):
        text = (STACK / d / "Dockerfile.bolt").read_text()
        assert "FROM nvcontrol-base:latest" in text
    base = (STACK / "base" / "Dockerfile.bolt").read_text()
    assert "--no-index" in base and "FROM nvcontrol-debian:bookworm" in base


def test_the_suites_debian_image_is_the_one_nvctl_would_bootstrap() -> None:
    # The stack's tests load the run's bootstrap as nvcontrol-debian:bookworm instead of
    # letting `nvctl ct start` make its own: the same suite and packages.
    assert debian_image.IMAGE == baseimage.TARGET
    assert debian_image.PACKAGES == baseimage.PACKAGES


def test_stack_path_errors_name_the_path(tmp_path: Path) -> None:
    from basis.errors import NotFound

    with pytest.raises(NotFound, match=str(tmp_path / "nope")):
        boltfile_path(str(tmp_path / "nope"))
    assert boltfile_path(str(STACK)) == STACK / "Boltfile.toml"


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("[gpu:0]/GPUMemoryTransferRateOffset[3]=1000", ["-i", "0", "--memory-offset", "500"]),
        ("[gpu:1]/GPUGraphicsClockOffset[3]=-50", ["-i", "1", "--gpu-offset", "-50"]),
    ],
)
def test_nvidia_settings_offsets_map_to_nvml_units(assignment: str, expected: list[str]) -> None:
    argv = nvsettings.to_nvctl(assignment)
    assert argv[:3] == ["nvctl", "overclock", "apply"]
    assert argv[3:7] == expected and "--no-confirm" in argv


@pytest.mark.parametrize(
    "bad",
    [
        "[gpu:0]/GPUFanSpeed[3]=50",
        "[gpu:0]/GPUGraphicsClockOffset[2]=50",
        "[gpu:x]/GPUGraphicsClockOffset[3]=50",
        "",
    ],
)
def test_nvidia_settings_refuses_what_it_does_not_know(bad: str) -> None:
    with pytest.raises(ValueError):
        nvsettings.to_nvctl(bad)
    assert nvsettings.main(["-a", bad]) == 2


def test_web_proxy_reaches_the_api_endpoint_by_service_name() -> None:
    assert webproxy.upstream_url("bolt://gpu-manager:3000") == "https://gpu-manager:3000"
    for bad in ("http://x:1", "bolt://gpu-manager", "bolt://:3000", "bolt://a:1/path"):
        with pytest.raises(ValueError):
            webproxy.upstream_url(bad)


def test_missing_driver_nodes_come_from_the_drivers_device_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "nvidia0").write_text("")
    (dev / "nvidiactl").write_text("")
    lib = tmp_path / "libnvidia-ml.so.1"
    lib.write_text("")
    monkeypatch.setattr(hostpaths, "_driver", lambda: (str(dev), str(lib)))
    missing = "/dev/nvidia-not-here-" + os.urandom(3).hex()
    out = hostpaths.devices(["/dev/nvidia0", "/dev/nvidiactl:rw", "/dev/null", missing])
    if not os.path.exists("/dev/nvidia0"):
        assert out[0] == f"{dev}/nvidia0:/dev/nvidia0"
        assert out[1] == f"{dev}/nvidiactl:/dev/nvidiactl:rw"
    assert out[2] == "/dev/null" and out[3] == missing  # unknown: fails where it is used
    mounts = hostpaths.mounts(
        [
            MountIntent("bind", "/usr/lib/libnvidia-ml.so", "/nonexistent/libnvidia-ml.so", True),
            MountIntent("bind", "/lib/modules", "/lib/modules-absent-" + os.urandom(3).hex(), True),
            MountIntent("bind", "/data", "/nonexistent-data", True),
        ]
    )
    assert mounts[0].source == str(lib)
    assert [m.destination for m in mounts] == ["/usr/lib/libnvidia-ml.so", "/data"]


def _info(index: int, uuid: str) -> dict:
    return {
        "index": index,
        "uuid": uuid,
        "name": "NVIDIA GeForce RTX 4090",
        "temperature": {"gpu_c": 40},
        "power": {"usage_w": 30.5, "limit_w": 450.0},
        "clocks": {"current": {"graphics_mhz": 210, "memory_mhz": 405}},
        "offsets": {"pstates": {"P0": {"graphics": {"offset_mhz": 15}, "memory": {}}}},
    }


def test_gpu_summary_and_which_services_use_it() -> None:
    g = control._gpu_summary(_info(1, "GPU-b"))
    assert g["model"] == "NVIDIA GeForce RTX 4090" and g["temperature_c"] == 40
    assert g["offsets_mhz"] == {"graphics": 15, "memory": None}
    assert control._uses(control._gpu_tokens("all"), g)
    assert control._uses(control._gpu_tokens("0,1"), g)
    assert control._uses(control._gpu_tokens("GPU-b"), g)
    assert not control._uses(control._gpu_tokens("0"), g)
    assert not control._uses(control._gpu_tokens(None), g)


def test_dashboard_url_from_the_published_port() -> None:
    doc = {
        "services": [
            {"service": "web-interface", "state": "running",
             "ports": [{"host_ip": "0.0.0.0", "host_port": 8080, "container_port": 8080}]},
            {"service": "gpu-manager", "state": "running",
             "ports": [{"host_ip": "", "host_port": 3000}]},
        ]
    }  # fmt: skip
    assert control.dashboard_urls(doc) == ["http://127.0.0.1:8080/"]
