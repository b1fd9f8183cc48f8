"""call_records.queue_result: how the caller's stay in the queue ended.

``answered``, ``abandoned`` or ``unanswered`` (the queue's timeout, no agents), NULL for a
call that never waited in a queue. The wallboard counts the day's earlier stays from it
when the daemon starts mid-day; reports can compute service levels and abandonment from
SQL alone. Records written before this revision stay NULL: how their stays ended was not
kept.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_RESULTS = "'answered', 'abandoned', 'unanswered'"


def upgrade() -> None:
    """Add the nullable column and its CHECK (batch mode rebuilds the table on SQLite)."""
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("queue_result", sa.String(16), nullable=True))
        batch.create_check_constraint(
            "queue_result", f"queue_result IS NULL OR queue_result IN ({QUEUE_RESULTS})")


def downgrade() -> None:
    """Drop the column (and with it the CHECK)."""
    with op.batch_alter_table("call_records") as batch:
        batch.drop_constraint("queue_result", type_="check")
        batch.drop_column("queue_result")
