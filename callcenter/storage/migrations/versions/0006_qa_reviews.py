"""qa_reviews: team leads' scores of sampled calls (quality assurance, docs/qa.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """One row per call and reviewer: the ratings (JSON), the score, failed, the comment."""
    op.create_table(
        "qa_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_record_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("ratings", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score >= 0 AND score <= 100", name=op.f("ck_qa_reviews_score")),
        sa.ForeignKeyConstraint(["call_record_id"], ["call_records.id"],
                                name=op.f("fk_qa_reviews_call_record_id_call_records")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_reviews")),
        sa.UniqueConstraint("call_record_id", "reviewer", name="uq_qa_reviews_call_record_id_reviewer"),
    )
    op.create_index(op.f("ix_qa_reviews_call_record_id"), "qa_reviews", ["call_record_id"])
    op.create_index(op.f("ix_qa_reviews_agent_id"), "qa_reviews", ["agent_id"])
    op.create_index(op.f("ix_qa_reviews_reviewed_at"), "qa_reviews", ["reviewed_at"])


def downgrade() -> None:
    """Drop the reviews."""
    op.drop_table("qa_reviews")
