"""The team lead's page (callcenter.lead_page, http_api.LeadPage) on a real database (SQLite and PostgreSQL).

A lead (or a manager) sees the team's agents and supervises a call, hands out the team's
leads and takes them back, and scores today's sampled recordings: each through the same
rules as the API (who may, the scorecard), answered by a redirect saying what happened.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from callcenter.dialer.campaign import Campaign
from callcenter.http_api import LeadPage
from callcenter.lead_page import form_handout, form_review
from callcenter.settings import load_settings
from callcenter.sms.service import SmsService
from callcenter.state.agents import AgentState
from callcenter.storage import dialer as store
from callcenter.storage.dialer_records import LeadRow
from callcenter.storage.records import NewCallRecord, NewRecording
from callcenter.supervisor import check_permission
from callcenter.transfer import REFER_CONTEXT
from tests.syncrepository import SyncRepository
from tests.unit.test_agent_page import _channel

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class FakeSupervisor:
    """The real permission check; the phone call itself is the lab's business."""

    def __init__(self) -> None:
        self.spied: list[tuple[str, str, str]] = []

    def spy(self, supervisor: str, agent: str, mode: str) -> Deferred[Any]:
        check_permission(SETTINGS, supervisor, agent)
        self.spied.append((supervisor, agent, mode))
        return succeed(None)


def _page(sessions: sessionmaker[Session], recording: str = "/srv/rec/2026/12/05/call.wav"
          ) -> tuple[LeadPage, Any, str]:
    repo = SyncRepository(sessions)
    with sessions.begin() as session:
        (campaign,) = store.sync_campaigns(session, [Campaign("spring", timezone="Asia/Shanghai")], now=NOW)
        store.import_leads(session, campaign.id, [LeadRow(line=i + 2, phone=f"1380000{i:04d}") for i in range(20)],
                           list_name="batch", source_file="batch.csv", actor="it", now=NOW)
    record = repo.create_call_record(NewCallRecord(
        started_at=NOW, direction="inbound", phone="13900000001", agent_id="2101", queue="hotline", talk_seconds=95),
        site_prefix="GD").result
    repo.add_recording(NewRecording(call_record_id=record.id, path=recording, started_at=NOW,
                                    duration_seconds=95.0, size_bytes=1000, format="wav", agent_id="2101",
                                    pauses=((40.0, 52.5),)))
    clock = Clock()
    clock.advance(NOW.timestamp() + 600)
    board = {"2101": SimpleNamespace(id="2101", state=AgentState.ON_CALL, since=NOW.timestamp() + 480,
                                     pause_reason=None),
             "2102": SimpleNamespace(id="2102", state=AgentState.READY, since=NOW.timestamp(), pause_reason=None)}
    engine = SimpleNamespace(settings=SETTINGS, repository=repo, clock=clock, supervisor=FakeSupervisor(),
                             agents=SimpleNamespace(agent=board.get), calls=SimpleNamespace(channels={}))
    dialer = SimpleNamespace(repository=repo, campaigns={"spring": SimpleNamespace(
        name="spring", record=SimpleNamespace(id=campaign.id), config=SimpleNamespace(handout="agent"))})
    return LeadPage(engine, dialer), engine, record.ticket_number  # type: ignore[arg-type]


def _fetch(page: LeadPage, path: list[str], **args: str) -> tuple[int, bytes, DummyRequest]:
    request = DummyRequest([p.encode() for p in path])
    request.args = {k.encode(): [v.encode()] for k, v in args.items()}
    body = page.render_GET(request)  # type: ignore[arg-type]
    return request.responseCode or 200, body if isinstance(body, bytes) else b"".join(request.written), request


def _get(page: LeadPage, path: list[str], **args: str) -> tuple[int, str]:
    status, body, _ = _fetch(page, path, **args)
    return status, body.decode()


