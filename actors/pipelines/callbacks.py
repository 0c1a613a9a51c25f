"""The callbacks workflow: callers who asked for a callback, called when it falls due.

::

    CallbacksDueTick ─select_due_callbacks─► PlaceCallbackJobData (one per due callback)
        ─place_callback_call─► (end; status webhooks update the call)

Post-call processing records the callback as a due row with the caller's number
(``schedule_callback``); the scheduler's callbacks tick emits this pipeline. A callback
without a number is marked ``unplaceable`` (the call view shows it). Placement is the
daily calls' step, on the same provider throttle.
"""

from __future__ import annotations

from functools import partial

from actors.pipeline import Handler, Pipeline, Step
from actors.pipelines.daily_calls import PLACEMENT, OutboundCallPorts, place
from actors.steps import select_due_calls
from contracts import CallbacksDueTick, PlaceCallbackJobData


def _select(ports: OutboundCallPorts) -> Handler[CallbacksDueTick]:
    return partial(select_due_calls.run_callbacks, plan=ports.plan)


PIPELINE: Pipeline[OutboundCallPorts] = Pipeline(
    name="callbacks",
    steps=(
        Step(CallbacksDueTick, _select),
        Step(
            PlaceCallbackJobData,
            place,
            vendors=lambda p: (p.telephony,),
            options=PLACEMENT,
        ),
    ),
)
