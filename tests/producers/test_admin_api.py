"""The dead-letter admin API on real dead letters (test Valkey) and the SQLite store."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from infra.bus.broker import SwitchboardBroker
from infra.bus.dead_letters import DeadLetter, DeadLetters
from infra.bus.publishing import Envelope
from infra.bus.queues import queue_depths
from infra.dlq import DeadLetterDesk
from infra.store.audit import SqlAudit
from tests.builders import make_post_call_job
from tests.bus.support import kill
from tests.producers.api_support import ADMIN_TOKEN, assert_problem
from tests.producers.conftest import ClientFactory, Store, TenantFixture, failed_job

LETTERS = "/api/admin/dead-letters"


def _status(store: Store, job_id: str) -> str:
    view = store.jobs.job_view(job_id, tenant_id=None)
    assert view is not None
    return view.status


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _letters(broker: SwitchboardBroker) -> DeadLetters:
    return DeadLetters(broker.client, broker.namespace)


def _dead_post_call(broker: SwitchboardBroker, acme: TenantFixture) -> tuple[str, DeadLetter]:
    """A post-call job's message, dead-lettered: its id and the dead letter as it is."""
    [message_id] = kill(broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))
    letter = _letters(broker).get(message_id)
    assert letter is not None
    return message_id, letter


@pytest.fixture
def client(make_client: ClientFactory, desk: DeadLetterDesk) -> testing.TestClient:
    return make_client(desk=desk)


@pytest.fixture
def admin(store: Store) -> dict[str, str]:
    _, token = store.admins.add("ana", "admin")
    return _bearer(token)


@pytest.fixture
def viewer(store: Store) -> dict[str, str]:
    _, token = store.admins.add("vera", "viewer")
    return _bearer(token)


def _broken(tenant_id: str) -> Envelope:
    """A post-call job whose payload its contract refuses (no job id)."""
    envelope = Envelope.of(make_post_call_job(tenant_id=tenant_id))
    return Envelope(envelope.queue, envelope.actor, {"conversation_id": "c1"}, envelope.options)


# reading -----------------------------------------------------------------------------


