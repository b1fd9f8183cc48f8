"""The CRM: customer files, the API's fields, storage on SQLite and PostgreSQL, the routes,
the screen pop's history and form, and ``callcenter crm`` (docs/crm.md)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import succeed

from callcenter import cli
from callcenter.crm import (
    CustomerFileError,
    customer_changes,
    new_customer_body,
    parse_customers_csv,
    read_customers_file,
)
from callcenter.http_api import ApiResource
from callcenter.settings import load_settings
from callcenter.storage import crm as crm_store
from callcenter.storage import repository as repo_fns
from callcenter.storage.records import (
    CustomerUpdate,
    InvalidFieldError,
    NewCallRecord,
    NewCustomer,
)
from callcenter.storage.repository import ConflictError, NotFoundError
from callcenter.web_access import Caller, refusal, vip_refusal
from tests.httpapi import get_json, post_json
from tests.sitedb import sqlite_site
from tests.syncrepository import SyncRepository, in_tx

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
DAY = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)

FILE = """\ufeff姓名,手机,邮箱,VIP,备注
张伟,138 0013 8000,zw@example.org,是,prefers mornings
李娜,13900000001,,否,
Bad,12,,,
王芳,+86 139 0000 0001,,,same number as 李娜
赵敏,13700000002,not-an-email,,
"quoted, name",13700000003,,maybe,
short,13700000004
"""


# --------------------------------------------------------------------------------- files


def test_a_customer_file_gives_customers_and_each_bad_row_by_line() -> None:
    rows, problems = parse_customers_csv(io.StringIO(FILE, newline=""), "c.csv")
    assert [(r.line, r.customer.name, r.customer.phone, r.customer.email, r.customer.vip, r.customer.notes)
            for r in rows] == [(2, "张伟", "13800138000", "zw@example.org", True, "prefers mornings"),
                               (3, "李娜", "13900000001", None, False, "")]
    assert rows[0].raw == ("张伟", "138 0013 8000", "zw@example.org", "是", "prefers mornings")
    assert [(p.line, p.field) for p in problems] == [(4, "phone"), (5, "phone"), (6, "email"), (7, "vip"), (8, "row")]
    assert problems[1].reason == "duplicate of line 3 (13900000001)"
    assert problems[3].reason == "expected yes or no (是/否, 1/0), got 'maybe'"
    assert problems[4].reason == "expected 5 columns, got 2"
    assert len(rows) + len(problems) == 7  # every data row accounted for


BROKEN = (
    "name,phone,notes\n"
    'Ann,13600000001,"call after 6pm\nnot on Sundays"\n'   # 2-3: a note over two lines
    'Bob,13600000002,"never closed\n'                       # 4: a quote that never closes
    "Cy,13600000003,ok\n"                                   # 5
    "D\x00i,13600000004,\n"                                  # 6: a NUL
    "Ed,13600000005,\n"                                     # 7
)


def test_an_unclosed_quote_or_a_nul_is_the_problem_of_its_own_line() -> None:
    """A quote that never closes is its line's problem (its text kept for the rejects file), a
    NUL (PostgreSQL cannot store one) its row's; the rows after them are still customers."""
    rows, problems = parse_customers_csv(io.StringIO(BROKEN, newline=""), "c.csv")
    assert [(r.line, r.customer.name, r.customer.notes) for r in rows] == [
        (2, "Ann", "call after 6pm\nnot on Sundays"), (5, "Cy", "ok"), (7, "Ed", "")]
    assert [(p.line, p.field, p.reason, p.raw) for p in problems] == [
        (4, "row", "not valid CSV: a quote opened here never closes (lines 4-7)", ('Bob,13600000002,"never closed',)),
        (6, "name", "contains a NUL character (\\x00), which the database cannot store", ("D\x00i", "13600000004", "")),
    ]


@pytest.mark.parametrize(("header", "message"), [
    ("name,phone,city", ("c.csv:1: header: column 'city' is not a CRM field (the CRM keeps name, phone, email, "
                         "vip, notes; remove or rename the column)")),
    ("name,email", "c.csv:1: header: no phone column (found name, email)"),
    ("phone,notes", "c.csv:1: header: no name column (found phone, notes)"),
    ("name,phone,mobile", "c.csv:1: header: 'mobile' repeats column 'phone'"),
    ("", "c.csv:1: empty file"),
])
def test_a_header_the_crm_cannot_take_refuses_the_file(header: str, message: str) -> None:
    with pytest.raises(CustomerFileError) as caught:
        parse_customers_csv(io.StringIO(header + "\nx,13800138000,y\n" if header else ""), "c.csv")
    assert str(caught.value).startswith(message)


