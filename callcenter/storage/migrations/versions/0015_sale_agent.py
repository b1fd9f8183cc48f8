"""call_records.sale_agent_id: the agent who made the call's sale.

``agent_id`` is the call's last agent: a customer handed on after buying would pay the
colleague the seller's commission (docs/reports.md, "Sales commission"). The sale's agent is
kept when the sale is recorded; the sales there are get the call's agent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (batch mode on SQLite); the sales there are: their call's agent."""
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("sale_agent_id", sa.String(length=64), nullable=True))
    op.execute("UPDATE call_records SET sale_agent_id = agent_id WHERE sale_cents IS NOT NULL")


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("sale_agent_id")
