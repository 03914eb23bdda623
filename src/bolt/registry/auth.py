"""Credentials and authentication challenges.

``bolt login`` stores credentials in ``$BOLT_ROOT/auth.json`` (mode 0600) in the format
docker and podman use: ``{"auths": {"HOST": {"auth": base64("user:password")}}}``.

A registry that wants credentials answers 401 with ``WWW-Authenticate``: ``Basic realm=…``
(send the credentials with every request) or ``Bearer realm=…,service=…,scope=…`` (ask the
realm for a token, with the credentials if there are any, and send the token).  Parsing the
challenge is pure; fetching the token is :mod:`bolt.registry.client`'s.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bolt.errors import InvalidInput
from bolt.registry.reference import DOCKER_HUB

FILE_NAME = "auth.json"
# docker's historical key for Docker Hub
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")
_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """The first challenge of a ``WWW-Authenticate`` header value."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        pos = match.end()
    return Challenge(scheme.lower(), params)


class AuthFile:
    """``auth.json``: read on demand, written whole (0600, atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def under(cls, root: Path) -> AuthFile:
        return cls(root / FILE_NAME)

    def _read(self) -> dict[str, object]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"auths": {}}
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InvalidInput(
                f"{self.path} is not valid JSON: {err}",
                hint="fix it, or remove it and run `bolt login` again",
            ) from err
        if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
            raise InvalidInput(f"{self.path}: 'auths' must be an object")
        doc.setdefault("auths", {})
        return doc

    def get(self, registry: str) -> Credentials | None:
        auths = self._read()["auths"]
        assert isinstance(auths, dict)
        keys = (registry, *_HUB_KEYS) if registry == DOCKER_HUB else (registry,)
        for key in keys:
            entry = auths.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
                return _decode(entry["auth"], self.path, key)
        return None

    def set(self, registry: str, credentials: Credentials) -> None:
        doc = self._read()
        auths = doc["auths"]
        assert isinstance(auths, dict)
        raw = f"{credentials.username}:{credentials.password}".encode()
        auths[registry] = {"auth": base64.b64encode(raw).decode()}
        self._write(doc)

    def remove(self, registry: str) -> bool:
        doc = self._read()
        auths = doc["auths"]
        assert isinstance(auths, dict)
        keys = (registry, *_HUB_KEYS) if registry == DOCKER_HUB else (registry,)
        found = [k for k in keys if k in auths]
        for key in found:
            del auths[key]
        if found:
            self._write(doc)
        return bool(found)

    def _write(self, doc: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(doc, indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def _decode(value: str, path: Path, key: str) -> Credentials:
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise InvalidInput(
            f"{path}: the credentials for {key} are not base64 of USER:PASSWORD",
            hint=f"run `bolt login {key}` again",
        )
    return Credentials(user, password)
