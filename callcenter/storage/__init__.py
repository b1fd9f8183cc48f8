"""Storage: SQLAlchemy 2.0 models, Alembic migrations and thread-pool repositories.

Modules: :mod:`.records` (plain frozen dataclasses in and out, pure),
:mod:`.tickets` (ticket numbers, pure), :mod:`.models` (ORM tables),
:mod:`.db` (engines, sessions, migrations) and :mod:`.repository` (blocking functions on
a Session plus the Deferred-returning :class:`~.repository.Repository` facade).
"""
