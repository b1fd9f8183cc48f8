"""The supervisor's spy modes and their ChanSpy options (pure: no Twisted), shared by the
supervisor service (:mod:`callcenter.supervisor`) and the team lead's page."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

__all__ = ["CHANSPY_OPTIONS", "SpyMode"]


class SpyMode(enum.Enum):
    """What the supervisor does on the agent's call."""

    LISTEN = "listen"
    """Hear the agent and the customer; nobody hears the supervisor."""
    WHISPER = "whisper"
    """Hear both; only the agent hears the supervisor (coaching)."""
    BARGE = "barge"
    """Hear both; both hear the supervisor (joining the call)."""

    @classmethod
    def parse(cls, value: SpyMode | str) -> SpyMode:
        """``listen``/``whisper``/``barge`` (or a SpyMode) -> SpyMode; ValueError otherwise."""
        if isinstance(value, SpyMode):
            return value
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown spy mode {value!r} (one of {choices})") from None


CHANSPY_OPTIONS: Final[Mapping[SpyMode, str]] = {
    SpyMode.LISTEN: "qEu",
    SpyMode.WHISPER: "qwEu",
    SpyMode.BARGE: "qBEu",
}
"""ChanSpy options for each mode (see the module docstring)."""
