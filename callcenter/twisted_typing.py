"""Typing protocols for the few Twisted interfaces the protocol classes use.

Twisted's zope interfaces (``IReactorTime``, ``IDelayedCall``, ``ITransport``) declare
methods without ``self``; these structural protocols describe just the methods the AMI
client and the FastAGI server call, so both are checked strictly and share one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "DelayedCall", "Transport"]


class DelayedCall(Protocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...


class Clock(Protocol):
    def callLater(
        self,
        delay: float,
        callable: Callable[..., object],
        /,
        *args: object,
        **kw: object,
    ) -> DelayedCall: ...

    def seconds(self) -> float: ...


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def getPeer(self) -> object: ...
