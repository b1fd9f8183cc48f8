"""Alembic migration environment of the storage layer (see ``callcenter.storage.db``)."""
