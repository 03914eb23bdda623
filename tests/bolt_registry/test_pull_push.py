"""bolt pull/push/tag against Debian's docker-registry on 127.0.0.1, checked with skopeo
and by running what was pulled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt.images.importer import host_arch
from bolt.images.layout import DOCKER_LIST, DOCKER_MANIFEST, INDEX_MEDIA_TYPE
from tests.bolt_registry.conftest import Bolt, busybox_tree, make_bolt, run_tool
from tests.bolt_registry.images import add_index, umoci_image
from tests.bolt_registry.registry_fixture import Registry, TokenFront, start_registry

pytestmark = [pytest.mark.registry]
root_only = pytest.mark.root


def skopeo_inspect(ref: str, *raw: str) -> dict:
    return json.loads(run_tool("skopeo", "inspect", "--tls-verify=false", *raw, ref).stdout)


def stored_blobs(b: Bolt) -> list[str]:
    blobs = b.root / "images/blobs/sha256"
    return sorted(p.name for p in blobs.iterdir()) if blobs.is_dir() else []


def test_pushed_image_is_accepted_by_skopeo(bolt: Bolt, registry: Registry) -> None:
    dest = f"{registry.host}/team/busybox:1"
    out = bolt.ok("push", "--insecure", "busybox", dest)
    pushed_to, digest = out.split()
    image = bolt.store.resolve("busybox")
    assert (pushed_to, digest) == (dest, image.manifest_digest)
    seen = skopeo_inspect(f"docker://{dest}")
    assert seen["Digest"] == image.manifest_digest
    assert seen["Layers"] == list(image.layers)
    config = skopeo_inspect(f"docker://{dest}", "--config")
    assert config["config"]["Cmd"] == ["cat", "/etc/marker"]
    again = bolt("push", "--insecure", "busybox", dest)
    assert again.returncode == 0 and "already there" in again.stderr


def test_chunked_push_is_accepted_by_skopeo(bolt: Bolt, registry: Registry) -> None:
    dest = f"{registry.host}/chunked/busybox:1"
    proc = bolt("push", "--insecure", "--chunk-size", "64k", "busybox", dest)
    assert proc.returncode == 0, proc.stderr
    assert (
        skopeo_inspect(f"docker://{dest}")["Digest"]
        == bolt.store.resolve("busybox").manifest_digest
    )


@root_only
def test_image_skopeo_pushed_runs_after_bolt_pull(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    layout = umoci_image(tmp_path / "src", "pushed by skopeo")
    ref = f"{registry.host}/umoci/busybox:v1"
    run_tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}")
    proc = bolt("pull", "--insecure", ref)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == ref
    assert proc.stderr.count(": done") == 3  # config and two layers, one line each
    assert bolt.ok("run", "--rm", ref) == "pushed by skopeo\n"
    assert bolt.ok("run", "--rm", ref, "cat", "/srv/data") == "second layer\n"


@root_only
def test_docker_schema2_image_pulls_runs_and_exports_as_oci(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    layout = umoci_image(tmp_path / "src", "docker v2s2")
    ref = f"{registry.host}/v2s2/busybox:1"
    run_tool(
        "skopeo", "copy", "--format", "v2s2", "--dest-tls-verify=false",
        f"oci:{layout}:v1", f"docker://{ref}",
    )  # fmt: skip
    bolt.ok("pull", "--insecure", ref)
    assert bolt.store.descriptor(ref)["mediaType"] == DOCKER_MANIFEST
    assert bolt.ok("run", "--rm", ref) == "docker v2s2\n"
    bolt.ok("image", "export", ref, str(tmp_path / "exported"))
    bundle = tmp_path / "bundle"
    run_tool("umoci", "unpack", "--image", f"{tmp_path / 'exported'}:1", bundle)
    assert (bundle / "rootfs/etc/marker").read_text() == "docker v2s2\n"


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_index_or_manifest_list_yields_this_machines_image(
    bolt: Bolt, registry: Registry, tmp_path: Path, fmt: str
) -> None:
    layout = tmp_path / "multi"
    other = "s390x" if host_arch() != "s390x" else "arm64"
    for arch in (other, host_arch()):
        tree = busybox_tree(tmp_path / f"tree-{arch}", f"built for {arch}")
        bolt.store.import_path(tree, f"plat:{arch}")
        bolt.ok("image", "export", f"plat:{arch}", f"{layout}:{arch}")
    add_index(layout, "multi", [(other, other), (host_arch(), host_arch())])
    ref = f"{registry.host}/multi/busybox:{fmt}"
    extra = ["--format", "v2s2"] if fmt == "v2s2" else []
    run_tool(
        "skopeo", "copy", "--all", *extra, "--dest-tls-verify=false",
        f"oci:{layout}:multi", f"docker://{ref}",
    )  # fmt: skip
    served = skopeo_inspect(f"docker://{ref}", "--raw")
    assert len(served["manifests"]) == 2
    assert served["mediaType"] == (DOCKER_LIST if fmt == "v2s2" else INDEX_MEDIA_TYPE)
    fresh = make_bolt(tmp_path / "fresh")
    fresh.ok("pull", "--insecure", ref)
    (layer,) = fresh.store.layer_dirs(fresh.store.resolve(ref))
    assert (layer / "etc/marker").read_text() == f"built for {host_arch()}\n"


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_damaged_blob_in_registry_is_rejected_and_nothing_stored(
    bolt: Bolt, registry: Registry, tmp_path: Path, damage: str
) -> None:
    ref = f"{registry.host}/damaged/busybox:1"
    bolt.ok("push", "--insecure", "busybox", ref)
    blob = registry.blob_file(bolt.store.resolve("busybox").layers[0])
    data = bytearray(blob.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    blob.write_bytes(bytes(data))
    fresh = make_bolt(tmp_path / "fresh")
    proc = fresh("pull", "--insecure", ref)
    assert proc.returncode == 2, proc.stderr
    expected = "does not match its digest" if damage == "flipped" else "is truncated"
    assert expected in proc.stderr and "nothing was stored" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fresh.ok("images", "-q") == ""
    assert stored_blobs(fresh) == []


def test_pull_by_digest_verifies_and_names_by_digest(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    bolt.ok("push", "--insecure", "busybox", f"{registry.host}/bydigest/bb:1")
    digest = bolt.store.resolve("busybox").manifest_digest
    fresh = make_bolt(tmp_path / "fresh")
    out = fresh.ok("pull", "--insecure", f"{registry.host}/bydigest/bb@{digest}")
    assert out.split() == [f"{registry.host}/bydigest/bb:sha256-{digest[7:19]}", digest]


def test_tag_then_push_under_the_new_name(bolt: Bolt, registry: Registry) -> None:
    target = f"{registry.host}/tagged/bb:2"
    bolt.ok("tag", "busybox", target)
    images = json.loads(bolt.ok("images", "--json"))
    assert {i["ref"] for i in images} == {"busybox:latest", target}
    assert len({i["id"] for i in images}) == 1
    bolt.ok("push", "--insecure", target)
    assert skopeo_inspect(f"docker://{target}")["Digest"] == images[0]["manifest_digest"]


def test_push_to_another_repository_mounts_the_blobs(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    bolt.ok("push", "--insecure", "busybox", f"{registry.host}/first/bb:1")
    fresh = make_bolt(tmp_path / "fresh")
    fresh.ok("pull", "--insecure", f"{registry.host}/first/bb:1")
    proc = fresh(
        "push", "--insecure", f"{registry.host}/first/bb:1", f"{registry.host}/second/bb:1"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("mounted from first/bb") == 2  # config and layer
    assert skopeo_inspect(f"docker://{registry.host}/second/bb:1")["Layers"] == list(
        bolt.store.resolve("busybox").layers
    )


def test_configured_insecure_registry_and_default_registry(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    bolt.ok("push", "--insecure", "busybox", f"{registry.host}/library2/bb:1")
    fresh = make_bolt(tmp_path / "fresh")
    refused = fresh("pull", f"{registry.host}/library2/bb:1")
    assert refused.returncode == 1
    assert "--insecure" in refused.stderr and "Traceback" not in refused.stderr
    fresh.root.mkdir(parents=True, exist_ok=True)
    (fresh.root / "registries.toml").write_text(
        f'default_registry = "{registry.host}"\ninsecure = ["{registry.host}"]\n'
    )
    out = fresh.ok("pull", "bolt://library2/bb:1")
    assert out.split()[0] == "library2/bb:1"


def test_missing_image_is_reported_as_not_found(bolt: Bolt, registry: Registry) -> None:
    proc = bolt("pull", "--insecure", f"{registry.host}/nothing/here:1")
    assert proc.returncode == 2
    assert "does not exist in the registry" in proc.stderr


def test_unreachable_registry_is_a_clear_failure(bolt: Bolt) -> None:
    proc = bolt("pull", "--insecure", "127.0.0.1:9/none/x:1")
    assert proc.returncode == 1
    assert "cannot reach registry 127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_https_registry_is_trusted_through_the_system_ca_store(bolt: Bolt, tmp_path: Path) -> None:
    registry = start_registry(tmp_path / "tls", tls=True)
    try:
        ref = f"{registry.host}/tls/bb:1"
        untrusted = bolt("push", "busybox", ref)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert "trust store" in untrusted.stderr
        unverified = make_bolt(tmp_path / "unverified")
        unverified.store.import_path(busybox_tree(tmp_path / "tree"), "other:1")
        unverified.ok("push", "--insecure", "other:1", ref)  # HTTPS, certificate unchecked
        bolt.env["SSL_CERT_FILE"] = str(tmp_path / "tls/cert.pem")  # OpenSSL's CA file
        bolt.ok("push", "busybox", ref)
        fresh = make_bolt(tmp_path / "fresh")
        fresh.env["SSL_CERT_FILE"] = bolt.env["SSL_CERT_FILE"]
        assert fresh.ok("pull", ref).split()[0] == ref
    finally:
        registry.stop()


@pytest.mark.parametrize("breaks", [2, 3])
def test_broken_off_download_is_fetched_again_up_to_three_times(
    bolt: Bolt, registry: Registry, tmp_path: Path, breaks: int
) -> None:
    bolt.ok("push", "--insecure", "busybox", f"{registry.host}/flaky/bb:1")
    front = TokenFront(registry.host, open_access=True, break_blobs=breaks).start()
    try:
        fresh = make_bolt(tmp_path / "fresh")
        proc = fresh("pull", "--insecure", f"{front.host}/flaky/bb:1")
    finally:
        front.stop()
    if breaks == 3:
        assert proc.returncode == 1
        assert "broke off after" in proc.stderr and "3 times" in proc.stderr
        assert fresh.ok("images", "-q") == "" and stored_blobs(fresh) == []
        return
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("broke off after") == 2
    assert fresh.store.resolve(f"{front.host}/flaky/bb:1").id == bolt.store.resolve("busybox").id


def test_pull_refuses_a_layer_with_a_hardlink_out_of_it_and_stores_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    import gzip

    from tests.bolt_images.image_helpers import Entry, tar_bytes, write_oci_layout

    layer = gzip.compress(
        tar_bytes([Entry("etc", "dir"), Entry("etc/shadow-copy", "hardlink", target="etc/shadow")])
    )
    layout = write_oci_layout(tmp_path / "hostile", [layer])
    ref = f"{registry.host}/hostile/links:1"
    run_tool("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}")
    fresh = make_bolt(tmp_path / "fresh")
    proc = fresh("pull", "--insecure", ref)
    assert proc.returncode == 2, proc.stderr
    assert "hardlink 'etc/shadow-copy' points at 'etc/shadow'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fresh.ok("images", "-q") == "" and stored_blobs(fresh) == []


def test_pulled_index_is_kept_and_another_platform_is_pulled_from_it(
    bolt: Bolt, registry: Registry, tmp_path: Path
) -> None:
    layout = tmp_path / "multi"
    other = "s390x" if host_arch() != "s390x" else "arm64"
    for arch in (other, host_arch()):
        tree = busybox_tree(tmp_path / f"tree-{arch}", f"built for {arch}")
        bolt.store.import_path(tree, f"plat:{arch}")
        bolt.ok("image", "export", f"plat:{arch}", f"{layout}:{arch}")
    add_index(layout, "multi", [(other, other), (host_arch(), host_arch())])
    ref = f"{registry.host}/multi/kept:1"
    run_tool(
        "skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi",
        f"docker://{ref}",
    )  # fmt: skip
    index_digest = skopeo_inspect(f"docker://{ref}")["Digest"]
    fresh = make_bolt(tmp_path / "fresh")
    fresh.ok("pull", "--insecure", ref)
    inspected = json.loads(fresh.ok("image", "inspect", ref))
    assert inspected["index_digest"] == index_digest
    assert inspected["platform"] == f"linux/{host_arch()}"
    assert inspected["index_platforms"] == [f"linux/{other}", f"linux/{host_arch()}"]
    fresh.ok("image", "prune")  # the index is kept while the image is
    assert index_digest.removeprefix("sha256:") in stored_blobs(fresh)
    assert fresh.store.resolve(index_digest[7:19]).ref == ref  # found by the index digest

    # later: the other platform of the same release, through the kept index
    front = TokenFront(registry.host, open_access=True).start()
    try:
        by_digest = f"{front.host}/multi/kept@{index_digest}"
        out = fresh.ok("pull", "--insecure", "--platform", f"linux/{other}", by_digest)
    finally:
        front.stop()
    assert f"GET /v2/multi/kept/manifests/{index_digest}" not in front.requests
    pulled = fresh.store.resolve(out.split()[0])
    assert pulled.platform == f"linux/{other}" and pulled.index_digest == index_digest
    (layer,) = fresh.store.layer_dirs(pulled)
    assert (layer / "etc/marker").read_text() == f"built for {other}\n"

    bad = fresh("pull", "--insecure", "--platform", "linux", ref)
    assert bad.returncode == 2 and "--platform 'linux' is not OS/ARCH[/VARIANT]" in bad.stderr
    missing = fresh("pull", "--insecure", "--platform", "linux/mips64le", ref)
    assert missing.returncode == 3
    assert "no image for linux/mips64le" in missing.stderr
    assert f"linux/{other}, linux/{host_arch()}" in missing.stderr
