"""The admin console, through Falcon's test client: sessions, CSRF, pages and changes.

Dead letters are real (a rejecting broker on the test Valkey); the store is SQLite.
The browser test (``tests/e2e/test_console_browser.py``) drives the same pages in
headless Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlencode

import pytest
import redis
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetters
from infra.dlq import DeadLetterDesk
from infra.queue_report import QueueReporter
from infra.settings import DailyCallsSettings
from infra.sockets import free_port
from infra.store.audit import AuditEntry, SqlAudit
from producers.console.auth import COOKIE
from tests.builders import make_inbox_entry, make_post_call_job
from tests.producers.api_support import ADMIN_TOKEN
from tests.producers.conftest import ClientFactory, Store, TenantFixture, failed_job

FORM = "application/x-www-form-urlencoded"


class Browser:
    """A test client that keeps the console's cookie, as a browser would."""

    def __init__(self, client: testing.TestClient) -> None:
        self.client = client
        self.cookie: str | None = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        return headers | (extra or {})

    def get(self, path: str, **query: str) -> testing.Result:
        return self.client.simulate_get(
            path, query_string=urlencode(query), headers=self._headers()
        )

    def post(
        self, path: str, form: Mapping[str, str | list[str]], headers: dict[str, str] | None = None
    ) -> testing.Result:
        return self.client.simulate_post(
            path,
            body=urlencode(form, doseq=True),
            headers=self._headers({"Content-Type": FORM} | (headers or {})),
        )

    def login(self, token: str) -> testing.Result:
        result = self.post("/admin/login", {"token": token, "next": "/admin/queues"})
        if COOKIE in result.cookies:
            self.cookie = result.cookies[COOKIE].value
        return result

    def csrf(self, path: str = "/admin/audit") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match is not None
        return match[1]


@pytest.fixture
def client(
    make_client: ClientFactory,
    store: Store,
    desk: DeadLetterDesk,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
) -> testing.TestClient:
    reporter = QueueReporter(
        dead_broker.client, dead_broker.namespace, store.jobs, DailyCallsSettings(), store.clock
    )
    return make_client(desk=desk, queue_report=reporter)


@pytest.fixture
def ana(client: testing.TestClient, store: Store) -> Browser:
    """An admin, logged in."""
    _, token = store.admins.add("ana", "admin")
    browser = Browser(client)
    assert browser.login(token).status_code == 303
    return browser


@pytest.fixture
def vera(client: testing.TestClient, store: Store) -> Browser:
    """A viewer, logged in."""
    _, token = store.admins.add("vera", "viewer")
    browser = Browser(client)
    assert browser.login(token).status_code == 303
    return browser


def _dead(store: Store, broker: SwitchboardBroker, acme: TenantFixture, conversation: str) -> str:
    job = make_post_call_job(
        tenant_id=acme.tenant.id, conversation_id=conversation, job_id=f"job-{conversation}"
    )
    return failed_job(store, broker, job)


def _job_of(store: Store, broker: SwitchboardBroker, message_id: str) -> str:
    letter = DeadLetters(broker.client, broker.namespace).get(message_id)
    assert letter is not None
    return str(letter.message["options"]["job_id"])


# logging in ---------------------------------------------------------------------------


def test_a_page_without_a_session_sends_the_browser_to_log_in_and_back(
    client: testing.TestClient,
) -> None:
    result = client.simulate_get("/admin/dead-letters", query_string="queue=calls.analyze")

    assert result.status_code == 303
    assert result.headers["Location"].endswith(
        "/admin/login?next=%2Fadmin%2Fdead-letters%3Fqueue%3Dcalls.analyze"
    )
    login = client.simulate_get("/admin/login")
    assert login.status_code == 200
    assert 'name="token"' in login.text


def test_a_login_sets_an_httponly_strict_cookie_on_admin_secure_over_https(
    client: testing.TestClient, store: Store
) -> None:
    _, token = store.admins.add("ana", "admin")
    form = urlencode({"token": token, "next": "/admin/review"})

    plain = client.simulate_post("/admin/login", body=form, headers={"Content-Type": FORM})
    https = client.simulate_post(
        "/admin/login", body=form, headers={"Content-Type": FORM, "X-Forwarded-Proto": "https"}
    )

    assert plain.status_code == 303
    assert plain.headers["Location"].endswith("/admin/review")
    cookie = plain.cookies[COOKIE]
    assert (cookie.http_only, cookie.same_site, cookie.path) == (True, "Strict", "/admin")
    assert cookie.secure is False
    assert https.cookies[COOKIE].secure is True
    assert token not in cookie.value


