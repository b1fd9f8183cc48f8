"""Fixtures shared by the unit tests that need a real database schema.

``db_url`` is an empty database: a SQLite file, or (marked ``postgres``) a fresh schema on
the test session's PostgreSQL server (``tests/pgserver.py``); ``engine`` has it migrated to
head; ``sessions`` makes sessions on it. A module may override ``db_url`` (e.g. SQLite only).
``pg_sessions``: sessions on a migrated PostgreSQL schema only, for tests of its locking.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a fresh schema on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'callcenter.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on a database migrated to head."""
    engine = create_engine_for(db_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions on the migrated database."""
    return make_session_factory(engine)


@pytest.fixture
def pg_sessions(postgres_schema_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh PostgreSQL schema migrated to head (tests marked ``postgres`` of
    what only PostgreSQL does: row locks taken by concurrent transactions)."""
    engine = create_engine_for(postgres_schema_url)
    upgrade_database(engine)
    yield make_session_factory(engine)
    engine.dispose()
