"""References, settings, credentials, challenges and manifests: pure logic, no registry."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest

from bolt.errors import InvalidInput, Unsupported
from bolt.images.errors import CorruptBlob
from bolt.registry import config
from bolt.registry.auth import AuthFile, Credentials, parse_challenge
from bolt.registry.manifest import check, pick_platform
from bolt.registry.progress import Silent
from bolt.registry.reference import parse, registry_host
from bolt.registry.transfer import Cancelled, check_layer, file_chunks, run_parallel


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "local"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", "alpine:latest"),
        ("bolt://ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "ubuntu:22.04"),
        ("docker.io/library/alpine:3", "docker.io", "library/alpine", "3", "alpine:3"),
        ("team/app:v1", "docker.io", "team/app", "v1", "team/app:v1"),
        ("127.0.0.1:5000/x/y:t", "127.0.0.1:5000", "x/y", "t", "127.0.0.1:5000/x/y:t"),
        ("localhost/app", "localhost", "app", "latest", "localhost/app:latest"),
        ("ghcr.io/o/r:1.2", "ghcr.io", "o/r", "1.2", "ghcr.io/o/r:1.2"),
    ],
)
def test_references_resolve_to_registry_repository_and_local_name(
    text: str, registry: str, repository: str, tag: str, local: str
) -> None:
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.local) == (registry, repository, tag, local)


def test_bolt_scheme_and_bare_names_use_the_configured_default_registry() -> None:
    ref = parse("bolt://alpine:latest", "registry.lan:5000")
    assert (ref.registry, ref.repository, ref.local) == (
        "registry.lan:5000",
        "alpine",
        "alpine:latest",
    )
    assert parse("team/app", "registry.lan:5000").registry == "registry.lan:5000"
    assert parse("other.io/team/app", "registry.lan:5000").registry == "other.io"


def test_digest_references_ask_for_the_digest() -> None:
    digest = "sha256:" + "a" * 64
    ref = parse(f"127.0.0.1:5000/app@{digest}")
    assert ref.reference == digest and ref.tag is None
    assert ref.local == "127.0.0.1:5000/app:sha256-aaaaaaaaaaaa"


@pytest.mark.parametrize("bad", ["UPPER/case", "app:bad tag", "app@sha256:12", "a//b", ""])
def test_malformed_references_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid image reference"):
        parse(bad)


def test_registries_toml_sets_default_and_insecure_hosts(tmp_path: Path) -> None:
    assert config.load(tmp_path).default_registry == "docker.io"
    (tmp_path / "registries.toml").write_text(
        'default_registry = "127.0.0.1:5000"\ninsecure = ["127.0.0.1:5000"]\n'
    )
    settings = config.load(tmp_path)
    assert settings.default_registry == "127.0.0.1:5000"
    assert settings.is_insecure("127.0.0.1:5000") and not settings.is_insecure("ghcr.io")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("insecure = 5", "insecure must be a list"),
        ('default_registry = "no_dots"', "is not a registry host"),
        ("mirror = 1", "unknown key 'mirror'"),
        ("insecure = [", "registries.toml"),
    ],
)
def test_bad_registries_toml_is_refused_with_the_file_named(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "registries.toml").write_text(text)
    with pytest.raises(InvalidInput, match=message):
        config.load(tmp_path)


def test_auth_file_is_docker_format_and_private(tmp_path: Path) -> None:
    auth = AuthFile.under(tmp_path)
    auth.set("127.0.0.1:5000", Credentials("me", "pa:ss"))
    doc = json.loads((tmp_path / "auth.json").read_text())
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"me:pa:ss"
    assert stat.S_IMODE((tmp_path / "auth.json").stat().st_mode) == 0o600
    assert auth.get("127.0.0.1:5000") == Credentials("me", "pa:ss")
    assert auth.get("other:1") is None
    assert auth.remove("127.0.0.1:5000") and auth.get("127.0.0.1:5000") is None
    assert not auth.remove("127.0.0.1:5000")


def test_docker_hub_credentials_are_found_under_dockers_key(tmp_path: Path) -> None:
    entry = base64.b64encode(b"hubuser:pw").decode()
    (tmp_path / "auth.json").write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": entry}}})
    )
    assert AuthFile.under(tmp_path).get("docker.io") == Credentials("hubuser", "pw")


def test_bearer_challenge_parameters_are_parsed() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="Registry Realm"').params == {"realm": "Registry Realm"}


def _tar(*names: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in names:
            data = name.encode() * 5000
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_layer_check_measures_the_diff_id_of_a_multi_member_gzip(tmp_path: Path) -> None:
    plain = _tar("a", "b", "c")
    layer = tmp_path / "layer"
    layer.write_bytes(gzip.compress(plain[:1000]) + gzip.compress(plain[1000:]))
    diff_id = "sha256:" + hashlib.sha256(plain).hexdigest()
    check_layer(layer, diff_id, "layer x")  # the diff id it promises: accepted
    with pytest.raises(CorruptBlob, match="unpacks to " + diff_id):
        check_layer(layer, "sha256:" + "0" * 64, "layer x")


def test_truncated_gzip_layer_is_corrupt(tmp_path: Path) -> None:
    plain = _tar("a")
    layer = tmp_path / "layer"
    layer.write_bytes(gzip.compress(plain)[:-12])
    with pytest.raises(CorruptBlob):
        check_layer(layer, "sha256:" + hashlib.sha256(plain).hexdigest(), "layer x")


def _manifest(media: str = "application/vnd.oci.image.manifest.v1+json") -> bytes:
    desc = {"mediaType": "x", "digest": "sha256:" + "b" * 64, "size": 3}
    return json.dumps(
        {"schemaVersion": 2, "mediaType": media, "config": desc, "layers": [desc]}
    ).encode()


def test_manifest_must_match_the_digest_it_was_asked_by() -> None:
    data = _manifest()
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    assert check(data, "", "x", good).digest == good
    with pytest.raises(CorruptBlob, match="does not match its digest"):
        check(data, "", "x", "sha256:" + "0" * 64)


def test_schema1_manifests_are_unsupported() -> None:
    data = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(Unsupported, match="schema 1"):
        check(data, "application/vnd.docker.distribution.manifest.v1+prettyjws", "x", None)


def test_platform_is_picked_from_an_index() -> None:
    index = {
        "manifests": [
            {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    assert pick_platform(index, "amd64", "x")["digest"] == "sha256:" + "2" * 64
    with pytest.raises(Unsupported, match="no image for linux/s390x"):
        pick_platform(index, "s390x", "x")


def test_first_failed_transfer_stops_the_others_and_is_raised(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"z" * (64 << 20))
    stopped: list[str] = []
    started = threading.Event()

    def slow(cancel: threading.Event) -> None:
        try:
            for _ in file_chunks(big, 0, 64 << 20, Silent(), "big", cancel):
                started.set()
                time.sleep(0.01)
        except Cancelled:
            stopped.append("big")
            raise

    def failing(cancel: threading.Event) -> None:
        started.wait(5)
        raise CorruptBlob("layer x does not match its digest")

    began = time.monotonic()
    with pytest.raises(CorruptBlob, match="does not match"):
        run_parallel([slow, failing], jobs=2)
    assert stopped == ["big"]
    assert time.monotonic() - began < 0.5  # 64 chunks of 10 ms were not all read


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://ghcr.io", "ghcr.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_login_accepts_urls_and_docker_hub_names(text: str, host: str) -> None:
    assert registry_host(text) == host


def test_login_refuses_what_is_not_a_registry() -> None:
    with pytest.raises(InvalidInput, match="is not a registry"):
        registry_host("just_a_name")
