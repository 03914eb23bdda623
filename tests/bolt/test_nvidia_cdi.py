"""The nvidia.com/gpu CDI spec for a real driver's layout (no GPU needed: files are faked)."""

from __future__ import annotations

from pathlib import Path

from bolt.runtime import cdi
from bolt.runtime.gpu.nvidia import Driver, NvidiaGpu, build_cdi_spec

GPUS = [
    NvidiaGpu(
        index=0,
        uuid="GPU-aaaa",
        name="Test GPU",
        minor=0,
        pci_bus_id="0000:01:00.0",
        memory_total=1,
    ),
    NvidiaGpu(
        index=1,
        uuid="GPU-bbbb",
        name="Test GPU",
        minor=3,
        pci_bus_id="0000:02:00.0",
        memory_total=1,
    ),
]


def test_real_driver_spec_names_nodes_libraries_and_validates(tmp_path: Path) -> None:
    dev, lib = tmp_path / "dev", tmp_path / "lib"
    dev.mkdir()
    lib.mkdir()
    for name in ("nvidia0", "nvidia3", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    (lib / "libnvidia-ml.so.1").touch()
    (lib / "libcuda.so.1").touch()
    driver = Driver(
        library=str(lib / "libnvidia-ml.so.1"), version="580.1", dev_dir=str(dev), nvsim_state=None
    )
    spec = build_cdi_spec(GPUS, driver)
    parsed = cdi.parse_spec("generated", spec)
    assert set(parsed.devices) == {"0", "1", "GPU-aaaa", "GPU-bbbb", "all"}
    assert parsed.devices["1"]["deviceNodes"] == [
        {"path": "/dev/nvidia3", "hostPath": str(dev / "nvidia3")}
    ]
    assert len(parsed.devices["all"]["deviceNodes"]) == 2
    common = spec["containerEdits"]
    assert {n["path"] for n in common["deviceNodes"]} == {"/dev/nvidiactl", "/dev/nvidia-uvm"}
    targets = {m["containerPath"] for m in common["mounts"]}
    assert "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1" in targets
    assert "/usr/lib64/libcuda.so.1" in targets
    assert not any(e.startswith("NVSIM_STATE=") for e in common["env"])
    assert GPUS[1].cdi_device == "nvidia.com/gpu=GPU-bbbb"
