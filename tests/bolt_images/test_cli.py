"""``bolt image …`` and ``bolt images`` through argparse, as users type them."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from bolt.cli import image as image_cli
from bolt.errors import BoltError, ExitCode
from tests.bolt_images.image_helpers import Entry, busybox_rootfs, write_layer


def bolt(root: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="bolt")
    parser.add_argument("--root", type=Path)
    sub = parser.add_subparsers(dest="command", required=True)
    image_cli.register(sub)
    args = parser.parse_args(["--root", str(root), *argv])
    return int(args.handler(args))


def fails(root: Path, *argv: str) -> BoltError:
    with pytest.raises(BoltError) as err:
        bolt(root, *argv)
    return err.value


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "bolt-root"


def test_import_list_inspect_remove(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    assert bolt(root, "image", "import", str(rootfs), "-t", "busybox:1", "--cmd", "sh -c 'id'") == 0
    ref, image_id = capsys.readouterr().out.split()
    assert ref == "busybox:1" and image_id.startswith("sha256:")

    assert bolt(root, "images") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["REPOSITORY", "TAG", "IMAGE"]
    assert table[1].split()[:3] == ["busybox", "1", image_id[7:19]]

    assert bolt(root, "image", "ls", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["id"] == image_id and listed["config"]["Cmd"] == ["sh", "-c", "id"]

    assert bolt(root, "images", "-q") == 0
    assert capsys.readouterr().out == image_id[7:19] + "\n"

    assert bolt(root, "image", "inspect", image_id[7:15]) == 0
    assert json.loads(capsys.readouterr().out)["ref"] == "busybox:1"

    assert bolt(root, "image", "rm", "busybox:1") == 0
    assert capsys.readouterr().out == "Untagged: busybox:1\n"
    assert bolt(root, "images", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_import_sets_env_workdir_user_and_json_entrypoint(root: Path, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar.gz", [Entry("app/run", data=b"#!/bin/sh\n")])
    argv = ["image", "import", str(tarball), "-t", "app", "-e", "MODE=prod", "-w", "/app"]
    assert bolt(root, *argv, "-u", "1000", "--entrypoint", '["/app/run", "--serve"]') == 0
    from bolt.images.store import ImageStore

    config = ImageStore(root).resolve("app").config
    assert config["Entrypoint"] == ["/app/run", "--serve"]
    assert config["Env"][-1] == "MODE=prod" and config["Env"][0].startswith("PATH=")
    assert (config["WorkingDir"], config["User"]) == ("/app", "1000")


def test_user_errors_have_their_exit_codes(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fails(root, "image", "inspect", "nothing").exit_code == ExitCode.INVALID_INPUT
    missing = fails(root, "image", "import", str(tmp_path / "missing.tar"), "-t", "x")
    assert missing.exit_code == ExitCode.INVALID_INPUT and "does not exist" in missing.message
    tarball = write_layer(tmp_path / "r.tar", [Entry("f")])
    assert fails(root, "image", "import", str(tarball)).hint == "use -t NAME:TAG"
    bad_cmd = fails(root, "image", "import", str(tarball), "-t", "x", "--cmd", "[1]")
    assert "JSON array of strings" in bad_cmd.message
    # rm goes on with the other names, and reports the failure
    assert bolt(root, "image", "import", str(tarball), "-t", "x") == 0
    err = fails(root, "image", "rm", "nope", "x")
    assert err.exit_code == ExitCode.INVALID_INPUT and "nope" in err.message
    assert "Untagged: x:latest" in capsys.readouterr().out


def test_rm_asks_the_runtime_whether_an_image_is_used(root: Path, tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar", [Entry("f")])
    assert bolt(root, "image", "import", str(tarball), "-t", "used") == 0
    seen: list[Path] = []

    def provider(store_root: Path) -> image_cli.InUse:
        seen.append(store_root)
        return lambda image_id: True

    image_cli.set_in_use_provider(provider)
    try:
        err = fails(root, "image", "rm", "used")
        assert err.exit_code == ExitCode.INVALID_INPUT and "used by a container" in err.message
        assert seen == [root]
        assert bolt(root, "image", "rm", "-f", "used") == 0
    finally:
        image_cli.set_in_use_provider(None)


def test_an_unusable_root_is_a_clear_error(tmp_path: Path) -> None:
    tarball = write_layer(tmp_path / "r.tar", [Entry("f")])
    if os.geteuid() == 0:  # root may write anywhere, but not below /proc
        locked, code = Path("/proc/bolt-cannot-write-here"), ExitCode.FAILURE
    else:
        locked, code = tmp_path / "locked", ExitCode.PERMISSION
        locked.mkdir(mode=0o500)
    err = fails(locked, "image", "import", str(tarball), "-t", "x")
    assert err.exit_code == code
    assert str(locked) in err.message


def test_prune_reports_what_it_removed(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = write_layer(tmp_path / "r.tar", [Entry("f")])
    assert bolt(root, "image", "import", str(tarball), "-t", "p") == 0
    assert bolt(root, "image", "prune", "--json") == 0
    capsys.readouterr()
    from bolt.images.store import ImageStore

    store = ImageStore(root)
    record = store.resolve("p")
    store.layer_dirs(record)
    store.remove("p", force=True, in_use=lambda _: True)  # layers kept for a container
    assert bolt(root, "image", "prune", "--json") == 0
    assert json.loads(capsys.readouterr().out)["removed"] == list(record.diff_ids)


def test_the_bolt_command_runs_the_image_commands(root: Path, tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import tool

    tarball = write_layer(tmp_path / "r.tar.gz", [Entry("etc/motd", data=b"hi")])
    ok = subprocess.run(
        [tool("bolt"), "--root", str(root), "image", "import", str(tarball), "-t", "motd:1"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    listed = subprocess.run(
        [tool("bolt"), "--root", str(root), "images", "--json"], capture_output=True, text=True
    )
    assert [i["ref"] for i in json.loads(listed.stdout)] == ["motd:1"]
    missing = subprocess.run(
        [tool("bolt"), "--root", str(root), "image", "rm", "nothing"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == ExitCode.INVALID_INPUT
    assert missing.stderr.startswith("error: no image 'nothing'")
    assert "Traceback" not in missing.stderr


def test_import_of_a_layer_with_a_hardlink_out_of_it_exits_2(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = write_layer(
        tmp_path / "hostile.tar.gz", [Entry("shadow", "hardlink", target="/etc/shadow")]
    )
    err = fails(root, "image", "import", str(tarball), "-t", "hostile:1")
    assert err.exit_code == ExitCode.INVALID_INPUT
    assert "hardlink 'shadow' points at '/etc/shadow', which is not a file earlier" in err.message
    capsys.readouterr()
    assert bolt(root, "images", "-q") == 0
    assert capsys.readouterr().out == ""
