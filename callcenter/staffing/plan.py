"""Interval staffing plans: forecast CSV in, plan table, CSV and PNG chart out.

A forecast is one row per queue and interval: ``queue,start,calls,aht_seconds`` and,
optionally, the agents already scheduled (column ``scheduled`` or one named on the command
line). The plan gives, per interval, the productive agents the Erlang C (or, with a
patience, Erlang A) model needs for the targets, the seats to schedule after shrinkage,
and the service level, ASA, occupancy and abandonment those agents achieve, next to the
service level the scheduled people would give. All intervals are computed in one
vectorised call of :mod:`callcenter.staffing.erlang`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.staffing.erlang import (
    StaffingRequirement,
    erlang_a_metrics,
    erlang_a_required_agents,
    required_agents,
    service_level,
)

__all__ = [
    "Forecast",
    "ForecastError",
    "ForecastRow",
    "IntervalPlan",
    "PlanSettings",
    "compute_plan",
    "draw_chart",
    "format_table",
    "read_forecast",
    "write_csv",
]

REQUIRED_COLUMNS = ("queue", "start", "calls", "aht_seconds")
_SEATS_SLACK = 1e-9


class ForecastError(ValueError):
    """A forecast file that cannot be planned from; names the file, line and column.

    ``problems`` lists every problem found (this one first): the rows are all read before
    a forecast is refused, so one run names every bad cell. ``str()`` is one line per
    problem.
    """

    def __init__(self, path: Path, line: int | None, column: str | None, message: str,
                 *, more: Sequence[ForecastError] = ()) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        where = str(path) if line is None else f"{path}:{line}"
        what = f"column '{column}': {message}" if column else message
        self.location = f"{where}: {what}"
        self.problems: tuple[ForecastError, ...] = (self, *more)
        super().__init__("\n".join(p.location for p in self.problems))

    @classmethod
    def of(cls, problems: Sequence[ForecastError]) -> ForecastError:
        """One error carrying ``problems`` (at least one), in the order given."""
        first, *rest = problems
        return cls(first.path, first.line, first.column, first.message, more=rest)


@dataclass(frozen=True)
class ForecastRow:
    """One queue-interval of the forecast; ``line`` is its line in the file."""

    line: int
    queue: str
    start: str
    calls: float
    aht: float
    scheduled: int | None


@dataclass(frozen=True)
class Forecast:
    """A parsed forecast: rows in file order and the interval length in minutes."""

    path: Path
    rows: tuple[ForecastRow, ...]
    interval_minutes: float
    scheduled_column: str | None


@dataclass(frozen=True)
class PlanSettings:
    """Targets of a plan: service level ``target_sl`` within ``target_seconds``, shrinkage,
    and optionally an occupancy cap, a mean patience (Erlang A) and an abandonment cap."""

    target_sl: float = 0.8
    target_seconds: float = 20.0
    shrinkage: float = 0.3
    max_occupancy: float | None = None
    patience: float | None = None
    max_abandon: float | None = None

    def describe(self) -> str:
        parts = [f"{self.target_sl:.0%} in {self.target_seconds:g} s",
                 f"shrinkage {self.shrinkage:.0%}"]
        if self.max_occupancy is not None:
            parts.append(f"occupancy <= {self.max_occupancy:.0%}")
        if self.patience is not None:
            parts.append(f"Erlang A, patience {self.patience:g} s")
        else:
            parts.append("Erlang C")
        if self.max_abandon is not None:
            parts.append(f"abandon <= {self.max_abandon:.1%}")
        return ", ".join(parts)


@dataclass(frozen=True)
class IntervalPlan:
    """The plan of one queue-interval.

    ``agents`` are productive agents needed, ``seats`` the people to schedule for them
    after shrinkage; ``service_level``, ``asa`` (seconds), ``occupancy`` and ``abandon``
    are achieved by ``agents``. ``scheduled_service_level`` is what the scheduled people
    (after shrinkage) would achieve; ``gap`` is scheduled minus required seats.
    """

    queue: str
    start: str
    calls: float
    aht: float
    traffic: float
    agents: int
    seats: int
    service_level: float
    asa: float
    occupancy: float
    abandon: float | None
    scheduled: int | None
    scheduled_service_level: float | None

    @property
    def gap(self) -> int | None:
        return None if self.scheduled is None else self.scheduled - self.seats


# ------------------------------------------------------------------------------ reading


def _number(path: Path, line: int, column: str, text: str, *, whole: bool = False) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ForecastError(path, line, column, f"expected {kind}, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ForecastError(path, line, column, f"expected a finite value >= 0, got {text!r}")
    if whole and value != int(value):
        raise ForecastError(path, line, column, f"expected a whole number, got {text!r}")
    return value


def _minutes(text: str) -> float | None:
    """Minutes since an arbitrary origin for '08:30' or an ISO date-time; None if neither."""
    value = text.strip()
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return stamp.timestamp() / 60.0 if stamp.tzinfo else (
            (stamp - datetime(1970, 1, 1)).total_seconds() / 60.0)
    try:
        clock = time.fromisoformat(value)
    except ValueError:
        return None
    return clock.hour * 60.0 + clock.minute + clock.second / 60.0


def _forecast_row(source: Path, line: int, record: list[str], columns: dict[str, int],
                  header: list[str], sched_index: int | None,
                  starts: dict[str, list[tuple[float, int]]],
                  problems: list[ForecastError]) -> ForecastRow | None:
    """One forecast row, or None with every problem of its cells added to ``problems``."""
    found = len(problems)

    def cell(column: str, text: str, *, whole: bool = False) -> float:
        try:
            return _number(source, line, column, text, whole=whole)
        except ForecastError as exc:
            problems.append(exc)
            return 0.0

    queue = record[columns["queue"]].strip()
    if not queue:
        problems.append(ForecastError(source, line, "queue", "empty"))
    start = record[columns["start"]].strip()
    minute = _minutes(start)
    if minute is None:
        problems.append(ForecastError(source, line, "start",
                                      f"expected HH:MM or an ISO date-time, got {start!r}"))
    numbers = len(problems)
    calls = cell("calls", record[columns["calls"]])
    aht = cell("aht_seconds", record[columns["aht_seconds"]])
    if aht == 0 and calls > 0 and len(problems) == numbers:
        problems.append(ForecastError(source, line, "aht_seconds",
                                      "must be > 0 when calls > 0"))
    scheduled: int | None = None
    if sched_index is not None and record[sched_index].strip():
        scheduled = int(cell(header[sched_index], record[sched_index], whole=True))
    if queue and minute is not None:
        previous = starts.setdefault(queue, [])
        first = next((ln for m, ln in previous if m == minute), None)
        if first is not None:
            problems.append(ForecastError(source, line, "start",
                                          f"queue {queue!r} already has {start} on line "
                                          f"{first}"))
        else:
            previous.append((minute, line))
    if len(problems) > found:
        return None
    return ForecastRow(line=line, queue=queue, start=start, calls=calls,
                       aht=aht if aht > 0 else 1.0, scheduled=scheduled)


def read_forecast(path: str | Path, *, interval_minutes: float | None = None,
                  scheduled_column: str | None = "scheduled") -> Forecast:
    """Read a forecast CSV; raise :class:`ForecastError` naming file, line and column.

    Every row is read before a bad forecast is refused: the error lists each bad cell
    (``problems``), not only the first. Nothing is planned from a forecast with a bad row
    (a plan with an interval left out would understate the day).

    The interval length is ``interval_minutes`` or, when not given, the smallest gap
    between consecutive starts of a queue. ``scheduled_column`` is optional unless it was
    named explicitly (pass the default ``"scheduled"`` to use it when present).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ForecastError(source, None, None, f"cannot read: {exc.strerror}") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ForecastError(source, None, None, "empty file") from None
    aliases = {"aht": "aht_seconds", "interval": "start"}
    columns = {aliases.get(name, name): i for i, name in enumerate(header)}
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            raise ForecastError(source, 1, name, f"missing (header has {', '.join(header)})")
    sched_index: int | None = None
    if scheduled_column is not None:
        if scheduled_column in columns:
            sched_index = columns[scheduled_column]
        elif scheduled_column != "scheduled":
            raise ForecastError(source, 1, scheduled_column,
                                f"missing (header has {', '.join(header)})")
    rows: list[ForecastRow] = []
    problems: list[ForecastError] = []
    starts: dict[str, list[tuple[float, int]]] = {}
    for record in reader:
        line = reader.line_num
        if not record or all(not cell.strip() for cell in record) or record[0].startswith("#"):
            continue
        if len(record) != len(header):
            problems.append(ForecastError(source, line, None,
                                          f"expected {len(header)} fields, got {len(record)}"))
            continue
        row = _forecast_row(source, line, record, columns, header, sched_index, starts,
                            problems)
        if row is not None:
            rows.append(row)
    if problems:
        raise ForecastError.of(problems)
    if not rows:
        raise ForecastError(source, None, None, "no intervals")
    if interval_minutes is None:
        gaps = [b[0] - a[0] for seq in starts.values()
                for a, b in zip(sorted(seq), sorted(seq)[1:], strict=False)]
        positive = [g for g in gaps if g > 0]
        if not positive:
            raise ForecastError(source, None, None,
                                "cannot infer the interval length from one interval per "
                                "queue; pass --interval-minutes")
        interval_minutes = round(min(positive), 6)
    elif interval_minutes <= 0:
        raise ValueError("interval_minutes must be > 0")
    return Forecast(path=source, rows=tuple(rows), interval_minutes=float(interval_minutes),
                    scheduled_column=None if sched_index is None else header[sched_index])


