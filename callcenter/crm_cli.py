"""``callcenter crm``: the CRM's customers from the command line (docs/crm.md).

- ``crm import FILE.csv``: add a customer file's customers (name, phone, email, vip, notes;
  Chinese headers too); bad rows and numbers that are customers already are printed by line
  and written to a rejects file; nothing else is left out.
- ``crm find TEXT``: customers by number (any spelling) or part of the name.
- ``crm show ID``: a customer and their last calls.

Each runs on the configured database directly (migrated first), like ``callcenter report``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.crm import CustomerFileError, read_customers_file
from callcenter.dialer.cli import SHOW_PROBLEMS, report_rejects
from callcenter.reports_cli import on_database
from callcenter.storage.records import CallRecord, Customer

__all__ = ["add_parser"]


def _import(args: argparse.Namespace, settings: Any) -> int:
    from callcenter.storage.crm import import_customers

    path = Path(args.csv)
    started = time.perf_counter()
    try:
        rows, problems = read_customers_file(path, encoding=args.encoding)
    except CustomerFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = on_database(settings, import_customers, rows=rows)
    elapsed = time.perf_counter() - started
    rejected = sorted([*problems, *result.existing], key=lambda p: p.line)
    rejects = Path(args.rejects) if args.rejects else settings.site.state_dir / "imports" / f"{path.stem}-rejects.csv"
    report_rejects(path, rejected, show=args.show, rejects=rejects, noun="row(s) left out")
    total = len(rows) + len(problems)
    print(f"{path}: {result.created} of {total} customer(s) added to the CRM; {len(problems)} bad row(s), "
          f"{len(result.existing)} already customers; {elapsed:.2f} s")
    return 0 if result.created or not rejected else 1


def _find(args: argparse.Namespace, settings: Any) -> int:
    from callcenter.storage.crm import search_customers

    found = on_database(settings, search_customers, text=args.text, limit=args.limit)
    for customer in found:
        vip = " VIP" if customer.vip else ""
        print(f"{customer.id:>7}  {customer.phone:<15} {customer.name}{vip}  {customer.email or ''}".rstrip())
    if not found:
        print(f"no customer matches {args.text!r}", file=sys.stderr)
        return 1
    return 0


def _show(args: argparse.Namespace, settings: Any) -> int:
    from callcenter.storage.crm import customer_history
    from callcenter.storage.repository import get_customer

    def read(session: Any, customer_id: int, limit: int) -> tuple[Customer | None, list[CallRecord]]:
        found = get_customer(session, customer_id)
        calls = [] if found is None else customer_history(session, customer_id=found.id, phone=found.phone,
                                                          limit=limit)
        return found, calls

    customer, calls = on_database(settings, read, customer_id=args.id, limit=args.limit)  # one session
    if customer is None:
        print(f"error: no customer {args.id}", file=sys.stderr)
        return 1
    print(f"customer {customer.id}: {customer.name} {customer.phone}{' VIP' if customer.vip else ''}")
    if customer.email:
        print(f"  email: {customer.email}")
    if customer.notes:
        print(f"  notes: {customer.notes}")
    print(f"  last {len(calls)} call(s):" if calls else "  no calls yet")
    for record in calls:
        print(f"  {record.started_at:%Y-%m-%d %H:%M}Z {record.ticket_number} {record.direction:<8} "
              f"agent {record.agent_id or '-':<6} {record.outcome or '-'}")
    return 0


def add_parser(subparsers: Any, settings_of: Callable[[argparse.Namespace], Any]) -> argparse.ArgumentParser:
    """Register ``crm import|find|show``."""
    crm: argparse.ArgumentParser = subparsers.add_parser("crm", help="the CRM's customers: import a file, find, show")
    sub = crm.add_subparsers(dest="crm_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, run: Callable[[argparse.Namespace, Any], int]) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=lambda args: run(args, settings_of(args)))
        return p

    p = command("import", "add a CSV file's customers (name, phone, email, vip, notes)", _import)
    p.add_argument("csv", help="the customer file")
    p.add_argument("--encoding", default="utf-8", help="utf-8 (default, a BOM is fine) or e.g. gb18030")
    p.add_argument("--rejects", metavar="FILE",
                   help="where to write every row left out (default: <state_dir>/imports/<file>-rejects.csv)")
    p.add_argument("--show", type=int, default=SHOW_PROBLEMS, help=f"bad rows to print (default {SHOW_PROBLEMS})")
    p = command("find", "customers by number or part of the name", _find)
    p.add_argument("text", help="a number (any spelling) or part of a name")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p = command("show", "a customer and their last calls", _show)
    p.add_argument("id", type=int, help="the customer's id (crm find prints it)")
    p.add_argument("--limit", type=int, default=10, help="calls to show (default 10)")
    return crm
