"""Boltfile problems as users read them: the dotted key, its line, what was wrong.

``BoltfileError`` carries every problem found in one file (they are reported together) and
exits with code 2 like any invalid input.  pydantic's errors are translated here: an
unknown key gets a "did you mean", a wrong type names the expected one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from basis.errors import InvalidInput
from bolt.config.locate import Locator


@dataclass(frozen=True, order=True)
class Problem:
    line: int | None
    path: str  # dotted, e.g. "services.web.ports"; "" for the whole file
    message: str

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "key": self.path, "message": self.message}


class BoltfileError(InvalidInput):
    """Everything wrong with one Boltfile; nothing was started."""

    def __init__(self, file: Path | str, problems: Sequence[Problem]) -> None:
        self.file = str(file)
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))
        lines = [p.render(self.file) for p in self.problems]
        head = (
            lines[0]
            if len(lines) == 1
            else f"{len(lines)} problems in {self.file}:\n  " + ("\n  ".join(lines))
        )
        super().__init__(head, hint="nothing was started; fix the Boltfile and run again")


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            part = str(part)
            piece = part if part.replace("-", "").replace("_", "").isalnum() else f'"{part}"'
            text += f".{piece}" if text else piece
    return text


def problem_at(locator: Locator | None, path: Sequence[str | int], message: str) -> Problem:
    line = locator.line_of(path) if locator else None
    return Problem(line, dotted(path), message)


# --------------------------------------------------------------------------- pydantic


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation allows (Annotated, Optional and unions opened)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose table ``path`` names (to list the keys it allows)."""
    current: list[Any] = [model]
    for part in path:
        following: list[Any] = []
        for t in current:
            if isinstance(t, type) and issubclass(t, BaseModel):
                for name, field in t.model_fields.items():
                    names = {name, *_aliases(field)}
                    if part in names:
                        following.extend(_unwrap(field.annotation))
            elif typing.get_origin(t) in (dict, list):
                following.extend(_unwrap(typing.get_args(t)[-1]))
        current = following
    for t in current:
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _aliases(field: Any) -> list[str]:
    choices = getattr(field.validation_alias, "choices", None)
    return [c for c in choices or () if isinstance(c, str)]


def _keys_of(model: type[BaseModel]) -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.extend(_aliases(field) or [name])
    return keys


def _describe(value: Any) -> str:
    from bolt.config.schema import type_name

    text = repr(value)
    shown = f" ({text})" if len(text) <= 40 and not isinstance(value, dict | list) else ""
    return f"{type_name(value)}{shown}"


def from_validation(
    err: ValidationError, model: type[BaseModel], locator: Locator | None
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for e in err.errors():
        path = [p for p in e["loc"] if isinstance(p, str | int)]
        kind = e["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            parent = _model_at(model, path[:-1])
            message = f"unknown key '{key}'"
            if parent is not None:
                match = difflib.get_close_matches(key, _keys_of(parent), n=1, cutoff=0.6)
                if match:
                    message += f"; did you mean '{match[0]}'?"
                else:
                    message += f" (allowed: {', '.join(sorted(_keys_of(parent)))})"
        elif kind in _EXPECTED:
            message = f"expected {_EXPECTED[kind]}, got {_describe(e['input'])}"
        elif kind == "literal_error":
            message = f"expected one of {e['ctx']['expected']}, got {e['input']!r}"
        elif kind == "missing":
            message = "this key is required"
        elif kind == "string_too_short":
            message = "must not be empty"
        elif kind == "string_pattern_mismatch":
            message = f"invalid value {e['input']!r} (must match {e['ctx']['pattern']})"
        elif kind == "finite_number":
            message = "must be a finite number (not nan or inf)"
        else:
            message = e["msg"]
        seen_key = (dotted(path), message)
        if seen_key not in seen:
            seen.add(seen_key)
            problems.append(problem_at(locator, path, message))
    return problems
