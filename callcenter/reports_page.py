"""The reports page: the call report, sales commission, QA scores, texts and agent time of a period.

``GET /reports?from=DAY&to=DAY&by=day|agent|queue`` (served by
:class:`callcenter.http_api.ReportsPage`) shows on one page, for the management terminals,
what ``callcenter report calls | commission | qa`` print and ``/api/reports/...`` return:
the same reports (:mod:`callcenter.reports`, :mod:`callcenter.commission`,
:mod:`callcenter.qa`), laid out by the CLI's own table functions, with a form to pick the
period and the grouping; and the period's SMS broadcasts and replies (``/api/reports/sms``).
Pure: :func:`render_reports_page` turns the results into HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from callcenter.agent_time import AgentTime
from callcenter.reports import GROUPINGS, ReportLine
from callcenter.reports_cli import (
    format_agent_time,
    format_commission,
    format_qa,
    format_table,
)

__all__ = ["ReportsView", "render_reports_page"]

_STYLE: Final = """
body { font-family: sans-serif; margin: 1em; } h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.4em; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; } .err { background: #fbe3e3; padding: .4em; }
.muted { color: #666; }
"""


@dataclass(frozen=True)
class ReportsView:
    """The period asked for and the reports of it (None: not read, see ``error``)."""

    site: str
    timezone: str
    first: date | None
    last: date | None
    by: str
    calls: Sequence[ReportLine] | None = None
    commission: tuple[Sequence[Any], Any] | None = None
    """(lines, totals) of :func:`callcenter.commission.commission_report`."""
    qa: Sequence[Any] | None = None
    sms: Any = None
    """:class:`callcenter.storage.sms.SmsReport` of the period."""
    scorecard: Sequence[Any] = ()
    agent_time: Sequence[AgentTime] | None = None
    people: Mapping[str, Any] = field(default_factory=dict)
    """The configured people by id (the agent time table's team column)."""
    error: str = ""


def _form(view: ReportsView) -> str:
    options = "".join(f'<option value="{g}"{" selected" if g == view.by else ""}>{g}</option>' for g in GROUPINGS)
    first = view.first.isoformat() if view.first else ""
    last = view.last.isoformat() if view.last else ""
    return ('<form method="get" action="/reports">'
            f'From <input type="date" name="from" value="{escape(first)}"> '
            f'to <input type="date" name="to" value="{escape(last)}"> '
            f'by <select name="by">{options}</select> <button>show</button></form>'
            + (f'<p><a href="{escape("/reports/records.csv?" + urlencode({"from": first, "to": last}))}">'
               "The call log of the period (CSV)</a>: every call record, for a spreadsheet</p>" if first else ""))


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _texts(report: Any) -> str:
    """The period's SMS broadcasts: how many, their texts by status (skipped ones by reason),
    and the replies received (docs/sms.md)."""
    if not report.broadcasts and not report.replies:
        return "<p class=muted>No texts sent or received in the period.</p>"
    statuses = ", ".join(f"{n} {status}" for status, n in report.by_status.items()) or "no texts"
    skipped = ", ".join(f"{n} {why}" for why, n in report.skipped.items())
    return (f"<p>{report.broadcasts} broadcast(s): {escape(statuses)}"
            + (f" (skipped: {escape(skipped)})" if skipped else "")
            + f". {report.replies} repl{'y' if report.replies == 1 else 'ies'} received, "
            f"{report.opt_outs} of them unsubscribing.</p>")


def render_reports_page(view: ReportsView) -> str:
    """The whole page."""
    span = "" if view.first is None or view.last is None else (
        view.first.isoformat() if view.first == view.last else f"{view.first.isoformat()} to {view.last.isoformat()}")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(view.site)}: reports</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(view.site)}: reports <span class=muted>{escape(span)} ({escape(view.timezone)})</span></h1>",
        _form(view),
    ]
    if view.error:
        parts.append(f'<p class="err">{escape(view.error)}</p>')
    if view.calls is not None:
        parts += [f"<h2>Calls by {escape(view.by)}</h2>", _pre(format_table(view.calls, view.by)),
                  ("<p class=muted>SL: answered within the queue's target / calls that left the queue; "
                  "AHT: talk plus the queue's wrap-up; FCR: no repeat call within the window (docs/reports.md)</p>")]
    if view.commission is not None:
        lines, totals = view.commission
        parts += ["<h2>Sales commission</h2>", _pre(format_commission(lines, totals))]
    if view.qa is not None:
        parts += ["<h2>QA scores</h2>", _pre(format_qa(view.qa, view.scorecard))]
    if view.sms is not None:
        parts += ["<h2>Texts</h2>", _texts(view.sms)]
    if view.agent_time is not None:
        parts.append("<h2>Agent time</h2>")
        if view.agent_time:
            parts += [_pre(format_agent_time(view.agent_time, view.people, ZoneInfo(view.timezone))),
                      ("<p class=muted>Occupancy: on calls and wrap-up over ready, ringing, on calls and wrap-up; "
                       "daemon down: time the engine was not running (docs/reports.md)</p>")]
        else:
            parts.append("<p class=muted>No agent logged in during the period.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
