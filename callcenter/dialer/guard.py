"""The abandonment guard: a campaign over the legal abandonment limit dials progressively.

The predictive pacer aims under its target, but a pacer is a forecast: a bad hour (agents
logging off together, an answer-rate jump, a misconfigured ratio, the VICIdial or fixed
pacers, which have no model at all) can still push a campaign's ledger over the limit the
rules set (3% of live answers, per day for Ofcom's 24 hours and over 30 days for the FTC).
The guard is the backstop: the dialer asks it, every ``check_seconds``, with the campaign's
ledger (:func:`callcenter.storage.dialer.abandon_ledger`: today's live answers and
abandoned calls, and the rolling window's); while it is engaged the campaign is paced 1:1
(one call per ready agent: an answered call almost always finds its agent), which adds live
answers and no abandoned calls, so the rate falls back. It disengages when every span is
at or under ``resume_fraction`` of the limit, so it does not flap at the limit itself.

A span with fewer than ``min_live_answers`` live answers is not judged: the first call of
the morning being abandoned is 100% of one answer, not a breach worth a day of progressive
dialing (the pacer's own feedback handles the start of a day).

Pure: no Twisted, no SQL. :mod:`callcenter.dialer.service` owns the timing and the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["GuardSettings", "GuardVerdict", "LedgerCounts", "judge"]

#: The rules' limit: 3% of live answers (FTC per campaign over 30 days; Ofcom per 24 hours).
LEGAL_LIMIT: Final = 0.03


@dataclass(frozen=True)
class GuardSettings:
    """``dialer.abandon_guard`` in ``config/dialer.yaml``."""

    enabled: bool = True
    limit: float = LEGAL_LIMIT
    """Abandoned / live answers above which a campaign is held to progressive dialing."""
    min_live_answers: int = 100
    """Spans with fewer live answers are not judged."""
    check_seconds: float = 30.0
    """How often the dialer reads each campaign's ledger."""
    resume_fraction: float = 0.9
    """Engaged, the guard lets go when every span is at or under this share of ``limit``."""

    def __post_init__(self) -> None:
        if not 0.0 < self.limit <= 0.1:
            raise ValueError(f"limit: a share in (0, 0.1], got {self.limit!r}")
        if self.min_live_answers < 1:
            raise ValueError(f"min_live_answers: at least 1, got {self.min_live_answers!r}")
        if not 5.0 <= self.check_seconds <= 3600.0:
            raise ValueError(f"check_seconds: 5..3600, got {self.check_seconds!r}")
        if not 0.0 < self.resume_fraction <= 1.0:
            raise ValueError(f"resume_fraction: a share in (0, 1], got {self.resume_fraction!r}")


@dataclass(frozen=True)
class LedgerCounts:
    """Live answers and abandoned calls of one span of the ledger (today, or the window)."""

    span: str
    """What the span is, for messages: ``"today"``, ``"30 days"``."""
    live_answers: float
    abandoned: float

    @property
    def rate(self) -> float | None:
        """Abandoned / live answers (None without live answers)."""
        return self.abandoned / self.live_answers if self.live_answers > 0 else None


@dataclass(frozen=True)
class GuardVerdict:
    """Whether the campaign must dial progressively, and why (for the log and the API)."""

    engaged: bool
    reason: str = ""


def judge(settings: GuardSettings, engaged: bool, spans: tuple[LedgerCounts, ...]) -> GuardVerdict:
    """The guard's verdict for a campaign whose guard is now ``engaged`` (or not).

    Not engaged: engage when a span with at least ``min_live_answers`` live answers is over
    ``limit``. Engaged: stay engaged while such a span is over ``resume_fraction x limit``.
    The reason names the first span over its bound: ``"today: 3.4% of 412 live answers >
    3.0%"``.
    """
    if not settings.enabled:
        return GuardVerdict(False)
    bound = settings.limit * (settings.resume_fraction if engaged else 1.0)
    for span in spans:
        rate = span.rate
        if rate is None or span.live_answers < settings.min_live_answers:
            continue
        if rate > bound:
            word = "still above" if engaged else ">"
            return GuardVerdict(True, f"{span.span}: {rate:.2%} of {span.live_answers:g} live answers "
                                      f"{word} {bound:.2%}")
    return GuardVerdict(False)
