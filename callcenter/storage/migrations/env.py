"""Alembic environment: runs the migrations against a handed-in connection or a URL.

:func:`callcenter.storage.db.upgrade_database` hands in an open connection through
``config.attributes["connection"]``; otherwise ``sqlalchemy.url`` of the configuration
is opened with :func:`callcenter.storage.db.create_engine_for`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from callcenter.storage.db import create_engine_for, database_url
from callcenter.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later revisions use batch operations.
        render_as_batch=connection.dialect.name == "sqlite",
        # Engines from create_engine_for() run SQLite DDL inside real transactions too,
        # so a failed revision leaves no half-migrated schema behind.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations (``alembic upgrade --sql``) without a database."""
    url = database_url(config.get_main_option("sqlalchemy.url") or "sqlite://")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the handed-in connection, or on a new engine for the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or hand in a connection")
    engine = create_engine_for(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
