"""What the console's pages read and change (``ConsoleDeps``)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.store.protocols import JobQueries, OutboundCallBook, TenantDirectory
from producers.console.auth import ConsoleAuth
from producers.console.render import Pages
from producers.resources.admin import DeadLetterDeskPort
from producers.resources.queue import QueueReport


@dataclass(frozen=True)
class ConsoleDeps:
    """What the console's pages read and change.

    Attributes:
        auth: Sessions, bearer tokens and CSRF.
        pages: The templates.
        report: The queues, pipelines and ticks.
        desk: Dead letters and the audit log.
        jobs: A job step by step, and the jobs failed at intake.
        calls: The calls of unknown outcome.
        tenants: Resolves ``?tenant=NAME``.
        max_body_bytes: Larger forms get 413.
        max_json_depth: An edited payload nested deeper is refused.
    """

    auth: ConsoleAuth
    pages: Pages
    report: QueueReport
    desk: DeadLetterDeskPort
    jobs: JobQueries
    calls: OutboundCallBook
    tenants: TenantDirectory
    max_body_bytes: int
    max_json_depth: int