def test_a_tenant_key_or_a_wrong_token_does_not_log_in(
    client: testing.TestClient, acme: TenantFixture
) -> None:
    for token in (acme.key, "sba_not-a-token"):
        result = Browser(client).login(token)

        assert result.status_code == 401
        assert COOKIE not in result.cookies
        assert "not an active admin or viewer token" in result.text
    tenant = client.simulate_get("/admin/queues", headers={"Authorization": f"Bearer {acme.key}"})
    assert tenant.status_code == 403
    assert "a tenant&#39;s key cannot open the console" in tenant.text


def test_a_login_form_posted_from_another_site_opens_no_session(
    client: testing.TestClient, store: Store
) -> None:
    _, token = store.admins.add("ana", "admin")
    form = urlencode({"token": token, "next": "/admin/queues"})

    foreign = client.simulate_post(
        "/admin/login",
        body=form,
        headers={"Content-Type": FORM, "Origin": "https://evil.example"},
    )
    own = client.simulate_post(
        "/admin/login",
        body=form,
        headers={"Content-Type": FORM, "Origin": "http://falconframework.org"},
    )

    assert foreign.status_code == 403
    assert COOKIE not in foreign.cookies
    assert "a form from https://evil.example is not this console&#39;s" in foreign.text
    assert own.status_code == 303
    assert COOKIE in own.cookies


def test_after_login_the_browser_goes_only_to_a_console_page(
    client: testing.TestClient, store: Store
) -> None:
    _, token = store.admins.add("ana", "admin")
    for target in (
        "https://evil.example/",
        "//evil.example/admin/",
        "/admin/../api/jobs",
        "/admin/x/../../api",
    ):
        result = client.simulate_post(
            "/admin/login",
            body=urlencode({"token": token, "next": target}),
            headers={"Content-Type": FORM},
        )

        assert result.headers["Location"].endswith("/admin/queues"), target


def test_logging_out_or_revoking_the_token_ends_the_session(
    client: testing.TestClient, store: Store
) -> None:
    _, token = store.admins.add("ana", "admin")
    _, other = store.admins.add("bo", "admin")
    ana, bo = Browser(client), Browser(client)
    ana.login(token)
    bo.login(other)

    logout = ana.post("/admin/logout", {"csrf": ana.csrf()})
    store.admins.revoke("bo")

    assert logout.status_code == 303
    assert ana.get("/admin/queues").status_code == 303
    assert bo.get("/admin/queues").status_code == 303


# pages --------------------------------------------------------------------------------