def _post(page: LeadPage, path: list[str], form: dict[str, str]) -> dict[str, list[str]]:
    request = DummyRequest([p.encode() for p in path])
    request.method = b"POST"
    request.args = {k.encode(): [v.encode()] for k, v in form.items()}
    page.render_POST(request)  # type: ignore[arg-type]
    assert request.finished and request.responseCode == 303
    (location,) = request.responseHeaders.getRawHeaders(b"location")
    url = urlsplit(location.decode())
    assert url.path == f"/lead/{path[0]}"
    return parse_qs(url.query)


def test_the_morning_hand_out_from_the_pages(sessions: sessionmaker[Session]) -> None:
    page, _, _ = _page(sessions)
    assert _post(page, ["9001", "handout"], {"campaign": "spring", "team": "team1", "count": "10"}) == {
        "team": ["team1"], "msg": ["10 lead(s) of spring given: team1 10"]}
    assert _post(page, ["8001", "handout"], {"campaign": "spring", "team": "team1", "agents": "all", "each": "1"}
                 )["msg"] == ["8 lead(s) of spring given: 2101 1, 2102 1, 2103 1, 2104 1, 2105 1, 2106 1, 2107 1, 2108 1"]
    assert _post(page, ["8002", "handout"], {"campaign": "spring", "team": "team1", "agents": "all"})["err"] == [
        "a lead hands out only their own team's leads (team2), not team team1's"]
    assert _post(page, ["8001", "handout"], {"campaign": "spring", "team": "team1", "count": "5"})["err"] == [
        "agent 8001 is a lead: only a manager (IT) hands leads out to teams and takes them back"]
    assert _post(page, ["8001", "handout"], {"campaign": "spring", "team": "team1", "each": "0", "agents": "all"}
                 )["err"] == ["each: expected a whole number of at least 1, got '0'"]
    status, html = _get(page, ["8001"])
    assert status == 200 and "<h3>spring <span class=muted>(handout: agent)</span></h3>" in html
    assert "<tr><td>the team (not given to an agent)</td><td class=n>2</td>" in html
    assert "<tr><td>2101</td><td class=n>1</td><td class=n>0</td><td class=n>0</td></tr>" in html
    assert "of the 10 leads in IT" not in html  # a lead does not give out IT's pool
    assert _post(page, ["8001", "takeback"], {"campaign": "spring", "team": "team1", "agents": "all"})["msg"] == [
        "8 lead(s) of spring taken back"]
    status, html = _get(page, ["9001"], team="team1")
    assert "of the 10 leads in IT's pool <button>give</button>" in html
    assert "<tr><td>the team (not given to an agent)</td><td class=n>10</td>" in html


def test_a_lead_texts_the_leads_the_team_holds(sessions: sessionmaker[Session]) -> None:
    """With SMS on, each campaign has a form: the lead's broadcast goes through the API's rules."""
    page, engine, _ = _page(sessions)
    ami = SimpleNamespace(subscribe=lambda *a: SimpleNamespace(cancel=lambda: None), connected=False)
    settings = replace(SETTINGS, sms=replace(SETTINGS.sms, gateway="10.0.0.5"))
    page.sms = SmsService(settings, ami, engine.repository, engine.clock, gateway="10.0.0.5")
    _post(page, ["9001", "handout"], {"campaign": "spring", "team": "team1", "count": "10"})
    status, html = _get(page, ["8001"])
    assert status == 200
    assert 'action="/lead/8001/sms"' in html and "Text the leads team team1 holds" in html, html
    form = {"campaign": "spring", "team": "team1", "name": "offer", "template": "{name}您好，春季套餐八折"}
    assert _post(page, ["8001", "sms"], form)["msg"] == ["10 text(s) to the leads of spring queued"]
    assert _post(page, ["8002", "sms"], form)["err"] == ["8002 may text only the leads their team holds (team team2)"]
    assert _post(page, ["8001", "sms"], {**form, "template": " "})["err"] == ["template: the form leaves it empty"]
    assert _post(page, ["8001", "sms"], {**form, "template": "{nmae}"})["err"][0].startswith(
        "template: unknown field {nmae}")
    (broadcast,) = page.sms.recent().result
    assert (broadcast.created_by, broadcast.total, broadcast.by_status) == ("8001", 10, {"queued": 10})
    without = LeadPage(engine, page.dialer)  # type: ignore[arg-type]
    assert "/sms" not in _get(without, ["8001"])[1]


