"""``callcenter staffing plan FORECAST.csv``: the interval plan as a table, CSV and PNG.

Registered on the main parser by :func:`add_parser`; :func:`run` executes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def _cap(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``staffing plan`` on an ``argparse`` sub-parsers object."""
    staffing = subparsers.add_parser("staffing", help="Erlang staffing plans")
    sub = staffing.add_subparsers(dest="staffing_command", required=True, metavar="COMMAND")
    p: argparse.ArgumentParser = sub.add_parser(
        "plan", help="agents and seats per interval from a forecast CSV",
        description="Read a forecast (queue,start,calls,aht_seconds[,scheduled]) and print "
        "the agents each interval needs, the seats after shrinkage and the service level, "
        "ASA, occupancy and abandonment they give; write the plan as CSV and a PNG chart.")
    p.add_argument("forecast", type=Path, metavar="FORECAST.csv")
    p.add_argument("--out", type=Path, metavar="CSV",
                   help="plan CSV to write (default: FORECAST-plan.csv in the current directory)")
    p.add_argument("--png", type=Path, metavar="PNG",
                   help="chart to write (default: FORECAST-plan.png in the current directory)")
    p.add_argument("--target-sl", type=_fraction, default=0.8,
                   help="share of calls answered within --target-seconds (default 0.8)")
    p.add_argument("--target-seconds", type=_non_negative, default=20.0,
                   help="service level threshold in seconds (default 20)")
    p.add_argument("--shrinkage", type=_fraction, default=0.3,
                   help="share of paid time off the phones (default 0.3)")
    p.add_argument("--max-occupancy", type=_cap, default=None,
                   help="cap on agent occupancy, e.g. 0.85")
    p.add_argument("--patience", type=_non_negative, default=None, metavar="SECONDS",
                   help="mean caller patience: plan with Erlang A (abandonment)")
    p.add_argument("--max-abandon", type=_cap, default=None,
                   help="cap on the abandonment rate (needs --patience)")
    p.add_argument("--interval-minutes", type=_positive, default=None,
                   help="interval length (default: inferred from the start column)")
    p.add_argument("--scheduled", default="scheduled", metavar="COLUMN",
                   help="column with the agents already scheduled (default 'scheduled', "
                   "used when present)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``staffing plan``; 0 on success, 1 on a bad forecast, 2 on bad options."""
    from callcenter.staffing.plan import (
        ForecastError,
        PlanSettings,
        compute_plan,
        draw_chart,
        format_table,
        read_forecast,
        write_csv,
    )

    if args.max_abandon is not None and args.patience is None:
        print("error: --max-abandon needs --patience (Erlang A)", file=sys.stderr)
        return 2
    settings = PlanSettings(target_sl=args.target_sl, target_seconds=args.target_seconds,
                            shrinkage=args.shrinkage, max_occupancy=args.max_occupancy,
                            patience=args.patience, max_abandon=args.max_abandon)
    try:
        forecast = read_forecast(args.forecast, interval_minutes=args.interval_minutes,
                                 scheduled_column=args.scheduled)
    except ForecastError as exc:
        for problem in exc.problems:
            print(f"error: {problem.location}", file=sys.stderr)
        if len(exc.problems) > 1:
            print(f"{args.forecast}: {len(exc.problems)} problems; nothing planned",
                  file=sys.stderr)
        return 1
    try:
        plans = compute_plan(forecast, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stem = forecast.path.stem
    out = args.out if args.out is not None else Path(f"{stem}-plan.csv")
    png = args.png if args.png is not None else Path(f"{stem}-plan.png")
    print(format_table(plans, settings, forecast.interval_minutes))
    write_csv(plans, out)
    draw_chart(plans, png, settings, forecast.interval_minutes)
    print(f"\nwrote {out} and {png}")
    return 0
