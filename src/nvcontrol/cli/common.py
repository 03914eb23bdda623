"""Options and helpers every nvctl command shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from nvcontrol.nvml import Gpu, Nvml
from nvcontrol.selection import select

F = TypeVar("F", bound=Callable[..., Any])


def gpu_option(fn: F) -> F:
    return click.option(
        "-i",
        "--gpu",
        "selector",
        metavar="SEL",
        default=None,
        help="GPUs: index, UUID (or unique prefix), PCI bus id, comma list, or 'all' (default).",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@contextmanager
def session(selector: str | None) -> Iterator[tuple[Nvml, list[Gpu]]]:
    """An NVML session and the selected GPUs (errors exit 2 or 3 with a clear message)."""
    with Nvml() as nvml:
        yield nvml, select(selector, nvml.gpus)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def emit_json_line(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()
