"""The web-interface service: the dashboard on a plain-HTTP port, every request passed to
the gpu-manager agent named by ``API_ENDPOINT`` (``bolt://SERVICE:PORT``).

The agent serves the dashboard, its JSON API and ``/metrics`` over HTTPS; this service
forwards method, path, query, body and the headers that carry a login (cookie,
``Authorization``, ``X-CSRF-Token``) and returns the agent's answer unchanged, so roles,
CSRF and audit stay the agent's.  Inside the project network the agent is reached by its
service name, and its certificate is verified against the project's listener certificate
that Surge mounts into every service of a ``quic`` network (``$BOLT_QUIC_TRUST``; or
``$API_CERT``, a PEM file, elsewhere): a peer without the listener's key is refused with a
502 and nothing is forwarded to it.  Without either file the proxy does not start.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from urllib.parse import urlsplit

from aiohttp import ClientConnectorCertificateError, ClientSession, ClientTimeout, TCPConnector, web

from bolt.network.identity import PINNED_NAME

FORWARDED_REQUEST = ("Authorization", "Cookie", "X-CSRF-Token", "Content-Type", "Accept")
DROPPED_RESPONSE = {"content-length", "transfer-encoding", "connection", "content-encoding"}
MAX_BODY = 1 << 20


def upstream_url(endpoint: str) -> str:
    """``bolt://gpu-manager:3000`` -> ``https://gpu-manager:3000``; ValueError otherwise."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("bolt", "https") or not parts.hostname or parts.port is None:
        raise ValueError(f"API_ENDPOINT {endpoint!r} is not bolt://SERVICE:PORT")
    if parts.path not in ("", "/"):
        raise ValueError(f"API_ENDPOINT {endpoint!r} must not have a path")
    return f"https://{parts.hostname}:{parts.port}"


TRUST_ENVS = ("BOLT_QUIC_TRUST", "API_CERT")


def trust_anchor(environ: dict[str, str]) -> str:
    """The PEM of the agent's certificate, from the first of :data:`TRUST_ENVS` set;
    ValueError when there is none (the proxy will not forward to an unverified peer)."""
    for name in TRUST_ENVS:
        path = environ.get(name)
        if path:
            try:
                with open(path) as f:
                    pem = f.read()
            except OSError as err:
                raise ValueError(f"{name}={path}: {err.strerror}") from None
            if "BEGIN CERTIFICATE" not in pem:
                raise ValueError(f"{name}={path} is not a PEM certificate")
            return pem
    raise ValueError(
        "no certificate to verify gpu-manager with: Surge's quic network mounts it "
        "($BOLT_QUIC_TRUST); elsewhere set API_CERT to the agent's cert.pem"
    )


def make_app(upstream: str, agent_cert: str) -> web.Application:
    # The agent's certificate is the only trust anchor, and every agent certificate names
    # PINNED_NAME, so a pinned peer verifies whatever address reached it.
    context = ssl.create_default_context(cadata=agent_cert)
    app = web.Application(client_max_size=MAX_BODY)

    async def on_startup(app: web.Application) -> None:
        app["client"] = ClientSession(
            connector=TCPConnector(ssl=context), timeout=ClientTimeout(total=30)
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {h: request.headers[h] for h in FORWARDED_REQUEST if h in request.headers}
        body = await request.read()
        client: ClientSession = request.app["client"]
        try:
            async with client.request(
                request.method,
                upstream + request.rel_url.path_qs,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                server_hostname=PINNED_NAME,
            ) as resp:
                payload = await resp.read()
                out = web.Response(status=resp.status, body=payload)
                for key, value in resp.headers.items():
                    if key.lower() not in DROPPED_RESPONSE:
                        out.headers.add(key, value)
                return out
        except ClientConnectorCertificateError as err:
            return web.json_response(
                {"error": f"gpu-manager at {upstream} is not the project's agent (its "
                          f"certificate does not verify: {err.certificate_error}); nothing "
                          "was forwarded"},
                status=502,
            )  # fmt: skip
        except (TimeoutError, OSError) as err:
            return web.json_response(
                {"error": f"gpu-manager at {upstream} is unreachable: {err}"}, status=502
            )

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m nvcontrol.ct.webproxy")
    parser.add_argument("--listen", default="0.0.0.0:8080", metavar="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        upstream = upstream_url(os.environ.get("API_ENDPOINT", "bolt://gpu-manager:3000"))
        agent_cert = trust_anchor(dict(os.environ))
        port_number = int(port)
    except ValueError as err:
        print(f"web-interface: {err}", file=sys.stderr)
        return 2
    print(f"web-interface: http://{host}:{port_number} -> {upstream}", flush=True)
    web.run_app(make_app(upstream, agent_cert), host=host, port=port_number, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
