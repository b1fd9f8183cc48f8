"""A site for the CLI's tests: a ``site.yaml`` whose database is a new, migrated SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)

__all__ = ["sqlite_site"]

T = TypeVar("T")


def sqlite_site(tmp_path: Path, fill: Callable[[sessionmaker[Session]], T], extra: str = "") -> tuple[Path, T]:
    """Write ``tmp_path/site.yaml`` (state under ``var``, the database ``cc.db``, then ``extra``
    YAML), create and migrate the database, let ``fill(sessions)`` store what the test needs,
    and close it again: (the site file, what ``fill`` returned)."""
    site = tmp_path / "site.yaml"
    site.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\ndatabase:\n  url: sqlite:///{tmp_path / 'cc.db'}\n"
                    + extra)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'cc.db'}")
    try:
        upgrade_database(engine)
        return site, fill(make_session_factory(engine))
    finally:
        engine.dispose()
