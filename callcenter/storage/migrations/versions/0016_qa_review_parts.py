"""qa_reviews.recording_id, and one review per call, agent and reviewer (docs/qa.md).

A call an agent handed on to another has a recording of each agent's part; QA samples,
plays and scores each part as its agent's. A review keeps the recording heard
(``recording_id``) and its agent, and one reviewer may score both parts of one call: the
unique key (call, reviewer) becomes (call, agent, reviewer). The reviews there are keep
their agent (the call's, as stored) and get no recording.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column and its foreign key, widen the unique key (batch mode on SQLite)."""
    with op.batch_alter_table("qa_reviews") as batch:
        batch.add_column(sa.Column("recording_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_qa_reviews_recording_id_recordings"), "recordings",
                                 ["recording_id"], ["id"])
        batch.drop_constraint("uq_qa_reviews_call_record_id_reviewer", type_="unique")
        batch.create_unique_constraint("uq_qa_reviews_call_record_id_agent_id_reviewer",
                                       ["call_record_id", "agent_id", "reviewer"])


def downgrade() -> None:
    """Back to one review per call and reviewer: of a reviewer's reviews of several parts of
    one call, only the one stored last (the highest id) is kept; then drop the column."""
    op.execute("DELETE FROM qa_reviews WHERE id NOT IN "
               "(SELECT MAX(id) FROM qa_reviews GROUP BY call_record_id, reviewer)")
    with op.batch_alter_table("qa_reviews") as batch:
        batch.drop_constraint("uq_qa_reviews_call_record_id_agent_id_reviewer", type_="unique")
        batch.create_unique_constraint("uq_qa_reviews_call_record_id_reviewer", ["call_record_id", "reviewer"])
        batch.drop_constraint(op.f("fk_qa_reviews_recording_id_recordings"), type_="foreignkey")
        batch.drop_column("recording_id")
