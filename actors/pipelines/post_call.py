"""The post-call workflow: a finished general call, analyzed, indexed and persisted.

::

    PostCallJobData ─fetch_transcript─► CallTranscribed ─analyze_call─► CallAnalyzed
        ─index_call─► CallIndexed ─persist_call─► ScheduleCallbackCommand (only when the
        caller asked for a callback) ─schedule_callback─► (end)

``fetch_transcript`` polls the voice platform while a conversation is not done, so it
gets more retries than the default. The vendor steps hold their vendors' throttles: the
voice platform's for the transcript, the LLM's for the analysis, the LLM's (embeddings)
and the vector database's for indexing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from actors.pipeline import ActorOptions, Handler, Pipeline, Step
from actors.ports import (
    Analyzer,
    CallbackBook,
    CallRecords,
    Embedder,
    TranscriptSource,
    VectorIndex,
)
from actors.steps import analyze_call, fetch_transcript, index_call, persist_call, schedule_callback
from contracts import (
    CallAnalyzed,
    CallIndexed,
    CallTranscribed,
    PostCallJobData,
    ScheduleCallbackCommand,
)

TRANSCRIPT_POLLS = 8
"""Retries of ``fetch_transcript``: polls of a conversation that is not done yet."""


@dataclass(frozen=True)
class PostCallPorts:
    """The adapters of the post-call steps."""

    transcripts: TranscriptSource
    analyzer: Analyzer
    embedder: Embedder
    vectors: VectorIndex
    calls: CallRecords
    callbacks: CallbackBook
    now: Callable[[], datetime]


def _fetch(ports: PostCallPorts) -> Handler[PostCallJobData]:
    return partial(fetch_transcript.run, transcripts=ports.transcripts)


def _analyze(ports: PostCallPorts) -> Handler[CallTranscribed]:
    return partial(analyze_call.run, analyzer=ports.analyzer, calls=ports.calls, now=ports.now)


def _index(ports: PostCallPorts) -> Handler[CallAnalyzed]:
    return partial(index_call.run, embedder=ports.embedder, index=ports.vectors)


def _persist(ports: PostCallPorts) -> Handler[CallIndexed]:
    return partial(persist_call.run, calls=ports.calls)


def _schedule(ports: PostCallPorts) -> Handler[ScheduleCallbackCommand]:
    return partial(schedule_callback.run, callbacks=ports.callbacks)


PIPELINE: Pipeline[PostCallPorts] = Pipeline(
    name="post_call",
    steps=(
        Step(
            PostCallJobData,
            _fetch,
            vendors=lambda p: (p.transcripts,),
            options=ActorOptions(max_retries=TRANSCRIPT_POLLS),
        ),
        Step(CallTranscribed, _analyze, vendors=lambda p: (p.analyzer,)),
        Step(CallAnalyzed, _index, vendors=lambda p: (p.embedder, p.vectors)),
        Step(CallIndexed, _persist),
        Step(ScheduleCallbackCommand, _schedule),
    ),
)