def test_supervise_a_call_and_score_the_days_sample(sessions: sessionmaker[Session]) -> None:
    page, engine, ticket = _page(sessions)
    status, html = _get(page, ["8001"])
    assert status == 200
    assert "<td>2101</td><td>Agent 2101</td><td>on call</td><td class=n>2:00</td>" in html
    assert html.count("<button>listen</button>") == 1  # only 2101 is on a call
    assert f"<b>{ticket}</b>, agent 2101, 10:00, talk 1:35" in html and "/srv/rec/2026/12/05/call.wav" in html
    assert _post(page, ["8001", "spy"], {"agent": "2101", "mode": "whisper", "team": "team1"}) == {
        "team": ["team1"], "msg": ["your phone is in whisper on agent 2101's call"]}
    assert _post(page, ["8002", "spy"], {"agent": "2101", "mode": "listen"})["err"] == [
        ("supervisor 8002 may not spy on agent 2101: a lead supervises only their own team (team2); "
        "agent 2101 is in team team1")]
    assert engine.supervisor.spied == [("8001", "2101", "whisper")]
    ratings = {f"rating_{item.id}": "4" for item in SETTINGS.qa.scorecard}
    assert _post(page, ["8002", "qa"], {"ticket": ticket, **ratings})["err"] == [
        "agent 2101 is not in 8002's team: a lead scores their own team's calls"]
    assert _post(page, ["8001", "qa"], {"ticket": ticket, **ratings, "rating_compliance": "0"})["msg"] == [
        f"{ticket} scored 0.0 (failed: critical item)"]  # a critical item at 0 fails the whole call
    status, html = _get(page, ["8001"])  # the call scored stays in the day's sample, scored
    assert f"<b>{ticket}</b>, agent 2101, 10:00, talk 1:35 <b>scored by 8001</b>" in html
    # 2101 consults 2105 while their caller holds: the board says so
    engine.calls.channels = {c.uniqueid: c for c in (
        _channel("1.2", "PJSIP/agent2101-00000001", "from-agents", "s"),
        _channel("1.5", "Local/2105@cc-transfer-refer-00000002;1", REFER_CONTEXT, "2105"))}
    status, html = _get(page, ["8001"])
    assert "<td>2101</td><td>Agent 2101</td><td>on call, consulting 2105</td>" in html


def test_the_lead_brings_back_or_logs_out_an_agent_of_the_team(sessions: sessionmaker[Session]) -> None:
    """2102 is ready (log out only), and once paused for not answering, unpause too; 2101 on a
    call gets neither. Each button goes to the agent service; another team's lead is refused."""
    page, engine, _ = _page(sessions)
    done: list[tuple[str, str]] = []
    engine.agent_service = SimpleNamespace(
        unpause=lambda agent: succeed(done.append(("unpause", agent))),
        logout=lambda agent: succeed(done.append(("logout", agent))))
    _, html = _get(page, ["8001"])
    logout = ('<form class="inline" method="post" action="/lead/8001/logout"><input type="hidden" name="agent" '
              'value="2102"><input type="hidden" name="team" value="team1"><button>log out</button></form>')
    assert logout in html and "<button>unpause</button>" not in html
    assert html.count("<button>log out</button>") == 1  # not 2101, on a call
    engine.agents.agent("2102").state = AgentState.PAUSED
    engine.agents.agent("2102").pause_reason = "no answer"
    _, html = _get(page, ["8001"])
    assert '<button>unpause</button>' in html and logout in html
    assert _post(page, ["8001", "unpause"], {"agent": "2102", "team": "team1"})["msg"] == ["agent 2102 is ready again"]
    assert _post(page, ["8001", "logout"], {"agent": "2102", "team": "team1"})["msg"] == ["agent 2102 logged out"]
    assert _post(page, ["8002", "logout"], {"agent": "2102"})["err"] == ["agent '2102' is not in 8002's team"]
    assert _post(page, ["8001", "logout"], {"agent": "9001"})["err"] == ["agent '9001' is not in 8001's team"]
    assert done == [("unpause", "2102"), ("logout", "2102")]