def test_a_viewer_lists_dead_letters_filtered_by_queue_actor_error_and_tenant(
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    viewer: dict[str, str],
) -> None:
    job = make_post_call_job(tenant_id=acme.tenant.id, conversation_id="conv_dead")
    [message_id] = kill(dead_broker, Envelope.of(job))

    def listed(query: str) -> list[str]:
        result = client.simulate_get(LETTERS, query_string=query, headers=viewer)
        assert result.status_code == 200, result.text
        return [letter["id"] for letter in result.json["dead_letters"]]

    everything = client.simulate_get(LETTERS, headers=viewer).json["dead_letters"]
    assert [letter["id"] for letter in everything] == [message_id]
    assert everything[0]["exception_type"] == "PermanentError"
    assert everything[0]["job_id"] == job.job_id
    assert everything[0]["payload"]["conversation_id"] == "conv_dead"
    assert "traceback" not in everything[0]
    assert listed("queue=calls.transcript&actor=fetch_transcript") == [message_id]
    assert listed("error=permanenterror&since=1h&tenant=acme") == [message_id]
    assert listed("queue=calls.analyze") == []
    assert listed("error=ValueError") == []
    assert listed("tenant=globex") == []
    assert listed(f"job={job.job_id}") == [message_id]
    assert listed("job=another-job") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("queue=nope", "queue"),
        ("actor=nope", "actor"),
        ("since=yesterday", "since"),
        ("since=99999999d", "since"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("jobs=job-1", "jobs"),
        ("actor_name=fetch_transcript", "actor_name"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(
    client: testing.TestClient, query: str, field: str
) -> None:
    result = client.simulate_get(LETTERS, query_string=query, headers=_bearer(ADMIN_TOKEN))

    problem = assert_problem(result, 422)
    assert problem["errors"][0]["field"] == field


def test_an_unknown_queue_lists_the_known_ones(client: testing.TestClient) -> None:
    result = client.simulate_get(LETTERS, query_string="queue=nope", headers=_bearer(ADMIN_TOKEN))

    assert "calls.transcript" in assert_problem(result, 422)["detail"]


def test_one_dead_letter_in_full_and_404_when_unknown(
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    viewer: dict[str, str],
) -> None:
    [message_id] = kill(dead_broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))

    found = client.simulate_get(f"{LETTERS}/{message_id}", headers=viewer)
    unknown = client.simulate_get(f"{LETTERS}/no-such-id", headers=viewer)

    assert found.status_code == 200
    assert "PermanentError: vendor refused" in found.json["traceback"]
    assert found.json["options"]["contract"] == "PostCallJobData"
    assert found.json["payload"]["tenant_id"] == acme.tenant.id
    assert "no-such-id" in assert_problem(unknown, 404)["detail"]


# replaying and purging ---------------------------------------------------------------


def test_a_replay_requeues_the_message_takes_its_job_out_of_failed_and_audits_the_token(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    contract = make_post_call_job(tenant_id=acme.tenant.id)
    message_id = failed_job(store, dead_broker, contract)
    assert _status(store, contract.job_id) == "failed"

    result = client.simulate_post(
        f"{LETTERS}/{message_id}/replay", json={"reason": "vendor fixed"}, headers=admin
    )
    again = client.simulate_post(
        f"{LETTERS}/{message_id}/replay", json={"reason": "again"}, headers=admin
    )

    assert result.status_code == 200, result.text
    assert result.json["outcome"] == "replayed"
    assert result.json["job_id"] == contract.job_id
    assert "back to processing" in result.json["message"]
    assert _status(store, contract.job_id) == "processing"
    assert _letters(dead_broker).get(message_id) is None
    depths = queue_depths(dead_broker.client, dead_broker.namespace, ["calls.transcript"])
    assert depths["calls.transcript"].ready == 1
    assert_problem(again, 404)
    entries = client.simulate_get(
        "/api/admin/audit", query_string=f"target={message_id}", headers=admin
    ).json["entries"]
    assert [(e["actor"], e["action"], e["reason"], e["outcome"]) for e in entries] == [
        ("ana", "replay", "again", "gone"),
        ("ana", "replay", "vendor fixed", "replayed"),
    ]


def test_an_invalid_payload_is_not_replayed_409_says_to_edit_it(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    [message_id] = kill(dead_broker, _broken(acme.tenant.id))

    result = client.simulate_post(
        f"{LETTERS}/{message_id}/replay", json={"reason": "retry"}, headers=admin
    )

    problem = assert_problem(result, 409)
    assert "PUT" in problem["detail"]
    assert {"field": "payload.job_id", "message": "Field required"} in problem["errors"]
    assert _letters(dead_broker).get(message_id) is not None
    [entry] = SqlAudit(store.engine).entries(target=message_id)
    assert entry.outcome.startswith("skipped: invalid payload: ")


def test_a_purge_deletes_the_dead_letter_and_its_job_stays_failed(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
) -> None:
    contract = make_post_call_job(tenant_id=acme.tenant.id)
    message_id = failed_job(store, dead_broker, contract)

    result = client.simulate_post(
        f"{LETTERS}/{message_id}/purge", json={"reason": "duplicate"}, headers=_bearer(ADMIN_TOKEN)
    )
    gone = client.simulate_post(
        f"{LETTERS}/{message_id}/purge", json={"reason": "again"}, headers=_bearer(ADMIN_TOKEN)
    )

    assert result.status_code == 200, result.text
    assert result.json == {
        "outcome": "purged",
        "message": f"purged {message_id} from calls.transcript",
        "job_id": contract.job_id,
    }
    assert_problem(gone, 404)
    assert _letters(dead_broker).get(message_id) is None
    assert _status(store, contract.job_id) == "failed"
    entries = SqlAudit(store.engine).entries(target=message_id)
    assert [(e.actor, e.outcome) for e in entries] == [
        ("bootstrap-admin", "gone"),
        ("bootstrap-admin", "purged"),
    ]


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": "  "}, {"reason": 3}, {"reason": "x" * 501}],
    ids=["none", "blank", "int", "too-long"],
)
@pytest.mark.parametrize("action", ["replay", "purge"])
def test_a_change_without_a_reason_is_a_422_naming_reason(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    body: dict[str, Any],
    action: str,
) -> None:
    [message_id] = kill(dead_broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))

    result = client.simulate_post(
        f"{LETTERS}/{message_id}/{action}", json=body, headers=_bearer(ADMIN_TOKEN)
    )

    assert assert_problem(result, 422)["errors"][0]["field"] == "reason"
    assert _letters(dead_broker).get(message_id) is not None
    assert SqlAudit(store.engine).entries() == []


# editing -----------------------------------------------------------------------------


def test_an_edit_the_contract_accepts_is_kept_and_audited_with_its_diff(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    [message_id] = kill(dead_broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))
    letter = _letters(dead_broker).get(message_id)
    assert letter is not None
    payload = {**letter.payload, "duration_secs": 120}

    kept = client.simulate_put(
        f"{LETTERS}/{message_id}/payload",
        json={"payload": payload, "reason": "wrong duration"},
        headers=admin,
    )
    unchanged = client.simulate_put(
        f"{LETTERS}/{message_id}/payload",
        json={"payload": payload, "reason": "look"},
        headers=admin,
    )

    assert kept.status_code == 200, kept.text
    assert kept.json == {
        "outcome": "kept",
        "message": f"kept the edited payload of {message_id}",
    }
    assert unchanged.json["outcome"] == "unchanged"
    edited = _letters(dead_broker).get(message_id)
    assert edited is not None
    assert edited.payload["duration_secs"] == 120
    entry = SqlAudit(store.engine).entries(target=message_id)[-1]
    assert (entry.actor, entry.action, entry.reason, entry.outcome) == (
        "ana",
        "edit",
        "wrong duration",
        "kept",
    )
    assert entry.diff is not None
    assert '+  "duration_secs": 120,' in entry.diff


def test_a_rejected_edit_is_a_422_with_the_violations_and_changes_nothing(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    message_id, before = _dead_post_call(dead_broker, acme)

    result = client.simulate_put(
        f"{LETTERS}/{message_id}/payload",
        json={"payload": {**before.payload, "duration_secs": "long"}, "reason": "try"},
        headers=admin,
    )

    problem = assert_problem(result, 422)
    assert [error["field"] for error in problem["errors"]] == ["payload.duration_secs"]
    assert "nothing changed" in problem["detail"]
    assert _letters(dead_broker).get(message_id) == before
    [entry] = SqlAudit(store.engine).entries(target=message_id)
    assert entry.outcome.startswith("rejected: PostCallJobData: duration_secs")
    assert entry.diff


def test_an_edit_of_an_unknown_dead_letter_is_a_404_and_one_without_payload_a_422(
    client: testing.TestClient, admin: dict[str, str]
) -> None:
    unknown = client.simulate_put(
        f"{LETTERS}/no-such-id/payload", json={"payload": {}, "reason": "r"}, headers=admin
    )
    missing = client.simulate_put(
        f"{LETTERS}/no-such-id/payload", json={"reason": "r"}, headers=admin
    )

    assert_problem(unknown, 404)
    assert assert_problem(missing, 422)["errors"][0]["field"] == "payload"


# roles -------------------------------------------------------------------------------


CHANGES = [
    ("POST", "replay", {"reason": "r"}),
    ("POST", "purge", {"reason": "r"}),
    ("PUT", "payload", {"payload": {}, "reason": "r"}),
]


@pytest.mark.parametrize(("method", "action", "body"), CHANGES)
def test_a_viewer_may_look_but_not_change(
    client: testing.TestClient,
    store: Store,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    viewer: dict[str, str],
    method: str,
    action: str,
    body: dict[str, Any],
) -> None:
    [message_id] = kill(dead_broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))

    result = client.simulate_request(
        method, f"{LETTERS}/{message_id}/{action}", json=body, headers=viewer
    )

    assert "viewer" in assert_problem(result, 403)["detail"]
    assert client.simulate_get("/api/admin/audit", headers=viewer).json == {"entries": []}
    assert _letters(dead_broker).get(message_id) is not None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", LETTERS, None),
        ("GET", f"{LETTERS}/some-id", None),
        ("GET", "/api/admin/audit", None),
        *((method, f"{LETTERS}/some-id/{action}", body) for method, action, body in CHANGES),
    ],
)
def test_a_tenant_key_is_403_and_no_token_401_everywhere(
    client: testing.TestClient,
    acme: TenantFixture,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    as_tenant = client.simulate_request(method, path, json=body, headers=_bearer(acme.key))
    anonymous = client.simulate_request(method, path, json=body)

    assert_problem(as_tenant, 403)
    assert_problem(anonymous, 401)


def test_the_audit_log_filters_by_action_newest_first(
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
    viewer: dict[str, str],
) -> None:
    first, second = kill(
        dead_broker,
        Envelope.of(make_post_call_job(tenant_id=acme.tenant.id, conversation_id="conv_1")),
        Envelope.of(make_post_call_job(tenant_id=acme.tenant.id, conversation_id="conv_2")),
    )
    client.simulate_post(f"{LETTERS}/{first}/purge", json={"reason": "a"}, headers=admin)
    client.simulate_post(f"{LETTERS}/{second}/replay", json={"reason": "b"}, headers=admin)

    def targets(query: str) -> list[str]:
        result = client.simulate_get("/api/admin/audit", query_string=query, headers=viewer)
        assert result.status_code == 200, result.text
        return [entry["target"] for entry in result.json["entries"]]

    assert targets("") == [second, first]
    assert targets("action=purge") == [first]
    assert targets("limit=1") == [second]
    for query, field in (("limit=0", "limit"), ("action=bogus", "action"), ("actor=ana", "actor")):
        result = client.simulate_get("/api/admin/audit", query_string=query, headers=viewer)
        assert assert_problem(result, 422)["errors"][0]["field"] == field


def test_an_unreachable_broker_is_a_503(make_client: ClientFactory) -> None:
    result = make_client().simulate_get(LETTERS, headers=_bearer(ADMIN_TOKEN))

    assert_problem(result, 503)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant_id", "another-tenant"),
        ("job_id", "another-job"),
        ("correlation_id", "conv_someone_else"),
        ("conversation_id", "conv_someone_else"),
        ("schema_version", 2),
    ],
)
def test_an_edit_may_not_move_a_message_to_another_tenant_job_or_call(
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
    field: str,
    value: object,
) -> None:
    message_id, before = _dead_post_call(dead_broker, acme)
    edited = {**before.payload, field: value}
    if field == "correlation_id":
        edited["conversation_id"] = value  # a call's correlation is its conversation
        field = "conversation_id"

    result = client.simulate_put(
        f"{LETTERS}/{message_id}/payload",
        json={"payload": edited, "reason": "move it"},
        headers=admin,
    )

    problem = assert_problem(result, 422)
    assert [error["field"] for error in problem["errors"]] == [f"payload.{field}"]
    assert "the message's own" in problem["errors"][0]["message"]
    assert _letters(dead_broker).get(message_id) == before


