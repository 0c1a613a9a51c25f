"""The daily-calls workflow: a tick's due users, each called through the provider.

::

    DailyCallsTick ─select_due_calls─► PlaceUserCallJobData (one per due call)
        ─place_user_call─► (end; status webhooks update the call)

The scheduler emits a tick per slot (``scheduler.main``); the tick's step selects in
the database and fans out. Placing holds the telephony provider's throttle (at most
``callkaro.concurrency`` calls in flight across the workers) and gets one retry: a
second attempt of the same placement, for a request that never reached the provider.
Retries of calls that failed, were busy or went unanswered are not broker retries but
new attempts, due rows a later tick picks up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from actors.pipeline import ActorOptions, Handler, Pipeline, Step
from actors.ports import CallBook, DialPlan, Telephony
from actors.steps import place_call, select_due_calls
from contracts import DailyCallsTick, PlaceCall, PlaceUserCallJobData

PLACEMENT = ActorOptions(max_retries=1)
"""Two attempts at most to reach the provider (the issue's "2 attempts")."""


@dataclass(frozen=True)
class OutboundCallPorts:
    """The adapters of the outbound-call steps (daily calls and callbacks)."""

    plan: DialPlan
    book: CallBook
    telephony: Telephony


def _select(ports: OutboundCallPorts) -> Handler[DailyCallsTick]:
    return partial(select_due_calls.run, plan=ports.plan)


def place(ports: OutboundCallPorts) -> Handler[PlaceCall]:
    """The placement handler, shared by daily calls and callbacks."""
    return partial(place_call.run, telephony=ports.telephony, book=ports.book)


PIPELINE: Pipeline[OutboundCallPorts] = Pipeline(
    name="daily_calls",
    steps=(
        Step(DailyCallsTick, _select),
        Step(
            PlaceUserCallJobData,
            place,
            vendors=lambda p: (p.telephony,),
            options=PLACEMENT,
        ),
    ),
)
