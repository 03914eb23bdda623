"""Debian's ``docker-registry`` on 127.0.0.1 for the tests: plain, behind htpasswd basic
auth, or behind :class:`TokenFront`, a bearer-token service and registry front written
here (it issues tokens per scope and forwards authorised requests to a plain registry)."""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

USER, PASSWORD = "tester", "s3cret-pass"
_NO_VERIFY = ssl._create_unverified_context()  # only to see that the test registry is up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str
    storage: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def self_signed_cert(base: Path, name: str = "", client: bool = False) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, made with openssl; with
    ``client``, one that identifies a client instead (``NAME.cert`` and ``NAME.key``)."""
    if client:
        cert, key = base / f"{name}.cert", base / f"{name}.key"
        subject = ["-subj", "/CN=bolt-test-client"]
    else:
        cert, key = base / f"{name or 'cert'}.pem", base / f"{name or 'key'}.pem"
        subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), *subject],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def start_registry(
    base: Path, htpasswd: bool = False, tls: bool = False, client_certs: bool = False
) -> Registry:
    """``docker-registry serve`` on 127.0.0.1; with ``tls``, HTTPS under ``base/cert.pem``;
    with ``client_certs`` too, it also demands ``base/client.cert`` (and its key) of every
    client."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed (./project.sh setup installs it)")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(base / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd:
        import bcrypt

        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (base / "htpasswd").write_text(f"{USER}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "bolt-test", "path": str(base / "htpasswd")}}
    scheme = "http"
    probe = _NO_VERIFY
    if tls:
        cert, key = self_signed_cert(base)
        config["http"] = {
            "addr": f"127.0.0.1:{port}",
            "tls": {"certificate": str(cert), "key": str(key)},
        }
        scheme = "https"
        if client_certs:
            client_cert, client_key = self_signed_cert(base, "client", client=True)
            config["http"]["tls"]["clientcas"] = [str(client_cert)]  # type: ignore[index]
            probe = ssl._create_unverified_context()
            probe.load_cert_chain(str(client_cert), str(client_key))
    (base / "config.yml").write_text(json.dumps(config))  # YAML reads JSON
    log = base / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(base / "config.yml")], stdout=out, stderr=out
        )
    registry = Registry(f"127.0.0.1:{port}", base / "storage", proc, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {log.read_text()}")
        try:
            urllib.request.urlopen(f"{scheme}://{registry.host}/v2/", timeout=1, context=probe)
            return registry
        except urllib.error.HTTPError:
            return registry  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    registry.stop()
    pytest.fail(f"docker-registry did not start: {log.read_text()}")


@dataclass
class TokenFront:
    """A token service (``/token``) and a registry front on one port: requests need a
    bearer token whose scopes grant the repository action; anonymous callers get pull
    rights only, ``USER``/``PASSWORD`` also push.  With ``open_access`` every request is
    let through; ``break_blobs`` cuts that many blob downloads off half-way;
    ``stall_blobs`` sends half of that many blobs, then holds the connection open until
    :meth:`stop` (a download in progress, for as long as a test needs one)."""

    backend: str
    open_access: bool = False
    break_blobs: int = 0
    stall_blobs: int = 0
    host: str = ""
    tokens: dict[str, set[str]] = field(default_factory=dict)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "GET /v2/...", as forwarded
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TokenFront:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    front._issue(self)
                else:
                    front._forward(self)

        for method in ("HEAD", "POST", "PUT", "PATCH", "DELETE"):
            setattr(Handler, f"do_{method}", lambda self: front._forward(self))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _issue(self, req: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(req.path).query)
        self.token_requests.append(query)
        auth = req.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (name, password) != (USER, PASSWORD):
                _reply(req, 401, b'{"details":"bad credentials"}')
                return
            user = name
        granted: set[str] = set()
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            for action in actions.split(","):
                if action == "pull" or (action == "push" and user):
                    granted.add(f"{kind}:{repo}:{action}")
        token = secrets.token_hex(16)
        self.tokens[token] = granted
        _reply(req, 200, json.dumps({"token": token, "expires_in": 300}).encode())

    def _needed(self, method: str, path: str) -> list[str]:
        parts = urlsplit(path)
        if parts.path.rstrip("/") == "/v2":
            return []
        rest = parts.path.removeprefix("/v2/")
        for marker in ("/manifests/", "/blobs/", "/tags/"):
            if marker in rest:
                repo = rest.split(marker)[0]
                break
        else:
            return ["invalid"]
        needed = [f"repository:{repo}:{'pull' if method in ('GET', 'HEAD') else 'push'}"]
        source = parse_qs(parts.query).get("from")
        if source:
            needed.append(f"repository:{source[0]}:pull")
        return needed

    def _forward(self, req: BaseHTTPRequestHandler) -> None:
        self.requests.append(f"{req.command} {urlsplit(req.path).path}")
        needed = self._needed(req.command, req.path)
        auth = req.headers.get("Authorization", "")
        granted = self.tokens.get(auth.removeprefix("Bearer "), None) if auth else None
        body = _read_body(req)
        if not self.open_access and (granted is None or not set(needed) <= granted):
            scope = f',scope="{needed[0]}"' if needed else ""
            challenge = f'Bearer realm="http://{self.host}/token",service="bolt-front"{scope}'
            _reply(
                req,
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                {"WWW-Authenticate": challenge},
                head=req.command == "HEAD",
            )
            return
        conn = http.client.HTTPConnection(self.backend, timeout=60)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP}
        headers.pop("Authorization", None)
        headers["Content-Length"] = str(len(body))
        conn.request(req.command, req.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        extra = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
        if req.command == "HEAD":
            extra["Content-Length"] = resp.getheader("Content-Length") or "0"
        if req.command == "GET" and "/blobs/" in req.path and len(data) > 4096:
            with self._lock:
                cut = self.break_blobs > 0
                self.break_blobs -= cut
                stall = not cut and self.stall_blobs > 0
                self.stall_blobs -= stall
            if cut or stall:  # promise the whole blob, send half of it, hang up
                req.send_response(resp.status)
                req.send_header("Content-Length", str(len(data)))
                req.end_headers()
                req.wfile.write(data[: len(data) // 2])
                req.wfile.flush()
                if stall:
                    self._stopping.wait(120)
                req.close_connection = True
                conn.close()
                return
        _reply(req, resp.status, data, extra, head=req.command == "HEAD")
        conn.close()


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te"}


def _read_body(req: BaseHTTPRequestHandler) -> bytes:
    if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = b""
        while True:
            size = int(req.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                req.rfile.readline()
                return data
            data += req.rfile.read(size)
            req.rfile.readline()
    return req.rfile.read(int(req.headers.get("Content-Length") or 0))


def _reply(
    req: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    head: bool = False,
) -> None:
    req.send_response(status)
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    if head and "Content-Length" not in (headers or {}):
        req.send_header("Content-Length", "0")
    if not any(k.lower() == "content-type" for k in headers or {}):
        req.send_header("Content-Type", "application/json")
    if not head:
        req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if not head:
        req.wfile.write(body)
