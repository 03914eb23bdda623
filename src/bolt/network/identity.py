"""Keys, certificates and fingerprints for authenticated QUIC (no I/O but file helpers).

* A *client key* is an Ed25519 key pair; its public half is written as one line,
  ``bolt-ed25519 <base64 of the 32 raw bytes> [comment]``, and named by its fingerprint
  ``SHA256:<base64 of sha256(raw)>`` (ssh's look).
* A *server identity* is an ECDSA P-256 key with a self-signed X.509 certificate; its
  fingerprint is the SHA-256 of the certificate's SubjectPublicKeyInfo, so a renewed
  certificate over the same key keeps its pin.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

PUBKEY_PREFIX = "bolt-ed25519"
# Every agent certificate names this DNS name, so a pinned certificate verifies whatever
# address the client used to reach it.
PINNED_NAME = "bolt-quic-agent"


class KeyError_(ValueError):
    """A key or public-key line cannot be read."""


def fingerprint(data: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


# --------------------------------------------------------------------------- client keys


def new_client_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_line(key: Ed25519PrivateKey, comment: str = "") -> str:
    line = f"{PUBKEY_PREFIX} {base64.b64encode(raw_public(key)).decode()}"
    return f"{line} {comment}".rstrip()


def parse_public_line(text: str) -> bytes:
    """The 32 raw bytes of a ``bolt-ed25519 BASE64 [comment]`` line."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != PUBKEY_PREFIX:
        raise KeyError_(f"not a public key line (expected '{PUBKEY_PREFIX} BASE64 [comment]')")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise KeyError_("the public key is not valid base64") from None
    if len(raw) != 32:
        raise KeyError_(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return raw


def save_private(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(path, pem)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_client_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        raise KeyError_(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path} is not an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify(raw_pub: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw_pub).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- server identity


def new_server_identity(
    common_name: str, names: list[str], days: int = 3650
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = [x509.DNSName(PINNED_NAME)]
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str | bytes) -> x509.Certificate:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise KeyError_("not a PEM certificate") from None


def cert_fingerprint(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return fingerprint(spki)


def save_server_identity(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, key_path: Path, cert_path: Path
) -> None:
    save_private(key, key_path)
    cert_path.write_text(cert_pem(cert))
