"""How many of nvidia-ml-py's single-handle getters answer FUNCTION_NOT_FOUND on nvsim.

A real driver of the pretended branch exports every one of these functions; a getter that
answers FUNCTION_NOT_FOUND is one a client cannot use on nvsim at all.  For each model the
script starts a one-GPU instance, calls every ``pynvml.nvmlDeviceGet*`` that takes only a
device handle, and counts the answers by kind.  The peer is the real driver's count, 0 by
definition for the branch a getter belongs to, so the number printed is the gap itself.

    python bench/nvml_coverage.py [--nvsim PATH] [--driver VERSION] [--list]

``--nvsim`` names the ``nvsim`` command to use (another checkout's, to compare).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MODELS = ("rtx4090", "rtx5090", "rtx3060", "h100")
# Not getters of one board's state: they take more than a handle in practice, or change it.
SKIP = {"nvmlDeviceGetHandleByIndex", "nvmlDeviceGetCount"}


def single_handle_getters() -> list[str]:
    import pynvml

    names = []
    for name in dir(pynvml):
        if not name.startswith("nvmlDeviceGet") or name in SKIP:
            continue
        fn = getattr(pynvml, name)
        if not callable(fn):
            continue
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            continue
        if len(params) == 1:
            names.append(name)
    return sorted(names)


def probe() -> None:
    """In the child: call every getter on GPU 0 and print {name: outcome} as JSON."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    outcome: dict[str, str] = {}
    for name in single_handle_getters():
        try:
            getattr(pynvml, name)(handle)
            outcome[name] = "ok"
        except pynvml.NVMLError_FunctionNotFound:
            outcome[name] = "function_not_found"
        except pynvml.NVMLError as err:
            outcome[name] = f"nvml:{err}"
        except Exception as err:  # a binding's own bug is an outcome to count, not a crash
            outcome[name] = f"python:{type(err).__name__}"
    pynvml.nvmlShutdown()
    print(json.dumps(outcome))


def measure(nvsim: list[str], model: str, driver: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "nvsim"
        env = dict(os.environ)
        env.pop("LD_LIBRARY_PATH", None)
        base = [*nvsim, "--state", str(state)]

        def run(*args: str) -> str:
            proc = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
            return proc.stdout

        run(*base, "up", "--gpus", "1", "--model", model, "--driver", driver)
        try:
            env.update(json.loads(run(*base, "env", "--format", "json")))
            return dict(json.loads(run(sys.executable, __file__, "--probe")))
        finally:
            subprocess.run([*base, "down"], env=env, capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvsim", default=str(Path(sys.executable).parent / "nvsim"))
    parser.add_argument("--driver", default="580.95.05")
    parser.add_argument("--list", action="store_true", help="name the missing getters")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe()
        return
    total = len(single_handle_getters())
    print(f"{total} single-handle getters in nvidia-ml-py; driver {args.driver}")
    for model in MODELS:
        outcome = measure(args.nvsim.split(), model, args.driver)
        missing = sorted(n for n, o in outcome.items() if o == "function_not_found")
        ok = sum(1 for o in outcome.values() if o == "ok")
        other = len(outcome) - ok - len(missing)
        print(
            f"{model:8} FUNCTION_NOT_FOUND {len(missing):3}   answered {ok:3}   other errors {other:3}"
        )
        if args.list:
            for name in missing:
                print(f"    {name}")


if __name__ == "__main__":
    main()
