"""Correctly signed, hostile webhook bodies: never a 5xx, always a usable answer.

A deterministic corpus (seeded ``random.Random``) of bodies a broken or malicious
sender could sign: deep nesting, numbers and times out of range, ``NaN``, NUL and lone
surrogates in every string and key, ids that are not ids, wrong types everywhere,
truncated JSON, bytes that are not UTF-8, random mutations. Every answer must be
2xx or 4xx; a 4xx is ``application/problem+json``; a 422 names fields by the sender's
paths; an accepted body left a contract that validates again from the inbox.

The core of the corpus (strings, ids, numbers, types: what reaches the store) runs on
SQLite and on PostgreSQL, which refuses NUL in text.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from contracts import HealthCheckJobData, PostCallJobData
from infra.bus.publishing import InMemoryPublisher
from infra.store.tables import JOBS
from tests.producers.api_support import (
    ADMIN_TOKEN,
    HEALTH_AGENT,
    NOW,
    PROBLEM_JSON,
    current_payload,
    legacy_payload,
    post_body,
)
from tests.producers.conftest import ClientFactory, Store, TenantFixture, open_store

SEED = 20_260_301
MAX_BODY_BYTES = 2 * 1024 * 1024
"""Room for 100,000 nested levels: the depth check, not the size limit, must answer."""

POISONS = ("\x00", "\ud800", "\udfff", "\udbff")
"""NUL and lone surrogates (high, low, last high)."""

BAD_IDS = ("conv/1", "conv 1", "c" * 129, "", "conv\n", "conv_\u00e9", "..%2F", "conv;1", "\t")
WRONG_TYPES: tuple[Any, ...] = (None, True, 0, -1, 1.5, "", "text", [], {}, [None], {"k": None})
INTERNALS = (
    "[",
    "list[",
    "function-",
    "WebhookTurn",
    "LegacyTranscript",
    "CallData",
    "CallMetadata",
    "DynamicVariables",
    "InitiationData",
    "TranscriptionEvent",
    "EventHeader",
)
"""What pydantic puts in locations and a sender never wrote."""

CONTRACTS: dict[str, type[PostCallJobData] | type[HealthCheckJobData]] = {
    "PostCallJobData": PostCallJobData,
    "HealthCheckJobData": HealthCheckJobData,
}

JsonPath = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """One signed body and, when it is known, the answer it must get.

    Attributes:
        label: What was done to the body.
        body: The raw bytes sent.
        status: The status it must get (None: any 2xx or 4xx).
        field: The one field its 422 must name.
    """

    label: str
    body: bytes
    status: int | None = None
    field: str | None = None


# Building the corpus.


class Ids:
    """Fresh conversation ids, so that every accepted body is a new job."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"conv_h{self._n}"


def with_thread(conversation_id: str) -> dict[str, Any]:
    """A current-shape call carrying every dynamic variable the pipeline reads."""
    variables = {"user_name": "Ada", "thread_id": "thread-1", "call_type": "general"}
    return current_payload(
        conversation_id, conversation_initiation_client_data={"dynamic_variables": variables}
    )


def templates(ids: Ids) -> list[dict[str, Any]]:
    """Valid payloads: current shape, older shape, a health-check agent's call."""
    return [with_thread(ids()), legacy_payload(ids()), health_call(ids())]


def encode(document: Any) -> bytes:
    """JSON as a sender writes it; lone surrogates and NUL become ``\\u`` escapes."""
    return json.dumps(document).encode()


