"""The SQL adapters satisfy the ports they are wired to (checked by mypy, run for real)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from actors.ports import CallbackBook, CallRecords, HealthRecords, VectorIndex
from contracts import HealthAnswer
from contracts.values import VectorRecord
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.job_views import SqlJobQueries
from infra.store.jobs import SqlJobLedger
from infra.store.progress import SqlJobProgress
from infra.store.protocols import (
    CallQueries,
    JobLedger,
    JobProgress,
    JobQueries,
    TenantDirectory,
)
from infra.store.records import MessageRef
from infra.store.tenants import SqlTenantDirectory
from infra.store.vectors import SqlVectorIndex
from tests.builders import make_health_check_job, make_inbox_entry


def test_the_sql_adapters_work_through_their_port_types(engine: sa.Engine) -> None:
    store = SqlCallStore(engine)
    records: CallRecords = store
    callbacks: CallbackBook = store
    health: HealthRecords = store
    vectors: VectorIndex = SqlVectorIndex(engine)
    directory: TenantDirectory = SqlTenantDirectory(engine)
    ledger: JobLedger = SqlJobLedger(engine)
    progress: JobProgress = SqlJobProgress(engine)
    queries: CallQueries = SqlCallQueries(engine)
    jobs: JobQueries = SqlJobQueries(engine)

    tenant, _ = directory.add_tenant("acme")
    contract = make_health_check_job(job_id="job-1", tenant_id=tenant.id, conversation_id="conv-1")
    job = ledger.accept(make_inbox_entry(contract, source="api", external_id="e1"))
    message = MessageRef(contract.idempotency_key, contract.route.actor, 0)
    progress.message_started(job.job_id, message)
    health.save_health_answers(
        tenant_id=tenant.id,
        conversation_id="conv-1",
        answers=[HealthAnswer(question="sleep", answer="seven", value=7, unit="hours")],
    )
    progress.message_succeeded(job.job_id, message)
    vectors.upsert("ns", [VectorRecord(id="v", values=[1.0], metadata={"kind": "summary"})])

    [view] = queries.find_calls("conv-1", tenant_id=tenant.id)
    assert (view.job_id, view.status) == ("job-1", "completed")
    assert [a.question for a in view.health_answers] == ["sleep"]
    assert [v.job_id for v in queries.call_views(["conv-1"], tenant_id=tenant.id)] == ["job-1"]
    job_view = jobs.job_view(job.job_id, tenant_id=tenant.id)
    assert job_view is not None
    assert [(s.name, s.status) for s in job_view.steps] == [("record_health_check", "completed")]
    assert health.has_health_answers(tenant.id, "conv-1") is True
    assert records.get_call_log(tenant.id, "conv-1") is None
    assert callbacks.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=datetime.now(UTC), reason="r"
    )
    assert [m.id for m in vectors.query("ns", [2.0], top_k=1, kind="summary")] == ["v"]
