"""`bolt build` end to end: a multi-stage Dockerfile.bolt with every instruction, run with
`bolt run`; the layer cache; .boltignore; errors that name file:line."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.bolt.conftest import Bolt
from tests.conftest import tool

pytestmark = [pytest.mark.root, pytest.mark.runtime]

EVERYTHING = """\
# syntax=docker/dockerfile:1
# A multi-stage build that uses every instruction.
ARG BASE=busybox:latest

FROM ${BASE} AS builder
ARG GREETING=hello
SHELL ["/bin/sh", "-c"]
WORKDIR /build
COPY src/ ./src/
COPY ["notes.txt", "./"]
ADD bundle.tar.gz /opt/bundle/
RUN cat src/*.txt notes.txt > all.txt && \\
    echo "$GREETING from the builder" >> all.txt

FROM ${BASE}
LABEL org.example.role="demo app" version=1
MAINTAINER The Bolt tests
ENV APP_HOME=/srv/app \\
    MODE=production
ARG BUILD_NUMBER=0
EXPOSE 8080 9090/udp
VOLUME ["/data"]
RUN echo "app:x:1000:1000::/srv/app:/bin/sh" >> /etc/passwd && \\
    echo "app:x:1000:" >> /etc/group && \\
    chmod 1777 /tmp && rm /bin/vi
WORKDIR $APP_HOME
COPY --from=builder /build/all.txt ./
COPY --from=builder --chown=app:app /opt/bundle/ ./bundle/
COPY --chmod=0755 run.sh /usr/local/bin/
RUN ["/bin/sh", "-c", "echo build=$BUILD_NUMBER > build.txt"]
USER app
RUN id -u > /tmp/build-uid
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/run.sh"]
CMD ["first", "second"]
"""

RUN_SH = """\
#!/bin/sh
echo "args=$*"
echo "user=$(id -u):$(id -g) pwd=$(pwd) mode=$MODE home=$APP_HOME"
cat all.txt build.txt
ls -ln bundle | awk 'NR>1 {print $3":"$4, $9}'
test -e /bin/vi || echo "vi is gone"
echo "built as $(cat /tmp/build-uid)"
"""


def make_context(path: Path) -> Path:
    (path / "src").mkdir(parents=True)
    (path / "src" / "a.txt").write_text("source a\n")
    (path / "src" / "b.txt").write_text("source b\n")
    (path / "notes.txt").write_text("notes\n")
    (path / "run.sh").write_text(RUN_SH)
    (path / "Dockerfile.bolt").write_text(EVERYTHING)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"from the archive\n"
        info = tarfile.TarInfo("inside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (path / "bundle.tar.gz").write_bytes(buf.getvalue())
    return path


def test_multi_stage_build_runs_with_everything_as_written(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    out = bolt.ok(
        "build", "-t", "app:1", "-t", "app:latest", "--build-arg", "BUILD_NUMBER=42", str(ctx)
    )
    assert "[1/" in out and "Tagged app:1" in out and "Tagged app:latest" in out

    run = bolt.ok("run", "--rm", "app:1")
    assert run.splitlines() == [
        "args=first second",
        "user=1000:1000 pwd=/srv/app mode=production home=/srv/app",
        "source a",
        "source b",
        "notes",
        "hello from the builder",
        "build=42",
        "1000:1000 inside.txt",
        "vi is gone",
        "built as 1000",
    ]
    config = json.loads(bolt.ok("image", "inspect", "app:1"))["config"]
    assert config["Labels"] == {
        "org.example.role": "demo app",
        "version": "1",
        "maintainer": "The Bolt tests",
    }
    assert config["ExposedPorts"] == {"8080/tcp": {}, "9090/udp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["User"] == "app" and config["StopSignal"] == "SIGINT"
    assert config["WorkingDir"] == "/srv/app"
    assert "BUILD_NUMBER=42" not in config["Env"]  # ARGs are not kept in the image
    assert bolt.ok("run", "--rm", "--entrypoint", "cat", "app:1", "/usr/local/bin/run.sh") == RUN_SH


def test_deleted_file_is_a_whiteout_in_the_layer(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        "FROM busybox\nRUN rm /bin/vi && rm -r /root && mkdir /root\n"
    )
    bolt.ok("build", "-t", "gone:1", str(ctx))
    record = json.loads(bolt.ok("image", "inspect", "gone:1"))
    blob = bolt.root / "images" / "blobs" / "sha256" / record["layers"][-1].removeprefix("sha256:")
    with tarfile.open(blob) as tar:
        names = tar.getnames()
    assert "bin/.wh.vi" in names
    assert "root/.wh..wh..opq" in names  # a directory replaced: opaque
    assert "etc/hosts" not in names and "proc" not in names  # no runtime mount points
    assert bolt("run", "--rm", "gone:1", "test", "-e", "/bin/vi").returncode == 1


def step_lines(output: str) -> dict[str, bool]:
    """Instruction -> whether it came from the cache, for RUN/COPY/ADD steps."""
    found: dict[str, bool] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("["):
            text = line.split("] ", 1)[1]
            current = text if text.split()[0] in ("RUN", "COPY", "ADD") else None
        elif current and line.startswith(" ---> "):
            found[current] = line == " ---> Using cache"
            current = None
    return found


def test_second_build_is_fully_cached_and_says_so(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    first = bolt.ok("build", "-t", "app:1", str(ctx))
    assert "fully cached" not in first
    second = bolt.ok("build", "-t", "app:1", str(ctx))
    assert set(step_lines(second).values()) == {True}
    assert "fully cached" in second
    summary = json.loads(bolt.ok("build", "--json", "-t", "app:2", str(ctx)))
    assert summary["fully_cached"] is True
    assert summary["id"] == json.loads(bolt.ok("image", "inspect", "app:1"))["id"]


def test_changing_one_copy_source_rebuilds_from_that_step_only(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    bolt.ok("build", "-t", "app:1", str(ctx))
    (ctx / "notes.txt").write_text("new notes\n")
    steps = step_lines(bolt.ok("build", "-t", "app:1", str(ctx)))
    order = list(steps)
    changed = order.index('COPY ["notes.txt", "./"]')
    assert all(steps[s] for s in order[:changed]), steps
    assert not any(steps[s] for s in order[changed : changed + 3]), steps
    # the final stage's first RUN does not read the builder: it stays cached
    assert steps[next(s for s in order if s.startswith('RUN echo "app:x'))]
    assert "new notes" in bolt.ok("run", "--rm", "--entrypoint", "cat", "app:1", "all.txt")


def test_touching_a_file_without_changing_it_keeps_the_cache(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    bolt.ok("build", "-t", "app:1", str(ctx))
    (ctx / "notes.txt").write_text("notes\n")  # same content, new mtime
    assert "fully cached" in bolt.ok("build", "-t", "app:1", str(ctx))


def test_no_cache_runs_every_step(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    bolt.ok("build", "-t", "app:1", str(ctx))
    steps = step_lines(bolt.ok("build", "--no-cache", "-t", "app:1", str(ctx)))
    assert steps and not any(steps.values())


def test_boltignore_keeps_files_out_of_copy(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "logs").mkdir(parents=True)
    (ctx / "app.txt").write_text("app\n")
    (ctx / "secret.key").write_text("do not ship\n")
    (ctx / "logs" / "a.log").write_text("log\n")
    (ctx / "logs" / "keep.log").write_text("kept\n")
    (ctx / ".boltignore").write_text("*.key\nlogs\n!logs/keep.log\n")
    (ctx / "Dockerfile.bolt").write_text('FROM busybox\nCOPY . /ctx/\nCMD ["find", "/ctx"]\n')
    bolt.ok("build", "-t", "ign:1", str(ctx))
    listed = set(bolt.ok("run", "--rm", "ign:1").split())
    assert {"/ctx/app.txt", "/ctx/logs/keep.log"} <= listed
    assert "/ctx/secret.key" not in listed and "/ctx/logs/a.log" not in listed
    # naming an ignored file is an error that points at the ignore file
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nCOPY secret.key /\n")
    proc = bolt("build", str(ctx))
    assert proc.returncode == 2
    assert "Dockerfile.bolt:2: 'secret.key' does not exist in the build context" in proc.stderr
    assert ".boltignore" in proc.stderr


def test_parse_error_names_file_and_line_and_changes_nothing(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nRUN true\n\nCOPY --bogus x /y\n")
    before = bolt.ok("images", "-q")
    proc = bolt("build", "-t", "bad:1", str(ctx))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {ctx / 'Dockerfile.bolt'}:4: COPY does not take --bogus")
    assert "Traceback" not in proc.stderr
    assert bolt.ok("images", "-q") == before


def test_workdir_made_for_a_run_belongs_to_its_user(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        "FROM busybox\nUSER nobody\nWORKDIR /home/nobody/work\nRUN touch made-here\n"
        "USER ghost\nRUN true\n"
    )
    proc = bolt("build", "-t", "wd:1", str(ctx))
    assert proc.returncode == 2
    assert "Dockerfile.bolt:6: USER: no user 'ghost' in the image's /etc/passwd" in proc.stderr
    (ctx / "Dockerfile.bolt").write_text(
        "FROM busybox\nUSER nobody\nWORKDIR /home/nobody/work\nRUN touch made-here\n"
    )
    bolt.ok("build", "-t", "wd:1", str(ctx))
    listing = bolt.ok("run", "--rm", "wd:1", "ls", "-ln", "/home/nobody/work")
    assert "65534 65534" in " ".join(listing.split()) and "made-here" in listing


def test_invalid_tag_is_refused_before_any_step_runs(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nRUN echo ran\n")
    proc = bolt("build", "-t", "Bad Name", str(ctx))
    assert proc.returncode == 2
    assert "invalid image reference 'Bad Name'" in proc.stderr and "ran" not in proc.stdout


def test_failing_run_names_its_line_and_shows_output(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nRUN echo about to fail && exit 3\n")
    proc = bolt("build", "-t", "fail:1", str(ctx))
    assert proc.returncode == 1
    assert "about to fail" in proc.stdout
    assert f"{ctx / 'Dockerfile.bolt'}:2: RUN exited with code 3" in proc.stderr


def test_target_and_file_options(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "other.bolt").write_text(
        "FROM busybox AS one\nRUN echo one > /stage\nFROM busybox AS two\nRUN echo two > /stage\n"
    )
    out = bolt.ok("build", "-f", str(ctx / "other.bolt"), "--target", "one", "-t", "t:1", str(ctx))
    assert "echo two" not in out
    assert bolt.ok("run", "--rm", "t:1", "cat", "/stage") == "one\n"


def test_add_extracts_local_archives_and_copy_does_not(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    (ctx / "Dockerfile.bolt").write_text(
        "FROM busybox\nADD bundle.tar.gz /x/\nCOPY bundle.tar.gz /y/\n"
    )
    bolt.ok("build", "-t", "add:1", str(ctx))
    assert bolt.ok("run", "--rm", "add:1", "cat", "/x/inside.txt") == "from the archive\n"
    assert bolt.ok("run", "--rm", "add:1", "ls", "/y") == "bundle.tar.gz\n"


def test_copy_through_an_image_symlink_stays_inside_the_image(bolt: Bolt, tmp_path: Path) -> None:
    victim = tmp_path / "host-dir"
    victim.mkdir()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("payload\n")
    (ctx / "Dockerfile.bolt").write_text(
        f"FROM busybox\nRUN ln -s {victim} /escape\nCOPY f.txt /escape/\n"
    )
    bolt.ok("build", "-t", "sym:1", str(ctx))
    assert list(victim.iterdir()) == []
    assert bolt.ok("run", "--rm", "sym:1", "cat", f"{victim}/f.txt") == "payload\n"


def test_context_symlink_cannot_read_outside_the_context(bolt: Bolt, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "link").symlink_to(outside)
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nCOPY link /x\n")
    proc = bolt("build", str(ctx))
    assert proc.returncode == 2
    assert (
        f"Dockerfile.bolt:2: 'link' is a symlink to '{outside}', which is not in the build context"
        in proc.stderr
    )


def _build_in_a_sleeping_run(bolt: Bolt, ctx: Path, marker: str) -> subprocess.Popen[str]:
    """A ``bolt build`` whose RUN step is sleeping (``sleep MARKER``) when this returns."""
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(f"FROM busybox\nRUN touch /ready && sleep {marker}\n")
    proc = subprocess.Popen(
        [tool("bolt"), "build", str(ctx)],
        env=bolt.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not list((bolt.root / "build").glob("*/step-*/upper/ready")):
        assert time.monotonic() < deadline, "the RUN step never started"
        time.sleep(0.05)
    return proc


