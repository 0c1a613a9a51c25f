from __future__ import annotations

import json
import time

import falcon
import pytest

from infra.demo.samples import conversation_document, load_samples, webhook_payload
from infra.demo.signing import sign
from infra.vendors.elevenlabs import parse_conversation
from producers.elevenlabs import TranscriptionEvent, verify_signature

SECRET = "demo-secret"


def test_the_signature_is_accepted_by_the_webhook_verifier() -> None:
    body = b'{"data": {"conversation_id": "c1"}}'
    header = sign(SECRET, body)
    verify_signature(header, body, secret=SECRET, now=time.time(), tolerance_s=60)


def test_a_signature_with_another_secret_or_body_is_rejected() -> None:
    body = b'{"data": {"conversation_id": "c1"}}'
    with pytest.raises(falcon.HTTPUnauthorized):
        verify_signature(sign("other", body), body, secret=SECRET, now=time.time(), tolerance_s=60)
    with pytest.raises(falcon.HTTPUnauthorized):
        verify_signature(
            sign(SECRET, body), body + b" ", secret=SECRET, now=time.time(), tolerance_s=60
        )


def test_the_signature_carries_the_given_timestamp() -> None:
    assert sign(SECRET, b"{}", timestamp=1_700_000_000).startswith("t=1700000000,v0=")


def test_the_samples_cover_every_shape_and_kind() -> None:
    samples = load_samples()
    assert len(samples) == 24
    assert len({s.conversation_id for s in samples}) == 24
    general = [s for s in samples if s.kind == "general"]
    health = [s for s in samples if s.kind == "health_check"]
    assert len(general) >= 15
    assert len(health) >= 5
    assert all(s.answers for s in health)
    assert sum(not s.inline for s in general) >= 1
    assert sum(s.shape == "legacy" for s in samples) >= 3
    units = {a.unit for s in health for a in s.answers}
    assert {"mmHg", "hours"} <= units


def test_every_sample_webhook_parses_as_the_api_reads_it() -> None:
    now = int(time.time())
    for sample in load_samples():
        payload = webhook_payload(sample, agent_id="agent_x", now=now)
        event = TranscriptionEvent.model_validate(json.loads(json.dumps(payload)))
        assert event.data.conversation_id == sample.conversation_id
        assert event.data.agent_id == "agent_x"
        turns = event.data.turns
        if sample.inline:
            assert turns is not None
            assert [(t.role, t.message) for t in turns] == sample.transcript
        else:
            assert turns is None
        if sample.thread_id:
            assert event.data.dynamic_variables.thread_id == sample.thread_id


def test_a_late_conversation_file_reads_as_a_finished_conversation() -> None:
    late = next(s for s in load_samples() if not s.inline)
    document = conversation_document(late, agent_id="agent_x", now=int(time.time()))
    snapshot = parse_conversation(late.conversation_id, json.loads(json.dumps(document)))
    assert snapshot.is_done
    assert [(t.role, t.message) for t in snapshot.transcript] == late.transcript
    assert snapshot.duration_secs == late.duration_secs
