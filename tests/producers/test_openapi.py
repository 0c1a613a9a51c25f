"""``GET /openapi.json``: every route in it, valid OpenAPI 3.1, and true to the answers.

Every producer test's client also checks each answer against the document
(``tests.producers.conformance``); these tests check the document itself.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import falcon
import pytest
from falcon import inspect, testing
from openapi_spec_validator import validate

from contracts.values import CallStatus, ProviderCallStatus
from infra.store.records import (
    CallbackStatus,
    ChildCounts,
    JobStatus,
    JobView,
    MessageStatus,
    StepRecord,
)
from producers.openapi import CONSOLE_PREFIX, OPENAPI_PATH, Route, openapi_document
from producers.operations import PUBLIC, operation, returns
from producers.schemas.health import Alive
from tests.producers.api_support import ADMIN_TOKEN, assert_problem, current_payload, post
from tests.producers.conformance import Checked, ConformingClient
from tests.producers.conftest import ClientFactory, TenantFixture

ROOT = Path(__file__).resolve().parents[2]


def document_of(client: testing.TestClient) -> dict[str, Any]:
    result = client.simulate_get(OPENAPI_PATH)
    assert result.status_code == 200, result.text
    served: dict[str, Any] = result.json
    return served


def test_every_route_the_app_serves_is_documented_and_every_documented_one_is_served(
    client: testing.TestClient,
) -> None:
    served = {
        (route.path, method.method)
        for route in inspect.inspect_routes(client.app)
        for method in route.methods
        if not method.internal
    }
    console = {(path, method) for path, method in served if path.startswith(CONSOLE_PREFIX)}
    documented = {
        (path, method.upper())
        for path, operations in document_of(client)["paths"].items()
        for method in operations
    }

    assert documented == served - console
    assert ("/api/jobs/{job_id}", "GET") in documented
    assert (OPENAPI_PATH, "GET") in documented


def test_the_routes_left_out_are_the_consoles_html_pages(client: testing.TestClient) -> None:
    left_out = [
        route
        for route in inspect.inspect_routes(client.app)
        if route.path.startswith(CONSOLE_PREFIX)
    ]

    assert {route.path for route in left_out} >= {"/admin", "/admin/queues", "/admin/login"}
    for route in left_out:
        assert "producers/console/" in Path(route.source_info).as_posix(), route.path
    page = client.simulate_get("/admin/queues", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert page.headers["content-type"].startswith("text/html")


def test_the_document_is_valid_openapi_3_1_served_to_anyone(client: testing.TestClient) -> None:
    result = client.simulate_get(OPENAPI_PATH)

    assert result.status_code == 200
    assert result.headers["content-type"] == falcon.MEDIA_JSON
    document = result.json
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Switchboard API"
    validate(document)


def test_each_operation_says_who_may_call_it_and_answers_errors_as_problems(
    client: testing.TestClient,
) -> None:
    document = document_of(client)
    schemes = document["components"]["securitySchemes"]

    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}
    assert (schemes["elevenLabsSignature"]["in"], schemes["elevenLabsSignature"]["name"]) == (
        "header",
        "ElevenLabs-Signature",
    )
    assert (schemes["callKaroSignature"]["in"], schemes["callKaroSignature"]["name"]) == (
        "header",
        "X-CallKaro-Signature",
    )
    webhooks = {
        "/api/webhooks/elevenlabs/call-ended": "elevenLabsSignature",
        "/api/webhooks/callkaro": "callKaroSignature",
    }
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            wanted = webhooks.get(path, "bearer" if path.startswith("/api/") else None)
            assert op["security"] == ([{wanted: []}] if wanted else []), (method, path)
            problems = {s: r for s, r in op["responses"].items() if s[0] in "45" or s == "default"}
            if method == "head":
                # No answer to HEAD has a body (RFC 9110, 9.3.2), a problem's neither.
                assert [s for s, r in op["responses"].items() if "content" in r] == [], path
                assert "default" in problems, path
                continue
            if path == "/readyz":
                # Unavailable is a readiness report too, naming the dependency that is down.
                assert problems.pop("503")["content"]["application/json"]

            assert "default" in problems, (method, path)
            for status, response in problems.items():
                assert set(response["content"]) == {"application/problem+json"}, (path, status)
            if wanted:
                assert {"401", "503"} <= set(problems), (method, path)
            if "requestBody" in op:
                assert {"413", "422"} <= set(problems), (method, path)


def test_the_answers_never_to_cache_or_sniff_are_documented_with_their_headers(
    client: testing.TestClient,
) -> None:
    paths = document_of(client)["paths"]
    marked = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method, op in operations.items()
        if all(
            {"Cache-Control", "X-Content-Type-Options"} <= set(response.get("headers", {}))
            for response in op["responses"].values()
        )
    }
    api = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/") and not path.startswith("/api/webhooks/")
        for method in operations
    }

    assert {("DELETE", "/api/admin/calls/{conversation_id}"), ("GET", "/api/users")} <= api
    assert marked == api


def test_the_statuses_the_readme_lists_for_the_webhook_are_documented(
    client: testing.TestClient,
) -> None:
    op = document_of(client)["paths"]["/api/webhooks/elevenlabs/call-ended"]["post"]

    assert set(op["responses"]) == {"200", "202", "401", "404", "413", "422", "503", "default"}
    assert [p["name"] for p in op["parameters"]] == ["Idempotency-Key"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TranscriptionEvent"
    }


def readme_job_states() -> list[str]:
    """The states of the README's one table of job states (under "## Jobs")."""
    readme = (ROOT / "README.md").read_text()
    jobs = readme.split("\n## Jobs\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", jobs, flags=re.MULTILINE)