def _sleeping(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_build_stopped_by_sigterm_removes_its_run_container_and_overlay(
    bolt: Bolt, tmp_path: Path
) -> None:
    before = bolt.ok("images", "-q")
    proc = _build_in_a_sleeping_run(bolt, tmp_path / "ctx", "3116")
    assert _sleeping("3116")
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "bolt build stopped by SIGTERM" in err and "Traceback" not in err
    assert not _sleeping("3116"), "the RUN container outlived its build"
    assert bolt.ok("images", "-q") == before
    # the fixture checks that no mount and no scratch directory is left


def test_build_killed_during_a_run_is_cleaned_up_by_system_prune(
    bolt: Bolt, tmp_path: Path
) -> None:
    proc = _build_in_a_sleeping_run(bolt, tmp_path / "ctx", "3115")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _sleeping("3115"), "the step's container should outlive the killed build"
    out = bolt.ok("system", "prune", "-f")
    assert "removed the scratch of a killed build" in out
    assert not _sleeping("3115")
    assert not any((bolt.root / "build").iterdir())
    # the fixture checks that no mount is left


def test_build_killed_during_a_run_is_cleaned_up_by_the_next(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    proc = _build_in_a_sleeping_run(bolt, ctx, "3117")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _sleeping("3117"), "the step's container should outlive the killed build"
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nRUN true\n")
    bolt.ok("build", str(ctx))
    # the fixture checks that no mount and no scratch directory is left
    assert not _sleeping("3117")


def test_remembered_file_hashes_still_see_a_same_size_change(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "data.txt").write_text("aaaa\n")
    (ctx / "Dockerfile.bolt").write_text(
        'FROM busybox\nCOPY data.txt /\nCMD ["cat", "/data.txt"]\n'
    )
    time.sleep(2.1)  # old enough for its hash to be remembered
    bolt.ok("build", "-t", "memo:1", str(ctx))
    assert "fully cached" in bolt.ok("build", "-t", "memo:1", str(ctx))
    (ctx / "data.txt").write_text("bbbb\n")  # same size, same second
    assert "fully cached" not in bolt.ok("build", "-t", "memo:1", str(ctx))
    assert bolt.ok("run", "--rm", "memo:1") == "bbbb\n"


def test_copy_globs_from_an_image_and_refusals(bolt: Bolt, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx")
    (ctx / "Dockerfile.bolt").write_text(
        "FROM scratch\n"
        "COPY --from=busybox:latest /bin/busybox /bin/\n"
        "COPY --from=busybox:latest /etc/passwd /etc/\n"
        "COPY src/*.txt /globbed/\n"
        'CMD ["/bin/busybox", "ls", "/globbed"]\n'
    )
    bolt.ok("build", "-t", "glob:1", str(ctx))
    assert bolt.ok("run", "--rm", "glob:1").split() == ["a.txt", "b.txt"]
    refusals = {
        "COPY src/*.txt /single\n": (2, "with several sources the destination must be a"),
        "ADD https://example.com/x.tgz /x/\n": (3, "ADD of a URL is not supported"),
        "COPY src/*.nothing /x/\n": (2, "'src/*.nothing' does not exist in the build context"),
    }
    for line, (code, message) in refusals.items():
        (ctx / "Dockerfile.bolt").write_text("FROM busybox\n" + line)
        proc = bolt("build", str(ctx))
        assert (proc.returncode, f"Dockerfile.bolt:2: {message}" in proc.stderr) == (code, True), (
            line,
            proc.stderr,
        )


def test_add_of_a_hostile_archive_writes_nothing_outside(bolt: Bolt, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    target = tmp_path / "host-target"
    target.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, str(target)
        tar.addfile(link)
        data = b"through the link\n"
        info = tarfile.TarInfo("evil/planted")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (ctx / "links.tar").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../climb")
        tar.addfile(info, io.BytesIO(b""))
    (ctx / "climb.tar").write_bytes(buf.getvalue())
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nADD links.tar /x/\n")
    bolt.ok("build", "-t", "links:1", str(ctx))
    assert list(target.iterdir()) == []  # the symlink was followed inside the image
    assert bolt.ok("run", "--rm", "links:1", "cat", f"/x{target}/planted") == "through the link\n"
    (ctx / "Dockerfile.bolt").write_text("FROM busybox\nADD climb.tar /x/\n")
    proc = bolt("build", str(ctx))
    assert proc.returncode == 2
    assert "Dockerfile.bolt:2: archive member '../../climb' climbs out" in proc.stderr


def test_bad_stopsignal_or_expose_is_refused_before_any_step_runs(
    bolt: Bolt, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    path = ctx / "Dockerfile.bolt"
    before = bolt.ok("images", "-q")
    path.write_text("FROM busybox\nRUN echo step-ran\nSTOPSIGNAL SIGBOGUS\nEXPOSE 80\n")
    proc = bolt("build", "-t", "sig:1", str(ctx))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {path}:3: STOPSIGNAL: signal 'SIGBOGUS' is unknown")
    assert "step-ran" not in proc.stdout and "Traceback" not in proc.stderr
    path.write_text("FROM busybox\nRUN echo step-ran\nEXPOSE 8080/tcp 70000\n")
    proc = bolt("build", "-t", "sig:1", str(ctx))
    assert proc.returncode == 2
    assert f"{path}:3: EXPOSE '70000': '70000' is not a port number" in proc.stderr
    assert "step-ran" not in proc.stdout
    assert bolt.ok("images", "-q") == before
    assert not (bolt.root / "build-cache.db").exists()  # refused before the builder began
    # a value from a variable is known only at its step, and refused there, at its line
    path.write_text("FROM busybox\nARG PORT=99999\nEXPOSE $PORT\n")
    proc = bolt("build", "-t", "sig:1", str(ctx))
    assert proc.returncode == 2
    assert f"{path}:3: EXPOSE '99999': '99999' is not a port number" in proc.stderr
    assert bolt.ok("images", "-q") == before


def test_image_of_a_hundred_layers_builds_and_runs(
    bolt: Bolt, tmp_path: Path, busybox_rootfs: Path
) -> None:
    """Past the ~62 layers whose directory names fit in mount(2)'s one page of options."""
    import gzip

    from tests.bolt_images.image_helpers import Entry, tar_bytes, write_oci_layout

    base = subprocess.run(
        ["tar", "-cz", "-C", str(busybox_rootfs), "."], capture_output=True, check=True
    ).stdout
    layers = [base]
    for i in range(1, 100):
        entries = [
            Entry("etc", "dir"),
            Entry("etc/which", data=f"layer {i}\n".encode()),
            Entry("layers", "dir"),
            Entry(f"layers/{i:03}", data=b"x\n"),
        ]
        layers.append(gzip.compress(tar_bytes(entries)))
    layers.append(gzip.compress(tar_bytes([Entry("layers", "dir"), Entry("layers/.wh.003")])))
    layout = write_oci_layout(tmp_path / "many", layers, config={"Cmd": ["/bin/sh"]})
    bolt.ok("image", "import", f"{layout}:v1", "-t", "many:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.bolt").write_text(
        "FROM many:1\nRUN cat /etc/which > /seen && ls /layers | wc -l > /count\n"
    )
    bolt.ok("build", "-t", "many:2", str(ctx))
    from bolt.images.store import ImageStore

    assert len(ImageStore(bolt.root).resolve("many:2").layers) == 102
    script = "cat /seen /count /layers/050; test -e /layers/003 && echo has-003 || echo no-003"
    out = bolt.ok("run", "--rm", "many:2", "sh", "-c", script)
    # the highest layer wins; the whiteout in the top one hides layer 3's file
    assert out.split() == ["layer", "99", "98", "x", "no-003"]
