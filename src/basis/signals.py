"""Signal names and numbers as users write them (``TERM``, ``SIGTERM``, ``sigint``, ``15``,
``SIGRTMIN+3``): one parser for every place that takes a signal (an image's
``StopSignal``, ``STOPSIGNAL`` in a Dockerfile, a ``kill`` command's option)."""

from __future__ import annotations

import signal

from basis.errors import InvalidInput

HINT = "use a name like TERM or SIGINT, or a number from 1 to {max}"


def signal_number(text: str) -> int:
    """The number of the signal ``text`` names; raises :class:`InvalidInput` otherwise.
    Digits must be ASCII (``'٣'`` is not a number), and 0 is not a signal."""
    word = text.strip()
    top = int(signal.SIGRTMAX)
    if word.isascii() and word.isdigit():
        number = int(word)
        if 1 <= number <= top:
            return number
        raise InvalidInput(f"signal {text!r} is out of range", hint=HINT.format(max=top))
    name = word.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    base, plus, offset = name.partition("+")
    minus = ""
    if not plus:
        base, minus, offset = name.partition("-")
    try:
        number = int(signal.Signals[base])
        if plus or minus:
            if base not in ("SIGRTMIN", "SIGRTMAX") or not (offset.isascii() and offset.isdigit()):
                raise KeyError(name)
            number = number + int(offset) if plus else number - int(offset)
            if not int(signal.SIGRTMIN) <= number <= top:
                raise KeyError(name)
    except KeyError:
        raise InvalidInput(f"signal {text!r} is unknown", hint=HINT.format(max=top)) from None
    return number