def paths(node: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every path below ``node``, parents first."""
    children: Iterator[tuple[str | int, Any]]
    if isinstance(node, dict):
        children = iter(node.items())
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return
    for key, value in children:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def get_at(document: Any, path: JsonPath) -> Any:
    node = document
    for part in path:
        node = node[part]
    return node


def replaced(document: Any, path: JsonPath, value: Any) -> Any:
    """A copy of ``document`` with ``value`` at ``path``."""
    copied = copy.deepcopy(document)
    get_at(copied, path[:-1])[path[-1]] = value
    return copied


def renamed(document: Any, path: JsonPath, key: str) -> Any:
    """A copy of ``document`` whose key at ``path`` is ``key`` (order kept)."""
    copied = copy.deepcopy(document)
    parent = get_at(copied, path[:-1])
    items = list(parent.items())
    parent.clear()
    parent.update((key if k == path[-1] else k, v) for k, v in items)
    return copied


def dotted(path: JsonPath) -> str:
    return ".".join(str(part) for part in path)


def poisoned(text: str, poison: str, where: str) -> str:
    middle = len(text) // 2
    return {
        "prefix": poison + text,
        "middle": text[:middle] + poison + text[middle:],
        "suffix": text + poison,
    }[where]


def poisoned_strings(document: dict[str, Any]) -> Iterator[Case]:
    """NUL or a lone surrogate in every string value and every key."""
    for path in list(paths(document)):
        value = get_at(document, path)
        for poison in POISONS:
            if isinstance(value, str):
                for where in ("prefix", "middle", "suffix"):
                    yield Case(
                        f"{poison!r} {where} of the value at {dotted(path)}",
                        encode(replaced(document, path, poisoned(value, poison, where))),
                        422,
                        dotted(path),
                    )
            if isinstance(path[-1], str):
                key = poisoned(path[-1], poison, "middle")
                yield Case(
                    f"{poison!r} in the key {dotted(path)}",
                    encode(renamed(document, path, key)),
                    422,
                    dotted((*path[:-1], key)),
                )


def raw_poison_bytes(document: dict[str, Any]) -> Iterator[Case]:
    """NUL and UTF-8-encoded surrogates written raw inside the ids, not as escapes."""
    body = encode(document)
    for name in ("conversation_id", "agent_id"):
        value = document["data"][name].encode()
        for raw in (b"\x00", b"\xed\xa0\x80", b"\xed\xbf\xbf"):
            yield Case(
                f"raw {raw!r} inside data.{name}",
                body.replace(b'"' + value + b'"', b'"' + value[:2] + raw + value[2:] + b'"', 1),
                422,
            )


def bad_ids(ids: Ids) -> Iterator[Case]:
    """Ids that are not 1-128 letters, digits and ``._:-``; and the longest that is."""
    id_paths: list[JsonPath] = [
        ("data", "conversation_id"),
        ("data", "agent_id"),
        ("data", "conversation_initiation_client_data", "dynamic_variables", "thread_id"),
    ]
    for path in id_paths:
        for bad in BAD_IDS:
            document = replaced(with_thread(ids()), path, bad)
            yield Case(f"{dotted(path)} = {bad[:20]!r}", encode(document), 422, dotted(path))
    yield Case("a 128-character conversation id", encode(current_payload("c" * 128)), 202)
    yield Case(
        "a 128-character unknown agent id",
        encode(current_payload(ids(), agent_id="a" * 128)),
        404,
    )


def out_of_range_numbers(ids: Ids) -> Iterator[Case]:
    """Times and durations outside what a contract or a database column holds."""
    start = ("data", "metadata", "start_time_unix_secs")
    duration = ("data", "metadata", "call_duration_secs")
    turn_time = ("data", "transcript", 0, "time_in_call_secs")
    event_time = ("event_timestamp",)
    refused: list[tuple[JsonPath, Any]] = [
        (start, 10**19),
        (start, 253_402_300_800),
        (start, -1),
        (start, 7_258_118_400),
        (duration, 2**31),
        (duration, 2**63),
        (duration, 2**63 - 1),
        (duration, -(2**63) - 1),
        (duration, -1),
        (turn_time, -0.5),
        (event_time, -1),
        (event_time, 10**19),
        (("data", "analysis", "cost"), 2**64),
        (("data", "a_field_added_next_year", "ignored"), -(2**70)),
    ]
    for path, number in refused:
        document = replaced(current_payload(ids()), path, number)
        yield Case(f"{dotted(path)} = {number}", encode(document), 422, dotted(path))
    accepted: list[tuple[JsonPath, Any]] = [
        (start, 7_258_118_399),
        (start, 0),
        (duration, 2**31 - 1),
        (duration, 0),
        (turn_time, 1e308),
        (("data", "analysis", "cost"), 2**63 - 1),
        (("data", "analysis", "cost"), -(2**63)),
    ]
    for path, number in accepted:
        document = replaced(current_payload(ids()), path, number)
        yield Case(f"{dotted(path)} = {number} (in range)", encode(document), 202)


def wrong_types(template: Callable[[str], dict[str, Any]], ids: Ids) -> Iterator[Case]:
    """Every value of the payload replaced by every JSON type in turn (a new call each)."""
    for path in list(paths(template("conv_shape"))):
        for value in WRONG_TYPES:
            document = replaced(template(ids()), path, value)
            yield Case(f"{dotted(path)} = {value!r}", encode(document))


def health_call(conversation_id: str) -> dict[str, Any]:
    return current_payload(conversation_id, agent_id=HEALTH_AGENT)


def labelled(template: str, case: Case) -> Case:
    return dataclasses.replace(case, label=f"{template} shape: {case.label}")


def core_corpus() -> list[Case]:
    """What reaches the store when validation lets it: run on every database."""
    ids = Ids()
    cases: list[Case] = []
    # The health-check call has the current shape: its strings and keys are the first's.
    for name, template in (("current", with_thread), ("legacy", legacy_payload)):
        cases += [labelled(name, c) for c in poisoned_strings(template(ids()))]
        cases += [labelled(name, c) for c in raw_poison_bytes(template(ids()))]
    shapes = (("current", with_thread), ("legacy", legacy_payload), ("health", health_call))
    for name, template in shapes:
        cases += [labelled(name, c) for c in wrong_types(template, ids)]
    cases += bad_ids(ids)
    cases += out_of_range_numbers(ids)
    return cases


def nested_text(levels: int, kind: str) -> str:
    opening, closing = ("[", "]") if kind == "array" else ('{"a":', "}")
    return opening * levels + "0" + closing * levels


def deep_nesting(ids: Ids) -> Iterator[Case]:
    """65, 1,000 and 100,000 levels, in data and in fields nobody reads."""
    places = [
        ("data", "transcript"),
        ("data", "metadata"),
        ("data", "analysis"),
        ("data", "a_field_added_next_year"),
        ("extension",),
    ]
    for levels in (65, 1_000, 100_000):
        for kind in ("array", "object"):
            for place in places:
                marker = "__DEEP__"
                document = current_payload(ids())
                if place == ("extension",):
                    document["extension"] = marker
                else:
                    document = replaced(document, place, marker)
                body = encode(document).replace(
                    f'"{marker}"'.encode(), nested_text(levels, kind).encode()
                )
                yield Case(f"{levels} nested {kind}s at {dotted(place)}", body, 422)
    yield Case("a body that is 100,000 nested arrays", nested_text(100_000, "array").encode(), 422)


def literal_numbers(ids: Ids) -> Iterator[Case]:
    """``NaN``, infinities, ``1e400`` and a 5,000-digit integer, written as literals."""
    slots = [
        ("data", "metadata", "start_time_unix_secs"),
        ("data", "metadata", "call_duration_secs"),
        ("data", "transcript", 0, "time_in_call_secs"),
        ("event_timestamp",),
        ("data", "analysis", "cost"),
        ("data", "a_field_added_next_year", "ignored"),
    ]
    literals = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5_000, "-" + "1" * 5_000]
    for slot in slots:
        for literal in literals:
            marker = "__NUMBER__"
            document = replaced(current_payload(ids()), slot, marker)
            body = encode(document).replace(f'"{marker}"'.encode(), literal.encode())
            # 1e400 is valid JSON (an infinite float) where nobody reads it.
            read = slot[1:2] != ("analysis",) and slot[1:2] != ("a_field_added_next_year",)
            status = 422 if read or not literal.endswith("e400") else None
            yield Case(f"{literal[:12]} at {dotted(slot)}", body, status)


def truncations(rng: random.Random, ids: Ids) -> Iterator[Case]:
    """Valid bodies cut short at random places."""
    for template in templates(ids):
        body = encode(template)
        for cut in sorted(rng.sample(range(len(body) - 1), 60)):
            yield Case(f"truncated at byte {cut} of {len(body)}", body[:cut], 422)


def non_utf8(rng: random.Random, ids: Ids) -> Iterator[Case]:
    """Bytes that are not UTF-8 inserted at random places, and other encodings."""
    invalid = [b"\xff", b"\xfe", b"\xc0\x80", b"\xe9", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xc3"]
    for template in templates(ids):
        body = encode(template)
        for at in rng.sample(range(len(body)), 50):
            raw = rng.choice(invalid)
            yield Case(f"{raw!r} inserted at byte {at}", body[:at] + raw + body[at:], 422)
    for encoding in ("utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        text = json.dumps(current_payload(ids()), ensure_ascii=False)
        yield Case(f"a valid body in {encoding}", text.encode(encoding))
    yield Case("latin-1 text in a string", encode(current_payload(ids()))[:-3] + b'\xe9"}}', 422)


def random_hostile_value(rng: random.Random) -> Any:
    choices: list[Any] = [
        *WRONG_TYPES,
        *POISONS,
        "ok\x00",
        2**63,
        -(2**63) - 1,
        2**31,
        1e308,
        -1e-308,
        "x" * 300,
        "\u202e\u200b",
        "\U0001f600",
        [[[[[]]]]],
        {"": {"": {"": None}}},
        "9" * 200,
    ]
    return rng.choice(choices)


def random_mutations(rng: random.Random, ids: Ids, count: int) -> Iterator[Case]:
    """Templates with one to three random values replaced by hostile ones."""
    for n in range(count):
        document: Any = rng.choice(templates(ids))
        for _ in range(rng.randint(1, 3)):
            candidates = list(paths(document))
            if not candidates:
                break
            document = replaced(document, rng.choice(candidates), random_hostile_value(rng))
        yield Case(f"random mutation {n}", encode(document))


def structural_corpus() -> list[Case]:
    """Nesting, literals, truncation, encodings and random mutations (parser-level)."""
    rng = random.Random(SEED)  # noqa: S311 (a reproducible corpus, not a secret)
    ids = Ids()
    cases: list[Case] = []
    cases += deep_nesting(ids)
    cases += literal_numbers(ids)
    cases += truncations(rng, ids)
    cases += non_utf8(rng, ids)
    cases += [
        Case(f"top-level {text}", text.encode(), 422)
        for text in ("[]", '"text"', "null", "0", "true", "[{}]", " ")
    ]
    cases += random_mutations(rng, ids, 600)
    return cases


# Checking the answers.


def resolvable(document: Any, field: str, *, missing: bool) -> bool:
    """Whether ``field`` is a path of ``document`` (its last key may be missing)."""

    def walk(node: Any, rest: str) -> bool:
        if isinstance(node, dict):
            for key, value in node.items():
                if rest == key or (
                    rest.startswith(f"{key}.") and walk(value, rest[len(key) + 1 :])
                ):
                    return True
            return missing and "." not in rest
        if isinstance(node, list):
            head, _, tail = rest.partition(".")
            if head.isdigit() and int(head) < len(node):
                return not tail or walk(node[int(head)], tail)
        return False

    return field == "body" or walk(document, field)


def sent_document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def problems_of(case: Case, result: testing.Result) -> list[str]:
    """What is wrong with the answer to ``case`` (nothing, hopefully)."""
    status = result.status_code
    if status >= 500:
        return [f"{status}: {result.text[:200]}"]
    if case.status is not None and status != case.status:
        return [f"expected {case.status}, got {status}: {result.text[:200]}"]
    if status < 400:
        return []
    if result.headers.get("content-type") != PROBLEM_JSON:
        return [f"{status} with content type {result.headers.get('content-type')}"]
    try:
        document = json.loads(result.content)
    except ValueError:
        return [f"{status} with a body that is not JSON"]
    if document.get("status") != status:
        return [f"{status} whose problem document says status {document.get('status')}"]
    if status != 422:
        return []
    return field_problems(case, document.get("errors", []))


def field_problems(case: Case, errors: list[dict[str, Any]]) -> list[str]:
    fields = [str(e["field"]) for e in errors]
    found = [f"field {f!r} names {i!r}" for f in fields for i in INTERNALS if i in f]
    found += [f"field {e['field']!r} has no message" for e in errors if not e.get("message")]
    # A turn's error may come with one on the transcript (the other shape it could have
    # had): the precise path must come first.
    if case.field is not None and fields[:1] != [case.field]:
        found.append(f"expected the first error on {case.field!r}, got {fields}")
    sent = sent_document(case.body)
    if sent is not None:
        found += [
            f"field {e['field']!r} is not in the body"
            for e in errors
            if not resolvable(sent, str(e["field"]), missing=e.get("message") == "is required")
        ]
    return found


def stored_contract_problems(
    store: Store, publisher: InMemoryPublisher, result: testing.Result
) -> list[str]:
    """An accepted body's contract must validate again from the inbox row."""
    job_id = result.json["job_id"]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).first()
    if row is None:
        return [f"accepted job {job_id} is not in the inbox"]
    contract = CONTRACTS[row.contract].model_validate(row.payload)
    found = []
    if contract.model_dump(mode="json") != row.payload:
        found.append(f"job {job_id}: the stored payload does not round-trip")
    if contract.conversation_id != result.json["conversation_id"]:
        found.append(f"job {job_id}: stored for {contract.conversation_id!r}")
    if result.status_code == 202:
        published = [e.payload for e in publisher.published if e.options["job_id"] == job_id]
        if published != [row.payload]:
            found.append(f"job {job_id}: published {len(published)} times or another payload")
    return found


