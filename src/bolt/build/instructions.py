"""Each raw instruction's arguments, read into a typed value: flags (``--from=``), exec
(JSON) or shell form, ``key=value`` pairs.  Variables are not expanded here (that depends
on the build's state); words keep their quotes until :mod:`bolt.build.words` expands them.

Pure.  Errors name ``file:line`` through :meth:`Dockerfile.error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from bolt.build import words
from bolt.build.syntax import Dockerfile, Heredoc, RawInstruction

SUPPORTED = (
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "WORKDIR",
    "ENV",
    "ARG",
    "LABEL",
    "USER",
    "EXPOSE",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "VOLUME",
    "STOPSIGNAL",
    "MAINTAINER",
    "HEALTHCHECK",
)
NOT_SUPPORTED = ("ONBUILD",)
FLAGS = {
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
    "FROM": {"platform"},
    "RUN": {"network"},
    "COPY": {"from", "chown", "chmod", "link"},
    "ADD": {"chown", "chmod", "link"},
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    line: int
    original: str
    flags: dict[str, str] = field(default_factory=dict)
    # exec form (a JSON array): the argv; shell form: None, and ``text`` holds the command
    argv: tuple[str, ...] | None = None
    text: str = ""
    # raw words (COPY/ADD sources + destination, EXPOSE ports, VOLUME paths, ARG names)
    items: tuple[str, ...] = ()
    # raw (key, value) pairs of ENV, LABEL and ARG (ARG: value None when no default)
    pairs: tuple[tuple[str, str | None], ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def shell_form(self) -> bool:
        return self.argv is None


def read(dockerfile: Dockerfile, raw: RawInstruction) -> Instruction:
    """Type the arguments of ``raw``."""
    kw = raw.keyword
    err = dockerfile.error
    if kw in NOT_SUPPORTED:
        raise err(raw.line, f"{kw} is not supported by bolt build", hint=f"remove the {kw} line")
    if kw not in SUPPORTED:
        raise err(
            raw.line,
            f"unknown instruction {kw}",
            hint="instructions: " + ", ".join(SUPPORTED),
        )
    flags, rest = _flags(dockerfile, raw)
    base = Instruction(kw, raw.line, raw.original, flags, heredocs=raw.heredocs)
    if kw in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        argv = _json_array(rest)
        if kw == "SHELL" and (argv is None or not argv):
            raise err(raw.line, 'SHELL needs a JSON array, e.g. SHELL ["/bin/sh", "-c"]')
        if kw == "RUN" and argv is None and not rest:
            raise err(raw.line, "RUN needs a command")
        return replace(base, argv=tuple(argv) if argv is not None else None, text=rest)
    if kw == "HEALTHCHECK":
        return _healthcheck(dockerfile, raw, base, rest)
    if kw in ("COPY", "ADD"):
        argv = _json_array(rest)
        items = tuple(argv) if argv is not None else tuple(words.raw_words(rest, dockerfile.escape))
        if len(items) < 2:
            raise err(raw.line, f"{kw} needs at least one source and a destination")
        return replace(base, items=items, argv=tuple(argv) if argv is not None else None)
    if kw in ("ENV", "LABEL"):
        return replace(base, pairs=_pairs(dockerfile, raw, rest))
    if kw == "ARG":
        pairs: list[tuple[str, str | None]] = []
        for word in words.raw_words(rest, dockerfile.escape):
            split = words.split_assignment(word, dockerfile.escape)
            name, value = (word, None) if split is None else split
            if not _is_name(name):
                raise err(raw.line, f"ARG {name!r} is not a valid name")
            pairs.append((name, value))
        if not pairs:
            raise err(raw.line, "ARG needs a name")
        return replace(base, pairs=tuple(pairs))
    if kw in ("EXPOSE", "VOLUME"):
        argv = _json_array(rest) if kw == "VOLUME" else None
        items = tuple(argv) if argv is not None else tuple(words.raw_words(rest, dockerfile.escape))
        if not items:
            raise err(raw.line, f"{kw} needs at least one argument")
        return replace(base, items=items)
    if kw == "FROM":
        parts = words.raw_words(rest, dockerfile.escape)
        if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1].upper() != "AS"):
            raise err(raw.line, "FROM takes IMAGE [AS NAME]")
        return replace(base, items=tuple(parts))
    if not rest:  # WORKDIR, USER, STOPSIGNAL, MAINTAINER
        raise err(raw.line, f"{kw} needs an argument")
    return replace(base, text=rest)


def _healthcheck(
    dockerfile: Dockerfile, raw: RawInstruction, base: Instruction, rest: str
) -> Instruction:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=..] CMD command`` (exec or shell
    form); flag values are checked here, at build time."""
    from bolt.runtime.flags import parse_duration
    from bolt.runtime.intent import IntentError

    err = dockerfile.error
    if rest.upper() == "NONE":
        if base.flags:
            raise err(raw.line, "HEALTHCHECK NONE takes no flags")
        return replace(base, argv=("NONE",))
    head, _, command = rest.partition(" ")
    if head.upper() != "CMD" or not command.strip():
        raise err(
            raw.line,
            "HEALTHCHECK takes NONE or CMD command",
            hint="HEALTHCHECK CMD wget -q -O- localhost",
        )
    for name, value in base.flags.items():
        try:
            if name == "retries":
                if not (value.isascii() and value.isdigit()) or int(value) < 1:
                    raise IntentError("--retries", f"{value!r} is not a count of at least 1")
            elif parse_duration(value, f"--{name}") <= 0 and name != "start-period":
                raise IntentError(f"--{name}", f"{value!r} must be longer than 0")
        except IntentError as exc:
            raise err(raw.line, f"HEALTHCHECK {exc.message}") from None
    argv = _json_array(command.strip())
    if argv is not None:
        return replace(base, argv=("CMD", *argv))
    return replace(base, argv=("CMD-SHELL", command.strip()))


