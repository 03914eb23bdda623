"""Per-registry certificate directories (``certs.d/HOST:PORT/``, as docker and podman
read them): a private CA for one registry, a client certificate it demands, and refusals
of half-configured directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bolt_registry.conftest import Bolt, make_bolt
from tests.bolt_registry.registry_fixture import start_registry

pytestmark = [pytest.mark.registry]


def test_registry_ca_in_certs_d_is_trusted_for_that_registry_only(
    bolt: Bolt, tmp_path: Path
) -> None:
    registry = start_registry(tmp_path / "tls", tls=True)
    other = start_registry(tmp_path / "other-tls", tls=True)  # its own, different CA
    try:
        ref = f"{registry.host}/certs/bb:1"
        untrusted = bolt("push", "busybox", ref)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert f"certs.d/{registry.host}/ca.crt" in untrusted.stderr
        where = bolt.root / "certs.d" / registry.host
        where.mkdir(parents=True)
        shutil.copy(tmp_path / "tls/cert.pem", where / "ca.crt")
        bolt.ok("push", "busybox", ref)
        # the CA is for that registry alone: the other one is still not trusted
        elsewhere = bolt("push", "busybox", f"{other.host}/certs/bb:1")
        assert elsewhere.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in elsewhere.stderr
        fresh = make_bolt(tmp_path / "fresh")
        (fresh.root / "certs.d").mkdir(parents=True)
        shutil.copytree(where, fresh.root / "certs.d" / registry.host)
        assert fresh.ok("pull", ref).split()[0] == ref
    finally:
        registry.stop()
        other.stop()


def test_client_certificate_in_certs_d_is_presented(bolt: Bolt, tmp_path: Path) -> None:
    registry = start_registry(tmp_path / "mtls", tls=True, client_certs=True)
    try:
        ref = f"{registry.host}/mtls/bb:1"
        where = bolt.root / "certs.d" / registry.host
        where.mkdir(parents=True)
        shutil.copy(tmp_path / "mtls/cert.pem", where / "ca.crt")
        refused = bolt("push", "busybox", ref)  # no client certificate: the handshake fails
        assert refused.returncode == 1 and "cannot reach" in refused.stderr
        for name in ("client.cert", "client.key"):
            shutil.copy(tmp_path / "mtls" / name, where / name)
        bolt.ok("push", "busybox", ref)
    finally:
        registry.stop()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"ca.crt": "not a certificate\n"}, "ca.crt is not a PEM certificate"),
        ({"client.cert": "-"}, "client.cert has no client.key beside it"),
        ({"client.key": "-"}, "client.key has no client.cert beside it"),
    ],
)
def test_half_configured_certs_d_is_refused_naming_the_file(
    bolt: Bolt, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    where = bolt.root / "certs.d" / "127.0.0.1:9"
    where.mkdir(parents=True)
    for name, text in files.items():
        (where / name).write_text(text)
    proc = bolt("pull", "127.0.0.1:9/nothing/here:1")
    assert proc.returncode == 2
    assert message in proc.stderr and str(where) in proc.stderr
    assert "Traceback" not in proc.stderr
