"""Call records' numbers in canonical_phone form, as customers' and leads' are (0003).

A record kept the number as signalled (``+8613900000001``, ``13900000001``), and the CRM
looks a customer's calls up by the canonical spelling: a caller's earlier calls were
missing from their screen pop, a follow-up stayed due after the call back (made with the
other spelling), and the returning caller's last agent was not found. New records store the
canonical spelling (:func:`callcenter.storage.repository.create_call_record`); this
revision restates the records already there. A value that is no number (``anonymous``)
stays as it is. The rule is imported, not copied (see 0003).

The downgrade changes nothing: every canonical spelling is a valid spelling of the old schema.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.storage.records import canonical_phone, dialable

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000
_records = sa.Table("call_records", sa.MetaData(), sa.Column("id", sa.BigInteger), sa.Column("phone", sa.String))


def upgrade() -> None:
    """Rewrite each record's number where its canonical spelling differs, 5,000 rows at a time."""
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(_records.c.id, _records.c.phone)
            .where(_records.c.id > after, _records.c.phone.is_not(None))
            .order_by(_records.c.id).limit(_BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        changes = [{"row_id": r.id, "line": canonical_phone(r.phone)} for r in rows
                   if dialable(r.phone) and canonical_phone(r.phone) != r.phone]
        if changes:
            connection.execute(
                _records.update().where(_records.c.id == sa.bindparam("row_id")).values(phone=sa.bindparam("line")),
                changes)


def downgrade() -> None:
    """Nothing to undo (see the module docstring)."""
