"""call_records.sale_team: the seller's team when the sale was recorded.

The lead share of a sale's commission goes to the lead of the seller's team; read from
today's teams, an agent moved to another team took their earlier sales' lead share to the
new team's lead (docs/reports.md, "Sales commission"). The team is kept when the sale is
recorded; the sales there are keep NULL (their seller's team at report time, as before).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (batch mode on SQLite)."""
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("sale_team", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop the column. On SQLite with ``ALTER TABLE ... DROP COLUMN`` (3.35+) rather than a
    batch rebuild: recordings and reviews refer to call_records, and rebuilding the table
    under them fails their foreign keys."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE call_records DROP COLUMN sale_team")
    else:
        op.drop_column("call_records", "sale_team")
