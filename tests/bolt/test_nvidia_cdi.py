"""The nvidia.com/gpu CDI spec for a real driver's layout (no GPU needed: files are faked)."""

from __future__ import annotations

from pathlib import Path

from bolt.runtime import cdi
from bolt.runtime.gpu.nvidia import Driver, NvidiaGpu, build_cdi_spec
from bolt.runtime.spec import ContainerSpec

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


def _nvsim_driver(tmp_path: Path) -> Driver:
    state = tmp_path / "nvsim"
    for sub in ("dev", "lib", "bin"):
        (state / sub).mkdir(parents=True)
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (state / "dev" / name).symlink_to("/dev/null")  # a character device anyone may stat
    (state / "lib" / "libnvidia-ml.so.1").touch()
    (state / "bin" / "nvidia-smi").touch()
    (state / "state").touch()
    return Driver(
        library=str(state / "lib" / "libnvidia-ml.so.1"),
        version="580.95.05",
        dev_dir=str(state / "dev"),
        nvsim_state=str(state),
    )


def test_nvsim_spec_mounts_the_state_read_only_and_injects_nvidia_smi(tmp_path: Path) -> None:
    driver = _nvsim_driver(tmp_path)
    spec = build_cdi_spec(GPUS, driver)
    cdi.parse_spec("generated", spec)
    mounts = {m["containerPath"]: m for m in spec["containerEdits"]["mounts"]}
    state = mounts["/run/nvsim/state"]
    assert state["hostPath"] == f"{driver.nvsim_state}/state"
    assert "ro" in state["options"] and "rw" not in state["options"]
    smi = mounts["/usr/bin/nvidia-smi"]
    assert smi["hostPath"] == f"{driver.nvsim_state}/bin/nvidia-smi" and "ro" in smi["options"]
    # A container given only GPUs gets the read-only state.
    edits = cdi.edits_for(["nvidia.com/gpu=all"], {spec["kind"]: cdi.parse_spec("g", spec)})
    applied = {m.destination: m for e in edits for m in e.mounts}
    assert applied["/run/nvsim/state"].readonly


def test_nvsim_state_rw_device_grants_one_container_write_access(tmp_path: Path) -> None:
    spec = build_cdi_spec(GPUS, _nvsim_driver(tmp_path))
    registry = {spec["kind"]: cdi.parse_spec("generated", spec)}
    base = ContainerSpec(id="c", name="c", rootfs="/r", args=("true",))
    for order in (
        ["nvidia.com/gpu=all", "nvidia.com/gpu=nvsim-state-rw"],
        ["nvidia.com/gpu=nvsim-state-rw", "nvidia.com/gpu=0"],
    ):
        merged = cdi.apply(base, cdi.edits_for(order, registry))
        state = [m for m in merged.mounts if m.destination == "/run/nvsim/state"]
        assert len(state) == 1 and not state[0].readonly, order
    plain = cdi.apply(base, cdi.edits_for(["nvidia.com/gpu=0"], registry))
    assert [m.readonly for m in plain.mounts if m.destination == "/run/nvsim/state"] == [True]
