"""bolt login/logout, basic auth (docker-registry with htpasswd) and bearer tokens (a
token service in front of docker-registry)."""

from __future__ import annotations

import json
import stat

import pytest

from tests.bolt_registry.conftest import Bolt
from tests.bolt_registry.registry_fixture import PASSWORD, USER, Registry, TokenFront

pytestmark = [pytest.mark.registry]


def login(b: Bolt, host: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return b("login", "--insecure", "-u", USER, "--password-stdin", host, input=password + "\n")


def test_basic_auth_registry_needs_login_and_keeps_wrong_passwords_out(
    bolt: Bolt, basic_registry: Registry
) -> None:
    ref = f"{basic_registry.host}/private/bb:1"
    denied = bolt("push", "--insecure", "busybox", ref)
    assert denied.returncode == 4
    assert f"run `bolt login {basic_registry.host}`" in denied.stderr

    wrong = login(bolt, basic_registry.host, "not-the-password")
    assert wrong.returncode == 4 and "refused" in wrong.stderr
    assert not (bolt.root / "auth.json").exists()

    assert login(bolt, basic_registry.host).returncode == 0
    auth_file = bolt.root / "auth.json"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert basic_registry.host in json.loads(auth_file.read_text())["auths"]

    bolt.ok("push", "--insecure", "busybox", ref)
    bolt.ok("image", "rm", "busybox")
    bolt.ok("pull", "--insecure", ref)
    assert bolt.store.resolve(ref).config["Cmd"] == ["cat", "/etc/marker"]

    assert "Removed" in bolt.ok("logout", basic_registry.host)
    again = bolt("pull", "--insecure", ref)
    assert again.returncode == 4
    assert bolt("logout", basic_registry.host).returncode == 2


def test_bearer_tokens_are_fetched_per_scope(
    bolt: Bolt, token_registry: TokenFront, registry: Registry
) -> None:
    ref = f"{token_registry.host}/tok/bb:1"
    anonymous = bolt("push", "--insecure", "busybox", ref)
    assert anonymous.returncode == 4, anonymous.stderr
    assert "needs credentials" in anonymous.stderr

    assert login(bolt, token_registry.host).returncode == 0
    assert login(bolt, token_registry.host, "wrong").returncode == 4
    login(bolt, token_registry.host)
    bolt.ok("push", "--insecure", "busybox", ref)
    push_requests = [
        q for q in token_registry.token_requests if q.get("account") == [USER] and "scope" in q
    ]
    assert push_requests and all(
        q["scope"] == ["repository:tok/bb:pull,push"] and q["service"] == ["bolt-front"]
        for q in push_requests
    )

    bolt.ok("logout", token_registry.host)
    bolt.ok("image", "rm", "busybox")
    pulled = bolt("pull", "--insecure", ref)  # anonymous pull: tokens grant pull to anyone
    assert pulled.returncode == 0, pulled.stderr
    assert bolt.store.resolve(ref).manifest_digest == pulled.stdout.split()[1]


def test_cross_repository_mount_asks_for_both_scopes(
    bolt: Bolt, token_registry: TokenFront
) -> None:
    login(bolt, token_registry.host)
    bolt.ok("push", "--insecure", "busybox", f"{token_registry.host}/tok/src:1")
    bolt.ok("image", "rm", "busybox")
    bolt.ok("pull", "--insecure", f"{token_registry.host}/tok/src:1")
    token_registry.token_requests.clear()
    proc = bolt(
        "push", "--insecure", f"{token_registry.host}/tok/src:1", f"{token_registry.host}/tok/dst:1"
    )
    assert proc.returncode == 0, proc.stderr
    assert "mounted from tok/src" in proc.stderr
    assert {
        "repository:tok/dst:pull,push",
        "repository:tok/src:pull",
    } in [set(q.get("scope", [])) for q in token_registry.token_requests]