# ---------------------------------------------------------------------------- computing


def _productive(scheduled: np.ndarray, shrinkage: float) -> np.ndarray:
    return np.floor(scheduled * (1.0 - shrinkage) + _SEATS_SLACK)


def compute_plan(forecast: Forecast, settings: PlanSettings) -> list[IntervalPlan]:
    """The interval plan for every row of ``forecast``, in file order."""
    rows = forecast.rows
    calls = np.array([r.calls for r in rows])
    aht = np.array([r.aht for r in rows])
    interval = forecast.interval_minutes * 60.0
    req: StaffingRequirement
    if settings.patience is None:
        if settings.max_abandon is not None:
            raise ValueError("an abandonment cap needs a patience (Erlang A)")
        req = required_agents(calls, interval, aht, settings.target_sl, settings.target_seconds,
                              settings.max_occupancy, settings.shrinkage)
    else:
        req = erlang_a_required_agents(calls, interval, aht, settings.patience,
                                       settings.target_sl, settings.target_seconds,
                                       settings.max_abandon, settings.max_occupancy,
                                       settings.shrinkage)
    has_sched = np.array([r.scheduled is not None for r in rows])
    sched_sl = np.full(len(rows), np.nan)
    if has_sched.any():
        sched = np.array([r.scheduled or 0 for r in rows], dtype=np.float64)[has_sched]
        productive = _productive(sched, settings.shrinkage)
        traffic = req.traffic[has_sched]
        if settings.patience is None:
            sched_sl[has_sched] = service_level(traffic, productive, aht[has_sched],
                                                settings.target_seconds)
        else:
            sched_sl[has_sched] = erlang_a_metrics(traffic, productive, aht[has_sched],
                                                   settings.patience,
                                                   settings.target_seconds).service_level
    erlang_a = settings.patience is not None
    return [
        IntervalPlan(
            queue=r.queue, start=r.start, calls=r.calls, aht=r.aht,
            traffic=float(req.traffic[i]), agents=int(req.agents[i]), seats=int(req.seats[i]),
            service_level=float(req.service_level[i]), asa=float(req.asa[i]),
            occupancy=float(req.occupancy[i]),
            abandon=float(req.abandon[i]) if erlang_a else None,
            scheduled=r.scheduled,
            scheduled_service_level=None if r.scheduled is None else float(sched_sl[i]),
        )
        for i, r in enumerate(rows)
    ]


