"""Opening the configured vector index for a command, with errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from infra.cli.output import fail
from infra.local_adapters import LocalAdapterRefused
from infra.settings import Settings
from infra.vendors.wiring import Adapters

if TYPE_CHECKING:
    from infra.vendors.wiring import AnyVectorIndex


@contextmanager
def vector_index(settings: Settings, engine: sa.Engine) -> Iterator[AnyVectorIndex]:
    """The vector index the worker writes to (``SWITCHBOARD_VECTORS__BACKEND``), closed after.

    Exits with a message (and no traceback) when it is configured incompletely or,
    in production, is a local index that is not allowed.
    """
    adapters = Adapters(settings, engine=engine, redis_url=settings.broker.url or "")
    try:
        try:
            index = adapters.vectors()
        except (ValueError, LocalAdapterRefused) as error:
            fail(f"cannot open the vector index: {error}")
        yield index
    finally:
        adapters.close()
