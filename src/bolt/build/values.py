"""Checks of the values a Dockerfile puts into the image config that nothing else would
check before a container runs: ``EXPOSE`` ports and the ``STOPSIGNAL``.

Pure.  A value without variables is checked when the plan is made, before any step runs
(:func:`check_literal`); one with variables once it is expanded (in ``plan.apply``).
Errors are :class:`InvalidInput`; the builder puts ``file:line`` in front.
"""

from __future__ import annotations

from basis.signals import signal_number
from bolt.build import words
from bolt.build.instructions import Instruction
from bolt.build.syntax import Dockerfile
from bolt.errors import InvalidInput

PROTOCOLS = ("tcp", "udp", "sctp")
PORT_HINT = "write PORT, PORT/PROTOCOL or FIRST-LAST/PROTOCOL: ports 1-65535, tcp, udp or sctp"
MAX_RANGE = 4096  # a wider EXPOSE range is almost certainly a typo, and bloats the config


def exposed_ports(text: str) -> list[str]:
    """The ``ExposedPorts`` keys of one EXPOSE word: ``80`` -> ``80/tcp``, ``53/UDP`` ->
    ``53/udp``, ``8000-8002`` -> one key per port (as Docker does)."""
    spec, slash, proto = text.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in PROTOCOLS:
        raise InvalidInput(f"EXPOSE {text!r}: unknown protocol {proto!r}", hint=PORT_HINT)
    first, dash, last = spec.partition("-")
    low = _port(first, text)
    high = _port(last, text) if dash else low
    if high < low:
        raise InvalidInput(f"EXPOSE {text!r}: the range ends before it starts", hint=PORT_HINT)
    if high - low >= MAX_RANGE:
        raise InvalidInput(
            f"EXPOSE {text!r}: a range of {high - low + 1} ports is too wide",
            hint=f"expose at most {MAX_RANGE} ports per range",
        )
    return [f"{port}/{proto}" for port in range(low, high + 1)]


def _port(word: str, text: str) -> int:
    if not (word.isascii() and word.isdigit()) or not 1 <= int(word) <= 65535:
        raise InvalidInput(f"EXPOSE {text!r}: {word!r} is not a port number", hint=PORT_HINT)
    return int(word)


def stop_signal(text: str) -> str:
    """The STOPSIGNAL value as the config keeps it (as written), once it names a signal."""
    try:
        signal_number(text)
    except InvalidInput as err:
        raise InvalidInput(f"STOPSIGNAL: {err.message}", hint=err.hint) from None
    return text.strip()


def check_literal(dockerfile: Dockerfile, instr: Instruction) -> None:
    """Refuse a bad EXPOSE or STOPSIGNAL value that has no variables in it, with its line."""
    if instr.keyword == "EXPOSE":
        texts = list(instr.items)
    elif instr.keyword == "STOPSIGNAL":
        texts = [instr.text]
    else:
        return
    for raw in texts:
        if "$" in raw:
            continue  # known once expanded, when the step is reached
        try:
            text = words.expand(raw, {}, dockerfile.escape)  # only quotes and escapes go
            exposed_ports(text) if instr.keyword == "EXPOSE" else stop_signal(text)
        except words.ExpansionError as err:
            raise dockerfile.error(instr.line, err.message) from None
        except InvalidInput as err:
            raise dockerfile.error(instr.line, err.message, hint=err.hint) from None
