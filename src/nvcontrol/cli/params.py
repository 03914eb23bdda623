"""Click parameter types for numbers: every int and float option of ``nvctl`` uses these,
so NaN, infinity and non-ASCII digits are refused the same way everywhere (exit 2)."""

from __future__ import annotations

import abc
from typing import Any

import click

from basis.errors import InvalidInput
from nvcontrol.numbers import parse_float, parse_int


def _what(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    opts = getattr(param, "opts", None) or [param.name or "value"]
    return max(opts, key=len)


class _Number(click.ParamType, abc.ABC):
    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        self.min = min
        self.max = max

    @abc.abstractmethod
    def parse(self, text: str, what: str) -> float | int:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = repr(value)  # a default: still checked, so nan/inf defaults cannot pass
        else:
            text = str(value)
        try:
            number = self.parse(text, _what(param))
        except InvalidInput as err:
            self.fail(err.message.split(": ", 1)[-1], param, ctx)
        if self.min is not None and number < self.min:
            self.fail(f"{text} is below the minimum {self.min:g}", param, ctx)
        if self.max is not None and number > self.max:
            self.fail(f"{text} is above the maximum {self.max:g}", param, ctx)
        return number


class Float(_Number):
    """A finite float, optionally within [min, max]."""

    name = "number"

    def parse(self, text: str, what: str) -> float:
        return parse_float(text, what)


class Int(_Number):
    """A whole number in ASCII digits, optionally within [min, max]."""

    name = "integer"

    def parse(self, text: str, what: str) -> int:
        return parse_int(text, what)