# ----------------------------------------------------------------------------- printing


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def _seconds(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f}"


def format_table(plans: Sequence[IntervalPlan], settings: PlanSettings,
                 interval_minutes: float) -> str:
    """The plan as an aligned text table, one line per interval, then totals per queue."""
    show_sched = any(p.scheduled is not None for p in plans)
    show_abandon = settings.patience is not None
    head = ["queue", "start", "calls", "AHT s", "Erlangs", "agents", "seats"]
    if show_sched:
        head += ["sched", "gap"]
    head += ["SL", "ASA s", "occ"]
    if show_abandon:
        head.append("abandon")
    if show_sched:
        head.append("sched SL")
    body: list[list[str]] = []
    for p in plans:
        row = [p.queue, p.start, f"{p.calls:g}", f"{p.aht:g}", f"{p.traffic:.2f}",
               str(p.agents), str(p.seats)]
        if show_sched:
            gap = p.gap
            row += ["-" if p.scheduled is None else str(p.scheduled),
                    "-" if gap is None else f"{gap:+d}"]
        row += [_pct(p.service_level), _seconds(p.asa), _pct(p.occupancy)]
        if show_abandon:
            row.append(_pct(p.abandon))
        if show_sched:
            row.append(_pct(p.scheduled_service_level))
        body.append(row)
    widths = [max(len(head[i]), *(len(r[i]) for r in body)) for i in range(len(head))]
    numeric_from = 2

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < numeric_from else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    lines = [f"Staffing plan: {settings.describe()}, {interval_minutes:g}-minute intervals",
             fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in body]
    lines.append("")
    hours = interval_minutes / 60.0
    for queue in dict.fromkeys(p.queue for p in plans):
        mine = [p for p in plans if p.queue == queue]
        calls = sum(p.calls for p in mine)
        seat_hours = sum(p.seats for p in mine) * hours
        peak = max(mine, key=lambda p: p.seats)
        text = (f"{queue}: {calls:g} calls, peak {peak.seats} seats at {peak.start}, "
                f"{seat_hours:g} seat-hours")
        short = [p for p in mine if p.gap is not None and p.gap < 0]
        if any(p.scheduled is not None for p in mine):
            text += f", {len(short)} interval(s) understaffed"
        lines.append(text)
    return "\n".join(lines)