def test_every_page_forbids_scripts_framing_and_caching(ana: Browser) -> None:
    for path in ("/admin/queues", "/admin/dead-letters", "/admin/review", "/admin/audit"):
        result = ana.get(path)

        assert result.status_code == 200, path
        assert "script-src" not in result.headers["Content-Security-Policy"]
        assert "default-src 'none'" in result.headers["Content-Security-Policy"]
        assert result.headers["X-Frame-Options"] == "DENY"
        assert result.headers["Cache-Control"] == "no-store"
        assert "<script" not in result.text
    css = ana.get("/admin/static/console.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.headers["Cache-Control"] == "public, max-age=3600"


def test_what_no_page_renders_has_the_consoles_headers_too(
    client: testing.TestClient, ana: Browser
) -> None:
    answers = {
        "redirect to login": client.simulate_get("/admin/queues"),
        "unknown page": ana.get("/admin/no-such-page"),
        "wrong method": client.simulate_delete("/admin/queues"),
    }

    assert {name: result.status_code for name, result in answers.items()} == {
        "redirect to login": 303,
        "unknown page": 404,
        "wrong method": 405,
    }
    for name, result in answers.items():
        assert result.headers["X-Frame-Options"] == "DENY", name
        assert result.headers["Cache-Control"] == "no-store", name
        assert "default-src 'none'" in result.headers["Content-Security-Policy"], name


def test_the_queues_page_shows_counts_oldest_age_pipelines_and_next_ticks(
    make_client: ClientFactory,
    store: Store,
    desk: DeadLetterDesk,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
) -> None:
    _dead(store, dead_broker, acme, "conv_q")
    reporter = QueueReporter(
        dead_broker.client, dead_broker.namespace, store.jobs, DailyCallsSettings(), store.clock
    )
    browser = Browser(make_client(desk=desk, queue_report=reporter))
    browser.login(ADMIN_TOKEN)

    page = browser.get("/admin/queues").text

    assert 'id="health">degraded' in page
    row = re.search(r'<tr data-queue="calls.transcript">(.*?)</tr>', page, re.S)
    assert row is not None
    assert "post_call" in row[1]
    assert '<a href="/admin/dead-letters?queue=calls.transcript">1</a>' in row[1]
    assert "daily-calls" in page
    assert "*/5 * * * *" in page
    assert "2026-05-28 20:30:00 UTC" in page  # NOW is 20:26:40


def test_the_dead_letters_page_lists_filters_and_folds_the_traceback(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_list")

    page = ana.get("/admin/dead-letters", queue="calls.transcript", tenant="acme").text
    other = ana.get("/admin/dead-letters", queue="calls.analyze").text
    bad = ana.get("/admin/dead-letters", queue="calls.nope", error='"><b>x</b>')

    assert f'data-id="{message_id}"' in page
    assert "PermanentError</strong> vendor refused conv_list" in page
    assert "<details><summary>traceback</summary><pre>Traceback" in page
    assert "1 dead letter." in page
    assert message_id not in other
    assert bad.status_code == 422
    assert "unknown queue &#39;calls.nope&#39;; known: callbacks.place" in bad.text
    assert "<b>x</b>" not in bad.text


def test_the_job_page_shows_the_steps_and_links_the_dead_letter(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_job")
    job_id = _job_of(store, dead_broker, message_id)

    lookup = ana.get("/admin/jobs", id=job_id)
    page = ana.get(f"/admin/jobs/{job_id}").text

    assert lookup.status_code == 303
    assert lookup.headers["Location"].endswith(f"/admin/jobs/{job_id}")
    assert 'id="job-status">failed' in page
    assert "fetch_transcript" in page
    assert f'href="/admin/dead-letters/{message_id}"' in page
    assert ana.get("/admin/jobs/no-such-job").status_code == 404


def test_the_review_page_lists_jobs_failed_at_intake(
    ana: Browser, store: Store, acme: TenantFixture
) -> None:
    entry = make_inbox_entry(make_post_call_job(tenant_id=acme.tenant.id), source="test")
    accepted = store.ledger.accept(entry)
    store.ledger.fail_at_intake(accepted.job_id, error="transcript: field required")

    page = ana.get("/admin/review").text
    queues = ana.get("/admin/queues").text

    assert accepted.job_id in page
    assert "transcript: field required" in page
    assert "1 job(s) failed at intake" in queues


def test_with_the_broker_down_a_page_says_so(
    make_client: ClientFactory, store: Store, acme: TenantFixture
) -> None:
    # A port nobody listens on, and no retries: the refusal comes at once.
    gone = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    desk = DeadLetterDesk(DeadLetters(gone, "sb"), store.progress, SqlAudit(store.engine))
    reporter = QueueReporter(gone, "sb", store.jobs, DailyCallsSettings(), store.clock)
    browser = Browser(make_client(desk=desk, queue_report=reporter))
    browser.login(ADMIN_TOKEN)

    result = browser.get("/admin/dead-letters")

    assert result.status_code == 503
    assert "broker" in result.text
    queues = browser.get("/admin/queues")
    assert queues.status_code == 200
    assert 'id="health">unhealthy' in queues.text


# changes ------------------------------------------------------------------------------


def test_an_admin_replays_a_dead_letter_from_its_page_and_the_audit_says_who_and_why(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_replay")
    job_id = _job_of(store, dead_broker, message_id)
    page = ana.get(f"/admin/dead-letters/{message_id}").text
    assert 'id="replay"' in page

    result = ana.post(
        "/admin/dead-letters/replay",
        {
            "id": message_id,
            "reason": "INC-7: vendor back",
            "csrf": ana.csrf(),
            "back": f"/admin/jobs/{job_id}",
        },
    )

    assert result.status_code == 303
    assert result.headers["Location"].endswith(f"/admin/jobs/{job_id}")
    after = ana.get(f"/admin/jobs/{job_id}").text
    assert f"replayed {message_id} to calls.transcript" in after
    assert 'id="job-status">processing' in after
    assert DeadLetters(dead_broker.client, dead_broker.namespace).get(message_id) is None
    [entry] = store_entries(store)
    assert (entry.actor, entry.action, entry.reason, entry.outcome) == (
        "ana",
        "replay",
        "INC-7: vendor back",
        "replayed",
    )
    assert "INC-7: vendor back" in ana.get("/admin/audit").text


def store_entries(store: Store) -> list[AuditEntry]:
    return SqlAudit(store.engine).entries()


def test_bulk_replay_and_purge_of_the_selected_dead_letters(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    first = _dead(store, dead_broker, acme, "conv_b1")
    second = _dead(store, dead_broker, acme, "conv_b2")
    third = _dead(store, dead_broker, acme, "conv_b3")
    csrf = ana.csrf()

    replay = ana.post(
        "/admin/dead-letters/replay",
        {"id": [first, second], "reason": "bulk", "csrf": csrf, "back": "/admin/dead-letters"},
    )
    purge = ana.post(
        "/admin/dead-letters/purge",
        {"id": [third, first], "reason": "junk", "csrf": csrf, "back": "/admin/dead-letters"},
    )

    assert (replay.status_code, purge.status_code) == (303, 303)
    page = ana.get("/admin/dead-letters").text
    assert "Of 2 dead letters: 1 purged, 1 gone" in page
    assert "0 dead letters." in page


def test_a_change_without_our_csrf_token_or_from_another_origin_changes_nothing(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_csrf")
    form = {"id": message_id, "reason": "forged"}
    csrf = ana.csrf()

    missing = ana.post("/admin/dead-letters/purge", form)
    wrong = ana.post("/admin/dead-letters/purge", form | {"csrf": csrf + "x"})
    foreign = ana.post(
        "/admin/dead-letters/purge",
        form | {"csrf": csrf},
        headers={"Origin": "https://evil.example"},
    )

    assert [r.status_code for r in (missing, wrong, foreign)] == [403, 403, 403]
    assert "stale or did not come from the console" in missing.text
    assert DeadLetters(dead_broker.client, dead_broker.namespace).get(message_id) is not None
    assert store_entries(store) == []


def test_a_viewer_sees_no_change_buttons_and_a_change_is_refused(
    vera: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_view")

    page = vera.get(f"/admin/dead-letters/{message_id}").text
    listing = vera.get("/admin/dead-letters").text
    refused = vera.post(
        "/admin/dead-letters/replay",
        {"id": message_id, "reason": "x", "csrf": vera.csrf()},
    )

    assert 'id="replay"' not in page
    assert 'type="checkbox"' not in listing
    assert "vera · viewer" in page
    assert refused.status_code == 403
    assert "a viewer&#39;s: it may look, not change" in refused.text


def test_a_script_may_use_a_bearer_token_without_a_session_or_csrf(
    client: testing.TestClient, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_bearer")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": FORM}

    page = client.simulate_get("/admin/queues", headers=headers)
    result = client.simulate_post(
        "/admin/dead-letters/replay",
        body=urlencode({"id": message_id, "reason": "scripted"}),
        headers=headers,
    )

    assert page.status_code == 200
    assert result.status_code == 200
    assert f"replayed {message_id}" in result.text
    [entry] = store_entries(store)
    assert entry.actor == "bootstrap-admin"


def test_a_change_needs_a_reason(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_reason")

    csrf = ana.csrf()
    result = ana.post(
        "/admin/dead-letters/replay", {"id": message_id, "reason": "  ", "csrf": csrf}
    )
    long = ana.post(
        "/admin/dead-letters/replay", {"id": message_id, "reason": "x" * 501, "csrf": csrf}
    )

    assert (result.status_code, long.status_code) == (422, 422)
    assert "say why, for the audit log" in result.text
    assert "at most 500 characters" in long.text
    assert 'maxlength="500"' in ana.get(f"/admin/dead-letters/{message_id}").text
    assert DeadLetters(dead_broker.client, dead_broker.namespace).get(message_id) is not None


def test_an_edit_its_contract_refuses_comes_back_with_the_draft_and_why(
    ana: Browser, store: Store, dead_broker: SwitchboardBroker, acme: TenantFixture
) -> None:
    message_id = _dead(store, dead_broker, acme, "conv_edit")
    letter = DeadLetters(dead_broker.client, dead_broker.namespace).get(message_id)
    assert letter is not None
    path = f"/admin/dead-letters/{message_id}/payload"
    csrf = ana.csrf()
    broken = '{"conversation_id": "<b>bad id</b>"}'

    refused = ana.post(path, {"payload": broken, "reason": "try", "csrf": csrf})
    not_json = ana.post(path, {"payload": "{nope", "reason": "try", "csrf": csrf})
    fixed = dict(letter.payload) | {"duration_secs": 4321}

    kept = ana.post(path, {"payload": json.dumps(fixed), "reason": "fix length", "csrf": csrf})

    assert refused.status_code == 422
    assert "&lt;b&gt;bad id&lt;/b&gt;" in refused.text  # the draft, escaped, kept
    assert "conversation_id" in refused.text
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.text
    assert kept.status_code == 303
    shown = ana.get(f"/admin/dead-letters/{message_id}").text
    assert "kept the edited payload" in shown
    assert "4321" in shown
    assert store_entries(store)[0].outcome == "kept"
