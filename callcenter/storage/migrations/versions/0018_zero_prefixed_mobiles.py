"""canonical_phone learnt 0-prefixed mobiles (``013800138000`` is ``13800138000``): the
stored numbers that rule changes are restated, as revisions 0003 and 0017 did.

Landline trunks present an out-of-town mobile with the old long-distance 0. Before, that
spelling was a number of its own: a second customer for one phone, a hotline caller not
found in the CRM, a do-not-call entry in one spelling that missed a lead or a text in the
other (the dialer and the SMS sender compare canonical spellings), a texted-recently cap
that missed the earlier text. Only the spellings the new rule can change are read (those
starting ``01``, ``+860`` or ``860``: the rest of each table is left alone), 5,000 at a time.

Nothing is lost, as in 0003: a customer, or a lead of a campaign, whose new spelling
another customer (lead of the same campaign) already has keeps its spelling with a warning
naming both rows, to be merged by hand; a do-not-call entry whose line is already listed is
dropped (the line stays listed); an attempt's ``phone_hash`` follows its number. Call
records and texts (``sms_messages``, ``sms_replies``) are rewritten.

The downgrade changes nothing: every canonical spelling is a valid spelling before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.storage.records import canonical_phone, dialable

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("callcenter.storage.migrations")

_BATCH = 5000
_meta = sa.MetaData()
_customers = sa.Table("customers", _meta, sa.Column("id", sa.Integer), sa.Column("phone", sa.String))
_leads = sa.Table("leads", _meta, sa.Column("id", sa.BigInteger), sa.Column("campaign_id", sa.Integer),
                  sa.Column("phone", sa.String))
_attempts = sa.Table("dial_attempts", _meta, sa.Column("id", sa.BigInteger), sa.Column("phone", sa.String),
                     sa.Column("phone_hash", sa.String))
_dnc = sa.Table("dnc_numbers", _meta, sa.Column("phone", sa.String))
_plain = [sa.Table(name, _meta, sa.Column("id", sa.BigInteger), sa.Column("phone", sa.String))
          for name in ("call_records", "sms_messages", "sms_replies")]


def _candidates(column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    return sa.or_(column.like("01%"), column.like("+860%"), column.like("860%"))


def _new_spelling(phone: str | None) -> str | None:
    """The number's spelling by today's rule where it differs from ``phone``, else None."""
    if phone is None or not dialable(phone):
        return None
    line = canonical_phone(phone)
    return line if line != phone else None


def _rows(connection: sa.Connection, table: sa.Table, *columns: sa.ColumnElement[object]) -> list[sa.Row[object]]:
    """Every candidate row of ``table`` (by id, 5,000 at a time)."""
    found: list[sa.Row[object]] = []
    after: object = None
    while True:
        query = sa.select(table.c.id, table.c.phone, *columns).where(_candidates(table.c.phone))
        if after is not None:
            query = query.where(table.c.id > after)
        batch = connection.execute(query.order_by(table.c.id).limit(_BATCH)).all()
        found.extend(batch)
        if len(batch) < _BATCH:
            return found
        after = batch[-1].id


def _rewrite_unique(connection: sa.Connection, table: sa.Table, scope: sa.Column[object] | None, noun: str) -> None:
    extra = [scope.label("scope")] if scope is not None else []
    for row in _rows(connection, table, *extra):
        line = _new_spelling(row.phone)
        if line is None:
            continue
        taken = sa.select(table.c.id).where(table.c.phone == line)
        if scope is not None:
            taken = taken.where(scope == row.scope)
        other = connection.execute(taken.limit(1)).scalar()
        if other is not None:
            where = "" if scope is None else f" of {scope.name} {row.scope}"
            log.warning("%s %s keeps phone %r: %s %s%s already has it as %r; merge them by hand",
                        table.name, row.id, row.phone, noun, other, where, line)
            continue
        connection.execute(table.update().where(table.c.id == row.id).values(phone=line))


def upgrade() -> None:
    """Restate the spellings the rule changed (see the module docstring)."""
    connection = op.get_bind()
    _rewrite_unique(connection, _customers, None, "customer")
    _rewrite_unique(connection, _leads, _leads.c.campaign_id, "lead")
    for row in _rows(connection, _attempts):
        line = _new_spelling(row.phone)
        if line is not None:
            connection.execute(_attempts.update().where(_attempts.c.id == row.id).values(
                phone=line, phone_hash=hashlib.sha256(line.encode("ascii")).hexdigest()))
    for phone in connection.execute(sa.select(_dnc.c.phone).where(_candidates(_dnc.c.phone))).scalars().all():
        line = _new_spelling(phone)
        if line is None:
            continue
        if connection.execute(sa.select(_dnc.c.phone).where(_dnc.c.phone == line)).scalar() is not None:
            connection.execute(_dnc.delete().where(_dnc.c.phone == phone))
        else:
            connection.execute(_dnc.update().where(_dnc.c.phone == phone).values(phone=line))
    for table in _plain:
        changes = [{"row_id": row.id, "line": line} for row in _rows(connection, table)
                   if (line := _new_spelling(row.phone)) is not None]
        if changes:
            connection.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                               .values(phone=sa.bindparam("line")), changes)


def downgrade() -> None:
    """Nothing to undo (see the module docstring)."""
