"""The hardware tests never run nvctl with the default state: its start-up repair could
roll back a real transaction on the host.  Checked on their source, as they are collected
only on machines with a GPU."""

from __future__ import annotations

import ast
from pathlib import Path

HARDWARE = Path(__file__).resolve().parents[1] / "hardware"


def test_every_nvctl_run_in_the_hardware_tests_gets_temporary_state_dirs() -> None:
    files = sorted(HARDWARE.glob("test_*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if not name.startswith("subprocess."):
                continue
            argv = ast.unparse(node.args[0]) if node.args else ""
            if "NVCTL" not in argv:
                continue  # nvidia-smi and other tools
            env = next((k for k in node.keywords if k.arg == "env"), None)
            assert env is not None, f"{path.name}:{node.lineno} runs nvctl with the default state"
            function = next(
                f
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef)
                and f.lineno <= node.lineno <= (f.end_lineno or f.lineno)
            )
            text = ast.unparse(function)
            assert "NVCTL_STATE_DIR" in text and "NVCTL_CONFIG_DIR" in text, (
                f"{path.name}:{node.lineno}: the env must set NVCTL_STATE_DIR and NVCTL_CONFIG_DIR"
            )
