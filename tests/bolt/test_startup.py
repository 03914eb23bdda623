"""``bolt run`` stays lean: its import path loads no heavy or unrelated library."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import bolt.cli
bolt.cli.parse_args(["--root", "/tmp/x", "run", "--rm", "-e", "A=1", "busybox", "true"])
import bolt.cli.run, bolt.engine.containers, bolt.runtime.imagecache, bolt.runtime.ocispec
print(json.dumps(sorted(sys.modules)))
"""


def test_run_path_imports_no_heavy_modules() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    heavy = {
        "click",
        "rich",
        "pydantic",
        "pynvml",
        "dataclasses",
        "inspect",
        "asyncio",
        "tarfile",
        "bolt.images",
        "argparse",  # a plain command line is read without it
        "subprocess",  # the runtime is started with posix_spawn
        "shutil",  # needed only by the monitor, after the runtime has started
        "bolt.runtime.logs",
    }
    assert loaded & heavy == set()
    assert "bolt.cli.containers" not in loaded  # only the invoked command's parser is built
