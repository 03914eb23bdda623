"""``--remote a,b,c`` / ``--hosts-file``: one command on many agents at once.

Each host's command runs on its own thread (with its own event loop and connection); what
it prints is captured per thread and shown labelled with the host, in the order the hosts
were given.  A failing host never hides the others; the exit code is 0 when every host
succeeded, the common code when all failed alike, 1 otherwise.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from basis.errors import InvalidInput
from nvcontrol.remote import target as backend
from nvcontrol.remote.target import TrustOptions

OPTIONS_WITH_VALUE = ("--remote", "--hosts-file", "--host-fingerprint", "--ca-file")
FLAGS = ("--accept-new-host",)


@dataclass
class RemoteArgs:
    hosts: list[str] = field(default_factory=list)
    trust: TrustOptions = field(default_factory=TrustOptions)


def split_global(args: Sequence[str]) -> tuple[RemoteArgs, list[str]]:
    """Take the remote options that stand before the command name out of ``args``."""
    rest: list[str] = []
    values: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    args = list(args)
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        name, eq, val = a.partition("=")
        if name in OPTIONS_WITH_VALUE:
            if not eq:
                if i + 1 >= len(args):
                    raise InvalidInput(f"{name} needs a value")
                val = args[i + 1]
                i += 1
            values[name] = val
        elif a in FLAGS:
            flags.add(a)
        else:
            rest.append(a)
        i += 1
    rest += args[i:]
    hosts: list[str] = []
    if "--remote" in values:
        hosts += [h.strip() for h in values["--remote"].split(",") if h.strip()]
        if not hosts:
            raise InvalidInput("--remote needs at least one HOST[:PORT]")
    if "--hosts-file" in values:
        hosts += read_hosts_file(values["--hosts-file"])
    t = TrustOptions(
        accept_new_host="--accept-new-host" in flags,
        host_fingerprint=values.get("--host-fingerprint"),
        ca_file=values.get("--ca-file"),
    )
    if (t.accept_new_host or t.host_fingerprint or t.ca_file) and not hosts:
        raise InvalidInput("--accept-new-host, --host-fingerprint and --ca-file need --remote")
    if t.host_fingerprint and len(hosts) > 1:
        raise InvalidInput("--host-fingerprint names one agent's identity: give one --remote host")
    return RemoteArgs(list(dict.fromkeys(hosts)), t), rest


def read_hosts_file(path: str) -> list[str]:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise InvalidInput(f"--hosts-file {path}: {err.strerror}") from None
    hosts = [ln.split("#", 1)[0].strip() for ln in lines]
    hosts = [h for h in hosts if h]
    if not hosts:
        raise InvalidInput(f"--hosts-file {path} names no host")
    return hosts


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in that sends each thread's writes to its own buffer."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.buffers: dict[int, io.StringIO] = {}

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, s: str) -> int:
        buf = self.buffers.get(threading.get_ident())
        return (buf or self.real).write(s)

    def flush(self) -> None:
        if threading.get_ident() not in self.buffers:
            self.real.flush()

    def isatty(self) -> bool:
        return False


def run(
    hosts: list[str], t: TrustOptions, args: list[str], command: Callable[[list[str]], int]
) -> int:
    """Run ``command(args)`` once per host; print the labelled results; return the exit code."""
    out_router, err_router = _Router(sys.stdout), _Router(sys.stderr)
    real_out, real_err = sys.stdout, sys.stderr

    def one(host: str) -> tuple[int, str, str]:
        tid = threading.get_ident()
        out_router.buffers[tid], err_router.buffers[tid] = io.StringIO(), io.StringIO()
        backend.set_target(backend.RemoteTarget(host, t))
        try:
            code = command(args)
        finally:
            backend.set_target(None)
        return code, out_router.buffers.pop(tid).getvalue(), err_router.buffers.pop(tid).getvalue()

    sys.stdout, sys.stderr = out_router, err_router  # type: ignore[assignment]
    try:
        with ThreadPoolExecutor(max_workers=min(64, len(hosts))) as pool:
            results = list(pool.map(one, hosts))
    finally:
        sys.stdout, sys.stderr = real_out, real_err
    if "--json" in args:
        docs: list[dict[str, Any]] = []
        for host, (code, out, err) in zip(hosts, results, strict=True):
            try:
                value: Any = json.loads(out) if out.strip() else None
            except json.JSONDecodeError:
                value = out
            docs.append({"host": host, "exit_code": code, "result": value, "stderr": err or None})
        real_out.write(json.dumps({"hosts": docs}, indent=2) + "\n")
    else:
        for host, (_code, out, err) in zip(hosts, results, strict=True):
            for line in out.splitlines():
                real_out.write(f"{host}: {line}\n")
            for line in err.splitlines():
                real_err.write(f"{host}: {line}\n")
    codes = {c for c, _o, _e in results}
    if codes == {0}:
        return 0
    return codes.pop() if len(codes) == 1 else 1
