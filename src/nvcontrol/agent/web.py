"""The agent's HTTPS side (aiohttp): the dashboard, its JSON API, and ``/metrics``.

* ``/metrics`` — Prometheus text, no login (like dcgm-exporter).
* ``/api/login`` — a token (``nvctl agent token create``) becomes a session cookie
  (HttpOnly, Secure, SameSite=Strict) and a CSRF token bound to the session.
* ``/api/call/METHOD`` — the same calls as the QUIC API, through the same
  :class:`~nvcontrol.agent.service.Service` (roles, audit, transactions).  A browser
  session must send its CSRF token in ``X-CSRF-Token`` and, if it sends an ``Origin``,
  the agent's own; an API client may send ``Authorization: Bearer TOKEN`` instead.
* ``/`` and ``/static/`` — the dashboard, every asset served from the package.
"""

from __future__ import annotations

import hmac
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from basis.errors import ExitCode, InvalidInput, PermissionDenied, UserError
from nvcontrol.agent import metrics, tokens
from nvcontrol.agent.sampler import Sampler
from nvcontrol.agent.service import Caller, Service
from nvcontrol.agent.stream import SampleStream, history_count
from nvcontrol.remote import api

COOKIE = "nvctl_session"
SESSION_S = 12 * 3600
MAX_BODY = 64 * 1024
_STATUS: dict[int, int] = {
    ExitCode.INVALID_INPUT: 400,
    ExitCode.UNSUPPORTED: 501,
    ExitCode.PERMISSION: 403,
    ExitCode.ROLLED_BACK: 409,
}


@dataclass
class Session:
    name: str
    role: str
    csrf: str
    expires: float


