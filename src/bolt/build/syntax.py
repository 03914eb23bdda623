"""Reading a Dockerfile into raw instructions: parser directives (``# syntax=``,
``# escape=``), comments, line continuations and heredocs (``RUN <<EOF``).

Pure: text in, :class:`RawInstruction` values out.  Every error names ``file:line``.
Interpreting each instruction's arguments is :mod:`bolt.build.instructions`' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bolt.errors import InvalidInput

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
KNOWN_DIRECTIVES = ("syntax", "escape", "check")
HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
HEREDOC_KEYWORDS = ("RUN", "COPY", "ADD")


class DockerfileError(InvalidInput):
    """A Dockerfile that cannot be read; the message starts with ``file:line:``."""

    def __init__(self, path: str, line: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{path}:{line}: {message}", hint=hint)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Heredoc:
    name: str
    body: str
    expand: bool  # an unquoted delimiter: variables in the body are expanded
    strip_tabs: bool  # <<-: leading tabs are removed


@dataclass(frozen=True)
class RawInstruction:
    keyword: str  # upper case: RUN, COPY, ...
    args: str  # everything after the keyword, continuations joined
    line: int  # where the instruction starts (1-based)
    original: str  # the instruction as written (continuations joined), for history
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Dockerfile:
    path: str
    escape: str
    directives: dict[str, str]
    instructions: tuple[RawInstruction, ...]

    def error(self, line: int, message: str, hint: str | None = None) -> DockerfileError:
        return DockerfileError(self.path, line, message, hint=hint)


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Split ``text`` into instructions; ``path`` is only used in error messages."""
    lines = text.splitlines()
    directives, first = _directives(lines, path)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(path, 1, f"invalid escape directive {escape!r}; use \\ or `")
    out: list[RawInstruction] = []
    i = first
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [line.lstrip()]
        # A line that ends with the escape character continues on the next one; comment
        # lines and blank lines inside a continuation are dropped, as Docker does.
        while _continues(parts[-1], escape):
            parts[-1] = parts[-1].rstrip()[:-1]
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            parts.append(lines[i])
            i += 1
        joined = "".join(parts).strip()
        keyword, _, args = joined.partition(" ")
        if "\t" in keyword:
            keyword, _, rest = keyword.partition("\t")
            args = rest + " " + args
        keyword = keyword.upper()
        if not re.fullmatch(r"[A-Z]+", keyword):
            raise DockerfileError(path, start + 1, f"{keyword!r} is not an instruction")
        args = args.strip()
        heredocs: list[Heredoc] = []
        if keyword in HEREDOC_KEYWORDS:
            for match in HEREDOC.finditer(args):
                body, i = _heredoc_body(lines, i, match.group(3), path, start + 1)
                strip = match.group(1) == "-"
                if strip:
                    body = "".join(b.lstrip("\t") for b in body.splitlines(keepends=True))
                heredocs.append(
                    Heredoc(match.group(3), body, expand=not match.group(2), strip_tabs=strip)
                )
        out.append(RawInstruction(keyword, args, start + 1, joined, tuple(heredocs)))
    return Dockerfile(path, escape, directives, tuple(out))


def _continues(line: str, escape: str) -> bool:
    return line.rstrip().endswith(escape)


def _directives(lines: list[str], path: str) -> tuple[dict[str, str], int]:
    """Parser directives: ``# key=value`` lines at the very top; the first line that is not
    one ends them (so a directive after a comment or a blank line is a comment)."""
    found: dict[str, str] = {}
    for n, line in enumerate(lines):
        match = DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() not in KNOWN_DIRECTIVES:
            return found, n
        key = match.group(1).lower()
        if key in found:
            raise DockerfileError(path, n + 1, f"the {key} directive is given twice")
        found[key] = match.group(2)
    return found, len(lines)


def _heredoc_body(lines: list[str], i: int, name: str, path: str, line: int) -> tuple[str, int]:
    body: list[str] = []
    while i < len(lines):
        current = lines[i]
        i += 1
        if current.lstrip("\t") == name or current == name:
            return "".join(b + "\n" for b in body), i
        body.append(current)
    raise DockerfileError(path, line, f"heredoc <<{name} is not terminated by a line {name!r}")