def test_a_gb18030_file_reads_and_bad_bytes_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "gb.csv"
    path.write_bytes("姓名,电话\n张伟,13800138000\n".encode("gb18030"))
    rows, problems = read_customers_file(path, encoding="gb18030")
    assert [r.customer.name for r in rows] == ["张伟"] and problems == []
    with pytest.raises(CustomerFileError, match=r"gb.csv:1: not valid utf-8"):
        read_customers_file(path)


def test_the_apis_customer_fields() -> None:
    new = new_customer_body({"name": "Zhang", "phone": "+86 138 0013 8000", "vip": True})
    assert new == NewCustomer(name="Zhang", phone="13800138000", vip=True)
    assert customer_changes({"notes": "call after 6"}) == CustomerUpdate(notes="call after 6")
    for body, new_one, field in [({"name": "x"}, True, "phone"), ({"phone": "13800138000"}, True, "name"),
                                 ({"name": "x", "phone": "1"}, True, "phone"), ({"city": "x"}, False, "city"),
                                 ({"vip": "yes"}, False, "vip"), ({}, False, "body"), ({"notes": 5}, False, "notes"),
                                 ({"email": "nope"}, False, "email")]:
        with pytest.raises(InvalidFieldError) as caught:
            (new_customer_body if new_one else customer_changes)(body)
        assert caught.value.field == field, (body, caught.value)


# ------------------------------------------------------------------------------ storage


def _calls(sessions: sessionmaker[Session], customer_id: int | None) -> list[str]:
    tickets = []
    for hours, phone, cid in ((0, "13800138000", None), (1, "13800138000", customer_id), (2, "13900000009", None),
                              (3, "13900000009", customer_id)):
        record = in_tx(sessions, repo_fns.create_call_record, NewCallRecord(
            started_at=DAY + timedelta(hours=hours), direction="inbound", phone=phone, customer_id=cid,
            agent_id="2101", queue="hotline", outcome=f"call {hours}"), site_prefix="GD")
        tickets.append(record.ticket_number)
    return tickets


def test_a_customers_history_is_theirs_and_their_numbers_newest_first(sessions: sessionmaker[Session]) -> None:
    customer = in_tx(sessions, repo_fns.create_customer, NewCustomer(name="Zhang", phone="13800138000"))
    tickets = _calls(sessions, customer.id)
    history = in_tx(sessions, crm_store.customer_history, customer_id=customer.id, phone=customer.phone)
    assert [r.ticket_number for r in history] == [tickets[3], tickets[1], tickets[0]]  # their calls, any number
    first = in_tx(sessions, repo_fns.get_call_record_by_ticket, tickets[0])
    history = in_tx(sessions, crm_store.customer_history, customer_id=None, phone="+86 138 0013 8000",
                    exclude_id=first.id, limit=5)
    assert [r.ticket_number for r in history] == [tickets[1]]
    assert in_tx(sessions, crm_store.customer_history, customer_id=None, phone=None) == []


def test_a_caller_saved_from_the_call_gets_it_on_their_record(sessions: sessionmaker[Session]) -> None:
    tickets = _calls(sessions, None)
    saved = in_tx(sessions, crm_store.save_caller, NewCustomer(name="Zhang Wei", phone="13800138000"),
                  ticket=tickets[1])
    record = in_tx(sessions, repo_fns.get_call_record_by_ticket, tickets[1])
    assert (record.customer_id, record.customer_name) == (saved.id, "Zhang Wei")
    with pytest.raises(ConflictError, match=f"phone: customer {saved.id} already has 13800138000"):
        in_tx(sessions, crm_store.save_caller, NewCustomer(name="Other", phone="+8613800138000"))
    with pytest.raises(NotFoundError, match="ticket: no call record GD20261205999"):
        in_tx(sessions, crm_store.save_caller, NewCustomer(name="Li", phone="13900000009"), ticket="GD20261205999")
    assert in_tx(sessions, repo_fns.find_customer_by_phone, "13900000009") is None  # nothing written


