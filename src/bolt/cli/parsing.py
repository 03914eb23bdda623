"""The argparse parser class of ``bolt``: every subcommand's own ``--help`` opens with the
one line ``bolt --help`` lists it with, so no command's help page is bare options."""

from __future__ import annotations

import argparse
from typing import Any


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        line = kwargs.get("help")
        if kwargs.get("description") is None and line and line != argparse.SUPPRESS:
            kwargs["description"] = line[0].upper() + line[1:] + ("" if line[-1] in ".)" else ".")
        return super().add_parser(name, **kwargs)


class Parser(argparse.ArgumentParser):
    """Subparsers are made of this class too (argparse's default), so the rule holds at
    every depth (``bolt network create``, ``bolt surge up``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)
