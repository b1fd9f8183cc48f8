"""Sales commission: who earns what from the sales agents record on their calls (pure).

The reference site pays 15% of sales: 11% to the agent who made the sale, 1.5% to the
lead of that agent's team (the team they were in when the sale was recorded), 1% to the director and 1.5% into a pool for the other staff
(``commission`` in ``config/callcenter.yaml``). A sale is a call record's
``sale_amount``, set with the call's disposition.

:func:`commission_lines` turns a period's sales into one line per person and share:
amounts in yuan as :class:`~decimal.Decimal`, each line rounded half-up to the fen. A
team with several leads splits the lead share equally; a share nobody is configured to
receive (a team without a lead, no ``director_id``) is reported as ``unassigned``, never
dropped. The total of the lines may differ from rate x sales by the rounding of each line
(reported as ``rounding``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Protocol

__all__ = ["SHARES", "CommissionLine", "CommissionRates", "CommissionTotals", "Sale", "commission_lines",
           "commission_report", "commission_totals", "fen", "team_maps"]

SHARES: Final = ("agent", "lead", "director", "others")
"""The shares of a sale's commission, in the order they are reported."""

FEN: Final = Decimal("0.01")


def fen(amount: Decimal) -> Decimal:
    """``amount`` rounded half-up to the fen (0.01 yuan)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CommissionRates:
    """The share of each sale paid to each role (fractions, exact decimals)."""

    agent: Decimal = Decimal("0.11")
    lead: Decimal = Decimal("0.015")
    director: Decimal = Decimal("0.01")
    others: Decimal = Decimal("0.015")
    director_id: str | None = None
    """The agent id of the director (None: the director's share is unassigned)."""

    @property
    def total(self) -> Decimal:
        return self.agent + self.lead + self.director + self.others

    def rate(self, share: str) -> Decimal:
        rate: Decimal = getattr(self, share)
        return rate


@dataclass(frozen=True)
class Sale:
    """One call's sale: the agent who made it, the amount in yuan, and the agent's team when
    it was recorded (None: the agent's team now)."""

    agent_id: str | None
    amount: Decimal
    team: str | None = None


@dataclass(frozen=True)
class CommissionLine:
    """What one person (or the pool, or nobody) earns from one share of the period's sales."""

    payee: str
    """An agent id, ``others`` (the pool) or ``unassigned``."""
    share: str
    """One of :data:`SHARES`."""
    basis: Decimal
    """The sales the share is taken from."""
    rate: Decimal
    amount: Decimal
    """``basis x rate`` (split between co-leads), rounded half-up to the fen."""
    sales: int
    """How many sales make up ``basis``."""


def commission_lines(sales: Iterable[Sale], rates: CommissionRates, *, team_of: Mapping[str, str],
                     leads_of: Mapping[str, Sequence[str]]) -> list[CommissionLine]:
    """The period's commission, one line per payee and share.

    ``team_of``: agent id -> team id (for a sale that does not name its team);
    ``leads_of``: team id -> the agent ids of its leads.
    Lines come agent shares first (by payee), then lead, director and the others' pool.
    A sale without an agent (none should exist: a sale is recorded on an agent's call)
    puts its agent and lead shares in ``unassigned``.
    """
    basis: dict[tuple[str, str], list[Decimal]] = defaultdict(list)  # (share, payee) -> amounts
    for sale in sales:
        amount = sale.amount
        if amount <= 0:
            continue
        agent = sale.agent_id or "unassigned"
        basis[("agent", agent)].append(amount)
        team = sale.team or team_of.get(sale.agent_id or "", "")
        leads = list(leads_of.get(team, ())) if sale.agent_id else []
        for lead in leads or ["unassigned"]:
            basis[("lead", lead)].append(amount / len(leads) if leads else amount)
        basis[("director", rates.director_id or "unassigned")].append(amount)
        basis[("others", "others")].append(amount)
    order = {share: i for i, share in enumerate(SHARES)}
    lines = []
    for (share, payee), amounts in sorted(basis.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        total = sum(amounts, Decimal(0))
        rate = rates.rate(share)
        lines.append(CommissionLine(payee=payee, share=share, basis=total, rate=rate, amount=fen(total * rate),
                                    sales=len(amounts)))
    return lines


@dataclass(frozen=True)
class CommissionTotals:
    """The period at a glance: sales, the commission due on them, and what the lines pay."""

    sales: int
    sales_amount: Decimal
    due: Decimal
    """Sales x the total rate, rounded half-up to the fen."""
    paid: Decimal
    """The sum of the lines."""
    rounding: Decimal
    """``paid - due``: the fen the rounding of each line adds or takes."""


def commission_totals(lines: Sequence[CommissionLine], rates: CommissionRates) -> CommissionTotals:
    """Totals of :func:`commission_lines`' lines (every sale is in the one ``others`` line)."""
    pool = next((line for line in lines if line.share == "others"), None)
    amount = pool.basis if pool is not None else Decimal(0)
    due = fen(amount * rates.total)
    paid = sum((line.amount for line in lines), Decimal(0))
    return CommissionTotals(sales=pool.sales if pool is not None else 0, sales_amount=amount, due=due, paid=paid,
                            rounding=paid - due)


class _Agent(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def role(self) -> str: ...


def team_maps(agents: Iterable[_Agent]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(agent id -> team, team -> its leads' ids) from the agents of ``agents.yaml``."""
    agents = list(agents)
    team_of = {agent.id: agent.team for agent in agents}
    leads_of: dict[str, list[str]] = defaultdict(list)
    for agent in agents:
        if agent.role == "lead" and agent.team:
            leads_of[agent.team].append(agent.id)
    return team_of, dict(leads_of)


def commission_report(sales: Iterable[Sale], rates: CommissionRates, agents: Iterable[_Agent]
                      ) -> tuple[list[CommissionLine], CommissionTotals]:
    """The lines and totals of ``sales`` with ``rates`` and the teams and leads of ``agents``."""
    team_of, leads_of = team_maps(agents)
    lines = commission_lines(sales, rates, team_of=team_of, leads_of=leads_of)
    return lines, commission_totals(lines, rates)
