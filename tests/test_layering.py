"""The import arrows of docs/decisions.md hold: nvsim sits at the bottom and sees neither
Bolt nor nvcontrol; Bolt never imports nvcontrol; the neutral base imports nothing above it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import basis
import bolt
import nvsim

FORBIDDEN = {
    "basis": ("bolt", "nvcontrol", "nvsim"),
    "nvsim": ("bolt", "nvcontrol"),
    "bolt": ("nvcontrol",),
}


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    name = package.__name__  # type: ignore[attr-defined]
    return [name] + [m.name for m in pkgutil.walk_packages(path, name + ".")]


@pytest.mark.parametrize("package", [basis, nvsim, bolt], ids=lambda p: p.__name__)
def test_package_imports_nothing_above_it(package: object) -> None:
    name = package.__name__  # type: ignore[attr-defined]
    code = (
        "import importlib, sys\n"
        f"for m in {_modules(package)!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN[name]!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{name} pulls in {out.stdout.strip()}"
