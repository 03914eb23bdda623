"""Dockerfile words: quotes, the escape character and variable expansion (``$A``, ``${A}``,
``${A:-default}``, ``${A:+alt}``, ``${A-default}``, ``${A+alt}``, ``${A:?message}``).

Pure functions over strings.  ``split`` cuts a line into words at unquoted white space,
``expand`` handles one word; both remove quotes.  Single quotes keep everything literal.
"""

from __future__ import annotations

from collections.abc import Mapping

from bolt.errors import InvalidInput


class ExpansionError(InvalidInput):
    """``${A:?message}`` with ``A`` unset, or a malformed ``${...}``."""


def split(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Words of ``text`` (quotes removed, variables expanded)."""
    return [_Lexer(word, env, escape).run() for word in raw_words(text, escape)]


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` as one word: quotes removed, variables expanded, white space kept."""
    return _Lexer(text, env, escape).run()


def raw_words(text: str, escape: str = "\\") -> list[str]:
    """``text`` cut at unquoted white space, each word exactly as written."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and quote != "'" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if current:
        words.append("".join(current))
    return words


def split_assignment(raw: str, escape: str = "\\") -> tuple[str, str] | None:
    """``(key, value)`` of a raw ``key=value`` word (split at the first unquoted ``=``),
    both still raw; None when there is no such ``=``."""
    quote = ""
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == escape and quote != "'":
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "=":
            return raw[:i], raw[i + 1 :]
        i += 1
    return None


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.i = 0

    def run(self) -> str:
        out: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == "'":
                end = self.text.find("'", self.i + 1)
                if end < 0:
                    raise ExpansionError(f"unterminated single quote in {self.text!r}")
                out.append(self.text[self.i + 1 : end])
                self.i = end + 1
            elif ch == '"':
                self.i += 1
                out.append(self._double_quoted())
            elif ch == self.escape and self.i + 1 < len(self.text):
                out.append(self.text[self.i + 1])
                self.i += 2
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
                self.i += 1
        return "".join(out)

    def _double_quoted(self) -> str:
        out: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == self.escape and self.i + 1 < len(self.text):
                nxt = self.text[self.i + 1]
                out.append(nxt if nxt in ('"', "$", self.escape) else ch + nxt)
                self.i += 2
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
                self.i += 1
        raise ExpansionError(f"unterminated double quote in {self.text!r}")

    def _variable(self) -> str:
        self.i += 1  # the $
        if self.i >= len(self.text):
            return "$"
        if self.text[self.i] == "{":
            end = self._closing_brace(self.i)
            body = self.text[self.i + 1 : end]
            self.i = end + 1
            return self._braced(body)
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] == "_"):
            self.i += 1
        name = self.text[start : self.i]
        if not name:
            return "$"
        return self.env.get(name, "")

    def _closing_brace(self, start: int) -> int:
        depth = 0
        for j in range(start, len(self.text)):
            if self.text[j] == "{":
                depth += 1
            elif self.text[j] == "}":
                depth -= 1
                if depth == 0:
                    return j
        raise ExpansionError(f"missing '}}' in {self.text!r}")

    def _braced(self, body: str) -> str:
        name_end = 0
        while name_end < len(body) and (body[name_end].isalnum() or body[name_end] == "_"):
            name_end += 1
        name, rest = body[:name_end], body[name_end:]
        if not name:
            raise ExpansionError(f"bad substitution ${{{body}}}")
        value = self.env.get(name)
        if not rest:
            return value or ""
        for op in (":-", ":+", ":?", "-", "+", "?"):
            if rest.startswith(op):
                word = _Lexer(rest[len(op) :], self.env, self.escape).run()
                is_set = value is not None and (value != "" or ":" not in op)
                if op.endswith("-"):
                    return value if is_set and value is not None else word
                if op.endswith("+"):
                    return word if is_set else ""
                if not is_set:
                    raise ExpansionError(f"{name}: {word or 'is not set'}")
                return value or ""
        raise ExpansionError(f"unsupported substitution ${{{body}}}")
