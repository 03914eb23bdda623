"""Where ``nvctl ct monitor`` reads from: gpu-monitor's live stream, kept connected.

:func:`events` turns ``GET /api/stream`` into stream events and adds its own ``"t":
"down"`` event (with a message) whenever gpu-monitor cannot be reached or the stream
breaks, then reconnects after ``retry_s``.  A refused login is final (``"fatal": True``).

:func:`stack_source` finds the stack's gpu-monitor: its address on the project network
(``bolt://gpu-monitor:9400``) and a viewer login token.  The stream is a viewer-level
read, so the monitor logs in: the token is created inside the gpu-monitor container
(``nvctl agent token create``, the agent's own admin path) and kept, readable by its owner
only, in nvcontrol's state dir for that container; a refused token is replaced once.  The
agent's certificate is its own self-signed one and is not verified on this hop inside the
host (as for the web-interface; see docs/ct.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from basis.errors import UserError
from nvcontrol.ct.monitor import MONITOR_PORT, StreamError, decode

if TYPE_CHECKING:
    from bolt.surge.orchestrator import Orchestrator

SERVICE = "gpu-monitor"
READ_TIMEOUT_S = 30.0  # the agent pings every 10 s when it has nothing to send


@dataclass
class Source:
    url: str  # https://HOST:PORT of an agent's HTTPS listener
    token: str | None = None
    verify: ssl.SSLContext | bool = False
    renew: Callable[[], Awaitable[str]] | None = None  # a fresh token after a refusal
    # finds the service again after a lost connection (a recreated container moves)
    relocate: Callable[[Source], Awaitable[None]] | None = None


def pinned(cert_path: str) -> ssl.SSLContext:
    """A TLS context that trusts exactly the agent certificate in ``cert_path``."""
    ctx = ssl.create_default_context(cafile=cert_path)
    ctx.check_hostname = False  # the pin is the certificate itself, not a name in it
    return ctx


async def events(
    source: Source, *, history: int = 120, retry_s: float = 2.0
) -> AsyncIterator[dict[str, Any]]:
    """Stream events, forever (the caller stops iterating); see the module docstring."""
    renewed, lost = False, False
    while True:
        if lost and source.relocate is not None:
            try:  # never retry an old address: another container may hold it now
                await source.relocate(source)
            except (UserError, OSError) as exc:
                yield {
                    "t": "down",
                    "message": f"{SERVICE} is not reachable: {exc}",
                    "retry_s": retry_s,
                }
                await asyncio.sleep(retry_s)
                continue
        lost = True
        headers = {"Accept": "application/x-ndjson"}
        if source.token:
            headers["Authorization"] = f"Bearer {source.token}"
        fatal = False
        try:
            async with (
                httpx.AsyncClient(
                    verify=source.verify, timeout=httpx.Timeout(5.0, read=READ_TIMEOUT_S)
                ) as client,
                client.stream(
                    "GET", f"{source.url}/api/stream?history={history}", headers=headers
                ) as resp,
            ):
                if resp.status_code in (401, 403):
                    if resp.status_code == 401 and source.renew is not None and not renewed:
                        renewed = True
                        source.token = await source.renew()
                        continue
                    fatal = True
                    raise _Refused(f"{resp.status_code} {await _message(resp)}")
                if resp.status_code != 200:
                    raise _Refused(f"HTTP {resp.status_code}: {await _message(resp)}")
                renewed = False
                async for text in resp.aiter_lines():
                    if text.strip():
                        event = decode(text)
                        if event["t"] == "hello":
                            event["url"] = source.url  # where this connection went
                        yield event
                raise _Refused("the stream ended")
        except (httpx.HTTPError, OSError, StreamError, _Refused) as exc:
            message = f"gpu-monitor at {source.url} is unreachable: {_describe(exc)}"
            if fatal:
                yield {"t": "down", "message": f"gpu-monitor refused the login: {exc}",
                       "fatal": True}  # fmt: skip
                return
            yield {"t": "down", "message": message, "retry_s": retry_s}
        await asyncio.sleep(retry_s)


class _Refused(Exception):
    pass


async def _message(resp: httpx.Response) -> str:
    body = (await resp.aread())[:2000]
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or resp.reason_phrase


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer (timed out)"
    return str(exc) or exc.__class__.__name__


# ---------------------------------------------------------------------------- the stack


def _container(orch: Orchestrator) -> str:
    from bolt.surge import intents

    labels = {intents.PROJECT: orch.project, intents.SERVICE: SERVICE, intents.ONEOFF: "false"}
    for info in orch.engine.list(all=False, labels=labels):
        return str(info.id)
    from basis.errors import NotFound

    raise NotFound(f"{SERVICE} is not running", hint="start the stack with `nvctl ct start`")


def _token_file(project: str) -> Path:
    from nvcontrol.control.paths import state_dir

    return state_dir() / "ct-monitor" / f"{project}.json"


async def _create_token(orch: Orchestrator, container: str, path: Path) -> str:
    old = _cached(path, container, any_container=True)
    name = f"ct-monitor-{secrets.token_hex(4)}"
    revoke = f"nvctl agent token revoke {old[1]} >/dev/null 2>&1; " if old else ""
    script = f"{revoke}nvctl agent token create {name} --role viewer"
    result = await orch.exec_in_service(SERVICE, ["sh", "-c", script])
    token = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.exit_code != 0 or not token.startswith("nvt_"):
        raise UserError(f"could not create a viewer token in {SERVICE}: {result.output.strip()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"container": container, "name": name, "token": token}, f)
    os.replace(path.with_suffix(".tmp"), path)
    return token


def _cached(path: Path, container: str, any_container: bool = False) -> tuple[str, str] | None:
    """(token, name) kept for ``container``, if any."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not (any_container or doc.get("container") == container):
        return None
    token, name = doc.get("token"), doc.get("name")
    return (token, name) if isinstance(token, str) and isinstance(name, str) else None


async def stack_source(orch: Orchestrator) -> Source:
    """The stack's gpu-monitor, with a viewer token; after a lost connection it is looked
    up again, so a recreated container (new address, new agent state) is found."""
    path = _token_file(orch.project)
    found: dict[str, str] = {}

    async def locate(source: Source) -> None:
        from bolt.surge.tools import resolve_endpoint

        address, port = resolve_endpoint(orch, f"bolt://{SERVICE}:{MONITOR_PORT}")
        container = _container(orch)
        if container != found.get("container"):
            cached = _cached(path, container)
            source.token = cached[0] if cached else await _create_token(orch, container, path)
            found["container"] = container
        host = f"[{address}]" if ":" in address else address
        source.url = f"https://{host}:{port}"

    async def renew() -> str:
        return await _create_token(orch, found["container"], path)

    source = Source("", None, False, renew, locate)
    await locate(source)
    return source


async def services_by_gpu(orch: Orchestrator) -> dict[str, list[str]]:
    """GPU UUID -> the running services that use it (as ``nvctl ct status`` shows)."""
    from nvcontrol.ct.control import status

    try:
        doc = await status(orch)
    except UserError:
        return {}
    return {g["uuid"]: list(g["services"]) for g in doc.get("gpus", [])}
