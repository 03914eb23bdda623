"""The OCI runtime driver: command lines for crun and runc, and which one to use.

``select_runtime("auto", root)`` picks crun when it works on this host and runc otherwise.
crun 1.8 refuses hybrid cgroup hosts; there Bolt runs it inside a private mount
namespace with the cgroup2 mount hidden (``linux.private_mount_namespace_without_cgroup2``).
Whether crun works is probed once by running a real container and cached in
``$BOLT_ROOT/runtime-probe.json`` (keyed by the binary's path, size and mtime).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from bolt.errors import BoltError, CannotInvoke, CommandNotFound, InvalidInput, Unsupported

if TYPE_CHECKING:
    import subprocess

RUNTIMES = ("crun", "runc")
# Left at their default in the runtime (and so in the container) whatever the caller ignores.
SPAWN_DEFAULT_SIGNALS = (
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGPIPE,
    signal.SIGTSTP,
    signal.SIGTTOU,
    signal.SIGTTIN,
    signal.SIGXFSZ,
)
PROBE_FILE = "runtime-probe.json"
# ``linux.private_mount_namespace_without_cgroup2`` as commands, for threaded callers.
PRIVATE_NS_WRAPPER = (
    "unshare",
    "--mount",
    "--propagation",
    "slave",
    "--",
    "/bin/sh",
    "-c",
    'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec "$@"',
    "sh",
)


class RuntimeFailure(BoltError):
    """The OCI runtime refused an operation; the message carries its own words."""


def hybrid_cgroups() -> bool:
    """cgroup v1 controllers with a cgroup2 tree at /sys/fs/cgroup/unified."""
    return os.path.ismount("/sys/fs/cgroup/unified")


def cgroup_v2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


class OciRuntime(NamedTuple):
    name: str
    path: str
    state_root: str
    private_ns: bool = False  # run in a mount namespace without the cgroup2 mount

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.state_root, *args]

    def spawn(self, *args: str, stdio: tuple[int, int, int]) -> int:
        """Start ``<runtime> args`` with ``stdio`` as its fds 0-2 and return its pid.

        With ``private_ns`` this process itself steps into the private mount namespace
        for the instant of the spawn, so the runtime starts by posix_spawn (vfork) with no
        Python code between fork and exec.  Only for single-threaded callers."""
        host_ns = None
        path, argv = self.path, self.argv(*args)
        threading = sys.modules.get("threading")  # not loaded: no second thread
        if self.private_ns and threading is not None and threading.active_count() > 1:
            # A threaded process cannot change its mount namespace: a wrapper does it.
            path, argv = _binary("unshare") or "/usr/bin/unshare", [*PRIVATE_NS_WRAPPER, *argv]
        elif self.private_ns:
            from bolt.runtime.linux import leave_mount_namespace_without_cgroup2

            host_ns = leave_mount_namespace_without_cgroup2()
        try:
            return os.posix_spawn(
                path,
                argv,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(stdio)],
                setsigdef=SPAWN_DEFAULT_SIGNALS,
            )
        finally:
            if host_ns is not None:
                from bolt.runtime.linux import return_to_mount_namespace

                return_to_mount_namespace(host_ns)

    def has_state(self, cid: str) -> bool:
        """Whether the runtime keeps state for ``cid`` (``run`` in the foreground removes
        its own on exit, so there is nothing to delete)."""
        return os.path.isdir(os.path.join(self.state_root, cid))

    def _run(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        import subprocess

        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeFailure(f"{self.name} {args[0]} failed: {runtime_message(proc.stderr)}")
        return proc

    def start(self, cid: str) -> None:
        self._run("start", cid)

    def state(self, cid: str) -> dict[str, Any] | None:
        """The runtime's view of ``cid`` (status created|running|stopped|paused), or None."""
        proc = self._run("state", cid, check=False)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            return None

    def kill(self, cid: str, sig: int = signal.SIGTERM, all_processes: bool = False) -> bool:
        args = ["kill", *(["--all"] if all_processes else []), cid, str(int(sig))]
        return self._run(*args, check=False).returncode == 0

    def pause(self, cid: str) -> None:
        self._run("pause", cid)

    def resume(self, cid: str) -> None:
        self._run("resume", cid, check=False)

    def delete(self, cid: str, force: bool = False) -> None:
        if not self.has_state(cid):
            return
        proc = self._run("delete", *(["--force"] if force else []), cid, check=False)
        if proc.returncode != 0 and self.state(cid) is not None:
            raise RuntimeFailure(f"{self.name} delete failed: {runtime_message(proc.stderr)}")

    def exec_argv(
        self,
        cid: str,
        args: Sequence[str],
        *,
        env: Sequence[str] = (),
        cwd: str | None = None,
        tty: bool = False,
        user: str | None = None,
    ) -> list[str]:
        argv = self.argv("exec")
        if tty:
            argv.append("--tty")
        for item in env:
            argv += ["--env", item]
        if cwd:
            argv += ["--cwd", cwd]
        if user:
            argv += ["--user", user]
        return [*argv, cid, *args]


