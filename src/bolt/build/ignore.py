"""``.boltignore`` (else ``.dockerignore``): which context files COPY and ADD never see.

Docker's rules: one pattern a line, ``#`` comments, paths relative to the context root
(a leading ``/`` is dropped, ``a/../b`` is cleaned), ``*`` and ``?`` within one path
component, ``[...]`` classes, ``**`` across any number of directories, ``\\`` escapes.  A
pattern that matches a directory excludes everything under it.  ``!pattern`` re-includes;
the last pattern that matches decides.  Pure apart from ``load``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILES = (".boltignore", ".dockerignore")


@dataclass(frozen=True)
class IgnoreRules:
    patterns: tuple[tuple[bool, re.Pattern[str]], ...] = ()  # (re-include, regex)
    source: str = ""  # the file they came from

    @property
    def has_exceptions(self) -> bool:
        """With no ``!`` pattern, an excluded directory's contents need not be looked at."""
        return any(negate for negate, _ in self.patterns)

    def excluded(self, rel: str) -> bool:
        """Whether the context path ``rel`` (``a/b/c``) is ignored."""
        if not self.patterns:
            return False
        parts = rel.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, regex in self.patterns:
            if any(regex.fullmatch(p) for p in prefixes):
                result = not negate
        return result


def parse(text: str, source: str = "") -> IgnoreRules:
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for line in text.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        if negate:
            pattern = pattern[1:].strip()
        pattern = posixpath.normpath(pattern).lstrip("/")
        if pattern in ("", "."):
            continue
        patterns.append((negate, re.compile(_regex(pattern))))
    return IgnoreRules(tuple(patterns), source)


def load(context: Path) -> IgnoreRules:
    """The rules of the first ignore file the context has (none: nothing is ignored)."""
    for name in IGNORE_FILES:
        path = context / name
        if path.is_file():
            return parse(path.read_text(errors="replace"), str(path))
    return IgnoreRules()


def _regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            i += 2
            if at_start and i < n and pattern[i] == "/":
                out.append("(?:.*/)?")  # **/ : zero or more directories
                i += 1
            else:
                out.append(".*")
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        elif ch == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)
