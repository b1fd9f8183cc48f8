"""Outbound dialer: campaigns, lead_lists, leads, dial_attempts, dnc_numbers, audit_log.

Revision ID: 0002
Revises: 0001
Create Date: 2024-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT ids, and SQLite's INTEGER rowid alias (only INTEGER PRIMARY KEY autoincrements).
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LEAD_STATES = "'new', 'retry', 'dialing', 'done'"
OUTCOMES = "'human', 'machine', 'busy', 'noanswer', 'failed', 'abandoned'"


def _now_column(name: str) -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    """Create the dialer's six tables with their constraints and indexes."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("dial_mode", sa.String(16), nullable=False),
        sa.Column("caller_id", sa.String(64), server_default="", nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("call_start", sa.Time(), nullable=False),
        sa.Column("call_end", sa.Time(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_minutes", sa.JSON(), nullable=False),
        sa.Column("machine_action", sa.String(16), nullable=False),
        sa.Column("machine_message", sa.String(255), server_default="", nullable=False),
        sa.Column("safe_harbor_message", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        _now_column("created_at"),
        _now_column("updated_at"),
        sa.CheckConstraint(
            "dial_mode IN ('preview', 'progressive', 'predictive')",
            name=op.f("ck_campaigns_dial_mode"),
        ),
        sa.CheckConstraint(
            "machine_action IN ('hangup', 'message')",
            name=op.f("ck_campaigns_machine_action"),
        ),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_campaigns_max_attempts")),
        sa.CheckConstraint(
            "call_start < call_end", name=op.f("ck_campaigns_calling_hours")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )

    op.create_table(
        "lead_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source_file", sa.String(1024), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("rows_ok", sa.Integer(), nullable=False),
        sa.Column("rows_bad", sa.Integer(), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_by", sa.String(64), nullable=True),
        sa.CheckConstraint("rows_ok >= 0", name=op.f("ck_lead_lists_rows_ok")),
        sa.CheckConstraint("rows_bad >= 0", name=op.f("ck_lead_lists_rows_bad")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_lead_lists_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_lists")),
    )
    op.create_index(
        op.f("ix_lead_lists_campaign_id"), "lead_lists", ["campaign_id"]
    )

    op.create_table(
        "leads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("final_outcome", sa.String(16), nullable=True),
        _now_column("created_at"),
        _now_column("updated_at"),
        sa.CheckConstraint(f"state IN ({LEAD_STATES})", name=op.f("ck_leads_state")),
        sa.CheckConstraint(
            "(state IN ('new', 'retry') AND next_attempt_at IS NOT NULL)"
            " OR (state IN ('dialing', 'done') AND next_attempt_at IS NULL)",
            name=op.f("ck_leads_next_attempt_at"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_leads_attempts")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_leads_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lead_lists.id"], name=op.f("fk_leads_list_id_lead_lists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint(
            "campaign_id", "phone", name=op.f("uq_leads_campaign_id_phone")
        ),
    )
    op.create_index(
        "ix_leads_claim", "leads", ["campaign_id", "next_attempt_at", "id"]
    )
    op.create_index("ix_leads_campaign_id_state", "leads", ["campaign_id", "state"])
    op.create_index(op.f("ix_leads_list_id"), "leads", ["list_id"])

    op.create_table(
        "dial_attempts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ring_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("amd_status", sa.String(32), nullable=True),
        sa.Column("amd_cause", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("uniqueid", sa.String(64), nullable=True),
        sa.Column("connect_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            f"outcome IS NULL OR outcome IN ({OUTCOMES})",
            name=op.f("ck_dial_attempts_outcome"),
        ),
        sa.CheckConstraint("attempt_no >= 1", name=op.f("ck_dial_attempts_attempt_no")),
        sa.CheckConstraint(
            "ring_seconds IS NULL OR ring_seconds >= 0",
            name=op.f("ck_dial_attempts_ring_seconds"),
        ),
        sa.CheckConstraint(
            "connect_seconds IS NULL OR connect_seconds >= 0",
            name=op.f("ck_dial_attempts_connect_seconds"),
        ),
        sa.CheckConstraint(
            "talk_seconds IS NULL OR talk_seconds >= 0",
            name=op.f("ck_dial_attempts_talk_seconds"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_dial_attempts_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_dial_attempts_lead_id_leads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dial_attempts")),
    )
    op.create_index(
        "ix_dial_attempts_campaign_id_started_at",
        "dial_attempts",
        ["campaign_id", "started_at"],
    )
    op.create_index(
        "ix_dial_attempts_campaign_id_outcome", "dial_attempts", ["campaign_id", "outcome"]
    )
    for column in ("lead_id", "phone_hash", "uniqueid"):
        op.create_index(op.f(f"ix_dial_attempts_{column}"), "dial_attempts", [column])

    op.create_table(
        "dnc_numbers",
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(255), server_default="", nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_dnc_numbers")),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_subject"), "audit_log", ["subject"])


def downgrade() -> None:
    """Drop the dialer's tables (campaign history, leads, attempts, DNC list, audit log)."""
    op.drop_table("audit_log")
    op.drop_table("dnc_numbers")
    op.drop_table("dial_attempts")
    op.drop_table("leads")
    op.drop_table("lead_lists")
    op.drop_table("campaigns")