def _flags(dockerfile: Dockerfile, raw: RawInstruction) -> tuple[dict[str, str], str]:
    allowed = FLAGS.get(raw.keyword, set())
    flags: dict[str, str] = {}
    rest = raw.args
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        name, eq, value = word[2:].partition("=")
        if name not in allowed:
            known = ", ".join(f"--{f}" for f in sorted(allowed)) or "none"
            raise dockerfile.error(
                raw.line, f"{raw.keyword} does not take --{name}", hint=f"its flags: {known}"
            )
        flags[name] = value if eq else "true"
        rest = tail.lstrip()
    return flags, rest


def _json_array(text: str) -> list[str] | None:
    """The list of a JSON array of strings; None when ``text`` is not one (shell form)."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _pairs(
    dockerfile: Dockerfile, raw: RawInstruction, rest: str
) -> tuple[tuple[str, str | None], ...]:
    parts = words.raw_words(rest, dockerfile.escape)
    if not parts:
        raise dockerfile.error(raw.line, f"{raw.keyword} needs KEY=VALUE")
    first = words.split_assignment(parts[0], dockerfile.escape)
    if first is None:
        if raw.keyword == "LABEL" or len(parts) < 2:
            raise dockerfile.error(raw.line, f"{raw.keyword} needs KEY=VALUE, got {parts[0]!r}")
        # the legacy form: ENV KEY the rest of the line
        return ((parts[0], rest[len(parts[0]) :].strip()),)
    pairs: list[tuple[str, str | None]] = []
    for word in parts:
        split = words.split_assignment(word, dockerfile.escape)
        if split is None or not split[0]:
            raise dockerfile.error(raw.line, f"{raw.keyword} needs KEY=VALUE, got {word!r}")
        pairs.append(split)
    return tuple(pairs)


def _is_name(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and name.replace("_", "a").isalnum()
