"""The wallboard page (callcenter.wallboard_page): what a supervisor's screen shows, escaped."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from callcenter.ami.codec import Message
from callcenter.dialer.service import CampaignStatus, LaneStatus
from callcenter.settings import AgentSettings
from callcenter.state.agents import AgentBoard
from callcenter.wallboard_page import Board, clock_time, render_wallboard

PEOPLE = {p.id: p for p in [
    AgentSettings(id="1001", name="Hotline <agent>", team="hotline", role="agent", queues={"hotline": 0}),
    AgentSettings(id="2101", name="Agent 2101", team="team1", role="agent", queues={"outbound": 0, "hotline": 5}),
]}


def _queue(name: str, **overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "queue": name, "day": None, "waiting": 0, "longest_wait": 0.0, "offered": 10, "answered": 9, "abandoned": 1,
        "unanswered": 0, "answered_within_target": 8, "service_level_seconds": 20, "service_level": 0.8,
        "asa": 7.5, "average_talk": 185.0, "completed": 9,
        "agents": {"ready": 1, "ringing": 0, "on_call": 1, "wrap_up": 0, "paused": 0}}
    view.update(overrides)
    return view


def _agents(now: float) -> list[Any]:
    board = AgentBoard({"hotline": 15, "outbound": 15})
    for agent, queue in (("1001", "hotline"), ("2101", "outbound")):
        board.handle(Message.from_pairs([
            ("Event", "QueueMemberAdded"), ("Queue", queue), ("Interface", f"PJSIP/agent{agent}"),
            ("StateInterface", f"PJSIP/agent{agent}"), ("Paused", "0"), ("Status", "1")]), now - 300)
    board.handle(Message.from_pairs([
        ("Event", "QueueMemberPause"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2101"), ("Paused", "1"),
        ("PausedReason", "lunch")]), now - 65)
    return board.agents()


def _campaign(**overrides: Any) -> CampaignStatus:
    fields: dict[str, Any] = {
        "name": "spring-sale", "campaign_id": 1, "pacer": "predictive", "dial_mode": "predictive", "placed": 120,
        "in_flight": 4, "ringing": 3, "agents_ready": 2, "agents_busy": 5, "last_decision": 1,
        "outcomes": {"human": 30}, "abandon_rate": 0.02, "max_ratio": 3.0}
    fields.update(overrides)
    return CampaignStatus(**fields)


def _board(**overrides: Any) -> Board:
    now = 10_000.0
    fields: dict[str, Any] = {"site": "Reference <call> center & co", "local_time": "2026-12-06 10:00:00",
                              "queues": [_queue("hotline")], "agents": _agents(now), "people": PEOPLE,
                              "campaigns": [], "now": now}
    fields.update(overrides)
    return Board(**fields)


def test_clock_time() -> None:
    assert [clock_time(s) for s in (None, 0, 5.4, 65, 3599.6, 3725)] == ["-", "0:00", "0:05", "1:05", "1:00:00",
                                                                          "1:02:05"]


def test_the_page_reloads_itself_and_escapes_every_value() -> None:
    page = render_wallboard(_board())
    assert page.startswith("<!DOCTYPE html>") and '<meta http-equiv="refresh" content="5">' in page
    assert "Reference &lt;call&gt; center &amp; co" in page and "<call>" not in page
    assert "Hotline &lt;agent&gt;" in page
    assert "Campaigns" not in page  # no dialer: no campaign table


def test_a_late_queue_and_a_low_service_level_stand_out() -> None:
    page = render_wallboard(_board(queues=[
        _queue("hotline", waiting=2, longest_wait=31.5, service_level=0.75),
        _queue("outbound", waiting=1, longest_wait=12.0)]))
    hotline, outbound = page.split("<td>hotline</td>")[1], page.split("<td>outbound</td>")[1]
    assert '<tr class=alert><td>hotline</td><td>2</td><td>0:32</td>' in page  # waited longer than 20 s
    assert '<td class="low">75%</td>' in hotline.split("</tr>")[0]
    assert "<tr><td>outbound</td><td>1</td><td>0:12</td>" in page  # within target: no alert
    assert "<td>80%</td>" in outbound.split("</tr>")[0]  # at the 80% goal: not low
    assert "<td>0:08</td><td>3:05</td><td>1</td><td>1</td><td>0</td><td>0</td>" in hotline  # ASA, talk, agents


def test_agents_by_team_with_their_state_for_how_long_and_the_pause_reason() -> None:
    page = render_wallboard(_board())
    rows = [row for row in page.split("<tr>") if row.startswith(("<td>1001</td>", "<td>2101</td>"))]
    assert [row[:14] for row in rows] == ["<td>1001</td><", "<td>2101</td><"]  # hotline team, then team1
    assert '<td class="ready">ready</td><td>5:00</td><td class="text">hotline</td>' in rows[0]
    assert '<td class="paused">paused (lunch)</td><td>1:05</td>' in rows[1]
    assert '<tr class="alert"><td>' not in page


def test_an_agent_paused_for_not_answering_stands_out() -> None:
    board = _board()
    agents = [replace(a, pause_reason="no answer") if a.id == "2101" else a for a in board.agents]
    page = render_wallboard(replace(board, agents=agents))
    assert '<tr class="alert"><td>2101</td>' in page and '<td class="paused">paused (no answer)</td>' in page
    assert '<tr><td>1001</td>' in page


def test_campaigns_show_abandonment_over_the_limit_and_the_guard() -> None:
    page = render_wallboard(_board(campaigns=[
        _campaign(), _campaign(name="team-2", abandon_rate=0.041, abandon_guard="today 4.1% over 3.0%")]))
    assert "Campaigns since the daemon started" in page
    assert "<td>spring-sale</td>" in page and '<td>2%</td><td class="text">-</td>' in page
    assert '<td class="low">4%</td><td class="text low">today 4.1% over 3.0%</td>' in page


def test_the_hotlines_staffing_advice_and_a_shortfall_stand_out() -> None:
    """Erlang's agents needed now next to the agents on the queue (paused ones do not count)."""
    from callcenter.staffing.live import StaffingAdvice

    advice = StaffingAdvice(at=0.0, window_seconds=1800.0, arrivals=30, completed=28, arrival_rate=60 / 3600,
                            aht=200.0, traffic=3.33, agents=6, seats=8, service_level=0.84, asa=9.0, abandon=None)
    page = render_wallboard(_board(staffing=("hotline", advice), queues=[_queue("hotline", agents={
        "ready": 2, "ringing": 0, "on_call": 2, "wrap_up": 1, "paused": 3})]))
    assert ("<p class=alert>hotline now: 60 calls/hour, AHT 3:20, 3.3 Erlangs: <b>6 agent(s) needed</b>, "
            "84% answered in target; 5 on the queue (short)</p>") in page
    enough = render_wallboard(_board(staffing=("hotline", advice), queues=[_queue("hotline", agents={
        "ready": 4, "on_call": 2, "paused": 1})]))
    assert "<p>hotline now: 60 calls/hour" in enough and "6 on the queue</p>" in enough
    quiet = StaffingAdvice(at=0.0, window_seconds=600.0, arrivals=2, completed=0, arrival_rate=2 / 600, aht=None,
                           traffic=0.0, agents=None, seats=None, service_level=None, asa=None, abandon=None)
    assert "2 call(s) in the last 10:00, none finished yet: no staffing advice" in render_wallboard(
        _board(staffing=("hotline", quiet)))
    assert "agent(s) needed" not in render_wallboard(_board())


