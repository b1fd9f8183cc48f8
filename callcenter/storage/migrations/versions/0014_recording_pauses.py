"""recordings.pauses: where an agent paused the recording (card numbers).

A list of ``[start, end]`` seconds into the file (docs/agents.md, "Pausing the recording"):
the file holds silence there, and a reviewer sees why. Existing recordings get an empty list.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the JSON column, '[]' for the recordings there are (batch mode on SQLite)."""
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("pauses", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("pauses")