def test_an_import_adds_new_numbers_and_names_the_customers_already_there(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crm_store, "IMPORT_CHUNK", 2)  # several chunks
    in_tx(sessions, repo_fns.create_customer, NewCustomer(name="Known", phone="13900000001"))
    rows, _ = parse_customers_csv(io.StringIO(FILE, newline=""), "c.csv")
    more, _ = parse_customers_csv(io.StringIO("name,phone\nA,13600000001\nB,13600000002\nC,13600000003\n"), "d.csv")
    result = in_tx(sessions, crm_store.import_customers, rows=[*rows, *more])
    assert result.created == 4
    assert [(p.line, p.reason, p.raw[0]) for p in result.existing] == [(3, "already a customer (customer 1)", "李娜")]
    found = in_tx(sessions, crm_store.search_customers, "13600000002")
    assert [c.name for c in found] == ["B"]
    assert [c.name for c in in_tx(sessions, crm_store.search_customers, "张")] == ["张伟"]
    assert [c.name for c in in_tx(sessions, crm_store.search_customers, "%")] == []  # a wildcard is a character
    with pytest.raises(InvalidFieldError, match="q"):
        in_tx(sessions, crm_store.search_customers, "  ")
    with pytest.raises(InvalidFieldError, match="^q: must not contain a NUL character$"):  # a 500 on PostgreSQL
        in_tx(sessions, crm_store.search_customers, "Zhang\x00")


# ---------------------------------------------------------------------------------- api


def _api(sessions: sessionmaker[Session]) -> ApiResource:
    return ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS))  # type: ignore[arg-type]


def test_the_customer_routes(sessions: sessionmaker[Session]) -> None:
    tickets = _calls(sessions, None)
    api = _api(sessions)
    status, body = post_json(api, [b"customers"], {"name": "Zhang Wei", "phone": "138-0013-8000",
                                                   "notes": "prefers mornings", "ticket": tickets[0]})
    assert status == 200, body
    customer = body["customer"]
    assert (customer["phone"], customer["vip"]) == ("13800138000", False)
    status, body = post_json(api, [b"customers"], {"name": "Again", "phone": "13800138000"})
    assert (status, body["field"]) == (409, "phone") and f"customer {customer['id']}" in body["error"]
    for bad, code, field in [({"name": "x", "phone": "1"}, 400, "phone"), ({"name": "x"}, 400, "phone"),
                             ({"name": "x", "phone": "13700000001", "ticket": 5}, 400, "ticket"),
                             ({"name": "x", "phone": "13700000001", "ticket": "GD20261205999"}, 404, None)]:
        status, body = post_json(api, [b"customers"], bad)
        assert (status, body["field"]) == (code, field), body
    cid = str(customer["id"]).encode()
    status, body = post_json(api, [b"customers", cid], {"email": "zw@example.org", "vip": True})
    assert status == 200 and (body["customer"]["email"], body["customer"]["vip"]) == ("zw@example.org", True)
    status, body = get_json(api, [b"customers", cid])
    assert status == 200 and body["customer"]["notes"] == "prefers mornings"
    assert [c["ticket_number"] for c in body["calls"]] == [tickets[1], tickets[0]]  # the number's calls, newest first
    status, body = get_json(api, [b"customers"], {b"q": [b"zhang"]})
    assert status == 200 and [c["name"] for c in body["customers"]] == ["Zhang Wei"]
    for path, code, field in [([b"customers", b"x"], 400, "id"), ([b"customers", b"99"], 404, "id")]:
        status, body = get_json(api, path)
        assert (status, body["field"]) == (code, field), body
    status, body = get_json(api, [b"customers"])
    assert (status, body["field"]) == (400, "q")


