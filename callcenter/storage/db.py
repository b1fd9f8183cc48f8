"""Engines, sessions and schema migrations for SQLite and PostgreSQL.

* :func:`create_engine_for` turns a database URL into an Engine set up for this project.
  SQLite: foreign keys on, WAL and a 30 s busy timeout for file databases, usable from any
  thread, and every transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock
  up front, so concurrent read-modify-write transactions such as ticket allocation queue
  up instead of failing half-way with "database is locked"). PostgreSQL: plain
  ``postgresql://`` (or ``postgres://``) URLs use the psycopg 3 driver.
* :func:`make_session_factory` gives the ``sessionmaker`` the repository runs on.
* :func:`upgrade_database` applies the Alembic migrations shipped in
  ``callcenter/storage/migrations``; no ``alembic.ini`` is needed (:func:`alembic_config`
  builds the configuration in code).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped inside the package."""

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite connection waits for the write lock before giving up."""

SQLITE_BEGIN_IMMEDIATE = "callcenter_sqlite_begin_immediate"
"""Key set in ``Connection.info`` of SQLite connections made by :func:`create_engine_for`."""

_POSTGRES_DRIVERLESS = frozenset({"postgres", "postgresql"})


def database_url(url: str | URL) -> URL:
    """Parse ``url``, mapping driver-less PostgreSQL URLs to the psycopg 3 driver.

    ``postgresql://u@h/db`` and ``postgres://u@h/db`` become ``postgresql+psycopg://...``;
    any other URL is returned parsed but unchanged.
    """
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERLESS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def create_engine_for(url: str | URL, *, echo: bool = False) -> Engine:
    """Create the Engine for ``url`` (``sqlite:///path.db``, ``postgresql://...``).

    An in-memory SQLite URL (``sqlite://``) shares one connection between all threads;
    it is meant for short tests, not for concurrent use.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, echo=echo, pool_pre_ping=True)

    memory = _is_sqlite_memory(parsed)
    extra: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
    engine = create_engine(
        parsed,
        echo=echo,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
        },
        **extra,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from the sqlite3 module (which would not BEGIN
        # before SELECT or SAVEPOINT); the "begin" hook below emits BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()
        connection_record.info[SQLITE_BEGIN_IMMEDIATE] = True

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """The session factory of the repository (objects stay readable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` for the shipped migrations, built without any ini file.

    ``url`` becomes ``sqlalchemy.url`` (used when no connection is handed to the
    migration environment, e.g. from the command line).
    """
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = database_url(url).render_as_string(hide_password=False)
        # Config values go through ConfigParser interpolation: escape "%".
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade_database(url: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at ``url`` (or behind an Engine) up to ``revision``."""
    if isinstance(url, Engine):
        _upgrade_with_engine(url, revision)
        return
    engine = create_engine_for(url)
    try:
        _upgrade_with_engine(engine, revision)
    finally:
        engine.dispose()


def _upgrade_with_engine(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision() -> str:
    """The newest revision of the shipped migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no Alembic revision found in the migrations directory")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
