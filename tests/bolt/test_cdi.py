"""CDI specs: validation with located errors, resolution, and podman-style merging."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bolt.errors import InvalidInput, NotFound
from bolt.runtime import cdi
from bolt.runtime.ocispec import generate
from bolt.runtime.spec import ContainerSpec, Mount, validate
from tests.bolt.oci_schema import schema_errors


def write(dirpath: Path, name: str, doc: dict) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    path = dirpath / name
    path.write_text(json.dumps(doc))
    return path


def vendor_spec(node: str) -> dict:
    return {
        "cdiVersion": "0.6.0",
        "kind": "example.com/dev",
        "containerEdits": {
            "env": ["VENDOR=1"],
            "mounts": [{"hostPath": "/usr/lib", "containerPath": "/vendor"}],
        },
        "devices": [
            {
                "name": "a",
                "containerEdits": {
                    "deviceNodes": [{"path": "/dev/a0", "hostPath": node, "permissions": "rw"}],
                    "env": ["DEV=a", "VENDOR=2"],
                    "hooks": [
                        {"hookName": "createContainer", "path": "/bin/true", "args": ["true"]}
                    ],
                },
            }
        ],
    }


def base_spec() -> ContainerSpec:
    return validate(
        ContainerSpec(
            id="cd" * 32, name="c", rootfs="/r", args=("/bin/sh",), env=("VENDOR=0", "KEEP=1")
        )
    )


def test_device_edits_merge_like_podman(tmp_path: Path) -> None:
    write(tmp_path / "cdi", "vendor.json", vendor_spec("/dev/null"))
    registry = cdi.load_registry([str(tmp_path / "cdi")])
    merged = cdi.apply(base_spec(), cdi.edits_for(["example.com/dev=a"], registry))
    assert "KEEP=1" in merged.env and "DEV=a" in merged.env
    assert [e for e in merged.env if e.startswith("VENDOR=")] == ["VENDOR=2"]  # device edits win
    (dev,) = merged.devices
    assert (dev.path, dev.type, dev.major, dev.minor, dev.access) == ("/dev/a0", "c", 1, 3, "rw")
    assert Mount("/vendor", "/usr/lib") in merged.mounts
    assert merged.hooks[0].stage == "createContainer"
    config = generate(validate(merged))
    assert schema_errors(config) == []
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in config["linux"][
        "resources"
    ]["devices"]
    assert config["hooks"]["createContainer"] == [{"path": "/bin/true", "args": ["true"]}]


NVIDIA_CTK_YAML = """\
---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: {node}
- name: all
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: {node}
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
    args: [nvidia-ctk, hook, update-ldcache]
  mounts:
  - hostPath: /usr/lib
    containerPath: /usr/lib/nvidia
    options: [ro, nosuid, nodev, bind]
"""


def test_yaml_specs_as_nvidia_ctk_writes_them_are_read(tmp_path: Path) -> None:
    (tmp_path / "cdi").mkdir()
    (tmp_path / "cdi" / "nvidia.yaml").write_text(NVIDIA_CTK_YAML.format(node="/dev/null"))
    registry = cdi.load_registry([str(tmp_path / "cdi")])
    assert set(registry["nvidia.com/gpu"].devices) == {"0", "all"}
    merged = cdi.apply(base_spec(), cdi.edits_for(["nvidia.com/gpu=0"], registry))
    assert "NVIDIA_VISIBLE_DEVICES=void" in merged.env
    assert [(d.path, d.major, d.minor) for d in merged.devices] == [("/dev/nvidia0", 1, 3)]
    assert merged.hooks[0].args == ("nvidia-ctk", "hook", "update-ldcache")
    assert schema_errors(generate(validate(merged))) == []


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "cdi").mkdir()
    bad = tmp_path / "cdi" / "broken.yml"
    bad.write_text("cdiVersion: 0.5.0\nkind: [unclosed\n")
    with pytest.raises(InvalidInput) as exc:
        cdi.load_registry([str(tmp_path / "cdi")])
    assert str(bad) in str(exc.value) and "not valid JSON/YAML" in str(exc.value)


def test_later_directories_override_earlier(tmp_path: Path) -> None:
    write(tmp_path / "etc", "v.json", vendor_spec("/dev/null"))
    write(tmp_path / "run", "v.json", vendor_spec("/dev/zero"))
    registry = cdi.load_registry([str(tmp_path / "etc"), str(tmp_path / "run")])
    (edits,) = [e for e in cdi.edits_for(["example.com/dev=a"], registry) if e.devices]
    assert edits.devices[0].minor == os.minor(os.stat("/dev/zero").st_rdev)


def test_env_dirs_are_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "extra", "v.json", vendor_spec("/dev/null"))
    monkeypatch.setenv("BOLT_CDI_SPEC_DIRS", f"{tmp_path / 'missing'}:{tmp_path / 'extra'}")
    assert "a" in cdi.load_registry()["example.com/dev"].devices


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(cdiVersion="9.9"), "cdiVersion"),
        (lambda d: d.update(kind="nodomain"), "kind"),
        (lambda d: d.update(devices=[]), "devices"),
        (lambda d: d["devices"][0].update(name="bad name"), "devices[0].name"),
        (
            lambda d: d["devices"][0]["containerEdits"]["deviceNodes"][0].update(path="dev/a"),
            "deviceNodes[0].path",
        ),
        (
            lambda d: d["containerEdits"]["mounts"][0].update(containerPath="rel"),
            "mounts[0].containerPath",
        ),
        (
            lambda d: d["devices"][0]["containerEdits"]["hooks"][0].update(hookName="never"),
            "hooks[0].hookName",
        ),
        (lambda d: d["devices"][0].update(containerEdits={}), "has no edits"),
    ],
)
def test_invalid_spec_errors_name_file_and_location(tmp_path: Path, mutate, where: str) -> None:
    doc = vendor_spec("/dev/null")
    mutate(doc)
    path = write(tmp_path / "cdi", "bad.json", doc)
    with pytest.raises(InvalidInput) as exc:
        cdi.load_registry([str(tmp_path / "cdi")])
    assert str(path) in str(exc.value) and where in str(exc.value)


def test_unknown_device_is_not_found_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as exc:
        cdi.edits_for(["nvidia.com/gpu=7"], cdi.load_registry([str(tmp_path)]))
    assert "bolt gpu cdi generate" in (exc.value.hint or "")


def test_gpus_flag_maps_to_cdi_names() -> None:
    from bolt.runtime.request import gpu_device_names

    assert gpu_device_names("all") == ["nvidia.com/gpu=all"]
    assert gpu_device_names("0,1") == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    assert gpu_device_names('"device=GPU-abc"') == ["nvidia.com/gpu=GPU-abc"]
