"""The health-check workflow: a finished health-check call's answers, persisted.

::

    HealthCheckJobData ─record_health_check─► (end)

The live-call service leaves the call's answers in a checkpoint (a Redis hash); the
step saves them and deletes the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from actors.pipeline import Handler, Pipeline, Step
from actors.ports import CheckpointReader, HealthRecords
from actors.steps import record_health_check
from contracts import HealthCheckJobData


@dataclass(frozen=True)
class HealthCheckPorts:
    """The adapters of the health-check step."""

    checkpoints: CheckpointReader
    health: HealthRecords


def _record(ports: HealthCheckPorts) -> Handler[HealthCheckJobData]:
    return partial(record_health_check.run, checkpoints=ports.checkpoints, health=ports.health)


PIPELINE: Pipeline[HealthCheckPorts] = Pipeline(
    name="health_check",
    steps=(Step(HealthCheckJobData, _record),),
)
