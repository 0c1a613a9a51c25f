"""The SQL adapters satisfy the ports they are wired to (checked by mypy, run for real)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from actors.ports import CallbackBook, CallRecords, HealthRecords, VectorIndex
from contracts import HealthAnswer
from contracts.values import VectorRecord
from infra.store.calls import SqlCallQueries, SqlCallStore
from infra.store.jobs import SqlJobLedger, SqlJobProgress
from infra.store.protocols import CallQueries, JobLedger, JobProgress, TenantDirectory
from infra.store.tenants import SqlTenantDirectory
from infra.store.vectors import SqlVectorIndex


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

    tenant, _ = directory.add_tenant("acme")
    job = ledger.accept(
        source="api",
        external_id="e1",
        tenant_id=tenant.id,
        kind="health_check",
        contract="HealthCheckJobData",
        payload={},
        correlation_id="conv-1",
        job_id="job-1",
    )
    progress.step_started(job.job_id, "record_health_check")
    health.save_health_answers(
        tenant_id=tenant.id,
        conversation_id="conv-1",
        answers=[HealthAnswer(question="sleep", answer="seven", value=7, unit="hours")],
    )
    progress.step_succeeded(job.job_id, "record_health_check", final=True)
    vectors.upsert("ns", [VectorRecord(id="v", values=[1.0], metadata={"kind": "summary"})])

    view = queries.call_view("conv-1", tenant_id=tenant.id)
    assert view is not None
    assert view.status == "completed"
    assert [a.question for a in view.health_answers] == ["sleep"]
    assert records.get_call_log("conv-1") is None
    assert callbacks.schedule_callback(
        tenant_id=tenant.id, conversation_id="conv-1", due_at=datetime.now(UTC), reason="r"
    )
    assert [m.id for m in vectors.query("ns", [2.0], top_k=1, kind="summary")] == ["v"]
