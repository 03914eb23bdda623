"""nvsim's nvidia-smi against a live instance: the output forms NVIDIA's tool has, with the
values the instance holds."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import NvsimInstance

pytestmark = pytest.mark.nvsim

MIXED = {"gpus": 2, "model": "rtx4090,h100"}


def smi(
    inst: NvsimInstance, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(inst.state / "bin" / "nvidia-smi"), *args],
        env=inst.env if env is None else env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture
def mixed(nvsim_gpus: NvsimInstance) -> NvsimInstance:
    nvsim_gpus.run("load", "0", "50", "--memory", "1024", "--pid", str(os.getpid()))
    return nvsim_gpus


@pytest.mark.parametrize("nvsim_gpus", [MIXED], indirect=True)
def test_default_table(mixed: NvsimInstance) -> None:
    proc = smi(mixed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    framed = [line for line in lines if line[:1] in "|+"]
    assert {len(line) for line in framed} == {91}  # every row of the frame lines up
    assert re.search(
        r"NVIDIA-SMI 580\.95\.05 +Driver Version: 580\.95\.05 +CUDA Version: 13\.0", proc.stdout
    )
    status = mixed.status()["gpus"]
    for index, gpu in enumerate(status):
        row = next(line for line in lines if re.match(rf"\|\s+{index}\s+NVIDIA", line))
        assert gpu["name"] in row and gpu["pci_bus_id"] in row
    first = lines.index(next(line for line in lines if "H100" in line))
    assert lines[first + 1].startswith("| N/A ")  # no fans
    assert "Disabled" in lines[first + 2]  # MIG mode
    process = next(line for line in lines if f" {os.getpid()} " in line)
    assert " C " in process and "1024MiB" in process


@pytest.mark.parametrize("nvsim_gpus", [MIXED], indirect=True)
def test_list_and_selection_by_index_uuid_and_bus_id(mixed: NvsimInstance) -> None:
    status = mixed.status()["gpus"]
    listed = smi(mixed, "-L").stdout.splitlines()
    assert listed == [f"GPU {i}: {g['name']} (UUID: {g['uuid']})" for i, g in enumerate(status)]
    for ident in ("1", status[1]["uuid"], status[1]["pci_bus_id"], status[1]["pci_bus_id"][4:]):
        assert smi(mixed, "-L", "-i", ident).stdout.splitlines() == [listed[1]], ident
    both = smi(mixed, "-L", "-i", f"1,{status[0]['uuid']}").stdout.splitlines()
    assert both == [listed[1], listed[0]]
    missing = smi(mixed, "-L", "-i", "7")
    assert missing.returncode == 6 and "No devices were found" in missing.stdout


@pytest.mark.parametrize("nvsim_gpus", [MIXED], indirect=True)
def test_query_gpu_csv_forms(mixed: NvsimInstance) -> None:
    fields = "index,name,uuid,pci.bus_id,memory.total,memory.used,power.limit,fan.speed,ecc.mode.current,pstate"
    proc = smi(mixed, f"--query-gpu={fields}", "--format=csv")
    assert proc.returncode == 0, proc.stdout
    header, *rows = proc.stdout.splitlines()
    assert header == (
        "index, name, uuid, pci.bus_id, memory.total [MiB], memory.used [MiB], "
        "power.limit [W], fan.speed [%], ecc.mode.current, pstate"
    )
    status = mixed.status()["gpus"]
    for row, g in zip(rows, status, strict=True):
        cells = row.split(", ")
        assert cells[:4] == [str(g["index"]), g["name"], g["uuid"], g["pci_bus_id"]]
        assert cells[4] == f"{g['memory']['total_mib']} MiB"
        assert cells[6] == f"{g['power_limit_w']:.2f} W"
        assert cells[9] == "P0" if g["load_pct"] else cells[9].startswith("P")
    geforce, h100 = (row.split(", ") for row in rows)
    assert geforce[8] == "Disabled" and h100[8] == "Enabled"  # ECC: off on the 4090, on the H100
    assert h100[7] == "[N/A]"  # no fans
    plain = smi(mixed, "--query-gpu=memory.total,fan.speed", "--format=csv,noheader,nounits")
    assert plain.stdout.splitlines() == [f"{status[0]['memory']['total_mib']}, " + geforce[7].split()[0],
                                         f"{status[1]['memory']['total_mib']}, [N/A]"]  # fmt: skip
    one = smi(mixed, "--query-gpu=uuid", "--format=csv,noheader", "-i", "1")
    assert one.stdout == f"{status[1]['uuid']}\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--query-gpu=nonsense", "--format=csv"), 2, 'Field "nonsense" is not a valid field'),
        (("--query-gpu=index", "--format=json"), 2, '"json" is not a valid format option'),
        (("--query-gpu=index",), 2, "Invalid combination"),
        (("--frobnicate",), 2, "Invalid combination"),
        (("-x",), 2, "-x needs -q"),
    ],
)
def test_bad_arguments_exit_2(
    nvsim_gpus: NvsimInstance, args: tuple[str, ...], code: int, message: str
) -> None:
    proc = smi(nvsim_gpus, *args)
    assert proc.returncode == code and message in proc.stdout + proc.stderr


def test_without_the_library_or_the_driver(nvsim_gpus: NvsimInstance) -> None:
    no_lib = {k: v for k, v in nvsim_gpus.env.items() if k != "LD_LIBRARY_PATH"}
    no_lib["LD_LIBRARY_PATH"] = "/nonexistent"
    # The binary sits in bin/, beside lib/: without the search path the loader finds nothing.
    proc = smi(nvsim_gpus, "-L", env=no_lib)
    assert proc.returncode == 12 and "couldn't find libnvidia-ml.so" in proc.stdout
    no_state = dict(nvsim_gpus.env, NVSIM_STATE=str(nvsim_gpus.state / "nothing-here"))
    proc = smi(nvsim_gpus, env=no_state)
    assert proc.returncode == 9 and "couldn't communicate with the NVIDIA driver" in proc.stdout


@pytest.mark.parametrize("nvsim_gpus", [MIXED], indirect=True)
def test_query_report_text_and_xml_agree(mixed: NvsimInstance) -> None:
    text = smi(mixed, "-q", "-i", "1")
    assert text.returncode == 0
    status = mixed.status()["gpus"]
    h100 = status[1]
    assert "==============NVSMI LOG==============" in text.stdout
    assert re.search(r"^Attached GPUs {29}: 2$", text.stdout, re.M)
    assert f"GPU {h100['pci_bus_id']}" in text.stdout
    assert re.search(rf"^    Product Name {{26}}: {re.escape(h100['name'])}$", text.stdout, re.M)
    assert re.search(r"^        Total {29}: 81559 MiB$", text.stdout, re.M)  # nested, aligned
    assert re.search(r"^    Serial Number +: \d+$", text.stdout, re.M)  # datacenter boards have one
    xml = smi(mixed, "-q", "-x")
    assert xml.returncode == 0
    log = ET.fromstring(xml.stdout.split("\n", 2)[2])  # after the XML and DOCTYPE lines
    assert log.tag == "nvidia_smi_log" and log.findtext("attached_gpus") == "2"
    gpus = log.findall("gpu")
    assert [g.get("id") for g in gpus] == [g["pci_bus_id"] for g in status]
    geforce, dc = gpus
    assert geforce.findtext("uuid") == status[0]["uuid"] and geforce.findtext("serial") == "N/A"
    assert dc.findtext("ecc_mode/current_ecc") == "Enabled"
    assert geforce.findtext("ecc_mode/current_ecc") == "Disabled"
    assert dc.findtext("fb_memory_usage/total") == "81559 MiB"
    assert dc.findtext("fan_speed") == "N/A"
    assert geforce.findtext("gpu_power_readings/default_power_limit") == "450.00 W"
    procs = geforce.findall("processes/process_info")
    assert [p.findtext("pid") for p in procs] == [str(os.getpid())]
    assert procs[0].findtext("used_memory") == "1024 MiB"
    assert dc.findall("processes/process_info") == []


@pytest.mark.parametrize(
    "nvsim_gpus",
    [{"gpus": 1, "model": "rtx4090", "args": ["--driver", "470.256.02"]}],
    indirect=True,
)
def test_on_an_old_driver_it_uses_the_calls_that_driver_has(nvsim_gpus: NvsimInstance) -> None:
    """R470 has no _v3 process lists and no v2 memory info: the older calls answer."""
    nvsim_gpus.run("load", "0", "30", "--memory", "700", "--pid", str(os.getpid()))
    proc = smi(nvsim_gpus)
    assert proc.returncode == 0 and "Driver Version: 470.256.02" in proc.stdout
    process = next(line for line in proc.stdout.splitlines() if f" {os.getpid()} " in line)
    assert "700MiB" in process
    used = smi(nvsim_gpus, "--query-gpu=memory.used,temperature.gpu", "--format=csv,noheader")
    assert re.fullmatch(r"\d+ MiB, \d+\n", used.stdout)
