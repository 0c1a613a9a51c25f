"""Fixtures shared by the vendor adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from infra.settings import ElevenLabsSettings
from infra.vendors.elevenlabs import ElevenLabsConversations
from tests.standins.elevenlabs_server import ElevenLabsStandIn


@pytest.fixture
def conversations(elevenlabs_standin: ElevenLabsStandIn) -> Iterator[ElevenLabsConversations]:
    settings = ElevenLabsSettings(
        api_key=SecretStr(elevenlabs_standin.api_key),
        base_url=elevenlabs_standin.url,
        timeout_s=0.3,
    )
    source = ElevenLabsConversations.from_settings(settings)
    try:
        yield source
    finally:
        source.close()
