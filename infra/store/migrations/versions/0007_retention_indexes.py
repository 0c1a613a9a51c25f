"""retention indexes: finished records found oldest first, per kind

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_jobs_kind_status_updated_at", "jobs", ["kind", "status", "updated_at"], unique=False
    )
    op.create_index(
        op.f("ix_intake_rejections_created_at"), "intake_rejections", ["created_at"], unique=False
    )
    op.create_index("ix_outbound_calls_updated_at", "outbound_calls", ["updated_at"], unique=False)
    op.create_index(
        op.f("ix_call_events_received_at"), "call_events", ["received_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_call_events_received_at"), table_name="call_events")
    op.drop_index("ix_outbound_calls_updated_at", table_name="outbound_calls")
    op.drop_index(op.f("ix_intake_rejections_created_at"), table_name="intake_rejections")
    op.drop_index("ix_jobs_kind_status_updated_at", table_name="jobs")
