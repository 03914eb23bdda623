"""The OCI distribution API v2 over HTTP(S), with basic and bearer-token authentication.

One :class:`RegistryClient` talks to one registry for one command; it is safe to share
between the threads of a parallel transfer.  A 401 answer is met once: with basic auth the
request is repeated with the credentials; with a bearer challenge a token for the
request's scopes is fetched from the challenge's realm (with the credentials, if any) and
the request repeated with it.  Tokens are cached per scope set.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from bolt.errors import BoltError, NotFound, PermissionDenied
from bolt.registry.auth import Challenge, Credentials, parse_challenge
from bolt.registry.manifest import ACCEPT, MAX_MANIFEST, Fetched, check

Body = bytes | Callable[[], Iterable[bytes]] | None
TIMEOUT = httpx.Timeout(30.0, read=120.0)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class RegistryError(BoltError):
    """The registry answered with an error, or could not be reached."""


class RegistryClient:
    def __init__(
        self,
        registry: str,
        api_host: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        connections: int = 8,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.registry = registry
        self.insecure = insecure
        self.base = f"https://{api_host}"
        self.credentials = credentials
        # An insecure registry is tried with unverified HTTPS first, then plain HTTP (as
        # docker and podman do); the scheme that answers is kept for the command.
        self._fallback: str | None = f"http://{api_host}" if insecure else None
        self._http = httpx.Client(
            # the system's certificate authorities (httpx would use certifi's bundle), or
            # those and the registry's own from certs.d (``tls``)
            verify=False if insecure else (tls or ssl.create_default_context()),
            timeout=TIMEOUT,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests with authentication ---------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        content: Body = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request (``url`` absolute, or a path under the registry), authenticating
        when challenged.  With ``stream`` the body is left unread: close the response."""
        relative = "://" not in url
        full = self.base + url if relative else url
        attempt = 0
        while True:
            sent = dict(headers or {})
            auth = self._authorization(scopes)
            if auth:
                sent["Authorization"] = auth
            body = content() if callable(content) else content
            try:
                request = self._http.build_request(method, full, headers=sent, content=body)
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.RemoteProtocolError) as err:
                with self._lock:
                    if not relative:
                        raise self._unreachable(err) from err
                    if full.startswith(self.base):  # else another thread switched already
                        if self._fallback is None:
                            raise self._unreachable(err) from err
                        self.base, self._fallback = self._fallback, None  # not TLS: HTTP
                full = self.base + url
                continue
            except httpx.HTTPError as err:
                raise self._unreachable(err) from err
            if self._fallback is not None and full.startswith(self.base):
                self._fallback = None  # this scheme answers
            if response.status_code != 401 or attempt == 1:
                break
            attempt += 1
            response.read()
            response.close()
            self._on_challenge(response, scopes)
        if response.status_code in (401, 403):
            response.read()
            response.close()
            raise self._denied(response, method, full)
        return response

    def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                return self.credentials.basic_header() if self.credentials else None
            key = tuple(sorted(scopes))
            token = self._tokens.get(key)
        if token is None:
            with self._token_lock:  # parallel transfers share one token per scope set
                token = self._tokens.get(key) or self._fetch_token(challenge, key)
                self._tokens[key] = token
        return f"Bearer {token}"

    def _on_challenge(self, response: httpx.Response, scopes: tuple[str, ...]) -> None:
        header = response.headers.get("www-authenticate", "")
        challenge = parse_challenge(header)
        if challenge.scheme not in ("basic", "bearer"):
            raise PermissionDenied(
                f"registry {self.registry} asks for unsupported authentication {header!r}"
            )
        if challenge.scheme == "basic" and self.credentials is None:
            raise self._login_needed()
        # A bearer challenge's scope is the one of the failed request, which is what we
        # ask for anyway; tokens are fetched per request scope set.
        params = {k: v for k, v in challenge.params.items() if k != "scope"}
        with self._lock:
            self._tokens.pop(tuple(sorted(scopes)), None)
            self._challenge = Challenge(challenge.scheme, params)

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry} sent a bearer challenge without realm")
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        query.extend(("scope", s) for s in scopes)
        headers = {}
        if self.credentials is not None:
            query.append(("account", self.credentials.username))
            headers["Authorization"] = self.credentials.basic_header()
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        try:
            response = self._http.get(url, headers=headers)
        except httpx.HTTPError as err:
            raise self._unreachable(err, f"token service {realm}") from err
        if response.status_code in (401, 403):
            raise (
                self._login_needed()
                if self.credentials is None
                else PermissionDenied(
                    f"the token service of {self.registry} refused the credentials for "
                    f"{self.credentials.username!r}",
                    hint=f"check them with `bolt login {self.registry}`",
                )
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token service {realm} answered {response.status_code}: {response.text[:200]}"
            )
        try:
            doc = response.json()
            token = doc.get("token") or doc.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {realm} sent no token")
        return token

    # --- API calls ----------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ (authenticating if asked): proves the address and the credentials."""
        response = self.request("GET", "/v2/")
        response.read()
        if response.status_code != 200:
            raise self._error(response, f"{self.base}/v2/")

    def get_manifest(self, repository: str, reference: str, expected: str | None) -> Fetched:
        where = f"{self.registry}/{repository}:{reference}".replace(":sha256:", "@sha256:")
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes=(pull_scope(repository),),
            headers={"Accept": ACCEPT},
            stream=True,
        )
        with contextlib.closing(response):
            if response.status_code == 404:
                raise NotFound(
                    f"{where} does not exist in the registry",
                    hint="check the repository and tag (the registry says it has no such manifest)",
                )
            if response.status_code != 200:
                response.read()
                raise self._error(response, where)
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise RegistryError(f"manifest of {where} is larger than {MAX_MANIFEST} bytes")
        announced = response.headers.get("docker-content-digest")
        if expected is None and announced and announced.startswith("sha256:"):
            expected = announced
        return check(data, response.headers.get("content-type", ""), where, expected)

    @contextlib.contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[httpx.Response]:
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scopes=(pull_scope(repository),),
            stream=True,
        )
        try:
            if response.status_code != 200:
                response.read()
                raise self._error(response, f"blob {digest} of {self.registry}/{repository}")
            yield response
        finally:
            response.close()

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(push_scope(repository),)
        )
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise self._error(response, f"blob {digest} of {self.registry}/{repository}")

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Ask for ``digest`` from ``source`` (same registry) without sending it: ``None``
        if mounted, else the upload URL the registry opened instead."""
        query = urlencode({"mount": digest, "from": source})
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?{query}",
            scopes=(push_scope(repository), pull_scope(source)),
        )
        if response.status_code == 201:
            return None
        return self._upload_location(response, repository)

    def start_upload(self, repository: str) -> str:
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scopes=(push_scope(repository),)
        )
        return self._upload_location(response, repository)

    def upload(
        self,
        repository: str,
        location: str,
        digest: str,
        size: int,
        chunks: Callable[[int, int], Iterable[bytes]],
        chunk_size: int | None = None,
    ) -> None:
        """Send a blob to an upload ``location``: in one PUT, or (with ``chunk_size``) in
        PATCHes of that size then a closing PUT.  ``chunks(offset, length)`` yields the
        blob's bytes from ``offset`` (and is called again if a request is repeated)."""
        scopes = (push_scope(repository),)
        offset = 0
        if chunk_size is not None:
            while offset < size:
                length = min(chunk_size, size - offset)
                start = offset
                response = self.request(
                    "PATCH",
                    location,
                    scopes=scopes,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + length - 1}",
                        "Content-Length": str(length),
                    },
                    content=functools.partial(chunks, start, length),
                )
                location = self._upload_location(response, repository)
                offset += length
        rest = size - offset
        final = _with_query(location, {"digest": digest})
        response = self.request(
            "PUT",
            final,
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(rest)},
            content=functools.partial(chunks, offset, rest) if rest else b"",
        )
        if response.status_code != 201:
            raise self._error(response, f"upload of {digest} to {self.registry}/{repository}")

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=(push_scope(repository),),
            headers={"Content-Type": media_type},
            content=data,
        )
        if response.status_code not in (200, 201):
            raise self._error(response, f"manifest {self.registry}/{repository}:{reference}")
        return str(response.headers.get("docker-content-digest", ""))

    # --- errors -------------------------------------------------------------------------

    def _upload_location(self, response: httpx.Response, repository: str) -> str:
        if response.status_code not in (201, 202, 204) or "location" not in response.headers:
            raise self._error(response, f"blob upload to {self.registry}/{repository}")
        return urljoin(str(response.url), response.headers["location"])

    def _error(self, response: httpx.Response, what: str) -> RegistryError:
        detail = _registry_errors(response)
        return RegistryError(
            f"{what}: the registry answered {response.status_code}"
            + (f" ({detail})" if detail else "")
        )

    def _denied(self, response: httpx.Response, method: str, url: str) -> PermissionDenied:
        if self.credentials is None:
            return self._login_needed()
        detail = _registry_errors(response)
        return PermissionDenied(
            f"registry {self.registry} refused {method} {urlsplit(url).path} for "
            f"{self.credentials.username!r}" + (f": {detail}" if detail else ""),
            hint=f"check the credentials (`bolt login {self.registry}`) and their rights",
        )

    def _login_needed(self) -> PermissionDenied:
        return PermissionDenied(
            f"registry {self.registry} needs credentials", hint=f"run `bolt login {self.registry}`"
        )

    def _unreachable(self, err: httpx.HTTPError, what: str | None = None) -> RegistryError:
        text = str(err) or type(err).__name__
        hint = "check the address and that the registry is running"
        if not self.insecure and ("SSL" in text or "TLS" in text or "certificate" in text):
            hint = (
                "for a plain-HTTP registry use --insecure or list it under `insecure` in "
                "registries.toml; for a private CA, put it in certs.d/"
                f"{self.registry}/ca.crt under the Bolt root or /etc/bolt, or add it to "
                "the system's trust store"
            )
        return RegistryError(
            f"cannot reach {what or 'registry ' + self.registry}: {text}", hint=hint
        )


def _registry_errors(response: httpx.Response) -> str:
    try:
        doc: Any = response.json()
    except ValueError:
        return response.text.strip()[:200]
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)
    )


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)
