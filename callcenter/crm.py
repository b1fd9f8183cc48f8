"""The CRM's customers: customer files, and the fields agents send (pure; docs/crm.md).

A customer file is CSV with a header row naming a ``phone`` column and a ``name`` column
(Chinese headers too: 电话, 手机, 姓名...); ``email`` (邮箱), ``vip`` (yes/no, 是/否, 1/0) and
``notes`` (备注) are optional. A column the CRM has no field for refuses the file, naming
it: an import never drops data silently. Each data row ends up either as a
:class:`CustomerRow` or as a :class:`~callcenter.storage.dialer_records.RowProblem` naming its
line, field and reason (``rows + problems == data rows``); a phone seen earlier in the file
is a problem at the later line.

:func:`new_customer_body` and :func:`customer_changes` read a web request's JSON body
(``POST /api/customers``, ``POST /api/customers/<id>``) into a new customer or the changes
to one, naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from callcenter.csvfile import open_text, read_header, repeated_phone, shaped_rows
from callcenter.storage.dialer_records import RowProblem
from callcenter.storage.records import (
    UNSET,
    CustomerUpdate,
    InvalidFieldError,
    NewCustomer,
)

__all__ = [
    "COLUMN_ALIASES",
    "CUSTOMER_FIELDS",
    "CustomerFileError",
    "CustomerRow",
    "customer_changes",
    "new_customer_body",
    "parse_customers_csv",
    "read_customers_file",
]

CUSTOMER_FIELDS: Final = ("name", "phone", "email", "vip", "notes")
"""What the CRM keeps of a customer, and the columns of a customer file."""

COLUMN_ALIASES: Final[dict[str, str]] = {
    alias: column
    for column, aliases in {
        "phone": ("phone", "phone_number", "phonenumber", "mobile", "mobile_phone", "tel", "telephone", "number",
                  "电话", "手机", "手机号", "手机号码", "电话号码", "号码"),
        "name": ("name", "full_name", "customer", "customer_name", "姓名", "名字", "客户", "客户姓名"),
        "email": ("email", "e-mail", "mail", "邮箱", "电子邮箱", "电子邮件"),
        "vip": ("vip", "is_vip", "贵宾"),
        "notes": ("notes", "note", "remarks", "comment", "comments", "备注", "说明"),
    }.items()
    for alias in aliases
}
"""Header names (compared case-insensitively, blanks trimmed) of the CRM's columns."""

_YES: Final = frozenset({"yes", "y", "true", "1", "vip", "是", "x"})
_NO: Final = frozenset({"no", "n", "false", "0", "", "否"})


class CustomerFileError(ValueError):
    """The customer file as a whole cannot be read; the message starts with ``FILE:LINE:``."""


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One customer of a file, valid, with the line it starts on."""

    line: int
    customer: NewCustomer
    raw: tuple[str, ...] = ()
    """The row's fields as read: a rejects file keeps it whole."""


def _vip(text: str) -> bool:
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InvalidFieldError("vip", f"expected yes or no (是/否, 1/0), got {text!r}")


def parse_customers_csv(lines: Iterable[str], source: str) -> tuple[list[CustomerRow], list[RowProblem]]:
    """Parse a customer file given as lines into customers and per-line problems.

    ``source`` names the file in errors. A header without ``phone`` or ``name``, a
    repeated column or one the CRM has no field for raises :class:`CustomerFileError`.
    Lines that are not valid CSV (a quote that never closes is the problem of its own line
    alone), rows of another width or with a NUL character, and bad values are problems.
    """
    header = read_header(lines, source, COLUMN_ALIASES, CustomerFileError, "name and phone columns")
    columns, seen = header.columns, header.titles
    for column in columns:
        if column not in CUSTOMER_FIELDS:
            raise CustomerFileError(
                f"{source}:{header.line}: header: column {seen[column]!r} is not a CRM field "
                f"(the CRM keeps {', '.join(CUSTOMER_FIELDS)}; remove or rename the column)")
    for needed in ("phone", "name"):
        if needed not in seen:
            raise CustomerFileError(
                f"{source}:{header.line}: header: no {needed} column (found {', '.join(seen.values())})")

    customers: list[CustomerRow] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for line, fields in shaped_rows(header, problems):
        raw = tuple(fields)
        values = dict(zip(columns, fields, strict=True))
        try:
            customer = NewCustomer(
                name=values["name"], phone=values["phone"], email=values.get("email") or None,
                vip=_vip(values.get("vip", "")), notes=values.get("notes", "").strip())
        except InvalidFieldError as exc:
            problems.append(RowProblem(line, exc.field, exc.problem, raw))
            continue
        repeated = repeated_phone(first_line, customer.phone, line, raw)
        if repeated is not None:
            problems.append(repeated)
            continue
        customers.append(CustomerRow(line, customer, raw))
    return customers, problems


def read_customers_file(path: Path, *, encoding: str = "utf-8") -> tuple[list[CustomerRow], list[RowProblem]]:
    """Read and parse a customer file (see :func:`parse_customers_csv`); ``encoding`` as for
    lead files (``utf-8``, with or without a byte-order mark, or e.g. ``gb18030``)."""
    return parse_customers_csv(open_text(path, encoding, CustomerFileError), str(path))


def _check_body(body: Mapping[str, Any]) -> None:
    """What the customer dataclasses do not check themselves: unknown fields, and types a
    JSON body could get wrong (``vip`` a string, ``notes`` a number)."""
    for key in body:
        if key not in CUSTOMER_FIELDS:
            raise InvalidFieldError(str(key), f"not a customer field (fields: {', '.join(CUSTOMER_FIELDS)})")
    if "vip" in body and not isinstance(body["vip"], bool):
        raise InvalidFieldError("vip", f"must be true or false, got {body['vip']!r}")
    if "notes" in body and not isinstance(body["notes"], str):
        raise InvalidFieldError("notes", f"must be a string, got {body['notes']!r}")


def new_customer_body(body: Mapping[str, Any]) -> NewCustomer:
    """A web request's new customer: ``name`` and ``phone``, and any other field. Unknown
    fields and bad values raise :class:`InvalidFieldError` naming the field."""
    _check_body(body)
    for needed in ("name", "phone"):
        if needed not in body:
            raise InvalidFieldError(needed, "is required for a new customer")
    return NewCustomer(name=body["name"], phone=body["phone"], email=body.get("email"),
                       vip=body.get("vip", False), notes=body.get("notes", ""))


def customer_changes(body: Mapping[str, Any]) -> CustomerUpdate:
    """A web request's changes to a customer: any of the fields. Unknown fields, bad values
    and a body that changes nothing raise :class:`InvalidFieldError` naming the field."""
    _check_body(body)
    if not body:
        raise InvalidFieldError("body", f"nothing to change (fields: {', '.join(CUSTOMER_FIELDS)})")
    return CustomerUpdate(**{key: body.get(key, UNSET) for key in CUSTOMER_FIELDS})