def enum_of(document: dict[str, Any], schema: str, field: str = "status") -> list[str]:
    values: list[str] = document["components"]["schemas"][schema]["properties"][field]["enum"]
    return values


def test_job_states_are_the_readmes_everywhere_the_api_shows_one(
    client: testing.TestClient,
) -> None:
    document = document_of(client)

    assert readme_job_states() == list(get_args(JobStatus))
    assert enum_of(document, "Job") == enum_of(document, "Call") == readme_job_states()
    assert enum_of(document, "Step") == list(get_args(MessageStatus))


def test_call_states_are_the_call_books_everywhere_the_api_shows_one(
    client: testing.TestClient,
) -> None:
    document = document_of(client)
    written = re.findall(
        r"""status(?:=|": )"(\w+)\"""", (ROOT / "infra/store/dialing.py").read_text()
    )

    assert set(written) <= set(get_args(CallStatus)) | set(get_args(CallbackStatus))
    assert enum_of(document, "UserCall") == enum_of(document, "CallUpdated")
    assert set(enum_of(document, "UserCall")) == set(get_args(CallStatus))
    assert set(enum_of(document, "StatusEvent")) == set(get_args(ProviderCallStatus))
    assert set(get_args(ProviderCallStatus)) < set(get_args(CallStatus))
    assert enum_of(document, "Callback") == list(get_args(CallbackStatus))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_real_answers_of_the_main_endpoints_match_their_documented_schemas(
    client: ConformingClient, acme: TenantFixture
) -> None:
    accepted = post(client, current_payload("conv_spec"))
    post(client, current_payload("conv_spec"))
    post(client, {"type": "post_call_audio", "data": {}})
    client.simulate_get(f"/api/jobs/{accepted.json['job_id']}", headers=bearer(acme.key))
    client.simulate_get("/api/calls/conv_spec", headers=bearer(acme.key))
    user = client.simulate_post(
        "/api/users",
        json={"name": "Ada", "phone": "+14155550100", "local_tz": "UTC", "call_time": "09:00"},
        headers=bearer(acme.key),
    )
    client.simulate_get("/api/users", headers=bearer(acme.key))
    client.simulate_get(user.headers["location"], headers=bearer(acme.key))
    preferences = f"{user.headers['location']}/call-preferences"
    client.simulate_get(preferences, headers=bearer(acme.key))
    client.simulate_put(
        preferences, json={"call_time": "10:00", "local_tz": "UTC"}, headers=bearer(acme.key)
    )
    client.simulate_get(f"{user.headers['location']}/calls", headers=bearer(acme.key))
    client.simulate_get("/api/queue/status", headers=bearer(ADMIN_TOKEN))
    client.simulate_post("/api/queue/trigger", headers=bearer(ADMIN_TOKEN))
    client.simulate_post("/api/queue/trigger", headers=bearer(ADMIN_TOKEN))
    client.simulate_get("/api/jobs/nope", headers=bearer(acme.key))
    client.simulate_get("/api/users?limit=0", headers=bearer(acme.key))
    client.simulate_get("/api/calls/conv_spec")
    client.simulate_get("/healthz")
    client.simulate_get("/readyz")  # its database is never probed here: unavailable

    checked = {(c.template, c.method, c.status) for c in client.checked}
    assert {
        ("/api/webhooks/elevenlabs/call-ended", "POST", "202"),
        ("/api/webhooks/elevenlabs/call-ended", "POST", "200"),
        ("/api/jobs/{job_id}", "GET", "200"),
        ("/api/jobs/{job_id}", "GET", "404"),
        ("/api/calls/{conversation_id}", "GET", "200"),
        ("/api/calls/{conversation_id}", "GET", "401"),
        ("/api/users", "POST", "201"),
        ("/api/users", "GET", "200"),
        ("/api/users", "GET", "422"),
        ("/api/users/{user_id}", "GET", "200"),
        ("/api/users/{user_id}/call-preferences", "GET", "200"),
        ("/api/users/{user_id}/call-preferences", "PUT", "200"),
        ("/api/users/{user_id}/calls", "GET", "200"),
        ("/api/queue/status", "GET", "200"),
        ("/api/queue/trigger", "POST", "202"),
        ("/api/queue/trigger", "POST", "429"),
        ("/healthz", "GET", "200"),
        ("/readyz", "GET", "503"),
    } <= checked
    assert Checked("/api/jobs/{job_id}", "GET", "404", "application/problem+json") in (
        client.checked
    )


