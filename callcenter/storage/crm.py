"""The CRM in SQL: a customer's calls, a customer saved from a call, customer files, search.

Session-level functions (run in the repository's thread pool, ``repo.run(fn, ...)``), as
the rest of :mod:`callcenter.storage`; docs/crm.md says what the screen pop and the API
make of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from callcenter.crm import CustomerRow
from callcenter.storage import models
from callcenter.storage.dialer_records import RowProblem
from callcenter.storage.records import (
    CallRecord,
    Customer,
    InvalidFieldError,
    NewCustomer,
    canonical_phone,
    optional_text,
)
from callcenter.storage.repository import (
    NotFoundError,
    _call_record,
    _customer,
    _limit,
    create_customer,
)

__all__ = ["ALREADY_A_CUSTOMER", "CustomerImport", "customer_history", "import_customers", "last_agent",
           "save_caller", "search_customers"]

ALREADY_A_CUSTOMER: Final = "already a customer"
IMPORT_CHUNK: Final = 1000
"""Rows looked up and inserted per statement when importing (bound parameters stay few)."""


def customer_history(session: Session, *, customer_id: int | None, phone: str | None,
                     exclude_id: int | None = None, limit: int = 10) -> list[CallRecord]:
    """The calls of a customer (theirs, and their number's) and of a number, newest first:
    the screen pop's history. ``exclude_id`` leaves out the call on screen. Neither given:
    nothing."""
    record = models.CallRecord
    matches = []
    if customer_id is not None:
        matches.append(record.customer_id == customer_id)
        # and their number's calls from before they were in the CRM
        matches.append(record.phone == select(models.Customer.phone).where(
            models.Customer.id == customer_id).scalar_subquery())
    if phone:
        try:
            matches.append(record.phone == canonical_phone(phone))
        except InvalidFieldError:
            matches.append(record.phone == phone)  # a caller id that is no number: as signalled
    if not matches:
        return []
    stmt = select(record).where(or_(*matches))
    if exclude_id is not None:
        stmt = stmt.where(record.id != exclude_id)
    stmt = stmt.order_by(record.started_at.desc(), record.id.desc()).limit(_limit(limit))
    return [_call_record(row) for row in session.scalars(stmt)]


def last_agent(session: Session, phone: str, since: datetime) -> str | None:
    """The agent who last talked with ``phone`` (a call of either direction that an agent
    answered, started at or after ``since``), or None: where a returning caller rings first
    (docs/agents.md, "A returning caller reaches their agent"). A caller id that is no number
    finds nobody."""
    try:
        number = canonical_phone(phone)
    except InvalidFieldError:
        return None
    record = models.CallRecord
    stmt = (select(record.agent_id)
            .where(record.phone == number, record.agent_id.is_not(None), record.answered_at.is_not(None),
                   record.started_at >= since)
            .order_by(record.started_at.desc(), record.id.desc()).limit(1))
    return session.scalar(stmt)


def save_caller(session: Session, new: NewCustomer, *, ticket: str | None = None) -> Customer:
    """Create the customer an agent saves from a call, and link that call's record to them.

    :class:`~callcenter.storage.repository.ConflictError` when another customer has the number (naming them); NotFoundError for an
    unknown ticket; nothing is written then.
    """
    record = None
    if ticket is not None:
        record = session.scalar(select(models.CallRecord).where(models.CallRecord.ticket_number == ticket))
        if record is None:
            raise NotFoundError(f"ticket: no call record {ticket}")
    customer = create_customer(session, new)
    if record is not None:
        record.customer_id = customer.id
        record.customer_name = customer.name
        session.flush()
    return customer


@dataclass(frozen=True, slots=True)
class CustomerImport:
    """What a customer file import did: how many it created, and the rows it left out
    because their number is already a customer's (a problem each, naming the customer)."""

    created: int
    existing: tuple[RowProblem, ...]


def import_customers(session: Session, rows: Sequence[CustomerRow]) -> CustomerImport:
    """Insert the file's customers whose number is not a customer's yet, in chunks."""
    created = 0
    existing: list[RowProblem] = []
    table = models.Customer
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start:start + IMPORT_CHUNK]
        owners = {phone: owner for phone, owner in session.execute(
            select(table.phone, table.id).where(table.phone.in_([r.customer.phone for r in chunk])))}
        fresh = []
        for row in chunk:
            owner = owners.get(row.customer.phone)
            if owner is not None:
                existing.append(RowProblem(row.line, "phone", f"{ALREADY_A_CUSTOMER} (customer {owner})", row.raw))
                continue
            c = row.customer
            fresh.append({"name": c.name, "phone": c.phone, "email": c.email, "vip": c.vip, "notes": c.notes})
        if fresh:
            session.execute(insert(table), fresh)
            created += len(fresh)
    return CustomerImport(created, tuple(existing))


def search_customers(session: Session, text: str, *, limit: int = 20) -> list[Customer]:
    """Customers whose number is ``text`` (any spelling) or whose name contains it, by name."""
    query = optional_text("q", text, 200)
    if query is None:
        raise InvalidFieldError("q", "say what to look for: a number or part of a name")
    if "\x00" in query:  # PostgreSQL refuses it in a text parameter (a 500 before)
        raise InvalidFieldError("q", "must not contain a NUL character")
    table = models.Customer
    matches = [func.lower(table.name).contains(query.lower(), autoescape=True)]
    try:
        matches.append(table.phone == canonical_phone(query))
    except InvalidFieldError:
        pass
    stmt = select(table).where(or_(*matches)).order_by(table.name, table.id).limit(_limit(limit))
    return [_customer(row) for row in session.scalars(stmt)]