def test_an_agent_may_not_move_a_vips_treatment_to_another_number(sessions: sessionmaker[Session]) -> None:
    """An agent edits customers, but changing a VIP customer's number would give that line the
    VIP greeting and place in the queue (marking VIPs is for leads and managers): refused, 409
    naming the phone; other edits go through; their team lead may change it (before, the
    agent's change went through)."""
    api = _api(sessions)
    agent, lead = SETTINGS.people["2101"], SETTINGS.people["8001"]
    status, body = post_json(api, [b"customers"], {"name": "Big Client", "phone": "13800138000", "vip": True},
                             person=lead)
    assert status == 200, body
    cid = str(body["customer"]["id"]).encode()
    status, body = post_json(api, [b"customers", cid], {"phone": "13711112222", "name": "My friend"}, person=agent)
    assert (status, body["field"]) == (409, "phone") and "is a VIP" in body["error"], body
    status, body = post_json(api, [b"customers", cid], {"notes": "called about the renewal"}, person=agent)
    assert status == 200 and body["customer"]["phone"] == "138****8000"  # masked for the agent: unchanged
    status, body = post_json(api, [b"customers", cid], {"phone": "13711112222"}, person=lead)
    assert (status, body["customer"]["phone"], body["customer"]["vip"]) == (200, "13711112222", True)


def test_agents_keep_customers_but_only_staff_mark_them_vip() -> None:
    people = SETTINGS.people
    agent, lead = Caller(person=people["2101"]), Caller(person=people["8001"])
    for method, path in (("GET", ["api", "customers"]), ("GET", ["api", "customers", "3"]),
                         ("POST", ["api", "customers"]), ("POST", ["api", "customers", "3"])):
        assert refusal(agent, people, method, path) is None
    assert refusal(agent, people, "GET", ["api", "customers", "3", "x"]) is not None
    assert vip_refusal(agent, ["customers", "3"], {"vip": True}) == (
        "2101 is an agent: marking a customer VIP is for team leads and managers")
    assert vip_refusal(agent, ["customers", "3"], {"notes": "x"}) is None
    assert vip_refusal(lead, ["customers"], {"vip": True}) is None
    assert vip_refusal(Caller(person=None), ["customers"], {"vip": True}) is None  # the host's CLI
    assert vip_refusal(agent, ["call-records", "GD1", "disposition"], {"vip": True}) is None


# ---------------------------------------------------------------------------------- cli


def test_callcenter_crm_import_find_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\ndatabase:\n  url: sqlite:///{tmp_path / 'cc.sqlite3'}\n")
    data = tmp_path / "customers.csv"
    data.write_text(FILE, encoding="utf-8")
    assert cli.main(["--config", str(site), "crm", "import", str(data)]) == 0
    out, err = capsys.readouterr()
    assert f"{data}: 2 of 7 customer(s) added to the CRM; 5 bad row(s), 0 already customers;" in out
    assert f"{data}:4: phone: must be 3 to 15 digits" in err
    assert cli.main(["--config", str(site), "crm", "import", str(data)]) == 1  # nothing new the second time
    out, err = capsys.readouterr()
    assert "0 of 7 customer(s) added to the CRM; 5 bad row(s), 2 already customers" in out
    rejects = (tmp_path / "var" / "imports" / "customers-rejects.csv").read_text(encoding="utf-8")
    assert '2,phone,already a customer (customer 1),"张伟,138 0013 8000,zw@example.org,是,prefers mornings"' in rejects
    assert cli.main(["--config", str(site), "crm", "find", "+86 138-0013-8000"]) == 0
    assert "13800138000     张伟 VIP  zw@example.org" in capsys.readouterr().out
    assert cli.main(["--config", str(site), "crm", "show", "1"]) == 0
    out, _ = capsys.readouterr()
    assert "customer 1: 张伟 13800138000 VIP" in out and "notes: prefers mornings" in out and "no calls yet" in out
    assert cli.main(["--config", str(site), "crm", "show", "9"]) == 1
    assert cli.main(["--config", str(site), "crm", "import", str(tmp_path / "missing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_callcenter_crm_import_keeps_the_text_of_a_line_that_is_not_csv(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, _ = sqlite_site(tmp_path, lambda sessions: None)
    data = tmp_path / "broken.csv"
    data.write_text(BROKEN, encoding="utf-8")
    assert cli.main(["--config", str(site), "crm", "import", str(data)]) == 0
    out, err = capsys.readouterr()
    assert f"{data}: 3 of 5 customer(s) added to the CRM; 2 bad row(s), 0 already customers;" in out
    assert f"{data}:4: row: not valid CSV: a quote opened here never closes (lines 4-7)" in err
    with (tmp_path / "var" / "imports" / "broken-rejects.csv").open(encoding="utf-8", newline="") as rejects:
        rejected = list(csv.DictReader(rejects))
    assert [(r["line"], r["field"], next(csv.reader([r["row"]]))) for r in rejected] == [
        ("4", "row", ['Bob,13600000002,"never closed']), ("6", "name", ["D\x00i", "13600000004", ""])]


def test_the_screen_pop_api_has_the_record_the_customer_and_the_earlier_calls(sessions: sessionmaker[Session]) -> None:
    customer = in_tx(sessions, repo_fns.create_customer, NewCustomer(name="Zhang", phone="13800138000", vip=True))
    tickets = _calls(sessions, customer.id)
    on_screen = in_tx(sessions, repo_fns.get_call_record_by_ticket, tickets[3])
    engine = SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS, screen_pops={"2101": "1.1"},
                             open_record=lambda linkedid, agent: succeed(on_screen if linkedid == "1.1" else None))
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"agents", b"2101", b"screen-pop"])
    assert status == 200, body
    assert body["call_record"]["ticket_number"] == tickets[3] and body["customer"]["vip"] is True
    # the customer's calls, their number's and the number on screen's, not this one
    assert [c["ticket_number"] for c in body["calls"]] == [tickets[2], tickets[1], tickets[0]]
    status, body = get_json(api, [b"agents", b"2102", b"screen-pop"])
    assert (status, body["field"]) == (404, "agent")