class LostJobs:
    """Job queries that find a job in a state no version of the API knows."""

    def job_view(self, job_id: str, *, tenant_id: str | None) -> JobView | None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        step = StepRecord("fetch_transcript", "completed", 1, None, at)
        return JobView(
            job_id=job_id,
            kind="post_call",
            status="lost",  # type: ignore[arg-type]  # what the answer must refuse
            tenant_id=tenant_id,
            tenant_name=None,
            correlation_id="conv_1",
            created_at=at,
            updated_at=at,
            steps=[step],
            children=ChildCounts(),
            failure=None,
            redrives=0,
        )

    def failed_at_intake(self, *, limit: int = 100) -> list[JobView]:
        del limit
        return []


def test_an_answer_its_model_refuses_is_the_apis_500_never_the_clients_422(
    make_client: ClientFactory, acme: TenantFixture
) -> None:
    client = make_client(jobs=LostJobs())

    result = client.simulate_get("/api/jobs/job_1", headers=bearer(ADMIN_TOKEN))

    problem = assert_problem(result, 500)
    assert "lost" not in json.dumps(problem)


class Undeclared:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        del req
        resp.media = {}


class Declared:
    @operation(
        "getThing",
        summary="A thing",
        tag="health",
        access=PUBLIC,
        answers=[returns(200, "The thing.", Alive)],
        store=False,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the thing."""
        del req
        resp.media = {"status": "ok"}


def test_a_responder_without_a_declaration_stops_the_document() -> None:
    with pytest.raises(Exception, match=r"GET /things: add @operation to Undeclared\.on_get"):
        openapi_document([Route("/things", Declared()), Route("/things", Undeclared())])


def test_a_declared_responder_is_documented_from_its_declaration_and_docstring() -> None:
    document = openapi_document([Route("/things/{thing_id}", Declared())])

    op = document["paths"]["/things/{thing_id}"]["get"]
    assert op["operationId"] == "getThing"
    assert op["description"].startswith("Answer the thing.")
    assert op["parameters"] == [
        {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Alive"
    }
    assert set(op["responses"]) == {"200", "default"}
    validate(document)
