"""ix_call_records_agent_id_follow_up_at: an agent's follow-ups due, found by index.

The agent's page reloads every few seconds while the agent waits, and lists the calls to
follow up by the end of the day (``repository.follow_ups_due``); this index keeps that
a short range scan whatever the size of the call log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the index."""
    op.create_index("ix_call_records_agent_id_follow_up_at", "call_records", ["agent_id", "follow_up_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_call_records_agent_id_follow_up_at", table_name="call_records")
