"""Initial schema: customers, call_records, recordings.

Revision ID: 0001
Revises:
Create Date: 2024-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create customers, call_records and recordings with their indexes."""
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("vip", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_index(op.f("ix_customers_phone"), "customers", ["phone"], unique=True)

    op.create_table(
        "call_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_number", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("customer_name", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("issue_type", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("follow_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("csat", sa.SmallInteger(), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("uniqueid", sa.String(64), nullable=True),
        sa.Column("linkedid", sa.String(64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "direction IN ('inbound', 'outbound')",
            name=op.f("ck_call_records_direction"),
        ),
        sa.CheckConstraint(
            "csat IS NULL OR (csat >= 1 AND csat <= 5)",
            name=op.f("ck_call_records_csat_range"),
        ),
        sa.CheckConstraint(
            "wait_seconds IS NULL OR wait_seconds >= 0",
            name=op.f("ck_call_records_wait_seconds"),
        ),
        sa.CheckConstraint(
            "talk_seconds IS NULL OR talk_seconds >= 0",
            name=op.f("ck_call_records_talk_seconds"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_call_records_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
        sa.UniqueConstraint(
            "ticket_number", name=op.f("uq_call_records_ticket_number")
        ),
    )
    op.create_index(
        "ix_call_records_agent_id_started_at",
        "call_records",
        ["agent_id", "started_at"],
    )
    for column in (
        "started_at",
        "customer_id",
        "phone",
        "queue",
        "uniqueid",
        "linkedid",
    ):
        op.create_index(op.f(f"ix_call_records_{column}"), "call_records", [column])

    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_record_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "duration_seconds >= 0", name=op.f("ck_recordings_duration_seconds")
        ),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_recordings_size_bytes")),
        sa.ForeignKeyConstraint(
            ["call_record_id"],
            ["call_records.id"],
            name=op.f("fk_recordings_call_record_id_call_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("path", name=op.f("uq_recordings_path")),
    )
    op.create_index(
        op.f("ix_recordings_call_record_id"), "recordings", ["call_record_id"]
    )
    op.create_index(op.f("ix_recordings_started_at"), "recordings", ["started_at"])


def downgrade() -> None:
    """Drop the three tables (and with them every stored record)."""
    op.drop_table("recordings")
    op.drop_table("call_records")
    op.drop_table("customers")
