"""``bolt run`` end to end through the real runtime: isolation, devices, volumes, limits."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt
from tests.conftest import tool

pytestmark = [pytest.mark.root, pytest.mark.runtime]


def test_command_is_pid_1_and_hostname_is_the_container_name(bolt: Bolt) -> None:
    out = bolt.ok("run", "--rm", "--name", "web-1", "busybox", "sh", "-c", "echo $$; hostname")
    assert out.split() == ["1", "web-1"]


def test_exit_code_passes_through(bolt: Bolt) -> None:
    assert bolt("run", "--rm", "busybox", "sh", "-c", "exit 7").returncode == 7


def test_stdout_and_stderr_are_kept_apart_and_logged(bolt: Bolt) -> None:
    proc = bolt("run", "--name", "streams", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "out\n", "err\n")
    logs = bolt("logs", "streams")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    import json

    records = [json.loads(line) for line in bolt.ok("logs", "--json", "streams").splitlines()]
    assert {r["stream"] for r in records} == {"stdout", "stderr"}
    assert all(r["time"].endswith("Z") for r in records)


def test_stdin_is_forwarded_with_i(bolt: Bolt, tmp_path: Path) -> None:
    out = bolt.ok("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert out == "HELLO\n"
    data = tmp_path / "lines"
    data.write_text("x\n" * 50000)
    with data.open() as stdin:  # a regular file, not a pipe
        proc = subprocess.run(
            [tool("bolt"), "run", "--rm", "-i", "busybox", "wc", "-l"],
            stdin=stdin, env=bolt.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.stdout.strip() == "50000"


def test_read_only_volume_refuses_writes_and_rw_volume_accepts(bolt: Bolt, tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    (tmp_path / "rw").mkdir()
    proc = bolt(
        "run", "--rm", "-v", f"{tmp_path / 'ro'}:/ro:ro", "-v", f"{tmp_path / 'rw'}:/rw", "busybox",
        "sh", "-c", "echo x > /rw/f && echo y > /ro/f",
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr
    assert (tmp_path / "rw" / "f").read_text() == "x\n"
    assert not (tmp_path / "ro" / "f").exists()


def test_named_volume_persists_between_containers(bolt: Bolt) -> None:
    bolt.ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert bolt.ok("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f") == "kept\n"
    assert "data" in bolt.ok("volume", "ls").split()


def test_tmpfs_and_read_only_rootfs(bolt: Bolt) -> None:
    proc = bolt(
        "run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "busybox",
        "sh", "-c", "echo ok > /scratch/f && cat /scratch/f && grep ' /scratch ' /proc/mounts && touch /x",
    )  # fmt: skip
    assert proc.stdout.startswith("ok\n") and "tmpfs" in proc.stdout
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr


def test_undeclared_device_cannot_be_opened_but_a_declared_one_can(
    bolt: Bolt, tmp_path: Path
) -> None:
    node = tmp_path / "tun"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(10, 200))  # /dev/net/tun's numbers
    script = (
        "mknod /tmp/gpu c 195 0; dd if=/tmp/gpu of=/dev/null bs=1 count=0 2>&1; "
        "dd if=/dev/mydev of=/dev/null bs=1 count=0 2>&1 && echo declared-ok"
    )
    out = bolt(
        "run", "--rm", "--device", f"{node}:/dev/mydev:rw", "busybox", "sh", "-c", script
    ).stdout
    assert "can't open '/tmp/gpu': Operation not permitted" in out
    assert "declared-ok" in out
    # Without --device the same node is refused too.
    out = bolt(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/k c 10 200; dd if=/tmp/k bs=1 count=0 2>&1",
    ).stdout
    assert "Operation not permitted" in out


def _cap_eff(bolt: Bolt, *flags: str) -> int:
    out = bolt.ok("run", "--rm", *flags, "busybox", "grep", "CapEff", "/proc/self/status")
    return int(out.split()[1], 16)


CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12


def test_default_capabilities_lack_sys_admin_and_privileged_has_it(bolt: Bolt) -> None:
    assert not _cap_eff(bolt) & (1 << CAP_SYS_ADMIN)
    assert _cap_eff(bolt, "--privileged") & (1 << CAP_SYS_ADMIN)
    with_net_admin = _cap_eff(bolt, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN")
    assert with_net_admin & (1 << CAP_NET_ADMIN) and not with_net_admin & 1


CLONE_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
static char stack[65536];
static int child(void *arg) { return 0; }
int main(void) {
    int pid = clone(child, stack + sizeof stack, CLONE_NEWUSER | SIGCHLD, NULL);
    if (pid < 0) { printf("clone: %s\n", strerror(errno)); return 1; }
    waitpid(pid, NULL, 0);
    printf("clone: created-userns\n");
    return 0;
}
"""