CSV_COLUMNS = ("queue", "start", "calls", "aht_seconds", "erlangs", "agents", "seats",
               "scheduled", "gap", "service_level", "asa_seconds", "occupancy", "abandon",
               "scheduled_service_level")


def write_csv(plans: Sequence[IntervalPlan], path: str | Path) -> None:
    """Write the plan as CSV (probabilities as fractions, times in seconds)."""

    def num(value: float | None, digits: int = 6) -> str:
        if value is None:
            return ""
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"

    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(CSV_COLUMNS)
        for p in plans:
            out.writerow([p.queue, p.start, f"{p.calls:g}", f"{p.aht:g}", num(p.traffic, 4),
                          p.agents, p.seats, "" if p.scheduled is None else p.scheduled,
                          "" if p.gap is None else p.gap, num(p.service_level),
                          num(p.asa, 3), num(p.occupancy), num(p.abandon),
                          num(p.scheduled_service_level)])


# ------------------------------------------------------------------------------ charting


def draw_chart(plans: Sequence[IntervalPlan], path: str | Path, settings: PlanSettings,
               interval_minutes: float) -> None:
    """A PNG with one panel per queue: required agents and seats vs scheduled, per interval.

    Drawn with matplotlib's Agg canvas directly, so no GUI backend is chosen or needed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    queues = list(dict.fromkeys(p.queue for p in plans))
    fig = Figure(figsize=(12, 3.6 * len(queues) + 1.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(queues), 1, squeeze=False)[:, 0]
    legend: dict[str, Any] = {}
    fig.suptitle(f"Required vs scheduled agents per {interval_minutes:g}-minute interval\n"
                 f"{settings.describe()}", fontsize=12)
    for ax, queue in zip(axes, queues, strict=True):
        mine = [p for p in plans if p.queue == queue]
        x = np.arange(len(mine))
        agents = [p.agents for p in mine]
        seats = [p.seats for p in mine]
        ax.bar(x, seats, width=0.85, color="#c6dbef", edgecolor="#9ecae1",
               label="required seats (after shrinkage)")
        ax.step(x, agents, where="mid", color="#08519c", linewidth=2,
                label="required agents on the phones")
        sched = [np.nan if p.scheduled is None else p.scheduled for p in mine]
        if not all(np.isnan(sched)):
            ax.plot(x, sched, color="#e6550d", marker="o", markersize=4, linewidth=1.8,
                    label="scheduled")
            short = [i for i, p in enumerate(mine) if p.gap is not None and p.gap < 0]
            if short:
                ax.scatter(short, [sched[i] for i in short], s=70, facecolors="none",
                           edgecolors="#a50f15", linewidths=1.6, zorder=5,
                           label="understaffed interval")
        ax.set_title(f"queue {queue}: {sum(p.calls for p in mine):g} calls", loc="left")
        ax.set_ylabel("agents")
        step = max(1, len(mine) // 16)
        ax.set_xticks(x[::step], [p.start for p in mine][::step])
        ax.set_xlim(-0.6, len(mine) - 0.4)
        ax.set_ylim(0, max(max(seats), np.nanmax(sched) if not all(np.isnan(sched)) else 0)
                    * 1.08 + 1)
        ax.grid(axis="y", alpha=0.3)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[-1].set_xlabel("interval start")
    fig.legend(list(legend.values()), list(legend.keys()), loc="outside lower center",
               ncols=len(legend), fontsize=9, frameon=False)
    fig.savefig(str(path))
