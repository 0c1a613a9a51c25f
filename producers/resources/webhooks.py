"""``POST /api/webhooks/elevenlabs/call-ended``: the post-call webhook intake.

Read the raw body once (bounded), verify the signature, parse, resolve the tenant by
agent, record the job in the ledger (committed before answering), publish its first
contract, answer. If the broker is down the job stays pending in the ledger and the
scheduler's relay publishes it later: the answer is still 202. A duplicate delivery of
the same conversation answers 200 with the first job's id and publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from contracts.errors import TransientError
from infra.bus.publishing import Envelope, Publisher
from infra.logs import bind_context, get_logger
from infra.store.protocols import JobLedger, TenantDirectory
from producers import elevenlabs
from producers.errors import ProblemError

SOURCE = "elevenlabs"

_log = get_logger(__name__)


def _read_body(req: falcon.Request, max_bytes: int) -> bytes:
    too_large = falcon.HTTPContentTooLarge(
        title="Content Too Large", description=f"the body must be at most {max_bytes} bytes"
    )
    if req.content_length is not None and req.content_length > max_bytes:
        raise too_large
    # Without a Content-Length (chunked transfer) falcon's bounded stream reads nothing:
    # read the raw stream then, still bounded by the limit.
    stream = req.bounded_stream if req.content_length is not None else req.stream
    body: bytes = stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise too_large
    return body


class CallEndedWebhook:
    """The ElevenLabs post-call webhook.

    Args:
        tenants: Resolves the agent id to its tenant.
        ledger: The inbox; every accepted call is committed here before the answer.
        publisher: Puts the first contract on the bus.
        secret: The webhook's HMAC secret; None answers 503 until one is configured.
        tolerance_s: Largest accepted signature age (and future skew).
        max_body_bytes: Larger bodies get 413.
        clock: Current unix time.
    """

    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        ledger: JobLedger,
        publisher: Publisher,
        secret: str | None,
        tolerance_s: float,
        max_body_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self._tenants = tenants
        self._ledger = ledger
        self._publisher = publisher
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Accept a finished call (202), a duplicate (200) or an ignored event type (200)."""
        body = _read_body(req, self._max_body_bytes)
        if self._secret is None:
            raise falcon.HTTPServiceUnavailable(
                title="Webhook secret not configured",
                description="set SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET "
                "(or ELEVENLABS_WEBHOOK_SECRET) and restart the API",
            )
        elevenlabs.verify_signature(
            req.get_header(elevenlabs.SIGNATURE_HEADER),
            body,
            secret=self._secret,
            now=self._clock(),
            tolerance_s=self._tolerance_s,
        )
        document = elevenlabs.parse_json(body)
        kind_of_event = elevenlabs.event_type(document)
        if kind_of_event != elevenlabs.TRANSCRIPTION:
            resp.media = {"status": "ignored", "type": kind_of_event}
            return
        data = elevenlabs.TranscriptionEvent.model_validate(document).data
        with bind_context(correlation_id=data.conversation_id):
            self._accept(data, body, resp)

    def _accept(self, data: elevenlabs.CallData, body: bytes, resp: falcon.Response) -> None:
        binding = self._tenants.agent(data.agent_id)
        if binding is None:
            self._ledger.record_rejection(
                source=SOURCE,
                external_id=data.conversation_id,
                reason=f"unknown agent {data.agent_id}",
                payload=body,
            )
            _log.warning("webhook for an unknown agent", agent_id=data.agent_id)
            raise ProblemError(
                falcon.HTTP_404,
                title="Unknown agent",
                detail=f"agent {data.agent_id} is not bound to a tenant",
            )
        kind = elevenlabs.job_kind(binding, data)
        contract = elevenlabs.to_contract(data, binding=binding, kind=kind, job_id=uuid.uuid4().hex)
        accepted = self._ledger.accept(
            source=SOURCE,
            external_id=data.conversation_id,
            tenant_id=binding.tenant.id,
            kind=kind,
            contract=type(contract).__name__,
            payload=contract.model_dump(mode="json"),
            correlation_id=data.conversation_id,
            job_id=contract.job_id,
        )
        answer = {"job_id": accepted.job_id, "conversation_id": data.conversation_id}
        if not accepted.created:
            _log.info("duplicate webhook", job_id=accepted.job_id)
            resp.media = {**answer, "status": "duplicate", "duplicate": True}
            return
        self._publish(contract.job_id, Envelope.of(contract))
        resp.status = falcon.HTTP_202
        resp.media = {**answer, "status": "queued"}

    def _publish(self, job_id: str, envelope: Envelope) -> None:
        try:
            self._publisher.publish(envelope)
        except TransientError as error:
            # The ledger row is committed and unpublished: the scheduler's relay will
            # publish it when the broker is back, so the caller still gets its 202.
            _log.warning(
                "broker unavailable; job left for the relay", job_id=job_id, error=str(error)
            )
            return
        self._ledger.mark_published(job_id)
        _log.info("job queued", job_id=job_id, queue=envelope.queue, actor=envelope.actor)