def test_seccomp_refuses_new_namespaces_unless_allowed(bolt: Bolt, tmp_path: Path) -> None:
    (tmp_path / "probe.c").write_text(CLONE_PROBE)
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c")],
        check=True,
    )
    script = "/probe; unshare -U true && echo unshare-ok; grep Seccomp: /proc/self/status"
    volume = f"{tmp_path / 'probe'}:/probe:ro"
    default = bolt("run", "--rm", "-v", volume, "busybox", "sh", "-c", script)
    assert "clone: Operation not permitted" in default.stdout and "unshare-ok" not in default.stdout
    assert "Seccomp:\t2" in default.stdout
    admin = bolt.ok(
        "run", "--rm", "--cap-add", "SYS_ADMIN", "-v", volume, "busybox", "sh", "-c", script
    )
    assert "clone: created-userns" in admin and "unshare-ok" in admin and "Seccomp:\t2" in admin
    privileged = bolt.ok("run", "--rm", "--privileged", "-v", volume, "busybox", "sh", "-c", script)
    assert "created-userns" in privileged and "Seccomp:\t0" in privileged


def test_privileged_sees_host_devices_and_writable_sys(bolt: Bolt) -> None:
    host_dev = next(
        p
        for p in ("/dev/kmsg", "/dev/loop-control", "/dev/fuse", "/dev/net/tun")
        if os.path.exists(p)
    )
    probe = f"ls {host_dev} 2>&1; grep ' /sys ' /proc/mounts"
    default = bolt("run", "--rm", "busybox", "sh", "-c", probe).stdout
    assert "No such file" in default and " ro," in default
    privileged = bolt.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", probe)
    assert "No such file" not in privileged and " rw," in privileged


def test_masked_and_read_only_proc_paths(bolt: Bolt) -> None:
    masked = next(p for p in ("/proc/timer_list", "/proc/keys", "/proc/kcore") if os.path.exists(p))
    assert Path(masked).read_text() != ""
    assert bolt.ok("run", "--rm", "busybox", "sh", "-c", f"wc -c < {masked}").strip() == "0"
    err = bolt("run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches").stderr
    assert "Read-only file system" in err
    assert (
        bolt.ok("run", "--rm", "--privileged", "busybox", "sh", "-c", f"wc -c < {masked}").strip()
        != "0"
    )


def test_memory_limit_is_enforced(bolt: Bolt) -> None:
    # Filling 64 MiB of tmpfs-backed memory in a 16 MiB container gets it OOM-killed.
    proc = bolt(
        "run", "--rm", "--memory", "16m", "--tmpfs", "/fill:size=128m", "busybox",
        "sh", "-c", "dd if=/dev/zero of=/fill/x bs=1M count=64 && echo survived",
    )  # fmt: skip
    assert "survived" not in proc.stdout
    assert proc.returncode == 137


def test_pids_limit_is_enforced(bolt: Bolt) -> None:
    script = "for i in $(seq 20); do sleep 5 & done 2>&1; wait"
    proc = bolt("run", "--rm", "--pids-limit", "8", "busybox", "sh", "-c", script, timeout=30)
    assert "Resource temporarily unavailable" in proc.stdout + proc.stderr


