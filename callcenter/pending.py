"""Work a service started and must let finish: Deferreds kept until they fire.

The engine (call records, recordings) and the dialer (claims, Originates, attempt
outcomes) each keep one :class:`PendingWork`, so that stopping the daemon waits for the
writes already under way instead of dropping them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList

__all__ = ["PendingWork"]

_D = TypeVar("_D", bound="Deferred[Any]")


class PendingWork:
    """The Deferreds still running, each forgotten as soon as it fires."""

    def __init__(self) -> None:
        self._running: set[Deferred[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def track(self, d: _D) -> _D:
        """Keep ``d`` until it fires (its result passes through unchanged); return it."""
        self._running.add(d)

        def done(result: object) -> object:
            self._running.discard(d)
            return result

        d.addBoth(done)
        return d

    def wait(self) -> Deferred[None] | None:
        """None when nothing runs, else a Deferred that fires once everything has (failures included)."""
        if not self._running:
            return None
        return DeferredList(list(self._running), consumeErrors=True).addCallback(lambda _: None)
