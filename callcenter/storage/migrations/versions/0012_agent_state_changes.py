"""agent_state_changes: every change of an agent's state, for the agent time report.

The engine writes a row whenever an agent's state changes (ready, ringing, on a call,
wrap-up, paused with its reason, logged out), and ``unknown`` when the daemon stops or
starts; ``callcenter report agents`` sums the time in each state (docs/reports.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATES = "'logged_out', 'ready', 'ringing', 'on_call', 'wrap_up', 'paused', 'unknown'"


def upgrade() -> None:
    """Create the table, its CHECK on the state, and its two indexes (by agent and time; by time)."""
    op.create_table(
        "agent_state_changes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pause_reason", sa.String(128), nullable=True),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_agent_state_changes_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_changes")),
    )
    op.create_index("ix_agent_state_changes_agent_id_at", "agent_state_changes", ["agent_id", "at"])
    op.create_index(op.f("ix_agent_state_changes_at"), "agent_state_changes", ["at"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index(op.f("ix_agent_state_changes_at"), table_name="agent_state_changes")
    op.drop_index("ix_agent_state_changes_agent_id_at", table_name="agent_state_changes")
    op.drop_table("agent_state_changes")
