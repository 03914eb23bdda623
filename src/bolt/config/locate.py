"""Where a dotted key sits in TOML source text: the line numbers that error messages quote.

Python's ``tomllib`` keeps no positions, so this reads the text once more, line by line, and
records the line of every table header (``[a.b]``, ``[[a]]``) and every ``key = value``
assignment (dotted keys included) outside multi-line values.  It is no TOML parser: the text
has already been parsed successfully, so only keys and headers need recognising.  A key
inside an inline table or an array is found through its nearest recorded ancestor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BARE = re.compile(r"[A-Za-z0-9_-]+")

Path = tuple[str | int, ...]


def _read_key(text: str, i: int) -> tuple[list[str], int] | None:
    """A (possibly dotted, possibly quoted) key starting at ``text[i]``; its parts and end."""
    parts: list[str] = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        ch = text[i]
        if ch in "\"'":
            end = text.find(ch, i + 1)
            if ch == '"':
                while end != -1 and text[end - 1] == "\\":
                    end = text.find(ch, end + 1)
            if end == -1:
                return None
            raw = text[i + 1 : end]
            parts.append(raw.encode().decode("unicode_escape") if ch == '"' else raw)
            i = end + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return parts, i


def _value_depth(text: str, depth: int, in_multiline: str | None) -> tuple[int, str | None]:
    """Bracket depth and open multi-line string after scanning ``text`` (a value's tail)."""
    i, n = 0, len(text)
    while i < n:
        if in_multiline:
            end = text.find(in_multiline, i)
            if end == -1:
                return depth, in_multiline
            i = end + 3
            in_multiline = None
            continue
        ch = text[i]
        if ch == "#":
            break
        if text.startswith('"""', i) or text.startswith("'''", i):
            in_multiline = text[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            end = i + 1
            while end < n and text[end] != ch:
                end += 2 if ch == '"' and text[end] == "\\" else 1
            i = end + 1
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth, in_multiline


class Locator:
    """Line numbers (1-based) of the keys and tables in one TOML document."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        self._array_counts: dict[Path, int] = {}
        self._scan(text)

    def _record(self, path: Path, line: int) -> None:
        self._lines.setdefault(path, line)

    def _scan(self, text: str) -> None:
        table: Path = ()
        depth, multiline = 0, None
        for number, line in enumerate(text.splitlines(), start=1):
            if depth > 0 or multiline:
                depth, multiline = _value_depth(line, depth, multiline)
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("["):
                is_array = stripped.startswith("[[")
                got = _read_key(stripped, 2 if is_array else 1)
                if got is None:
                    continue
                parts: Path = tuple(got[0])
                if is_array:
                    index = self._array_counts.get(parts, 0)
                    self._array_counts[parts] = index + 1
                    self._record(parts, number)
                    parts = (*parts, index)
                table = parts
                self._record(table, number)
                continue
            got = _read_key(line, 0)
            if got is None:
                continue
            keys, end = got
            if end >= len(line) or line[end] != "=":
                continue
            for k in range(1, len(keys) + 1):
                self._record((*table, *keys[:k]), number)
            depth, multiline = _value_depth(line[end + 1 :], 0, None)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path`` or of its nearest recorded ancestor (None if none is)."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None
