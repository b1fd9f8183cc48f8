"""The real storage Repository, run synchronously: for unit tests of code that takes one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, fail, succeed

from callcenter.storage.repository import Repository

__all__ = ["SyncRepository", "in_tx"]

T = TypeVar("T")


def in_tx(sessions: sessionmaker[Session], fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run one repository function in its own committed transaction."""
    with sessions.begin() as session:
        return fn(session, *args, **kw)


class SyncRepository(Repository):
    """The real Repository's methods, each run at once in one transaction (no thread pool):
    the Deferred has fired when the method returns."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def run(self, function: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        with self._sessions.begin() as session:
            try:
                return succeed(function(session, *args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - a failed Deferred, like the real one
                return fail(exc)