@dataclasses.dataclass
class Outcome:
    """What a corpus run found."""

    statuses: dict[int, int]
    failures: list[str]
    seconds: float


def run_corpus(
    client: testing.TestClient, store: Store, publisher: InMemoryPublisher, cases: list[Case]
) -> Outcome:
    statuses: dict[int, int] = {}
    failures: list[str] = []
    started = time.perf_counter()
    for case in cases:
        result = post_body(client, case.body)
        statuses[result.status_code] = statuses.get(result.status_code, 0) + 1
        found = problems_of(case, result)
        if not found and result.status_code in (200, 202) and "job_id" in result.json:
            found = stored_contract_problems(store, publisher, result)
        failures += [f"{case.label}: {problem}" for problem in found]
    return Outcome(statuses, failures, time.perf_counter() - started)


def report(outcome: Outcome, cases: list[Case]) -> str:
    shown = "\n".join(outcome.failures[:25])
    return f"{len(outcome.failures)} of {len(cases)} bodies misanswered:\n{shown}"


# The tests.


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The SQL store on SQLite or PostgreSQL (a fresh database either way)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hostile.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.engine.dispose()


@pytest.fixture
def hostile_client(make_client: ClientFactory, acme: TenantFixture) -> testing.TestClient:
    return make_client(max_body_bytes=MAX_BODY_BYTES)


