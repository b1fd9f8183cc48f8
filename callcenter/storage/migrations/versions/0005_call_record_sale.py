"""call_records.sale_cents: the sale an agent made on the call, in fen.

Set with the call's disposition (``sale_amount`` in yuan); the commission report
(docs/reports.md) pays each role its share of it. Whole fen in a BIGINT keep money exact
on SQLite and PostgreSQL alike.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column and its CHECK (batch mode rebuilds the table on SQLite)."""
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("sale_cents", sa.BigInteger(), nullable=True))
        batch.create_check_constraint("sale_cents", "sale_cents IS NULL OR sale_cents >= 0")


def downgrade() -> None:
    """Drop the column (and with it the CHECK)."""
    with op.batch_alter_table("call_records") as batch:
        batch.drop_constraint("sale_cents", type_="check")
        batch.drop_column("sale_cents")