class WebApp:
    def __init__(
        self,
        service: Service,
        cert_path: str,
        key_path: str,
        sample_interval_s: float,
        connections: Any = lambda: 0,
    ) -> None:
        self.service = service
        self.sessions: dict[str, Session] = {}
        self.sampler = Sampler(service, sample_interval_s, connections)
        self.registry = metrics.registry(self.sampler)
        self.stream = SampleStream()
        self.sampler.on_sample.append(self.stream.publish)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(cert_path, key_path)
        self.app = web.Application(client_max_size=MAX_BODY)
        r = self.app.router
        r.add_get("/", self.index)
        r.add_get("/static/{name}", self.static)
        r.add_get("/metrics", self.metrics)
        r.add_post("/api/login", self.login)
        r.add_post("/api/logout", self.logout)
        r.add_get("/api/session", self.session_info)
        r.add_get("/api/samples", self.samples)
        r.add_get("/api/live", self.live)
        r.add_get("/api/stream", self.live_samples)
        r.add_post("/api/call/{method}", self.call)
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def start(self, host: str, port: int) -> tuple[str, int]:
        await self.sampler.start()
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=self.ssl)
        await site.start()
        server = site._server
        assert server is not None
        sock = server.sockets[0].getsockname()  # type: ignore[attr-defined]
        self.origin = f"https://{sock[0]}:{sock[1]}"
        return sock[0], sock[1]

    async def stop(self) -> None:
        self.stream.close()
        await self.sampler.stop()
        if self.runner is not None:
            await self.runner.cleanup()

    # ------------------------------------------------------------------ pages

    async def index(self, _req: web.Request) -> web.Response:
        return _asset("index.html")

    async def static(self, req: web.Request) -> web.Response:
        name = req.match_info["name"]
        if name not in ("app.js", "style.css", "charts.js"):
            raise web.HTTPNotFound()
        return _asset(name)

    async def metrics(self, _req: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ------------------------------------------------------------------ sessions

    async def login(self, req: web.Request) -> web.Response:
        self._same_origin(req)
        body = await _json(req)
        token = body.get("token")
        found = tokens.lookup(self.service.db, token) if isinstance(token, str) else None
        if found is None:
            return _error(401, "unknown or revoked token")
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._expire()
        self.sessions[sid] = Session(found[0], found[1], csrf, time.time() + SESSION_S)
        resp = web.json_response({"name": found[0], "role": found[1], "csrf": csrf})
        resp.set_cookie(COOKIE, sid, httponly=True, secure=True, samesite="Strict",
                        max_age=SESSION_S, path="/")  # fmt: skip
        return resp

    async def logout(self, req: web.Request) -> web.Response:
        s = self._session(req, csrf=True)
        self.sessions = {k: v for k, v in self.sessions.items() if v is not s}
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def session_info(self, req: web.Request) -> web.Response:
        s = self._session(req, csrf=False)
        return web.json_response({"name": s.name, "role": s.role, "csrf": s.csrf})

    def _expire(self) -> None:
        now = time.time()
        self.sessions = {k: v for k, v in self.sessions.items() if v.expires > now}

    def _session(self, req: web.Request, *, csrf: bool) -> Session:
        """The caller's session; for state-changing requests, its CSRF token too."""
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            found = tokens.lookup(self.service.db, auth[7:].strip())
            if found is None:
                raise _http(401, "unknown or revoked token")
            return Session(found[0], found[1], "", time.time() + 60)
        s = self.sessions.get(req.cookies.get(COOKIE, ""))
        if s is None or s.expires < time.time():
            raise _http(401, "log in first")
        if csrf:
            self._same_origin(req)
            sent = req.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent, s.csrf):
                raise _http(403, "missing or wrong CSRF token")
        return s

    def _same_origin(self, req: web.Request) -> None:
        origin = req.headers.get("Origin")
        if origin is not None and origin != self.origin:
            raise _http(403, f"cross-origin request from {origin} refused")

    # ------------------------------------------------------------------ data

    async def samples(self, req: web.Request) -> web.Response:
        self._session(req, csrf=False)
        names = {u: n for u, (n, _bus) in self.sampler.names.items()}
        return web.json_response({"names": names, "samples": list(self.sampler.history)[-120:]})

    async def live_samples(self, req: web.Request) -> web.StreamResponse:
        """The readings as they are taken (see :mod:`nvcontrol.agent.stream`)."""
        s = self._session(req, csrf=False)
        count = history_count(req.query.get("history"))
        history = list(self.sampler.history)[-count:] if count else []
        names = {u: {"model": n, "pci_bus_id": b} for u, (n, b) in self.sampler.names.items()}
        hello = {"name": s.name, "role": s.role, "names": names, "history": history}
        sid = req.cookies.get(COOKIE, "")
        auth = req.headers.get("Authorization", "")

        def still_allowed() -> bool:
            if auth.startswith("Bearer "):
                return tokens.lookup(self.service.db, auth[7:].strip()) is not None
            live = self.sessions.get(sid)
            return live is not None and live.expires > time.time()

        return await self.stream.serve(req, hello, still_allowed)

    async def live(self, req: web.Request) -> web.Response:
        self._session(req, csrf=False)
        return web.json_response({"transactions": self.service.live_transactions()})

    async def call(self, req: web.Request) -> web.Response:
        s = self._session(req, csrf=True)
        method = req.match_info["method"]
        params = await _json(req)
        caller = Caller(f"token:{s.name}", s.role, "https")
        try:
            value = await self.service.call(caller, method, params)
        except UserError as exc:
            status = _STATUS.get(int(exc.exit_code), 500)
            return web.json_response({"error": api.encode_error(exc)}, status=status)
        return web.json_response({"result": value}, dumps=_dumps)


def _dumps(v: Any) -> str:
    return json.dumps(v, default=str)


async def _json(req: web.Request) -> dict[str, Any]:
    try:
        body = await req.json() if req.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _http(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _http(400, "the body must be a JSON object")
    return body


def _asset(name: str) -> web.Response:
    data = resources.files("nvcontrol.agent").joinpath("static", name).read_bytes()
    kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
    return web.Response(
        body=data,
        content_type=kind,
        charset="utf-8",
        headers={
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


def _http(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden}[status]
    return cls(text=json.dumps({"error": {"message": message}}), content_type="application/json")


__all__ = ["InvalidInput", "PermissionDenied", "WebApp"]
