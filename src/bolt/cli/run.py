"""``bolt run``: create and start a container, then attach to it (or print its id with -d).

The options are declared once, in ``options()``: they build the argparse parser (help and
error messages) and drive ``parse_fast``, which reads the common command lines without
importing argparse, since ``bolt run``'s start-up is part of every container start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import argparse

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class Option(NamedTuple):
    flags: tuple[str, ...]
    dest: str
    action: str = "store"  # store | store_true | append
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    help: str | None = None


def options() -> tuple[Option, ...]:
    """Every option of ``bolt run``."""
    return (
        Option(("--rm",), "rm", "store_true", help="remove the container when it exits"),
        Option(
            ("-d", "--detach"),
            "detach",
            "store_true",
            help="run in the background and print the id",
        ),
        Option(("--name",), "name"),
        Option(("-e", "--env"), "env", "append", metavar="K=V"),
        Option(("--env-file",), "env_file", "append"),
        Option(("-v", "--volume"), "volume", "append", metavar="SRC:DST[:ro]"),
        Option(("--tmpfs",), "tmpfs", "append", metavar="DST[:OPTS]"),
        Option(("--device",), "device", "append", metavar="HOST[:CONTAINER][:rwm]|CDI-NAME"),
        Option(("--gpus",), "gpus", metavar="all|0,1|GPU-UUID"),
        Option(("--privileged",), "privileged", "store_true"),
        Option(("--cap-add",), "cap_add", "append"),
        Option(("--cap-drop",), "cap_drop", "append"),
        Option(("-m", "--memory"), "memory", metavar="SIZE"),
        Option(("--cpus",), "cpus", type=float),
        Option(("--pids-limit",), "pids_limit", type=int),
        Option(("-w", "--workdir"), "workdir"),
        Option(("-u", "--user"), "user"),
        Option(("--hostname",), "hostname"),
        Option(
            ("--network", "--net"),
            "network",
            default="private",
            metavar="NAME|none|host|container:NAME|ns:PATH",
        ),
        Option(("--network-alias",), "network_alias", "append", metavar="ALIAS"),
        Option(("--ip",), "ip", metavar="IP"),
        Option(("-p", "--publish"), "publish", "append", metavar="[IP:]HOST:CTR[/udp]"),
        Option(("--add-host",), "add_host", "append", metavar="NAME:IP"),
        Option(("--dns",), "dns", "append", metavar="IP"),
        Option(
            ("--restart",),
            "restart",
            default="no",
            metavar="no|on-failure[:N]|always|unless-stopped",
        ),
        Option(("--health-cmd",), "health_cmd", metavar="CMD"),
        Option(("--health-interval",), "health_interval", metavar="DURATION"),
        Option(("--health-timeout",), "health_timeout", metavar="DURATION"),
        Option(("--health-retries",), "health_retries", type=int, metavar="N"),
        Option(("--health-start-period",), "health_start_period", metavar="DURATION"),
        Option(("--no-healthcheck",), "no_healthcheck", "store_true"),
        Option(("--stop-signal",), "stop_signal", metavar="SIGNAL"),
        Option(("--stop-timeout",), "stop_timeout", type=float, metavar="SECONDS"),
        Option(("--read-only",), "read_only", "store_true"),
        Option(("-i", "--interactive"), "interactive", "store_true"),
        Option(("-t", "--tty"), "tty", "store_true"),
        Option(("--entrypoint",), "entrypoint"),
        Option(("-l", "--label"), "label", "append", metavar="K=V"),
        Option(
            ("--runtime",),
            "runtime",
            default=os.environ.get("BOLT_RUNTIME", "auto"),
            choices=("auto", "crun", "runc"),
        ),
    )


def register(sub: Any) -> None:
    import argparse

    p = sub.add_parser("run", help="run a command in a new container")
    for o in options():
        extra: dict[str, Any] = {"action": o.action, "dest": o.dest, "help": o.help}
        if o.action != "store_true":
            extra["default"] = [] if o.action == "append" else o.default
            for key in ("type", "choices", "metavar"):
                if getattr(o, key) is not None:
                    extra[key] = getattr(o, key)
        p.add_argument(*o.flags, **extra)
    p.add_argument("image")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(handler=handle, needs_root=True)


def parse_fast(argv: Sequence[str]) -> SimpleNamespace | None:
    """The arguments after ``run``, parsed as argparse would; None whenever argparse must
    decide (help, errors, abbreviations, combined short flags, ``--``)."""
    opts = options()
    by_flag = {flag: o for o in opts for flag in o.flags}
    values: dict[str, Any] = {
        o.dest: [] if o.action == "append" else False if o.action == "store_true" else o.default
        for o in opts
    }
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        flag, eq, inline = argv[i].partition("=") if argv[i].startswith("--") else (argv[i], "", "")
        o = by_flag.get(flag)
        if o is None:
            return None
        if o.action == "store_true":
            if eq:
                return None
            values[o.dest] = True
            i += 1
            continue
        if eq:
            text, i = inline, i + 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            text, i = argv[i + 1], i + 2
        else:
            return None
        if o.choices is not None and text not in o.choices:
            return None
        try:
            value = o.type(text) if o.type is not None else text
        except ValueError:
            return None
        if o.action == "append":
            values[o.dest].append(value)
        else:
            values[o.dest] = value
    if i >= len(argv):
        return None  # no image: argparse says so
    return SimpleNamespace(
        **values, image=argv[i], cmd=list(argv[i + 1 :]), handler=handle, needs_root=True
    )


# Which flag sets each intent field (for errors found when the intent is validated).
FIELD_FLAGS = {
    "image": "IMAGE",
    "env": "--env",
    "workdir": "--workdir",
    "user": "--user",
    "hostname": "--hostname",
    "memory": "--memory",
    "cpus": "--cpus",
    "pids_limit": "--pids-limit",
    "network_mode": "--network",
    "networks": "--network",
    "ports": "--publish",
    "extra_hosts": "--add-host",
    "dns": "--dns",
    "restart": "--restart",
    "healthcheck": "--health-cmd",
    "healthcheck.interval": "--health-interval",
    "healthcheck.timeout": "--health-timeout",
    "healthcheck.retries": "--health-retries",
    "healthcheck.start_period": "--health-start-period",
    "stop_signal": "--stop-signal",
    "stop_timeout": "--stop-timeout",
    "labels": "--label",
    "runtime": "--runtime",
}


def _labels(items: list[str]) -> dict[str, str]:
    from bolt.runtime.intent import IntentError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise IntentError("--label", f"{item!r} is not KEY=VALUE")
        out[key] = value if sep else ""
    return out


def _network(args: argparse.Namespace | SimpleNamespace) -> tuple[str, list[Any]]:
    """``--network`` (+ ``--network-alias``, ``--ip``) -> the mode and user networks."""
    from bolt.runtime.intent import IntentError, NetworkAttachment

    text = args.network
    nets: list[Any]
    if text in ("private", "none", "host", "bridge") or text.startswith(("container:", "ns:")):
        mode, nets = text, []
    elif text.startswith("/"):
        mode, nets = "ns:" + text, []
    else:
        mode, nets = "bridge", [NetworkAttachment(text, tuple(args.network_alias), args.ip)]
    if mode == "bridge" and not nets and (args.network_alias or args.ip):
        from bolt.engine.networks import DEFAULT_NETWORK

        nets = [NetworkAttachment(DEFAULT_NETWORK, tuple(args.network_alias), args.ip)]
    if not nets and (args.network_alias or args.ip):
        flag = "--network-alias" if args.network_alias else "--ip"
        raise IntentError(flag, "needs a user network (--network NAME)")
    return mode, nets


def intent_of(args: argparse.Namespace | SimpleNamespace) -> Any:
    """The ``ContainerIntent`` the flags ask for; errors name the flag."""
    from bolt.runtime import flags
    from bolt.runtime.intent import ContainerIntent, IntentError

    env_items: list[str] = []
    for path in args.env_file:
        env_items += flags.read_env_file(path)
    env, env_host = flags.split_env([*env_items, *args.env])
    mounts = [flags.parse_volume(v) for v in args.volume]
    mounts += [flags.parse_tmpfs(t) for t in args.tmpfs]
    mode, networks = _network(args)
    intent = ContainerIntent(
        image=args.image,
        command=list(args.cmd),
        entrypoint=None
        if args.entrypoint is None
        else ([args.entrypoint] if args.entrypoint else []),
        env=env,
        env_host=tuple(env_host),
        mounts=tuple(mounts),
        devices=tuple(args.device),
        gpus=args.gpus,
        privileged=args.privileged,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        memory=None if args.memory is None else flags.parse_size(args.memory, "--memory"),
        cpus=args.cpus,
        pids_limit=args.pids_limit,
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        network_mode=mode,
        networks=tuple(networks),
        ports=tuple(flags.parse_port(p) for p in args.publish),
        extra_hosts=tuple(flags.parse_extra_host(h) for h in args.add_host),
        dns=tuple(args.dns),
        restart=flags.parse_restart(args.restart),
        healthcheck=flags.health_check(
            cmd=args.health_cmd,
            interval=args.health_interval,
            timeout=args.health_timeout,
            retries=args.health_retries,
            start_period=args.health_start_period,
            disabled=args.no_healthcheck,
        ),
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        read_only=args.read_only,
        interactive=args.interactive and not args.detach,
        tty=args.tty,
        auto_remove=args.rm,
        labels=_labels(args.label),
        runtime=args.runtime,
    )
    try:
        return intent.validate()
    except IntentError as err:
        raise IntentError(_flag_of(err.field, intent), err.detail, hint=err.hint) from None


def _flag_of(field: str, intent: Any) -> str:
    """``mounts[1].destination`` -> ``-v`` or ``--tmpfs``; ``cpus`` -> ``--cpus``."""
    if field.startswith("mounts["):
        index = int(field[len("mounts[") : field.index("]")])
        return "--tmpfs" if intent.mounts[index].kind == "tmpfs" else "--volume"
    for key in (field, field.split(".")[0].split("[")[0]):
        if key in FIELD_FLAGS:
            return FIELD_FLAGS[key]
    return field


def handle(args: argparse.Namespace | SimpleNamespace) -> int:
    from bolt.engine.containers import launch
    from bolt.errors import InvalidInput

    if args.tty and not os.isatty(0) and args.interactive:
        raise InvalidInput("-t needs a terminal on stdin", hint="drop -t, or run from a terminal")
    intent = intent_of(args)
    launched = launch(args.root, intent, name=args.name)
    with launched.sock:
        return Attached(launched.sock, interactive=intent.interactive, tty=intent.tty).run(
            detach=args.detach, cid=launched.row.id
        )


class Attached:
    """The client end of the attach socket: relays output, stdin, signals and resizes."""

    def __init__(self, sock: socket.socket, *, interactive: bool, tty: bool) -> None:
        from bolt.runtime import attach

        self.attach = attach
        self.sock = sock
        self.interactive = interactive
        self.tty = tty and os.isatty(0)
        self.decoder = attach.Decoder()

    def _frames(self) -> list[tuple[int, bytes]]:
        data = self.sock.recv(65536)
        if not data:
            from bolt.errors import BoltError

            raise BoltError(
                "the container's monitor exited unexpectedly",
                hint="see 'bolt ps -a' and 'bolt logs'",
            )
        return self.decoder.feed(data)

    def _wait_started(self) -> list[tuple[int, bytes]]:
        while True:
            frames = self._frames()
            for i, (kind, payload) in enumerate(frames):
                if kind == self.attach.ERROR:
                    raise self.attach.error_of(payload)
                if kind == self.attach.STARTED:
                    return frames[i + 1 :]

    def wait_started(self) -> None:
        """Until the monitor reports the container started (or raise its error)."""
        self._wait_started()

    def run(self, *, detach: bool, cid: str) -> int:
        pending = self._wait_started()
        if detach:
            print(cid)
            return 0
        return self._relay(pending)

    def _send(self, kind: int, payload: bytes = b"") -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(self.attach.encode(kind, payload))

    def _resize(self) -> None:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(0)
            self._send(self.attach.RESIZE, struct.pack("!HH", size.lines, size.columns))

    def _relay(self, pending: list[tuple[int, bytes]]) -> int:
        import selectors

        attach = self.attach
        sel = selectors.PollSelector()  # poll, unlike epoll, accepts a regular file on stdin
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGWINCH,) if self.tty else (*FORWARDED, signal.SIGWINCH)
        old = {s: signal.signal(s, lambda *_: None) for s in handled}
        sel.register(self.sock, selectors.EVENT_READ, "sock")
        sel.register(wake_r, selectors.EVENT_READ, "signal")
        if self.interactive:
            sel.register(0, selectors.EVENT_READ, "stdin")
        saved_tty = self._raw() if self.tty else None
        try:
            if self.tty:
                self._resize()
            code = self._handle(pending)
            while code is None:
                for key, _ in sel.select():
                    if key.data == "sock":
                        code = self._handle(self._frames())
                    elif key.data == "signal":
                        for num in os.read(wake_r, 256):
                            if num == signal.SIGWINCH:
                                self._resize()
                            else:
                                self._send(attach.SIGNAL, str(num).encode())
                    else:
                        data = os.read(0, 65536)
                        if data:
                            self._send(attach.IN, data)
                        else:
                            sel.unregister(0)
                            self._send(attach.IN_EOF)
                    if code is not None:
                        break
            return code
        finally:
            if saved_tty is not None:
                import termios

                termios.tcsetattr(0, termios.TCSADRAIN, saved_tty)
            signal.set_wakeup_fd(old_wakeup)
            for s, h in old.items():
                signal.signal(s, h)
            os.close(wake_r)
            os.close(wake_w)

    def _handle(self, frames: list[tuple[int, bytes]]) -> int | None:
        for kind, payload in frames:
            if kind == self.attach.OUT:
                _write_all(1, payload)
            elif kind == self.attach.ERR:
                _write_all(2, payload)
            elif kind == self.attach.EXIT:
                return int(payload)
        return None

    def _raw(self) -> list[Any]:
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
        return saved


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
