"""Every ``bolt`` command's own ``--help`` says what the command does, at every depth."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator

from bolt.cli import build_parser
from tests.conftest import tool


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from _commands(child, (*path, name))


def test_every_subcommand_has_a_description() -> None:
    found = list(_commands(build_parser(), ()))
    assert len(found) > 50  # the walk reached the nested groups too
    bare = [" ".join(path) for path, p in found if not (p.description or "").strip()]
    assert bare == []


def test_system_prune_help_says_what_it_removes() -> None:
    done = subprocess.run(
        [tool("bolt"), "system", "prune", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "Remove stopped containers, spare root file systems, unused layers" in done.stdout
