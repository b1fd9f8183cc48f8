"""SMS broadcast: sms_broadcasts, sms_messages (one per recipient), sms_replies.

A broadcast keeps every recipient it was given as a message row: ``queued`` to be sent,
or ``skipped`` with the reason (an invalid number, a repeat, a do-not-call number); the
sender moves queued rows to ``sending`` and then ``sent`` or ``failed``
(:mod:`callcenter.storage.sms`). ``ix_sms_messages_status_id`` serves the sender's
oldest-queued-first query, ``ix_sms_messages_broadcast_id_status_id`` a broadcast's
progress. Replies are kept with whether they put the number on the do-not-call list.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT ids, and SQLite's INTEGER rowid alias (only INTEGER PRIMARY KEY autoincrements).
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = "'queued', 'sending', 'sent', 'failed', 'skipped'"


def upgrade() -> None:
    """Create the three tables with their named constraints and indexes."""
    op.create_table(
        "sms_broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.CheckConstraint("total >= 0", name=op.f("ck_sms_broadcasts_total")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_sms_broadcasts_campaign_id_campaigns"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_broadcasts")),
    )
    op.create_index(op.f("ix_sms_broadcasts_created_at"), "sms_broadcasts", ["created_at"])
    op.create_table(
        "sms_messages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_sms_messages_status")),
        sa.CheckConstraint("parts >= 0", name=op.f("ck_sms_messages_parts")),
        sa.ForeignKeyConstraint(["broadcast_id"], ["sms_broadcasts.id"],
                                name=op.f("fk_sms_messages_broadcast_id_sms_broadcasts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"],
                                name=op.f("fk_sms_messages_lead_id_leads"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
    )
    op.create_index("ix_sms_messages_broadcast_id_status_id", "sms_messages", ["broadcast_id", "status", "id"])
    op.create_index("ix_sms_messages_status_id", "sms_messages", ["status", "id"])
    op.create_index(op.f("ix_sms_messages_lead_id"), "sms_messages", ["lead_id"])
    op.create_table(
        "sms_replies",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
        sa.Column("added_to_dnc", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_replies")),
    )
    op.create_index(op.f("ix_sms_replies_received_at"), "sms_replies", ["received_at"])


def downgrade() -> None:
    """Drop the three tables (messages before the broadcasts they belong to)."""
    op.drop_table("sms_replies")
    op.drop_table("sms_messages")
    op.drop_table("sms_broadcasts")
