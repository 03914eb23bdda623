"""`bolt image bootstrap` itself: debootstrap into a Bolt root of its own, imported as a
one-layer image and saved. No container, network or cgroup: it runs beside the serial
group, the first thing on its worker (tests/parallel.py), and the run's other Debian users
(the builder's run-and-build test, the ct stack) load the image it made."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.debian_image import BOOTSTRAP_TIMEOUT_S, IMAGE, PACKAGES, Bootstrapped

READ = ("etc/debian_version", "var/lib/dpkg/status")


def _read_layer(archive: Path) -> tuple[dict[str, str], list[str]]:
    """From the saved image's one layer: the files in READ, and what only installing
    needed (downloaded packages, apt's package lists and caches)."""
    found: dict[str, str] = {}
    leftovers: list[str] = []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == [IMAGE], manifest
        assert len(manifest[0]["Layers"]) == 1, manifest[0]["Layers"]
        with tarfile.open(fileobj=outer.extractfile(manifest[0]["Layers"][0]), mode="r|") as layer:
            for member in layer:
                name = member.name.removeprefix("./")
                if not member.isfile():
                    continue
                if name in READ:
                    found[name] = layer.extractfile(member).read().decode()  # type: ignore[union-attr]
                elif name.endswith(".deb") or (
                    name.startswith(("var/lib/apt/lists/", "var/cache/apt/"))
                    and not name.endswith("lock")
                ):
                    leftovers.append(name)
    return found, leftovers


def _installed(dpkg_status: str) -> set[str]:
    names = set()
    for stanza in dpkg_status.split("\n\n"):
        fields = dict(ln.split(": ", 1) for ln in stanza.splitlines() if ": " in ln)
        if fields.get("Status") == "install ok installed":
            names.add(fields["Package"])
    return names


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.timeout(BOOTSTRAP_TIMEOUT_S + 120)
def test_bootstrap_makes_a_minbase_debian_with_the_packages_asked_for(
    debian_bootstrap: Bootstrapped,
) -> None:
    archive = debian_bootstrap.check()
    assert debian_bootstrap.stdout.startswith(f"{IMAGE} sha256:"), debian_bootstrap.stdout
    assert debian_bootstrap.scratch_left == []  # its scratch directory is removed
    files, leftovers = _read_layer(archive)
    assert files["etc/debian_version"].startswith("12."), files["etc/debian_version"]
    installed = _installed(files["var/lib/dpkg/status"])
    assert set(PACKAGES) <= installed, sorted(installed)
    assert "apt" in installed and "systemd" not in installed  # minbase: apt, no init system
    assert leftovers == [], leftovers[:5]
