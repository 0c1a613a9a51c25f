"""Switchboard's message contracts: pydantic models, routes and versions.

Other services import this package to publish jobs (it ships on its own as the
``switchboard-contracts`` distribution, which depends on pydantic only; see
``contracts.messages``); non-Python producers use the JSON Schemas exported under
``contracts/schemas/``.
"""

from contracts.base import Contract, Route, Value
from contracts.calls import (
    CallAnalysis,
    CallAnalyzed,
    CallbackRequest,
    CallIndexed,
    CallTranscribed,
    HealthAnswer,
    HealthCheckJobData,
    PostCallJobData,
    ScheduleCallbackCommand,
    Sentiment,
    TranscriptTurn,
)
from contracts.daily_calls import (
    CallbacksDueTick,
    DailyCallsTick,
    PlaceCall,
    PlaceCallbackJobData,
    PlaceUserCallJobData,
)
from contracts.fields import AwareDatetime, Identifier, Text

__version__ = "1.0.0"
"""The version of the contract set, and of the ``switchboard-contracts`` distribution.

Semantic: the minor part grows with an additive change (a new contract, a new optional
field), the major part with a breaking one (what ``switchboard contracts check``
refuses). The committed AsyncAPI document records it, so a change of it shows as
schema drift until ``make schemas`` is run.
"""

CONTRACTS: tuple[type[Contract], ...] = (
    PostCallJobData,
    CallTranscribed,
    CallAnalyzed,
    CallIndexed,
    ScheduleCallbackCommand,
    HealthCheckJobData,
    DailyCallsTick,
    PlaceUserCallJobData,
    CallbacksDueTick,
    PlaceCallbackJobData,
)
"""Every contract that travels on the bus, in pipeline order."""

BY_NAME: dict[str, type[Contract]] = {c.__name__: c for c in CONTRACTS}
"""Contracts by class name, the value of the ``contract`` message option."""

__all__ = [
    "BY_NAME",
    "CONTRACTS",
    "AwareDatetime",
    "CallAnalysis",
    "CallAnalyzed",
    "CallIndexed",
    "CallTranscribed",
    "CallbackRequest",
    "CallbacksDueTick",
    "Contract",
    "DailyCallsTick",
    "HealthAnswer",
    "HealthCheckJobData",
    "Identifier",
    "PlaceCall",
    "PlaceCallbackJobData",
    "PlaceUserCallJobData",
    "PostCallJobData",
    "Route",
    "ScheduleCallbackCommand",
    "Sentiment",
    "Text",
    "TranscriptTurn",
    "Value",
]
