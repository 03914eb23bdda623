"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

Screenshots go to build/test-artifacts/dashboard/ (kept by CI as artefacts)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.nvcontrol_control.helpers import settings_of
from tests.remote.agent_fixture import Agent

pytestmark = [pytest.mark.nvsim]

ARTEFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: ./project.sh setup installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _token(agent: Agent, name: str, role: str) -> str:
    done = agent.admin("token", "create", name, "--role", role)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _limit_on_screen(page: object, gpu: int) -> str:
    return page.get_attribute(f"#gpu-{gpu}", "data-power-limit")  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_dashboard_login_charts_confirm_revert_and_csrf(agent: Agent, browser: object) -> None:
    token = _token(agent, "web", "admin")
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = ctx.new_page()
    base = f"https://127.0.0.1:{agent.http_port}"
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']")  # the script is loaded and the forms wired

    # log in (a wrong token first)
    page.fill("#token", "nvt_wrong")
    page.click("#login-form button")
    page.wait_for_selector("#login .hint:has-text('unknown or revoked token')")
    page.fill("#token", token)
    page.click("#login-form button")
    page.wait_for_selector("#main:not(.hidden)")
    assert "web (admin)" in page.inner_text("#who")

    # both GPUs' charts appear and update
    page.wait_for_selector("#gpu-0 .value[data-key='temperature_c']")
    page.wait_for_selector("#gpu-1 .value[data-key='power_w']")
    first = page.get_attribute("body", "data-samples")
    page.wait_for_function(f"() => document.body.dataset.samples !== '{first}'", timeout=10000)
    for g in (0, 1):
        assert page.inner_text(f"#gpu-{g} .value[data-key='temperature_c']").endswith("°C")
        assert page.inner_text(f"#gpu-{g} .value[data-key='sm_mhz']").endswith("MHz")
    _shot(page, "1-charts")

    # a power limit, confirmed in the countdown box, lands on the GPU
    page.select_option("#power-form select", "1")
    page.fill("#power-form input[name=watts]", "300")
    page.fill("#power-form input[name=timeout]", "30")
    page.click("#power-form button")
    page.wait_for_selector("#countdown:not(.hidden)")
    assert "reverting in" in page.inner_text("#countdown-text")
    _shot(page, "2-countdown")
    page.click("#confirm-btn")
    page.wait_for_selector("#message:has-text('committed')", timeout=20000)
    assert settings_of(agent.gpus)[1]["power_limit_w"] == 300
    page.wait_for_function(
        "() => document.querySelector('#gpu-1').dataset.powerLimit === '300'", timeout=10000
    )
    _shot(page, "3-confirmed")

    # a change left unconfirmed reverts, on screen and on the GPU
    page.select_option("#power-form select", "0")
    page.fill("#power-form input[name=watts]", "250")
    page.fill("#power-form input[name=timeout]", "4")
    page.click("#power-form button")
    page.wait_for_selector("#countdown:not(.hidden)")
    page.wait_for_function(
        "() => document.querySelector('#gpu-0').dataset.powerLimit === '250'", timeout=10000
    )
    page.wait_for_selector("#message:has-text('rolled back')", timeout=20000)
    assert settings_of(agent.gpus)[0]["power_limit_w"] == 450
    page.wait_for_function(
        "() => document.querySelector('#gpu-0').dataset.powerLimit === '450'", timeout=10000
    )
    page.wait_for_selector("#countdown.hidden", state="attached")
    _shot(page, "4-reverted")

    # snapshots and the tables (a file that is not a snapshot is named, never hides the rest)
    snaps = Path(agent.env["NVCTL_STATE_DIR"]) / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    (snaps / "junk.toml").write_text("this is = = not toml\n")
    page.fill("#snap-form input[name=name]", "web-snap")
    page.click("#snap-form button")
    page.wait_for_selector("#snapshots td:has-text('web-snap')")
    page.wait_for_selector("#snapshots td.hint:has-text('junk')")
    assert "created" in page.inner_text("#message")
    page.click("#snapshots button[data-snapshot='web-snap']:has-text('Diff')")
    page.wait_for_selector("#diff:has-text('match snapshot web-snap')")
    page.wait_for_selector("#journal td:has-text('power limit 300 W')")
    page.wait_for_selector("#audit td:has-text('set_power_limit')")
    _shot(page, "5-tables")

    # CSRF: another origin's page, in the same logged-in browser, cannot change anything
    before = settings_of(agent.gpus)
    entries = len(agent.audit())
    evil = _evil_site(base)
    try:
        attack = ctx.new_page()
        attack.goto(f"http://localhost:{evil.server_port}/evil.html")
        attack.wait_for_function("() => window.done === true", timeout=10000)
        _shot(attack, "6-csrf-attempt")
        # the same with the session cookie but another Origin, or without the CSRF token
        r = ctx.request.post(base + "/api/call/reset_power", data="{}",
                             headers={"Origin": f"http://localhost:{evil.server_port}",
                                      "Content-Type": "application/json"})  # fmt: skip
        assert r.status == 403 and "cross-origin" in r.text()
        r = ctx.request.post(base + "/api/call/reset_power", data="{}",
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status == 403 and "CSRF" in r.text()
    finally:
        evil.shutdown()
    time.sleep(0.5)
    assert settings_of(agent.gpus) == before
    assert len(agent.audit()) == entries
    ctx.close()


def _evil_site(target: str) -> http.server.ThreadingHTTPServer:
    page = f"""<!doctype html><html><body><h1>definitely not an attack</h1>
<form id="f" method="POST" action="{target}/api/call/set_power_limit" enctype="text/plain"
 target="sink"><input name='{{"selector":"0","watts_":200,"x":"' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
fetch("{target}/api/call/set_power_limit", {{method: "POST", mode: "no-cors",
  credentials: "include", headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{selector: "0", watts_: 200, percent: null}})}})
  .catch(() => null).finally(() => {{ document.getElementById("f").submit();
  setTimeout(() => {{ window.done = true; }}, 1500); }});
</script></body></html>"""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