def test_only_leads_and_managers_have_a_page_and_a_manager_picks_the_team(sessions: sessionmaker[Session]) -> None:
    page, _, _ = _page(sessions)
    assert _get(page, ["2101"])[0] == 404 and _get(page, ["4242"])[0] == 404 and _get(page, [])[0] == 404
    status, html = _get(page, ["9001"], team="team3")
    assert status == 200 and "team team3</span>" in html and '<a href="/lead/9001?team=team1">team1</a>' in html
    assert "<b>team3</b>" in html and "hotline" in html  # the hotline team has agents too
    status, html = _get(page, ["8001"], team="team3")  # a lead sees only their own team
    assert "team team1</span>" in html and "?team=team3" not in html


def test_the_forms_become_the_apis_bodies() -> None:
    assert form_handout("8001", {"campaign": "spring", "team": "team1", "each": "", "agents": "all"}) == (
        "spring", {"by": "8001", "team": "team1", "agents": "all"})
    assert form_handout("9001", {"campaign": "spring", "team": "team1", "count": "7", "agents": "all"}) == (
        "spring", {"by": "9001", "team": "team1", "count": 7})
    ticket, body = form_review("8001", {"ticket": "GD1", "rating_greeting": "na", "comment": " ok ",
                                        **{f"rating_{i.id}": "3" for i in SETTINGS.qa.scorecard[1:]}},
                               SETTINGS.qa.scorecard)
    assert ticket == "GD1" and body["ratings"]["greeting"] is None and body["ratings"]["verify"] == 3
    assert body["comment"] == "ok" and "recording" not in body
    _, body = form_review("8001", {"ticket": "GD1", "recording": "12", **{f"rating_{i.id}": "3"
                                                                            for i in SETTINGS.qa.scorecard}},
                          SETTINGS.qa.scorecard)
    assert body["recording"] == 12


def test_the_sampled_call_plays_on_the_page(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(b"RIFF....WAVEfmt " + bytes(64))
    page, _, ticket = _page(sessions, recording=str(wav))
    status, html = _get(page, ["8001"])
    assert f'<audio controls preload="none" src="/lead/8001/recording/{ticket}?recording=1"></audio>' in html
    assert '<input type="hidden" name="recording" value="1">' in html  # the score is of the part heard
    # the reviewer sees where the agent paused the recording (the file has silence there)
    assert "<span class=muted>recording paused by the agent (card numbers): 0:40-0:52</span>" in html
    status, body, request = _fetch(page, ["8001", "recording", ticket])
    assert (status, body) == (200, wav.read_bytes())
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"audio/wav"]
    status, body, _ = _fetch(page, ["8002", "recording", ticket])  # not 8002's team
    assert status == 403 and b"is not in 8002&#x27;s team" in body
    assert _fetch(page, ["8001", "recording", "GD20990101001"])[0] == 404
    wav.unlink()
    status, body, _ = _fetch(page, ["8001", "recording", ticket])
    assert status == 404 and f"{ticket} has no recording on disk".encode() in body


