"""The call log: a period's call records, one row each, for a spreadsheet (pure; docs/reports.md,
"The call log").

Every field of the reference site's call record (date, time, customer name, phone, ticket
number, issue type, description, outcome, follow-up time, CSAT, agent id), then what the
engine adds (direction, the agent's team, queue and how the stay ended, wait, talk, sale,
the IVR choices). Times are the site's local time; a spreadsheet reads the CSV as it is,
so a cell that starts with ``=``, ``+``, ``-`` or ``@`` (a formula to Excel) is written
with a leading ``'``: a caller's notes never run as a formula on a team lead's machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Final
from zoneinfo import ZoneInfo

from callcenter.settings import AgentSettings
from callcenter.storage.records import CallRecord

__all__ = ["COLUMNS", "call_log_csv", "call_log_row"]

COLUMNS: Final = (
    "date", "time", "ticket", "customer_name", "phone", "issue_type", "description", "outcome", "follow_up_at",
    "csat", "agent_id", "team", "direction", "queue", "queue_result", "wait_seconds", "talk_seconds",
    "sale_amount", "ivr_path", "transfers",
)
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def call_log_row(record: CallRecord, tz: ZoneInfo, people: Mapping[str, AgentSettings]) -> dict[str, str]:
    """One record as the log's row (:data:`COLUMNS`), local times, every cell safe to open."""
    started = record.started_at.astimezone(tz)
    person = people.get(record.agent_id or "")
    values: dict[str, object] = {
        "date": started.date().isoformat(), "time": started.strftime("%H:%M:%S"), "ticket": record.ticket_number,
        "customer_name": record.customer_name, "phone": record.phone, "issue_type": record.issue_type,
        "description": record.description, "outcome": record.outcome,
        "follow_up_at": record.follow_up_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if record.follow_up_at else None,
        "csat": record.csat, "agent_id": record.agent_id, "team": person.team if person is not None else None,
        "direction": record.direction, "queue": record.queue, "queue_result": record.queue_result,
        "wait_seconds": record.wait_seconds, "talk_seconds": record.talk_seconds, "sale_amount": record.sale_amount,
        "ivr_path": " > ".join(record.ivr_path),
        "transfers": " ".join(record.transfers),  # AGENT>QUEUE@SECONDS each (docs/agents.md, "Handing a call on")
    }
    return {column: _cell(values[column]) for column in COLUMNS}


def call_log_csv(records: Iterable[CallRecord], tz: ZoneInfo, people: Mapping[str, AgentSettings]) -> str:
    """The records as CSV text with a header row (UTF-8 with a byte-order mark is the caller's
    choice when writing: Excel needs it to read Chinese names)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow(call_log_row(record, tz, people))
    return out.getvalue()
