"""``POST /api/webhooks/elevenlabs/call-ended``: the post-call webhook intake.

Read the raw body once (bounded), verify the signature, parse it as JSON every store
can hold, validate the call, resolve the tenant by agent, and hand the job to the
intake (``infra.intake``): it is committed to the inbox before the answer, and its
first message reaches the bus without the request waiting on the broker. A duplicate
delivery of the same conversation (for the same tenant) answers 200 with the first
job's id and publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from contracts.fields import IDENTIFIER_PATTERN, MAX_IDENTIFIER_LENGTH, is_identifier
from infra.intake import Intake, Submission
from infra.logs import bind_context, get_logger
from infra.store.protocols import JobLedger, TenantDirectory
from producers import elevenlabs
from producers.errors import ProblemError, unprocessable
from producers.operations import ELEVENLABS, Param, operation, returns
from producers.payloads import parse_document, validate
from producers.request_metrics import webhook_received, webhook_settled
from producers.schemas.intake import WebhookAccepted, WebhookDuplicate, WebhookIgnored

SOURCE = "elevenlabs"
IDEMPOTENCY_HEADER = "Idempotency-Key"

_log = get_logger(__name__)

_KEY_CHARACTERS = IDENTIFIER_PATTERN.removeprefix("^").removesuffix("+$")

IDEMPOTENCY_PARAM = Param(
    IDEMPOTENCY_HEADER,
    "Makes retries of one request safe: the same key with the same body answers the first "
    "answer again (`Idempotent-Replayed: true`); with another body, a 422.",
    {
        "type": "string",
        "pattern": f'^"?{_KEY_CHARACTERS}{{1,{MAX_IDENTIFIER_LENGTH}}}"?$',
        "description": f"1 to {MAX_IDENTIFIER_LENGTH} letters, digits and `._:-`, bare or quoted.",
    },
)


def read_body(req: falcon.Request, max_bytes: int) -> bytes:
    """The raw request body, at most ``max_bytes``.

    Raises:
        falcon.HTTPContentTooLarge: The body is larger.
    """
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


def require_secret(secret: str | None, variables: str) -> str:
    """The webhook's HMAC secret; without one the webhook answers 503 saying what to set.

    Raises:
        falcon.HTTPServiceUnavailable: No secret is configured (``variables`` names them).
    """
    if secret is None:
        raise falcon.HTTPServiceUnavailable(
            title="Webhook secret not configured",
            description=f"set {variables} and restart the API",
        )
    return secret


def idempotency_key(req: falcon.Request) -> str | None:
    """The request's ``Idempotency-Key`` (a bare or quoted id), if it sent one.

    Raises:
        ProblemError: 422 when it is not an id of letters, digits and ``._:-``.
    """
    raw = req.get_header(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip().removeprefix('"').removesuffix('"')
    if not is_identifier(key):
        raise unprocessable(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDENTIFIER_LENGTH} letters, digits "
            "and ._:- (a UUID, say)",
            field=IDEMPOTENCY_HEADER,
        )
    return key


class CallEndedWebhook:
    """The ElevenLabs post-call webhook.

    Args:
        tenants: Resolves the agent id to its tenant.
        intake: Records and dispatches the job.
        rejections: Keeps signed requests for unknown agents.
        secret: The webhook's HMAC secret; None answers 503 until one is configured.
        tolerance_s: Largest accepted signature age (and future skew).
        max_body_bytes: Larger bodies get 413.
        max_json_depth: Deeper JSON gets 422.
        clock: Current unix time.
    """

    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        intake: Intake,
        rejections: JobLedger,
        secret: str | None,
        tolerance_s: float,
        max_body_bytes: int,
        max_json_depth: int,
        clock: Callable[[], float],
    ) -> None:
        self._tenants = tenants
        self._intake = intake
        self._rejections = rejections
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._max_body_bytes = max_body_bytes
        self._max_json_depth = max_json_depth
        self._clock = clock

    @operation(
        "receiveCallEnded",
        summary="A finished call, from ElevenLabs",
        tag="intake",
        access=ELEVENLABS,
        body=elevenlabs.TranscriptionEvent,
        headers=[IDEMPOTENCY_PARAM],
        answers=[
            returns(
                202,
                "Accepted: the job is queued (committed before this answer).",
                WebhookAccepted,
                headers={"Idempotent-Replayed": "`true` when this repeats an earlier answer."},
            ),
            returns(
                200,
                "A duplicate delivery, or an event type the pipelines do not process.",
                WebhookDuplicate,
                WebhookIgnored,
            ),
        ],
        problems={
            404: "the `agent_id` belongs to no tenant (the request is recorded, not queued)",
            422: "the `Idempotency-Key` is not a key, or was used before with another body",
        },
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Accept a finished call (202), a duplicate (200) or an ignored event type (200).

        The job is committed to the inbox before the answer; its first message reaches the
        bus without the request waiting on the broker. Two body shapes are accepted (the
        transcript as a list of turns, or the older ``{"messages": [...]}``); unknown
        fields are ignored.
        """
        webhook_received(req, SOURCE)
        body = read_body(req, self._max_body_bytes)
        secret = require_secret(
            self._secret,
            "SWITCHBOARD_ELEVENLABS__WEBHOOK_SECRET (or ELEVENLABS_WEBHOOK_SECRET)",
        )
        elevenlabs.verify_signature(
            req.get_header(elevenlabs.SIGNATURE_HEADER),
            body,
            secret=secret,
            now=self._clock(),
            tolerance_s=self._tolerance_s,
        )
        key = idempotency_key(req)
        document = parse_document(body, max_depth=self._max_json_depth)
        event_type = validate(elevenlabs.EventHeader, document).type
        if event_type != elevenlabs.TRANSCRIPTION:
            webhook_settled(req, "ignored")
            resp.media = WebhookIgnored(status="ignored", type=event_type).media()
            return
        data = validate(elevenlabs.TranscriptionEvent, document).data
        with bind_context(correlation_id=data.conversation_id):
            self._accept(data, body, key, req, resp)

    def _accept(
        self,
        data: elevenlabs.CallData,
        body: bytes,
        key: str | None,
        req: falcon.Request,
        resp: falcon.Response,
    ) -> None:
        binding = self._tenants.agent(data.agent_id)
        if binding is None:
            webhook_settled(req, "rejected", "unknown_agent")
            self._rejections.record_rejection(
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
        admission = self._intake.submit(
            Submission(
                source=SOURCE,
                tenant_id=binding.tenant.id,
                kind=elevenlabs.pipeline_of(kind),
                contract=contract,
                external_id=data.conversation_id,
                body=body,
                idempotency_key=key,
            )
        )
        # An Idempotency-Key sent again ("replayed") is a duplicate delivery too.
        webhook_settled(req, "accepted" if admission.outcome == "accepted" else "duplicate")
        if admission.outcome == "duplicate":
            _log.info("duplicate webhook", job_id=admission.job_id)
            resp.media = WebhookDuplicate(
                job_id=admission.job_id,
                conversation_id=data.conversation_id,
                status="duplicate",
                duplicate=True,
            ).media()
            return
        if admission.outcome == "replayed":
            resp.set_header("Idempotent-Replayed", "true")
        resp.status = falcon.HTTP_202
        resp.media = WebhookAccepted(
            job_id=admission.job_id, conversation_id=data.conversation_id, status="queued"
        ).media()
