"""Stored phone numbers in canonical_phone form: customers, leads, dial attempts, DNC list.

Before this revision a Chinese landline written ``+86 20 1234 5678`` and ``020-1234-5678``
were two numbers: a DNC entry in one spelling did not stop a lead in the other, and an
inbound caller did not find the customer stored in the other. Each stored number is
rewritten with :func:`callcenter.storage.records.canonical_phone` (the rule is imported,
not copied: a later change of the rule needs a revision of its own that restates the data).

Nothing is lost on the way:

- a DNC entry whose canonical spelling is already listed is dropped: the line stays on
  the list, under the entry already spelled that way (or the oldest of the spellings);
- a customer, or a lead of a campaign, whose canonical spelling another customer (lead of
  the same campaign) already has keeps its spelling, and a warning names both rows for
  someone to merge; the dialer still finds its DNC entry (the claim looks numbers up in
  canonical form);
- an attempt keeps its row; ``phone_hash`` is recomputed where the number is still there
  (a destroyed list's attempts keep the hash of the spelling they were dialed in).

Call records keep the number as signalled. The downgrade changes nothing: every
canonical spelling is a valid spelling of the old schema.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.storage.records import InvalidFieldError, canonical_phone

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("callcenter.storage.migrations")

_meta = sa.MetaData()
_customers = sa.Table("customers", _meta, sa.Column("id", sa.Integer), sa.Column("phone", sa.String))
_leads = sa.Table("leads", _meta, sa.Column("id", sa.BigInteger), sa.Column("campaign_id", sa.Integer),
                  sa.Column("phone", sa.String))
_attempts = sa.Table("dial_attempts", _meta, sa.Column("id", sa.BigInteger), sa.Column("phone", sa.String),
                     sa.Column("phone_hash", sa.String))
_dnc = sa.Table("dnc_numbers", _meta, sa.Column("phone", sa.String), sa.Column("added_at", sa.DateTime))


def _canonical(table: str, key: object, phone: str) -> str:
    """The canonical spelling, or the stored one (with a warning) if it is not a number."""
    try:
        return canonical_phone(phone)
    except InvalidFieldError as exc:
        log.warning("%s %s: phone %r left as it is: %s", table, key, phone, exc)
        return phone


def _rewrite_unique(connection: sa.Connection, table: sa.Table, scope: sa.Column[object] | None,
                    noun: str) -> None:
    """Rewrite ``table.phone`` where the canonical spelling is free within ``scope``."""
    scope_of = (lambda row: row.scope) if scope is not None else (lambda row: None)
    columns = [table.c.id, table.c.phone] + ([scope.label("scope")] if scope is not None else [])
    rows = connection.execute(sa.select(*columns).order_by(table.c.id)).all()
    holder = {(scope_of(r), r.phone): r.id for r in rows}
    changes = []
    for r in rows:
        line = _canonical(table.name, r.id, r.phone)
        if line == r.phone:
            continue
        other = holder.get((scope_of(r), line))
        if other is not None:
            where = "" if scope is None else f" of {scope.name} {scope_of(r)}"
            log.warning("%s %s keeps phone %r: %s %s%s already has it as %r; merge them by hand",
                        table.name, r.id, r.phone, noun, other, where, line)
            continue
        del holder[(scope_of(r), r.phone)]
        holder[(scope_of(r), line)] = r.id
        changes.append({"row_id": r.id, "line": line})
    if changes:
        connection.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                           .values(phone=sa.bindparam("line")), changes)
    log.info("%s: %d phone numbers rewritten in canonical form", table.name, len(changes))


def _rewrite_attempts(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(_attempts.c.id, _attempts.c.phone)
                              .where(_attempts.c.phone.is_not(None))).all()
    changes = []
    for r in rows:
        line = _canonical("dial_attempts", r.id, r.phone)
        if line != r.phone:
            digest = hashlib.sha256(line.encode("ascii")).hexdigest()
            changes.append({"row_id": r.id, "line": line, "digest": digest})
    if changes:
        connection.execute(_attempts.update().where(_attempts.c.id == sa.bindparam("row_id"))
                           .values(phone=sa.bindparam("line"), phone_hash=sa.bindparam("digest")), changes)


def _rewrite_dnc(connection: sa.Connection) -> None:
    rows = connection.execute(sa.select(_dnc.c.phone).order_by(_dnc.c.added_at, _dnc.c.phone)).all()
    listed = {r.phone for r in rows}
    renamed, dropped = [], []
    for r in rows:
        line = _canonical("dnc_numbers", r.phone, r.phone)
        if line == r.phone:
            continue
        if line in listed:
            log.info("dnc_numbers: %r dropped, the line is listed as %r", r.phone, line)
            dropped.append({"old": r.phone})
        else:
            renamed.append({"old": r.phone, "line": line})
        listed.discard(r.phone)
        listed.add(line)
    if dropped:
        connection.execute(_dnc.delete().where(_dnc.c.phone == sa.bindparam("old")), dropped)
    if renamed:
        connection.execute(_dnc.update().where(_dnc.c.phone == sa.bindparam("old"))
                           .values(phone=sa.bindparam("line")), renamed)


def upgrade() -> None:
    """Rewrite the stored numbers (see the module docstring for what cannot be)."""
    connection = op.get_bind()
    _rewrite_unique(connection, _customers, None, "customer")
    _rewrite_unique(connection, _leads, _leads.c.campaign_id, "lead")
    _rewrite_attempts(connection)
    _rewrite_dnc(connection)


def downgrade() -> None:
    """Nothing to undo: canonical spellings are valid numbers of revision 0002."""