def test_env_workdir_user_and_env_file(bolt: Bolt, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\nOVERRIDE=file\n")
    out = bolt.ok(
        "run", "--rm", "--env-file", str(env_file), "-e", "OVERRIDE=flag", "-w", "/tmp", "-u", "nobody",
        "busybox", "sh", "-c", "echo $FROM_FILE $OVERRIDE $(pwd) $(id -u)",
    )  # fmt: skip
    assert out.split() == ["1", "flag", "/tmp", "65534"]


def test_network_modes(bolt: Bolt) -> None:
    private = bolt.ok("run", "--rm", "busybox", "cat", "/proc/net/dev")
    assert [ln.split(":")[0].strip() for ln in private.splitlines()[2:]] == ["lo"]
    lo_up = bolt.ok(
        "run", "--rm", "--network", "none", "busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"
    )
    assert "1 packets received" in lo_up

    def names(text: str) -> set[str]:
        return {ln.split(":")[0].strip() for ln in text.splitlines()[2:]}

    # Other containers on the host may come and go meanwhile: every interface the host
    # had before and after is seen, and nothing the host never had.
    before = names(Path("/proc/net/dev").read_text())
    host = bolt.ok("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
    after = names(Path("/proc/net/dev").read_text())
    assert before & after <= names(host) <= before | after
    assert "lo" in names(host) and len(names(host)) > 1


def test_joins_a_prepared_network_namespace(bolt: Bolt, tmp_path: Path) -> None:

    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        import time

        for _ in range(50):
            target = os.readlink(f"/proc/{holder.pid}/ns/net")
            if target != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.02)
        inside = bolt.ok(
            "run",
            "--rm",
            "--network",
            f"ns:/proc/{holder.pid}/ns/net",
            "busybox",
            "readlink",
            "/proc/self/ns/net",
        )
        assert inside.strip() == target
    finally:
        holder.kill()
        holder.wait()


def test_errors_are_clear_and_use_the_exit_code_table(bolt: Bolt) -> None:
    missing = bolt("run", "--rm", "no-such-image")
    assert (
        missing.returncode == 2
        and missing.stderr.startswith("error: ")
        and "Traceback" not in missing.stderr
    )
    bad_cmd = bolt("run", "--rm", "busybox", "/no/such/binary")
    assert (
        bad_cmd.returncode == 127
        and "error:" in bad_cmd.stderr
        and "Traceback" not in bad_cmd.stderr
    )
    assert bolt("run", "--rm", "--memory", "lots", "busybox").returncode == 2
    assert bolt("run", "--rm", "-v", "/does/not/exist:/x", "busybox").returncode == 2
    assert bolt("run", "--rm", "--device", "/etc/passwd", "busybox").returncode == 2
    assert bolt("logs", "nobody-here").returncode == 2
    bolt.ok("run", "--name", "dup", "busybox", "true")
    dup = bolt("run", "--name", "dup", "busybox", "true")
    assert dup.returncode == 2 and "already in use" in dup.stderr
    assert bolt.ps() == [d for d in bolt.ps() if d["name"] == "dup"]  # failures left nothing


def test_non_root_is_refused_with_exit_4_before_anything_changes(bolt: Bolt) -> None:
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool("bolt"), "run", "--rm", "busybox", "true"],
        env=bolt.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 4 and "needs root" in proc.stderr
    assert bolt.ps() == []


def _read_until(fd: int, marker: bytes, timeout: float = 15) -> bytes:
    import select
    import time

    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_tty_gives_the_container_a_terminal(bolt: Bolt) -> None:
    import pty
    import time

    script = "tty; echo TERM=$TERM; test -t 0 && echo is-a-tty; read code; exit $code"
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(
            tool("bolt"),
            [tool("bolt"), "run", "--rm", "-i", "-t", "busybox", "sh", "-c", script],
            bolt.env,
        )
    status = None
    try:
        out = _read_until(fd, b"is-a-tty")
        assert b"/dev/pts/0" in out and b"TERM=xterm" in out and b"is-a-tty" in out
        os.write(fd, b"3\n")  # typed into the container's terminal
        _read_until(fd, b"never", timeout=3)
        deadline = time.monotonic() + 20
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = raw if done else None
            time.sleep(0.05)
    finally:
        if status is None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None and os.waitstatus_to_exitcode(status) == 3
