"""Benchmark: importing 100,000 leads from CSV, bulk path against one ORM object per row.

1. Generates a seeded lead file (default 100,000 data rows, about 1% bad of several
   kinds: invalid or missing phone, unknown time zone, wrong column count, a phone
   repeated in the file, an over-long name, a number on the do-not-call list; some good
   rows have quoted notes spanning lines) in a temporary directory.
2. Imports it through the path of ``callcenter dialer import``
   (:func:`callcenter.dialer.cli.import_lead_file`: parse, then
   :func:`callcenter.storage.dialer.import_leads` with chunked bulk INSERTs) into a fresh
   SQLite file, and into PostgreSQL with ``--postgres URL`` (a fresh schema, dropped
   afterwards) or ``--postgres-temp`` (a throw-away cluster from ``tests/pgserver.py``).
3. Baseline in the same run, same database, same parsed rows, into a second campaign: the
   naive import, ``session.add(models.Lead(...))`` for each row and one commit (duplicate
   and DNC checks done the same way, in memory, so only the writing differs).

Prints rows imported, bad rows by reason, seconds and rows per second of both, and the
ratio. Run from the repository root: ``.venv/bin/python bench/lead_import.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import platform
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from callcenter.dialer.campaign import Campaign
from callcenter.dialer.cli import import_lead_file
from callcenter.dialer.leads_csv import read_leads_file
from callcenter.storage import dialer as store
from callcenter.storage import models
from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)

NOW = datetime(2024, 3, 5, 2, 0, tzinfo=UTC)
ZONES = ("Asia/Shanghai", "Asia/Shanghai", "Asia/Shanghai", "", "Asia/Hong_Kong", "America/New_York")
CITIES = ("广州", "深圳", "佛山", "东莞", "珠海", "Shanghai", "Beijing")
BAD_KINDS = ("invalid phone", "missing phone", "unknown time zone", "wrong column count",
             "duplicate phone", "over-long name", "do-not-call")


def generate(path: Path, rows: int, bad_share: float, seed: int) -> tuple[list[str], Counter[str]]:
    """Write the lead file; return the DNC numbers it uses and the bad rows planted by kind."""
    rng = random.Random(seed)
    numbers = [f"1{rng.choice('3578')}{n:09d}" for n in rng.sample(range(10**9), rows)]
    planted: Counter[str] = Counter()
    dnc: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "name", "timezone", "city", "notes"])
        for i, phone in enumerate(numbers):
            name, tz, city = f"客户{i}", rng.choice(ZONES), rng.choice(CITIES)
            notes = "回访\n上次说下周再打" if rng.random() < 0.01 else ""
            row = [phone, name, tz, city, notes]
            if rng.random() < bad_share:
                kind = rng.choice(BAD_KINDS)
                planted[kind] += 1
                if kind == "invalid phone":
                    row[0] = phone[:2] + "-abc"
                elif kind == "missing phone":
                    row[0] = ""
                elif kind == "unknown time zone":
                    row[2] = "Asia/Atlantis"
                elif kind == "wrong column count":
                    row = row[:3]
                elif kind == "duplicate phone":
                    row[0] = numbers[rng.randrange(max(1, i))] if i else phone
                    if not i:
                        planted[kind] -= 1
                elif kind == "over-long name":
                    row[1] = "名" * 201
                else:
                    dnc.append(phone)
            writer.writerow(row)
    return dnc, planted


def reason_kind(reason: str) -> str:
    """A problem's reason without the row's specifics (numbers, quoted values)."""
    return re.sub(r"'[^']*'|\d+|\([^)]*\)", "_", reason)


@contextlib.contextmanager
def database(kind: str, url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a new schema on PostgreSQL dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    import psycopg

    assert url is not None
    base = sa.engine.make_url(url)
    libpq = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def naive_import(sessions: sessionmaker[Session], campaign_id: int, path: Path) -> tuple[int, float]:
    """The baseline: same parser and in-memory checks, then one ORM object per row."""
    started = time.perf_counter()
    rows, _problems = read_leads_file(path)
    with sessions.begin() as session:
        known = set(session.scalars(sa.select(models.Lead.phone).where(models.Lead.campaign_id == campaign_id)))
        dnc = set(session.scalars(sa.select(models.DncNumber.phone)))
        lead_list = models.LeadList(campaign_id=campaign_id, name="naive", source_file=str(path), imported_at=NOW,
                                    imported_by="bench", rows_ok=0, rows_bad=0)
        session.add(lead_list)
        session.flush()
        added = 0
        for row in rows:
            if row.phone in known or row.phone in dnc:
                continue
            known.add(row.phone)
            session.add(models.Lead(campaign_id=campaign_id, list_id=lead_list.id, phone=row.phone, name=row.name,
                                    timezone=row.timezone, extra=dict(row.extra), state="new", attempts=0,
                                    next_attempt_at=NOW, created_at=NOW, updated_at=NOW))
            added += 1
        lead_list.rows_ok = added
    return added, time.perf_counter() - started


def bench(kind: str, url: str, path: Path, dnc: list[str], rows: int) -> None:
    engine = create_engine_for(url)
    try:
        upgrade_database(engine)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            fast_campaign, naive_campaign = store.sync_campaigns(session, [Campaign("bench"), Campaign("baseline")],
                                                                 now=NOW)
            store.add_dnc(session, dnc, source="bench", now=NOW)
        started = time.perf_counter()
        result = import_lead_file(sessions, "bench", path, actor="bench", now=NOW)
        fast = time.perf_counter() - started
        added, naive = naive_import(sessions, naive_campaign.id, path)
        with sessions.begin() as session:
            stored = store.campaign_progress(session, fast_campaign.id).leads
        assert stored == result.rows_ok == added, (stored, result.rows_ok, added)
        assert result.rows_ok + result.rows_bad == rows
    finally:
        engine.dispose()
    print(f"\n{kind}: {result.rows_ok:,} rows imported, {result.rows_bad:,} bad rows "
          f"({result.duplicates} duplicate, {result.dnc} do-not-call)")
    for (field, reason), count in sorted(Counter((p.field, reason_kind(p.reason))
                                                 for p in result.problems).items()):
        print(f"  {count:>5}  {field}: {reason}")
    print(f"  bulk import (CLI path):   {fast:6.2f} s  {rows / fast:>9,.0f} rows/s")
    print(f"  naive ORM, row by row:    {naive:6.2f} s  {rows / naive:>9,.0f} rows/s")
    print(f"  speed-up:                 {naive / fast:6.1f} x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows in the generated file")
    parser.add_argument("--bad-share", type=float, default=0.01, help="share of bad rows (default 1%%)")
    parser.add_argument("--seed", type=int, default=20240305)
    parser.add_argument("--postgres", metavar="URL", help="also import into this PostgreSQL database")
    parser.add_argument("--postgres-temp", action="store_true",
                        help="also import into a throw-away PostgreSQL cluster (tests/pgserver.py)")
    args = parser.parse_args()
    print(f"lead import benchmark: {args.rows:,} rows, {args.bad_share:.0%} bad, seed {args.seed}; "
          f"Python {platform.python_version()}, SQLAlchemy {sa.__version__}, {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="lead-import-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        path = workdir / "leads.csv"
        dnc, planted = generate(path, args.rows, args.bad_share, args.seed)
        print(f"generated {path.stat().st_size / 1e6:.1f} MB; bad rows planted: "
              + ", ".join(f"{kind} {count}" for kind, count in sorted(planted.items())))
        targets: list[tuple[str, str | None]] = [("sqlite", None)]
        if args.postgres_temp:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.pgserver import temporary_postgres

            targets.append(("postgresql (temporary cluster)", stack.enter_context(temporary_postgres())))
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        for kind, server in targets:
            with database("sqlite" if server is None else "postgresql", server, workdir) as url:
                bench(kind, url, path, dnc, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
