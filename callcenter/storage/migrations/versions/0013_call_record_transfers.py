"""call_records.transfers: each time an agent handed the call on to another queue.

A list of hops ``AGENT>QUEUE@SECONDS`` (docs/agents.md, "Handing a call on"): who
transferred the call, to which queue, how many seconds into the call. Existing records
get an empty list.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the JSON column, '[]' for the records there are (batch mode on SQLite)."""
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("transfers", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("transfers")
