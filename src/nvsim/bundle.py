"""Driver bundles: the packages nvsim's virtual driver installs from.

A bundle is a gzip'd tar holding

* ``manifest.json``: ``{"format", "version", "branch", "architectures", "fault"}``;
* ``lib/libnvidia-ml.so.1`` (the library variant of the branch) and ``bin/nvidia-smi``;
* ``SHA256SUMS``: the digest of every other member, as ``sha256sum`` writes it;

and beside it ``FILE.sha256``, the digest of the bundle file itself (what a vendor
publishes next to a download).  ``fault`` makes a deliberately broken driver, one whose
post-install health check fails (:data:`FAULTS`).

This module packs and reads bundles; it never extracts to disk: members are read into
memory and only the known names are accepted, so a crafted tar cannot write anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from basis.errors import InvalidInput, NotFound, UserError
from nvsim import build, instance, models

FORMAT = "nvsim-driver-bundle/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
LIBRARY = f"lib/{build.LIB_NAME}"
SMI = f"bin/{build.SMI_NAME}"
PAYLOAD = (LIBRARY, SMI)
MAX_MEMBER_BYTES = 64 << 20

ARCH_NAMES = {
    models.ARCH_AMPERE: "ampere",
    models.ARCH_ADA: "ada",
    models.ARCH_HOPPER: "hopper",
    models.ARCH_BLACKWELL: "blackwell",
}
# The first driver branch that supports each architecture nvsim models.
ARCH_SINCE = {"ampere": 450, "ada": 520, "hopper": 520, "blackwell": 570}

# gpu-missing: the last GPU does not come up (NVML answers GPU_IS_LOST for it);
# nvml: nvmlInit answers DRIVER_NOT_LOADED; xid: Xid 119 on GPU 0 every second.
FAULTS = ("gpu-missing", "nvml", "xid")


class BundleError(InvalidInput):
    """The file is not a valid, intact driver bundle (exit 2: nothing was changed)."""


@dataclass(frozen=True)
class Manifest:
    version: str
    branch: int
    architectures: tuple[str, ...]
    fault: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "version": self.version,
            "branch": self.branch,
            "architectures": list(self.architectures),
            "fault": self.fault,
        }

    @classmethod
    def from_json(cls, doc: object, where: str = MANIFEST) -> Manifest:
        if not isinstance(doc, dict):
            raise BundleError(f"{where}: must be a JSON object")
        unknown = set(doc) - {"format", "version", "branch", "architectures", "fault"}
        if unknown:
            raise BundleError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        if doc.get("format") != FORMAT:
            raise BundleError(f"{where}: format must be {FORMAT!r}, not {doc.get('format')!r:.40}")
        version = doc.get("version")
        if not isinstance(version, str):
            raise BundleError(f"{where}: version must be a string")
        driver = instance.parse_driver(version)
        if doc.get("branch") != driver.major:
            raise BundleError(f"{where}: branch must be {driver.major} for driver {version}")
        return cls(
            driver.version, driver.major, check_architectures(doc.get("architectures"), driver.major),
            check_fault(doc.get("fault")),
        )  # fmt: skip


def check_architectures(value: object, branch: int) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise BundleError("architectures must be a non-empty list of names")
    for arch in value:
        since = ARCH_SINCE.get(arch)
        if since is None:
            raise BundleError(f"unknown architecture {arch!r} (known: {', '.join(ARCH_SINCE)})")
        if branch < since:
            raise BundleError(
                f"architecture {arch} needs driver branch {since} or newer, not {branch}"
            )
    return tuple(dict.fromkeys(value))


def check_fault(value: object) -> str | None:
    if value is not None and value not in FAULTS:
        raise BundleError(f"fault must be one of {', '.join(FAULTS)} or null, not {value!r:.40}")
    return value  # type: ignore[return-value]


def supported_by(branch: int) -> tuple[str, ...]:
    return tuple(a for a, since in ARCH_SINCE.items() if branch >= since)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sums_text(members: dict[str, bytes]) -> str:
    return "".join(f"{sha256(members[n])}  {n}\n" for n in sorted(members))


def default_name(version: str) -> str:
    return f"nvsim-driver-{version}.tar.gz"


def pack(
    version: str,
    out: Path,
    *,
    architectures: tuple[str, ...] = (),
    fault: str | None = None,
) -> tuple[Path, Manifest]:
    """Write the bundle of driver ``version`` to ``out`` (and ``out.sha256``)."""
    driver = instance.parse_driver(version)
    archs = check_architectures(list(architectures or supported_by(driver.major)), driver.major)
    manifest = Manifest(driver.version, driver.major, archs, check_fault(fault))
    try:
        build.build()
    except build.BuildError as err:
        raise UserError(f"cannot build the driver library: {err}") from None
    members = {
        MANIFEST: (json.dumps(manifest.to_json(), indent=2) + "\n").encode(),
        LIBRARY: build.library_path(driver.major).read_bytes(),
        SMI: build.smi_path().read_bytes(),
    }
    members[SUMS] = sums_text(members).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in (MANIFEST, SUMS, *PAYLOAD):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(members[name]), 0o755 if name in PAYLOAD else 0o644
            tar.addfile(info, io.BytesIO(members[name]))
    data = buf.getvalue()
    _write_atomic(out, data)
    _write_atomic(sidecar(out), f"{sha256(data)}  {out.name}\n".encode())
    return out, manifest


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {err.strerror}") from None


def read(path: Path) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and members of the bundle at ``path``, every member checked against
    ``SHA256SUMS``; :class:`BundleError` names what is wrong."""
    try:
        tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise NotFound(f"no driver bundle at {path}") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise BundleError(f"{path} is not a driver bundle: {err}") from None
    members: dict[str, bytes] = {}
    with tar:
        try:
            for info in tar:
                if info.name not in (MANIFEST, SUMS, *PAYLOAD) or not info.isfile():
                    raise BundleError(f"{path}: unexpected member {info.name!r:.80}")
                if info.size > MAX_MEMBER_BYTES or info.name in members:
                    raise BundleError(f"{path}: member {info.name} is too big or repeated")
                f = tar.extractfile(info)
                members[info.name] = f.read() if f is not None else b""
        except (tarfile.TarError, OSError, EOFError) as err:
            raise BundleError(f"{path} is damaged: {err}") from None
    missing = [n for n in (MANIFEST, SUMS, *PAYLOAD) if n not in members]
    if missing:
        raise BundleError(f"{path}: missing {missing[0]}")
    content = {n: b for n, b in members.items() if n != SUMS}
    if members[SUMS].decode(errors="replace") != sums_text(content):
        raise BundleError(f"{path}: a member does not match {SUMS} (the bundle was altered)")
    try:
        doc = json.loads(members[MANIFEST])
    except ValueError as err:
        raise BundleError(f"{path}: {MANIFEST} is not JSON: {err}") from None
    return Manifest.from_json(doc), members


def check_sidecar(path: Path) -> str:
    """Compare the bundle with ``FILE.sha256``; returns the digest, raises BundleError."""
    try:
        expected = sidecar(path).read_text().split()
    except FileNotFoundError:
        raise BundleError(f"no checksum file {sidecar(path)} beside the bundle") from None
    actual = sha256(path.read_bytes())
    if not expected or expected[0].lower() != actual:
        raise BundleError(f"{path}: checksum mismatch (the file is {actual[:16]}…, "
                          f"{sidecar(path).name} says {(expected or ['nothing'])[0][:16]}…)")  # fmt: skip
    return actual
