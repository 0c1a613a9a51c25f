"""Pytest fixtures for the vendor stand-ins (import them into a conftest).

Each yields a started server on 127.0.0.1 and stops it (joining its threads) after
the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.callkaro_server import CallKaroStandIn
from tests.standins.elevenlabs_server import ElevenLabsStandIn
from tests.standins.openai_server import OpenAIStandIn
from tests.standins.pinecone_server import PineconeStandIn

PINECONE_STANDIN_DIMENSION = 64
"""The dimension of the stand-in Pinecone index."""


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    """An OpenAI-compatible server; point ``OpenAISettings.base_url`` at ``.base_url``."""
    with OpenAIStandIn() as server:
        yield server


@pytest.fixture
def pinecone_standin() -> Iterator[PineconeStandIn]:
    """A Pinecone data plane of dimension 64; its ``.url`` is the index host."""
    with PineconeStandIn(dimension=PINECONE_STANDIN_DIMENSION) as server:
        yield server


@pytest.fixture
def elevenlabs_standin() -> Iterator[ElevenLabsStandIn]:
    """An ElevenLabs conversation API; its ``.url`` is the base URL."""
    with ElevenLabsStandIn() as server:
        yield server


@pytest.fixture
def callkaro_standin() -> Iterator[CallKaroStandIn]:
    """A CallKaro outbound-call API; its ``.url`` is the base URL."""
    with CallKaroStandIn() as server:
        yield server
