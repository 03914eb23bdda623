"""Unmodified third-party NVML clients against a live nvsim instance, as separate processes.

* py3nvml's ``XmlDeviceQuery()`` walks most of the API through its own ctypes bindings,
  including the 52-byte ``nvmlDeviceGetPciInfo_v2`` struct that nvsim once overflowed.
* nvitop on an instance pretending to be R535 must fall back to the calls that branch has
  (no ``nvmlDeviceGetTemperatureV`` symbol) and still show every temperature.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import NvsimInstance, tool

pytestmark = pytest.mark.nvsim

XML_QUERY = """
import warnings
warnings.simplefilter("ignore")
from py3nvml import nvidia_smi
nvidia_smi.nvmlInit()
print(nvidia_smi.XmlDeviceQuery())
nvidia_smi.nvmlShutdown()
"""


# py3nvml predates the NVIDIA brand (14) an H100 reports, and fails on it as it would on a
# real H100, so the XML query runs on GeForce boards.
@pytest.mark.parametrize("nvsim_gpus", [{"gpus": 2, "model": "rtx4090,rtx3060"}], indirect=True)
def test_py3nvml_xml_device_query(nvsim_gpus: NvsimInstance) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", XML_QUERY],
        env=nvsim_gpus.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = ET.fromstring(proc.stdout[proc.stdout.index("<?xml") :])
    status = nvsim_gpus.status()["gpus"]
    gpus = log.findall("gpu")
    assert log.findtext("attached_gpus") == "2" and len(gpus) == 2
    for gpu, ours in zip(gpus, status, strict=True):
        assert gpu.findtext("product_name") == ours["name"]
        assert gpu.findtext("uuid") == ours["uuid"]
        assert gpu.findtext("serial") == "N/A"  # GeForce boards report none
        bus = ours["pci_bus_id"].split(":", 1)[1].lower()  # py3nvml shows the 52-byte v2 id
        assert bus in gpu.findtext("pci/pci_bus_id", "").lower()
        total = gpu.findtext("fb_memory_usage/total", "")
        assert float(total.split()[0]) == ours["memory"]["total_mib"]  # py3nvml prints a float
        assert gpu.findtext("temperature/gpu_temp", "").endswith(" C")


@pytest.mark.parametrize(
    "nvsim_gpus",
    [{"gpus": 2, "model": "rtx4090,h100", "args": ["--driver", "535.154.05"]}],
    indirect=True,
)
def test_nvitop_shows_temperatures_on_an_r535_instance(nvsim_gpus: NvsimInstance) -> None:
    # R535 has no nvmlDeviceGetTemperatureV: the symbol itself is missing, as on that driver.
    # (Read with nm: loading a second libnvidia-ml.so.1 here would shadow the one pynvml
    # finds by soname for the rest of the test session.)
    nm = subprocess.run(
        ["nm", "-D", "--defined-only", str(nvsim_gpus.state / "lib" / "libnvidia-ml.so.1")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    exported = {line.split()[-1] for line in nm.splitlines()}
    assert "nvmlDeviceGetTemperatureV" not in exported
    assert "nvmlDeviceGetTemperature" in exported
    proc = subprocess.run(
        [tool("nvitop"), "-1"],
        env=nvsim_gpus.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Driver Version: 535.154.05" in proc.stdout
    status = nvsim_gpus.status()["gpus"]
    rows = [line for line in proc.stdout.splitlines() if re.search(r"\bP\d\b", line)]
    assert len(rows) == 2, proc.stdout
    for row, ours in zip(rows, status, strict=True):
        temp = re.search(r"(\d+)C", row)
        assert temp is not None, row  # a temperature, not N/A
        assert abs(int(temp.group(1)) - ours["temperature_c"]) <= 1
