"""Requests the API cannot use are answered 400 naming the field, and nothing is stored.

JSON that Python reads but cannot use (an integer of thousands of digits, arrays nested past
the recursion limit), text that cannot be stored (a NUL, which PostgreSQL's text refuses; an
unpaired surrogate, which is not Unicode), digits that are not ASCII (``²``), ids and days
beyond what SQL and Python hold, and page forms that are not UTF-8. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from twisted.web.test.requesthelper import DummyRequest

from callcenter.dialer.handout import parse_handout
from callcenter.disposition import parse_disposition
from callcenter.http_api import ApiResource, _Page, unusable_text
from callcenter.settings import load_settings
from callcenter.storage import repository as repo_fns
from callcenter.storage.records import (
    MAX_ID,
    InvalidFieldError,
    NewCallRecord,
    is_digits,
    whole_number,
)
from tests.httpapi import get_json, post_json
from tests.syncrepository import SyncRepository

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")


def _post_raw(api: ApiResource, path: list[bytes], raw: bytes) -> tuple[int, Any]:
    request = DummyRequest(path)
    request.method = b"POST"
    request.content = io.BytesIO(raw)
    body = api.render_POST(request)  # type: ignore[arg-type]
    if body == 1:  # NOT_DONE_YET
        body = b"".join(request.written)
    assert isinstance(body, bytes)
    return request.responseCode or 200, json.loads(body)  # the answer is always JSON


def _record(sessions: sessionmaker[Session]) -> tuple[ApiResource, list[bytes], str]:
    with sessions() as session, session.begin():
        record = repo_fns.create_call_record(session, NewCallRecord(
            started_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC), direction="inbound", phone="13912345678",
            agent_id="2101", queue="hotline", description="as written"), site_prefix="GD")
    engine = SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS, agent_service=None)
    api = ApiResource(engine)  # type: ignore[arg-type]
    return api, [b"call-records", record.ticket_number.encode(), b"disposition"], record.ticket_number


def test_json_the_api_cannot_use_is_400_and_changes_nothing(sessions: sessionmaker[Session]) -> None:
    api, path, ticket = _record(sessions)
    cases: list[tuple[bytes, str | None, str]] = [
        (b'{"agent": "2101", "csat": ' + b"9" * 5000 + b"}", None, "not usable JSON"),
        (b'{"agent": "2101", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "not usable JSON"),
        (json.dumps({"agent": "2101", "notes": "refund\x00sent"}).encode(), "notes", "NUL"),
        (json.dumps({"agent": "2101", "issue_type": "\ud800"}).encode(), "issue_type", "unpaired surrogate"),
        (json.dumps({"agent": "2101", "\udc80": "x"}).encode(), "\udc80", "unpaired surrogate"),
        (json.dumps({"agent": "2101", "tags": [{"a": "ok"}, {"b": "x\x00"}]}).encode(), "tags[1].b", "NUL"),
    ]
    for raw, field, error in cases:
        status, body = _post_raw(api, path, raw)
        assert (status, body["field"]) == (400, field) and error in body["error"], (raw[:60], body)
    status, body = post_json(api, path, {"agent": "2101", "follow_up_at": "0001-01-01T00:00:00+08:00"})
    assert (status, body["field"]) == (400, "follow_up_at") and "out of range" in body["error"], body
    with sessions() as session:
        stored = repo_fns.get_call_record_by_ticket(session, ticket)
    assert stored is not None and (stored.description, stored.issue_type, stored.csat) == ("as written", None, None)


def test_ids_that_are_not_ascii_digits_or_too_large_are_400_naming_them(sessions: sessionmaker[Session]) -> None:
    api, _, _ = _record(sessions)
    for segment in ("²", "١٢", "100000000000000000000", "9" * 5000, "0"):
        status, body = get_json(api, [b"customers", segment.encode()])
        assert (status, body["field"]) == (400, "id"), (segment[:30], body)
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"customer_id": 10**20})
    assert (status, body["field"]) == (400, "customer_id"), body
    for first in ("9999-12-31", "0001-01-01"):
        status, body = get_json(api, [b"reports", b"calls"], {b"from": [first.encode()], b"to": [first.encode()]})
        assert (status, body["field"]) == (400, "from") and "is not between" in body["error"], body


def test_the_shared_rules() -> None:
    assert is_digits("0123") and not is_digits("²") and not is_digits("١٢") and not is_digits("")
    assert whole_number("id", "007") == 7 and whole_number("id", str(MAX_ID)) == MAX_ID
    for text, problem in (("²", "expected a whole number"), ("0", "at least 1"), (str(MAX_ID + 1), "at most"),
                          ("9" * 5000, "at most")):
        with pytest.raises(InvalidFieldError, match=problem):
            whole_number("id", text)
    with pytest.raises(InvalidFieldError, match="^count: must be at most"):
        parse_handout({"by": "8001", "team": "team1", "count": 10**20})
    with pytest.raises(InvalidFieldError, match="^follow_up_at: out of range"):
        parse_disposition({"agent": "2101", "follow_up_at": "9999-12-31T23:00:00-08:00"})
    assert unusable_text({"a": ["ok", {"b": 1}], "c": None}) is None


def test_a_page_form_that_is_not_utf8_or_holds_a_nul_names_the_field() -> None:
    request = DummyRequest([b"2101", b"disposition"])
    request.args = {b"ticket": [b"GD1"], b"notes": ["退款".encode("gbk")]}
    with pytest.raises(InvalidFieldError, match=r"^notes: not valid UTF-8"):
        _Page._form(request)  # type: ignore[arg-type]
    request.args = {b"ticket": [b"GD1"], b"notes": [b"a\x00b"]}
    with pytest.raises(InvalidFieldError, match="^notes: contains a NUL"):
        _Page._form(request)  # type: ignore[arg-type]
    request.args = {b"notes": ["退款".encode()]}
    assert _Page._form(request) == {"notes": "退款"}  # type: ignore[arg-type]