def test_the_corpora_are_deterministic_and_bounded() -> None:
    core, structural = core_corpus(), structural_corpus()

    assert [c.body for c in core] == [c.body for c in core_corpus()]
    assert [c.body for c in structural] == [c.body for c in structural_corpus()]
    assert 300 <= len(core) + len(structural) <= 2_600
    assert len({c.label for c in core}) == len(core)


def test_hostile_strings_ids_numbers_and_types_are_answered_without_a_5xx(
    hostile_client: testing.TestClient, store: Store, publisher: InMemoryPublisher
) -> None:
    cases = core_corpus()

    outcome = run_corpus(hostile_client, store, publisher, cases)

    assert outcome.failures == [], report(outcome, cases)
    assert outcome.statuses.get(422, 0) > len(cases) // 2
    assert outcome.statuses.get(202, 0) > 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_hostile_json_structure_and_encodings_are_answered_without_a_5xx(
    hostile_client: testing.TestClient, store: Store, publisher: InMemoryPublisher
) -> None:
    cases = structural_corpus()

    outcome = run_corpus(hostile_client, store, publisher, cases)

    assert outcome.failures == [], report(outcome, cases)
    assert outcome.statuses.get(422, 0) > len(cases) // 2


@pytest.mark.parametrize(
    "store",
    [
        "sqlite",
        pytest.param(
            "postgres",
            marks=[pytest.mark.postgres],
        ),
    ],
    indirect=True,
)
@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/calls/conv%00x", None),
        ("/api/calls/conv%00x/similar", None),
        ("/api/jobs/job%00x", None),
        ("/api/calls/conv_1", "tenant=ac%00me"),
    ],
    ids=["call", "similar", "job", "tenant-param"],
)
def test_a_nul_in_an_id_of_the_read_api_is_a_4xx_not_a_5xx(
    client: testing.TestClient, store: Store, path: str, query: str | None
) -> None:
    result = client.simulate_get(
        path, query_string=query, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )

    assert 400 <= result.status_code < 500, result.text
    assert result.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_an_unsigned_hostile_body_is_401_before_it_is_parsed(
    hostile_client: testing.TestClient, store: Store
) -> None:
    body = nested_text(100_000, "array").encode()

    result = hostile_client.simulate_post(
        "/api/webhooks/elevenlabs/call-ended",
        body=body,
        headers={"ElevenLabs-Signature": f"t={NOW},v0=00"},
    )

    assert result.status_code == 401
    assert result.headers["content-type"] == PROBLEM_JSON
