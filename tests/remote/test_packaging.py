"""The shipped systemd unit is valid and hardened (systemd's own verifier and scorer)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "nvcontrol-agent.service"


def test_the_agent_unit_verifies_and_scores_as_hardened(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: ./project.sh setup installs systemd"
    nvctl = Path(sys.executable).parent / "nvctl"
    unit = tmp_path / "nvcontrol-agent.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/nvctl", str(nvctl)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    score = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                           capture_output=True, text=True)  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", score.stdout + score.stderr)
    assert m, score.stdout + score.stderr
    assert float(m[1]) <= 3.5, score.stdout  # "OK" or better on systemd's scale
    text = UNIT.read_text()
    for opt in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
    ):
        assert opt in text
