"""Fixtures of the edge tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from tests.edge.support import Edge, running_edge


@pytest.fixture(autouse=True)
def _quiet_access_lines() -> Iterator[None]:
    """Keep the edge's access lines, logged from its loop thread, out of the test output."""
    with capture_logs():
        yield


@pytest.fixture
def edge() -> Iterator[Edge]:
    """The edge with the tests' limits, a stand-in gunicorn behind it."""
    with running_edge() as running:
        yield running
