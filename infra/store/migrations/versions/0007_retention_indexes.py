"""retention indexes: finished records found oldest first, in (age, id) order

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

INDEXES = {
    "ix_jobs_retention": ("jobs", ["kind", "status", "updated_at", "id"]),
    "ix_outbound_calls_retention": ("outbound_calls", ["updated_at", "id"]),
    "ix_call_events_retention": ("call_events", ["received_at", "id"]),
    "ix_intake_rejections_retention": ("intake_rejections", ["created_at", "id"]),
}
"""Retention reads each kind's batch in (age, id) order: with the id in the index, a
batch is an index range read of as many rows as it takes, however many are older."""


def upgrade() -> None:
    """Upgrade schema."""
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    for name, (table, _) in reversed(INDEXES.items()):
        op.drop_index(name, table_name=table)
