"""Compose-style variable interpolation in Boltfile strings, and the ``.env`` file format.

``${VAR}`` and ``$VAR`` take the variable's value (empty when unset); ``${VAR:-default}``
takes ``default`` when VAR is unset or empty, ``${VAR-default}`` only when it is unset;
``${VAR:?message}`` / ``${VAR?message}`` make an error of an unset (or empty) variable;
``${VAR:+other}`` gives ``other`` when VAR is set and non-empty.  ``$$`` is a literal ``$``.
Defaults may themselves hold ``${...}``.  Values are taken from the process environment
first, then from ``.env`` beside the Boltfile, as compose does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """An unset required variable or a malformed ``${...}``; the message says which."""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes the ``${`` whose body starts at ``start``."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every variable reference replaced from ``env``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            out.append(_expand(text[i + 2 : end], env))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if m is None:
                out.append("$")
                i += 1
            else:
                out.append(env.get(m.group(), ""))
                i = m.end()
    return "".join(out)


def _expand(body: str, env: Mapping[str, str]) -> str:
    m = _NAME.match(body)
    if m is None:
        raise InterpolationError(f"invalid variable reference '${{{body}}}'")
    name, rest = m.group(), body[m.end() :]
    value = env.get(name)
    if not rest:
        return value or ""
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        raise InterpolationError(f"invalid variable reference '${{{body}}}'")
    missing = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return interpolate(arg, env) if missing else (value or "")
    if op in (":?", "?"):
        if missing:
            why = interpolate(arg, env) or "is required"
            raise InterpolationError(f"variable {name} {'is unset: ' if arg else ''}{why}")
        return value or ""
    return "" if missing else interpolate(arg, env)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional ``export``, single or double quotes)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _NAME.fullmatch(key):
            raise InterpolationError(f"{path}:{number}: expected KEY=VALUE, got {raw.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values
