"""The UI over real HTTP: sign-in cookie, CSRF and Origin refusals, scopes, project
isolation, bad input answered as pages, and the turn-off switch."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from ui.ui_kit import Site, csrf_of

from app.ui.render import web_link

PAGES = ("/", "/ui/traces", "/ui/logs", "/ui/errors", "/ui/alerts", "/ui/slos")


def test_pages_need_sign_in(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        for path in PAGES:
            answer = client.get(path, params={"window": "1h"} if path != "/ui/alerts" else None)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next=")
        assert client.get("/ui/login").status_code == 200
        fragment = client.get("/ui/overview/llm", headers={"HX-Request": "true"})
        assert fragment.status_code == 204
        assert fragment.headers["hx-redirect"].startswith("/ui/login?next=")


def test_sign_in_sets_a_strict_httponly_cookie_without_the_key(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        answer = client.post(
            "/ui/login",
            data={"key": site.read_key, "next": "/ui/traces?window=6h"},
            headers={"Origin": site.url},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/traces?window=6h"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert site.read_key not in cookie and site.read_key[3:20] not in cookie
        for path in PAGES:
            assert client.get(path).status_code == 200, path


def test_sign_in_refuses_bad_keys_foreign_origins_and_open_redirects(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        wrong = client.post("/ui/login", data={"key": "tc_nope"}, headers={"Origin": site.url})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        foreign = client.post(
            "/ui/login", data={"key": site.read_key}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
        away = client.post(
            "/ui/login",
            data={"key": site.read_key, "next": "//evil.example/x"},
            headers={"Origin": site.url},
        )
        assert away.status_code == 303 and away.headers["location"] == "/"


def test_a_tampered_cookie_is_no_session(site: Site) -> None:
    with site.signed_in(site.read_key) as client:
        value = client.cookies["tc_ui_session"]
        forged = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
        client.cookies.clear()
        client.cookies.set("tc_ui_session", forged)
        assert client.get("/ui/traces").status_code == 303


def test_non_ascii_tokens_are_refused_not_errors(site: Site) -> None:
    with site.signed_in(site.read_key) as client:
        value = client.cookies["tc_ui_session"]
        origin = {"Origin": site.url}
        for token in ("ünï", "\u2603" * 40):
            answer = client.post("/ui/logout", data={"csrf": token}, headers=origin)
            assert answer.status_code == 403 and "CSRF" in answer.text
        client.cookies.clear()
        # A cookie whose signature is not ASCII (a header's bytes read as latin-1).
        raw = f"tc_ui_session={value[:-4]}\u00e9\u00e9\u00e9\u00e9".encode("latin-1")
        answer = client.get("/ui/traces", headers={"Cookie": raw})
        assert answer.status_code == 303


def _error_group(client: httpx.Client) -> str:
    page = client.get("/ui/errors", params={"window": "24h"}).text
    found = re.search(r"/ui/errors/([0-9a-f]{32})", page)
    assert found, "the demo made no error group"
    return found.group(1)


def test_state_changes_need_the_csrf_token_and_this_origin(site: Site) -> None:
    with site.signed_in(site.admin_key) as client:
        fingerprint = _error_group(client)
        page = client.get(f"/ui/errors/{fingerprint}").text
        token = csrf_of(page)
        target = f"/ui/errors/{fingerprint}/status"
        origin = {"Origin": site.url}
        missing = client.post(target, data={"status": "ignored"}, headers=origin)
        assert missing.status_code == 403 and "CSRF" in missing.text
        wrong = client.post(target, data={"status": "ignored", "csrf": "x" * 40}, headers=origin)
        assert wrong.status_code == 403
        foreign = client.post(
            target,
            data={"status": "ignored", "csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        no_origin = client.post(target, data={"status": "ignored", "csrf": token})
        assert no_origin.status_code == 403
        with site.api() as api:
            assert api.get(f"/api/v1/errors/{fingerprint}").json()["status"] != "ignored"
            done = client.post(target, data={"status": "ignored", "csrf": token}, headers=origin)
            assert done.status_code == 303
            assert api.get(f"/api/v1/errors/{fingerprint}").json()["status"] == "ignored"
            api.patch(f"/api/v1/errors/{fingerprint}", json={"status": "unresolved"})


def test_a_read_key_views_but_cannot_resolve_silence_or_edit(site: Site) -> None:
    with site.signed_in(site.read_key) as client:
        fingerprint = _error_group(client)
        page = client.get(f"/ui/errors/{fingerprint}").text
        assert "/status" not in page  # no resolve buttons for a read-only key
        token = csrf_of(page)  # the sign-out form's
        origin = {"Origin": site.url}
        resolve = client.post(
            f"/ui/errors/{fingerprint}/status",
            data={"status": "resolved", "csrf": token},
            headers=origin,
        )
        assert resolve.status_code == 403 and "admin" in resolve.text
        with site.api() as api:
            alert = api.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"][0]
            rule = api.get("/api/v1/alert-rules").json()["rules"][0]
        silence = client.post(
            f"/ui/alerts/{alert['id']}/silence",
            data={"duration": "1h", "csrf": token},
            headers=origin,
        )
        assert silence.status_code == 403
        edit = client.post(
            f"/ui/rules/{rule['id']}/enabled",
            data={"enabled": "false", "csrf": token},
            headers=origin,
        )
        assert edit.status_code == 403


def test_a_firing_alert_links_its_runbook(site: Site) -> None:
    link = '<a href="https://runbooks.example/RequestsSeen" rel="noopener noreferrer"'
    with site.signed_in(site.read_key) as client:
        # Other tests here turn the rule off and on: wait for its next evaluation to fire.
        deadline = time.monotonic() + 30
        while True:
            page = client.get("/ui/alerts", params={"state": "firing"}).text
            if link in page or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert link in page, page[page.find('id="alerts"') :][:2000]


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://runbooks.example/a?b=c", True),
        ("HTTP://wiki.local/x", True),
        ("javascript:alert(1)", False),
        ("data:text/html,<b>", False),
        ("//evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_urls_become_links(url: str | None, linked: bool) -> None:
    assert web_link(url) == (url if linked else None)


def test_the_ui_shows_only_the_keys_project(site: Site) -> None:
    with site.api() as api:
        trace_id = api.get("/api/v1/traces").json()["traces"][0]["trace_id"]
        fingerprint = api.get("/api/v1/errors").json()["errors"][0]["fingerprint"]
        slo_id = api.get("/api/v1/slos").json()["slos"][0]["id"]
    with site.signed_in(site.other_key) as other:
        assert other.get(f"/ui/traces/{trace_id}").status_code == 404
        assert other.get(f"/ui/errors/{fingerprint}").status_code == 404
        assert other.get(f"/ui/slos/{slo_id}").status_code == 404
        assert trace_id not in other.get("/ui/traces", params={"window": "24h"}).text
        assert "RequestsSeen" not in other.get("/ui/alerts").text
        token = csrf_of(other.get("/ui/errors").text)
        change = other.post(
            f"/ui/errors/{fingerprint}/status",
            data={"status": "resolved", "csrf": token},
            headers={"Origin": site.url},
        )
        assert change.status_code == 404
    with site.signed_in(site.admin_key) as own:
        assert own.get(f"/ui/traces/{trace_id}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/ui/traces?min_duration_ms=abc",
        "/ui/traces?status=weird",
        "/ui/traces?cursor=not-a-cursor",
        "/ui/traces?window=1y",
        "/ui/traces?start=yesterday-ish",
        "/ui/traces/xyz",
        "/ui/logs?level=loud",
        "/ui/logs?span_id=12",
        "/ui/logs?trace_id=00",
        "/ui/errors/nothex",
        "/ui/slos/0",
        "/ui/alerts?state=odd",
        "/?window=0s",
    ],
)
def test_bad_input_is_a_400_page(site: Site, path: str) -> None:
    with site.signed_in(site.read_key) as client:
        answer = client.get(path)
        assert answer.status_code == 400, answer.text[:500]
        assert answer.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in answer.text


def test_unknown_objects_are_404_pages(site: Site) -> None:
    with site.signed_in(site.read_key) as client:
        assert client.get("/ui/traces/" + "0" * 32).status_code == 404
        assert client.get("/ui/errors/" + "0" * 32).status_code == 404
        assert client.get("/ui/slos/999999").status_code == 404


def test_pages_stay_out_of_the_openapi_document(site: Site) -> None:
    paths = httpx.get(f"{site.url}/openapi.json").json()["paths"]
    assert not [path for path in paths if path == "/" or path.startswith("/ui")]


def test_signing_out_ends_the_session(site: Site) -> None:
    with site.signed_in(site.read_key) as client:
        token = csrf_of(client.get("/ui/slos").text)
        answer = client.post("/ui/logout", data={"csrf": token}, headers={"Origin": site.url})
        assert answer.status_code == 303
        assert client.get("/ui/slos").status_code == 303


def test_ui_can_be_turned_off(start_collector) -> None:
    collector = start_collector(env={"TELEMETRY_UI_ENABLED": "false"})
    for path in ("/", "/ui/", "/ui/login", "/ui/traces", "/ui/static/ui.js"):
        assert httpx.get(f"{collector.url}{path}").status_code == 404, path
    assert httpx.get(f"{collector.url}/healthz").status_code == 200


def test_without_auth_the_ui_needs_no_sign_in(start_collector) -> None:
    collector = start_collector(env={"TELEMETRY_AUTH_ENABLED": "false"})
    with httpx.Client(base_url=collector.url) as client:
        for path in PAGES:
            assert client.get(path).status_code == 200, path
        page = client.get("/ui/alerts").text  # its built-in rules have enable/disable forms
        assert "Sign out" not in page
        # Forms still carry CSRF tokens, checked against the anonymous session's cookie.
        token = csrf_of(page)
        target = "/ui/errors/" + "0" * 32 + "/status"
        origin = {"Origin": collector.url}
        assert client.post(target, data={"status": "resolved"}, headers=origin).status_code == 403
        known = client.post(target, data={"status": "resolved", "csrf": token}, headers=origin)
        assert known.status_code == 404, known.text[-800:]  # past the checks: no such group
