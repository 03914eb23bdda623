"""``bolt run``: create and start a container, then attach to it (or print its id with -d)."""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import struct
from typing import Any

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a command in a new container")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument(
        "-d", "--detach", action="store_true", help="run in the background and print the id"
    )
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    p.add_argument("--tmpfs", action="append", default=[], metavar="DST[:OPTS]")
    p.add_argument(
        "--device", action="append", default=[], metavar="HOST[:CONTAINER][:rwm]|CDI-NAME"
    )
    p.add_argument("--gpus", metavar="all|0,1|GPU-UUID")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("-m", "--memory", metavar="SIZE")
    p.add_argument("--cpus", type=float)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--hostname")
    p.add_argument("--network", "--net", default="private", metavar="none|host|ns:PATH")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--entrypoint")
    p.add_argument("-l", "--label", action="append", default=[], metavar="K=V")
    p.add_argument(
        "--runtime",
        default=os.environ.get("BOLT_RUNTIME", "auto"),
        choices=["auto", "crun", "runc"],
    )
    p.add_argument("image")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(handler=handle, needs_root=True)


def _labels(items: list[str]) -> dict[str, str]:
    from bolt.errors import InvalidInput

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidInput(f"--label: {item!r} is not KEY=VALUE")
        out[key] = value if sep else ""
    return out


def handle(args: argparse.Namespace) -> int:
    from bolt.errors import InvalidInput
    from bolt.runtime.engine import launch
    from bolt.runtime.request import RunRequest

    if args.tty and not os.isatty(0) and args.interactive:
        raise InvalidInput("-t needs a terminal on stdin", hint="drop -t, or run from a terminal")
    req = RunRequest(
        image=args.image,
        command=list(args.cmd),
        entrypoint=None
        if args.entrypoint is None
        else ([args.entrypoint] if args.entrypoint else []),
        name=args.name,
        env=args.env,
        env_files=args.env_file,
        volumes=args.volume,
        tmpfs=args.tmpfs,
        devices=args.device,
        gpus=args.gpus,
        privileged=args.privileged,
        cap_add=args.cap_add,
        cap_drop=args.cap_drop,
        memory=args.memory,
        cpus=args.cpus,
        pids_limit=args.pids_limit,
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        network=args.network,
        read_only=args.read_only,
        interactive=args.interactive and not args.detach,
        tty=args.tty,
        auto_remove=args.rm,
        labels=_labels(args.label),
        runtime=args.runtime,
    )
    launched = launch(args.root, req)
    with launched.sock:
        return Attached(launched.sock, interactive=req.interactive, tty=req.tty).run(
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
        from bolt.errors import BoltError

        while True:
            frames = self._frames()
            for i, (kind, payload) in enumerate(frames):
                if kind == self.attach.ERROR:
                    raise BoltError(payload.decode(errors="replace"))
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