def runtime_message(stderr: str) -> str:
    """The useful line of a runtime's error output: its last line, or the ``msg`` of a
    JSON or logfmt line (``time=... level=error msg="..."``, as runc logs)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "no error output"
    last = lines[-1]
    if last.startswith("{"):
        try:
            return str(json.loads(last).get("msg", last))
        except json.JSONDecodeError:
            return last
    if last.startswith("time=") and ' msg="' in last:
        quoted = last[last.index(' msg="') + 5 :]
        try:
            return str(json.JSONDecoder().raw_decode(quoted)[0])
        except json.JSONDecodeError:
            return last
    return last


COMMAND_HINT = (
    "give the command's full path in the image, or check the image's PATH and the file's "
    "mode (bolt image inspect IMAGE shows its Env and Cmd)"
)
RUNTIME_EXEC_FAILED = 255  # crun's and runc's status when ``exec`` itself failed
# How crun and runc say that the container's command could not be started.
_NOT_FOUND = (
    "executable file `",  # crun: executable file `x` not found in $PATH
    "executable file not found",  # runc: exec: "x": executable file not found in $PATH
    ": stat ",  # runc: exec: "/x": stat /x: no such file or directory
)
_CANNOT_INVOKE = ("open executable: ", '": permission denied')


def command_error(message: str) -> type[BoltError] | None:
    """The error class for a runtime's ``message`` when it says the container's command
    could not be found (exit 127) or executed (126); None for every other failure."""
    lowered = message.lower()
    if 'exec: "' in message or "executable" in lowered:
        if any(s in message for s in _CANNOT_INVOKE):
            return CannotInvoke
        if any(s in lowered for s in _NOT_FOUND):
            return CommandNotFound
    return None


def _binary(name: str) -> str | None:
    """``shutil.which`` without importing shutil (and its archive modules) on the run path."""
    for directory in os.get_exec_path():
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def _fingerprint(path: str) -> str:
    st = os.stat(path)
    return f"{path}:{st.st_size}:{int(st.st_mtime)}"


def _probe(rt: OciRuntime, work: Path) -> tuple[bool, str]:
    """Run /bin/true with the host's /usr etc. bind-mounted read-only into an empty rootfs."""
    import shutil
    import tempfile

    from bolt.runtime.oneshot import run_spec
    from bolt.runtime.spec import ContainerSpec, Mount

    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=work))
    output: list[str] = []
    try:
        (scratch / "rootfs").mkdir()
        mounts = tuple(
            Mount(destination=d, source=os.path.realpath(d), readonly=True)
            for d in ("/bin", "/lib", "/lib64", "/usr")
            if os.path.isdir(d)
        )
        cid = os.urandom(8).hex()
        spec = ContainerSpec(
            id=cid,
            name="bolt-probe",
            rootfs=str(scratch / "rootfs"),
            args=("/bin/true",),
            mounts=mounts,
            cgroups_path=f"/bolt/probe-{cid}",
        )
        try:
            code = run_spec(rt, spec, scratch, output.append, timeout=30)
        except (OSError, BoltError) as exc:
            return False, str(exc)
        return code == 0, runtime_message("\n".join(output)) if code else "ok"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def make_runtime(name: str, root: Path) -> OciRuntime:
    path = _binary(name)
    if path is None:
        raise Unsupported(
            f"OCI runtime {name!r} is not installed", hint=f"install the {name} package"
        )
    return OciRuntime(
        name=name,
        path=path,
        state_root=str(root / "run" / name),
        private_ns=name == "crun" and hybrid_cgroups(),
    )


def select_runtime(choice: str, root: Path) -> OciRuntime:
    """``crun`` / ``runc`` as asked, or for ``auto`` crun if it works here, else runc."""
    if choice in RUNTIMES:
        return make_runtime(choice, root)
    if choice != "auto":
        raise InvalidInput(f"runtime: {choice!r} is not one of auto, crun, runc")
    crun = _binary("crun")
    if crun is not None:
        probe_path = root / PROBE_FILE
        key = _fingerprint(crun) + (":hybrid" if hybrid_cgroups() else "")
        try:
            cached = json.loads(probe_path.read_text())
        except (OSError, json.JSONDecodeError):
            cached = {}
        if cached.get("key") != key:
            ok, reason = _probe(make_runtime("crun", root), root / "tmp")
            cached = {"key": key, "crun_works": ok, "reason": reason}
            # one temporary name per writer: the first starts on a new root probe at once
            tmp = probe_path.with_name(f".{PROBE_FILE}.{os.urandom(6).hex()}")
            tmp.write_text(json.dumps(cached))
            tmp.replace(probe_path)
        if cached.get("crun_works"):
            return make_runtime("crun", root)
    if _binary("runc") is None:
        raise Unsupported("no working OCI runtime found", hint="install crun or runc")
    return make_runtime("runc", root)