def test_each_lead_plays_and_scores_their_own_agents_part_of_a_call_handed_on(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """2201 (team2) takes a call and hands it on to 2101 (team1): two files. Each lead's page
    offers and plays their own agent's part, and scores it as that agent's."""
    page, engine, _ = _page(sessions)
    repo = engine.repository
    files = {agent: tmp_path / f"{agent}.wav" for agent in ("2201", "2101")}
    for agent, file in files.items():
        file.write_bytes(b"RIFF" + agent.encode() + bytes(60))
    record = repo.create_call_record(NewCallRecord(started_at=NOW, direction="outbound", agent_id="2101",
                                                   talk_seconds=300, transfers=("2201>outbound@120",)),
                                     site_prefix="GD").result
    first, second = (repo.add_recording(NewRecording(
        call_record_id=record.id, path=str(files[agent]), started_at=NOW.replace(minute=minute), duration_seconds=1.0,
        size_bytes=64, format="wav", agent_id=named)).result for agent, minute, named in (("2201", 0, "2201"),
                                                                                         ("2101", 2, None)))
    handed = record.ticket_number
    _, html = _get(page, ["8002"])
    assert f"<b>{handed}</b>, agent 2201, " in html and f"/lead/8002/recording/{handed}?recording={first.id}" in html
    _, html = _get(page, ["8001"])
    assert f"<b>{handed}</b>, agent 2101, " in html and f"/lead/8001/recording/{handed}?recording={second.id}" in html
    assert _fetch(page, ["8002", "recording", handed], recording=str(first.id))[1] == files["2201"].read_bytes()
    assert _fetch(page, ["8002", "recording", handed])[1] == files["2201"].read_bytes()  # the part 8002 scores
    assert _fetch(page, ["8001", "recording", handed])[1] == files["2101"].read_bytes()
    status, body, _ = _fetch(page, ["8001", "recording", handed], recording=str(first.id))
    assert status == 403 and b"agent 2201 is not in 8001&#x27;s team" in body
    assert _fetch(page, ["8001", "recording", handed], recording="99")[0] == 404
    assert _fetch(page, ["8001", "recording", handed], recording="x")[0] == 404
    ratings = {f"rating_{item.id}": "4" for item in SETTINGS.qa.scorecard}
    assert _post(page, ["8002", "qa"], {"ticket": handed, "recording": str(first.id), **ratings})["msg"] == [
        f"{handed} scored 100.0"]
    _, html = _get(page, ["8002"])
    assert f"<b>{handed}</b>, agent 2201, 10:00, talk 5:00 <b>scored by 8002</b>" in html
    _, html = _get(page, ["8001"])
    assert f"<b>{handed}</b>, agent 2101, 10:00, talk 5:00 <span class=muted>(to score)</span>" in html


def test_the_team_today_logged_in_on_calls_paused_occupancy(sessions: sessionmaker[Session]) -> None:
    """Beside each agent's live state, where their day went so far (docs/reports.md, "Agent time")."""
    from datetime import timedelta

    from callcenter.agent_time import StateChange
    from callcenter.storage.agent_time import record_agent_states

    page, engine, _ = _page(sessions)
    start = NOW - timedelta(hours=1)  # 09:00 in Shanghai; the page's now is 10:10
    engine.repository.run(record_agent_states, [
        StateChange("2101", start, "ready"), StateChange("2101", start + timedelta(minutes=20), "paused", "coaching"),
        StateChange("2101", start + timedelta(minutes=30), "ready"), StateChange("2101", NOW, "on_call")])
    status, html = _get(page, ["8001"])
    assert status == 200
    assert ("<td>2101</td><td>Agent 2101</td><td>on call</td><td class=n>2:00</td><td class=n>1:10:00</td>"
            "<td class=n>0:10:00</td><td class=n>0:10:00</td><td class=n>17%</td><td>coaching 0:10:00</td>") in html
    assert ("<td>2102</td><td>Agent 2102</td><td>ready</td><td class=n>10:00</td>" + "<td class=n>-</td>" * 4
            + "<td></td>") in html  # nothing recorded today