def test_an_edit_that_adds_a_field_the_contract_does_not_have_is_refused(
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    message_id, before = _dead_post_call(dead_broker, acme)

    result = client.simulate_put(
        f"{LETTERS}/{message_id}/payload",
        json={"payload": {**before.payload, "duration_sec": 120}, "reason": "typo"},
        headers=admin,
    )

    problem = assert_problem(result, 422)
    assert problem["errors"] == [
        {"field": "payload.duration_sec", "message": "not a field of PostCallJobData"}
    ]
    assert _letters(dead_broker).get(message_id) == before


# never cached, never sniffed ----------------------------------------------------------


def test_every_admin_answer_is_marked_never_to_be_cached_or_sniffed(
    make_client: ClientFactory,
    client: testing.TestClient,
    dead_broker: SwitchboardBroker,
    acme: TenantFixture,
    admin: dict[str, str],
) -> None:
    [message_id] = kill(dead_broker, Envelope.of(make_post_call_job(tenant_id=acme.tenant.id)))

    answers = {
        "list": client.simulate_get(LETTERS, headers=admin),
        "one, with its traceback": client.simulate_get(f"{LETTERS}/{message_id}", headers=admin),
        "audit": client.simulate_get("/api/admin/audit", headers=admin),
        "replay": client.simulate_post(
            f"{LETTERS}/{message_id}/replay", json={"reason": "fixed"}, headers=admin
        ),
        "unknown letter": client.simulate_get(f"{LETTERS}/no-such-id", headers=admin),
        "no token": client.simulate_get(LETTERS),
        "unknown path": client.simulate_get("/api/admin/no-such-thing", headers=admin),
        "wrong method": client.simulate_delete("/api/admin/audit", headers=admin),
        "broker down": make_client().simulate_get(LETTERS, headers=admin),
    }

    statuses = {name: result.status_code for name, result in answers.items()}
    assert statuses == {
        "list": 200,
        "one, with its traceback": 200,
        "audit": 200,
        "replay": 200,
        "unknown letter": 404,
        "no token": 401,
        "unknown path": 404,
        "wrong method": 405,
        "broker down": 503,
    }
    for name, result in answers.items():
        assert result.headers.get("cache-control") == "no-store", name
        assert result.headers.get("x-content-type-options") == "nosniff", name
