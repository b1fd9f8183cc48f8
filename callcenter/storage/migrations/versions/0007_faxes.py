"""faxes: the faxes received on the fax number and sent (docs/fax.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """One row per fax, found again by the id the dialplan reports it with."""
    op.create_table(
        "faxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fax_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("number", sa.String(64), server_default="", nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.String(255), server_default="", nullable=False),
        sa.Column("pages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bitrate", sa.Integer(), server_default="0", nullable=False),
        sa.Column("remote_station", sa.String(64), server_default="", nullable=False),
        sa.Column("path", sa.String(1024), server_default="", nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_faxes_direction")),
        sa.CheckConstraint("pages >= 0 AND bitrate >= 0 AND size_bytes >= 0", name=op.f("ck_faxes_counts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faxes")),
        sa.UniqueConstraint("fax_id", name=op.f("uq_faxes_fax_id")),
    )
    op.create_index(op.f("ix_faxes_created_at"), "faxes", ["created_at"])


def downgrade() -> None:
    """Drop the fax log (the TIFF files stay on disk)."""
    op.drop_table("faxes")
