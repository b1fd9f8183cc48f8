"""sms_broadcasts.kind: marketing texts, capped per number, apart from notices.

A number gets at most one marketing text every ``sms.min_days_between`` days, whoever
sends it; a notice (an agent texting a caller the ticket number) is not marketing and is
neither capped nor counted. Broadcasts stored before this revision were marketing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (every existing broadcast: marketing) and its CHECK; index the messages
    by number, for the cap's look-up (batch mode rebuilds the table on SQLite)."""
    with op.batch_alter_table("sms_broadcasts") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), server_default="marketing", nullable=False))
        batch.create_check_constraint("kind", "kind IN ('marketing', 'notice')")
    op.create_index("ix_sms_messages_phone_created_at", "sms_messages", ["phone", "created_at"])


def downgrade() -> None:
    """Drop the index, the CHECK and the column."""
    op.drop_index("ix_sms_messages_phone_created_at", table_name="sms_messages")
    with op.batch_alter_table("sms_broadcasts") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.drop_column("kind")