def test_a_campaign_routed_to_teams_shows_each_teams_lane_under_it() -> None:
    lanes = (LaneStatus("team1", "outbound-team1", 1, 7, 3, 1), LaneStatus("team<2>", "outbound-team2", 0, 8, 0, 0))
    page = render_wallboard(_board(campaigns=[_campaign(route="team", lanes=lanes)]))
    assert ('<tr><td class="text">↳ team1</td><td class="text">outbound-team1</td><td class="text"></td><td></td>'
            "<td>3</td><td>1</td><td>7</td>") in page
    assert "↳ team&lt;2&gt;" in page
    assert "↳" not in render_wallboard(_board(campaigns=[_campaign()]))


def test_each_campaign_shows_its_leads_to_call_and_a_call_backs_oldest_wait() -> None:
    """The backlog as last read: waiting (and how many are due now); for a preview campaign
    (call backs), how long the oldest has waited, red past 8 hours; '-' before a reading."""
    from datetime import UTC, datetime, timedelta

    from callcenter.storage.dialer_records import LeadBacklog

    now = 10_000.0 + 86_400 * 365
    at = datetime.fromtimestamp(now, UTC)
    page = render_wallboard(_board(now=now, campaigns=[
        _campaign(backlog=LeadBacklog(41_000, 38_500, datetime(2026, 1, 1, tzinfo=UTC))),
        _campaign(name="hotline-callbacks", dial_mode="preview", pacer="preview",
                  backlog=LeadBacklog(3, 3, at.replace(microsecond=0) - timedelta(hours=9, minutes=5))),
        _campaign(name="fresh", dial_mode="preview", backlog=LeadBacklog(1, 0, at - timedelta(minutes=2))),
        _campaign(name="none-yet", dial_mode="preview"),
        _campaign(name="empty", dial_mode="preview", backlog=LeadBacklog(0, 0, None)),
    ]))
    rows = {row.split("</td>")[0]: row.split("</tr>")[0] for row in page.split("<tr><td>")[1:]}
    assert rows["spring-sale"].endswith("<td>41000 (38500 due)</td><td></td>")
    assert rows["hotline-callbacks"].endswith('<td>3</td><td class="low">9 h 5 min</td>')
    assert rows["fresh"].endswith("<td>1 (0 due)</td><td>2:00</td>")
    assert rows["none-yet"].endswith("<td>-</td><td>-</td>")
    assert rows["empty"].endswith("<td>0</td><td>-</td>")
    assert "<th>leads to call</th><th>oldest waiting</th>" in page


def test_a_long_wait_reads_in_hours_then_days() -> None:
    from callcenter.wallboard_page import waited

    assert [waited(s) for s in (59, 3599, 3600, 5 * 3600 + 1230, 2 * 86400 - 1, 2 * 86400, 9 * 86400 + 5)] == [
        "0:59", "59:59", "1 h 0 min", "5 h 20 min", "47 h 59 min", "2 days", "9 days"]


def test_a_queue_whose_primary_agents_are_away_is_said_to_overflow_at_once() -> None:
    """overflow_now (Engine.queue_views): the supervisors see why the outbound agents take the
    hotline's calls; nothing for a queue with its primary agent there or without overflow."""
    note = "hotline: no primary agent there (logged out, paused or phone unreachable): its callers ring"
    assert note in render_wallboard(_board(queues=[_queue("hotline", overflow_now=True)]))
    for value in (False, None):
        assert "no primary agent there" not in render_wallboard(_board(queues=[_queue("hotline", overflow_now=value)]))
