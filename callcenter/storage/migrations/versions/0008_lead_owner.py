"""leads.team and leads.agent_id: who a lead was handed out to.

IT hands a campaign's leads out to teams, and each team's lead hands them on to the team's
agents (docs/lead-handout.md). A campaign with ``handout: team`` or ``agent`` dials only
leads handed out that far. Both columns are nullable (None: not handed out), an agent's
lead always names its team, and ``ix_leads_owner`` serves the hand-out and holdings
queries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two nullable columns, their CHECK and the index (batch mode rebuilds the table on SQLite)."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("team", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("agent_id", sa.String(length=64), nullable=True))
        batch.create_check_constraint("owner", "agent_id IS NULL OR team IS NOT NULL")
        batch.create_index("ix_leads_owner", ["campaign_id", "team", "agent_id"])


def downgrade() -> None:
    """Drop the index, the CHECK and the columns."""
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_owner")
        batch.drop_constraint("owner", type_="check")
        batch.drop_column("agent_id")
        batch.drop_column("team")