def test_a_call_record_keeps_one_spelling_of_the_number_and_its_crm_customer(
        sessions: sessionmaker[Session]) -> None:
    """A record stores the number in its canonical spelling and is linked to the CRM customer
    with that number when the call names none (a dialer's or an agent's own call: their
    screen pop showed "not in the CRM", and adding the caller was refused 409). The
    customer's calls then include those signalled as +86..., and a follow-up leaves the list
    once the call back (in the other spelling) is made. A withheld number stays as it is."""
    when = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    with sessions.begin() as session:
        vip = repo_fns.create_customer(session, NewCustomer(name="Big Client", phone="13800138000", vip=True))
        inbound = repo_fns.create_call_record(session, NewCallRecord(
            started_at=when, direction="inbound", phone="+8613800138000", agent_id="1001",
            follow_up_at=when + timedelta(hours=2)), site_prefix="GD")
        dialer = repo_fns.create_call_record(session, NewCallRecord(
            started_at=when + timedelta(hours=1), direction="outbound", phone="0086 138 0013 8000",
            agent_id="1001"), site_prefix="GD")
        withheld = repo_fns.create_call_record(session, NewCallRecord(
            started_at=when, direction="inbound", phone="anonymous"), site_prefix="GD")
    assert (inbound.phone, inbound.customer_id) == ("13800138000", vip.id)
    assert (dialer.phone, dialer.customer_id) == ("13800138000", vip.id)
    assert (withheld.phone, withheld.customer_id) == ("anonymous", None)
    with sessions() as session:
        history = crm_store.customer_history(session, customer_id=vip.id, phone=vip.phone, limit=10)
        due = repo_fns.follow_ups_due(session, "1001", until=when + timedelta(days=1))
    assert {r.ticket_number for r in history} == {inbound.ticket_number, dialer.ticket_number}
    assert due == []  # called back (the dialer's call) after the follow-up was set


def test_migration_0017_restates_the_numbers_of_call_records(db_url: str) -> None:
    """Records stored before revision 0017 keep the number as signalled; the revision rewrites
    them in the canonical spelling (a withheld one stays)."""
    import sqlalchemy as sa

    from callcenter.storage import models
    from callcenter.storage.db import create_engine_for, upgrade_database

    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine, "0016")
        when = datetime(2026, 11, 2, 9, tzinfo=UTC)
        with engine.begin() as connection:
            for n, phone in enumerate(["+8613900000001", "020-1234-5678", "anonymous", None], start=1):
                connection.execute(sa.insert(models.CallRecord.__table__).values(
                    ticket_number=f"GD2026110200{n}", started_at=when, direction="inbound", phone=phone))
        upgrade_database(engine)
        with engine.connect() as connection:
            phones = connection.execute(sa.text("SELECT phone FROM call_records ORDER BY id")).scalars().all()
        assert phones == ["13900000001", "02012345678", "anonymous", None]
    finally:
        engine.dispose()
