"""Quality assurance: scoring, who reviews whom, the daily sample, storage, HTTP and the report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session, sessionmaker

from callcenter.cli import main
from callcenter.engine import MESSAGE_SUFFIX
from callcenter.http_api import ApiResource
from callcenter.qa import (
    QaCandidate,
    QaReviewRecord,
    ReviewRefused,
    call_parts,
    check_reviewer,
    choose_sample,
    parse_review,
    qa_summary,
    review_part,
    reviewable_agents,
    score,
)
from callcenter.settings import QaItem, load_settings
from callcenter.storage import models
from callcenter.storage import repository as repo
from callcenter.storage.db import (
    alembic_config,
    create_engine_for,
    make_session_factory,
    upgrade_database,
)
from callcenter.storage.records import (
    InvalidFieldError,
    NewCallRecord,
    NewRecording,
    Recording,
)
from callcenter.storage.repository import ConflictError, NotFoundError
from tests.httpapi import get_json, post_json
from tests.sitedb import sqlite_site
from tests.syncrepository import SyncRepository

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
CARD = SETTINGS.qa.scorecard
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 2)
ALL_FOUR = {item.id: 4 for item in CARD}


# --- scoring ---------------------------------------------------------------------------------


def test_the_score_weighs_each_rated_item_and_a_critical_zero_fails_the_call() -> None:
    card = (QaItem("a", "A", 10), QaItem("b", "B", 30), QaItem("c", "C", 60, critical=True))
    assert score({"a": 4, "b": 4, "c": 4}, card) == (100.0, False)
    assert score({"a": 2, "b": 4, "c": 3}, card) == (100 * (10 * 2 + 30 * 4 + 60 * 3) / 400, False)  # 85.0
    assert score({"a": None, "b": 2, "c": 4}, card) == (round(100 * (30 * 2 + 60 * 4) / 360, 2), False)
    assert score({"a": 4, "b": 4, "c": 0}, card) == (0.0, True)
    review = parse_review({"reviewer": "8001", "ratings": {**ALL_FOUR, "close": 2, "verify": None},
                           "comment": " good call "}, CARD)
    assert (review.reviewer, review.failed, review.comment) == ("8001", False, "good call")
    assert review.score == round(100 * (10 * 4 + 25 * 4 + 30 * 4 + 10 * 2 + 10 * 4) / (85 * 4), 2)


@pytest.mark.parametrize(("body", "field", "problem"), [
    ({"ratings": ALL_FOUR}, "reviewer", "expected the reviewer's agent id, got None"),
    ({"reviewer": "8001"}, "ratings", "expected an object of item -> 0..4 or null, got None"),
    ({"reviewer": "8001", "ratings": {**ALL_FOUR, "greting": 3}}, "ratings.greting",
     "not on the scorecard (did you mean 'greeting'? items: greeting, verify, listen, resolve, close, compliance)"),
    ({"reviewer": "8001", "ratings": {k: v for k, v in ALL_FOUR.items() if k != "close"}}, "ratings.close",
     "missing: rate 'Sums up and closes politely' 0..4, or null if it does not apply"),
    ({"reviewer": "8001", "ratings": {**ALL_FOUR, "listen": 5}}, "ratings.listen", "expected 0..4 or null, got 5"),
    ({"reviewer": "8001", "ratings": {**ALL_FOUR, "listen": True}}, "ratings.listen",
     "expected 0..4 or null, got True"),
    ({"reviewer": "8001", "ratings": dict.fromkeys(ALL_FOUR)}, "ratings", "every item is null: rate at least one"),
    ({"reviewer": "8001", "ratings": ALL_FOUR, "comment": 7}, "comment", "expected a string, got 7"),
    ({"reviewer": "8001", "ratings": ALL_FOUR, "comment": "x" * 4001}, "comment", "at most 4000 characters, got 4001"),
    ({"reviewer": "8001", "ratings": ALL_FOUR, "score": 100}, "score",
     "unknown field (fields: reviewer, ratings, comment, recording)"),
    ({"reviewer": "8001", "ratings": ALL_FOUR, "recording": "12"}, "recording",
     "expected the id of the call's recording scored, got '12'"),
    ({"reviewer": "8001", "ratings": ALL_FOUR, "recording": 0}, "recording",
     "expected the id of the call's recording scored, got 0"),
])
def test_bad_reviews_name_the_field(body: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(InvalidFieldError) as info:
        parse_review(body, CARD)
    assert (info.value.field, info.value.problem) == (field, problem)


def test_leads_review_their_team_managers_everyone_nobody_themselves() -> None:
    agents = SETTINGS.agents
    team1 = reviewable_agents(agents, "8001")
    assert "2101" in team1 and "2201" not in team1 and "8001" not in team1
    assert set(reviewable_agents(agents, "9001")) == {a.id for a in agents} - {"9001"}
    check_reviewer(agents, "8001", "2101")
    check_reviewer(agents, "9001", "8001")  # a manager reviews the lead's own calls
    for reviewer, agent, why in (("2101", "2102", "not a team lead or a manager"),
                                 ("8001", "2201", "not in 8001's team"),
                                 ("8001", "8001", "nobody scores their own calls"),
                                 ("8001", None, "no agent took this call"),
                                 ("7777", "2101", "unknown agent id '7777'")):
        with pytest.raises(ReviewRefused, match=why):
            check_reviewer(agents, reviewer, agent)


def _candidate(ticket: str, agent: str) -> QaCandidate:
    return QaCandidate(ticket, agent, datetime(2026, 11, 2, 9, tzinfo=SHANGHAI), 60, f"/rec/{ticket}.wav")


def test_the_sample_is_capped_per_agent_stable_for_the_day_and_changes_with_it() -> None:
    calls = [_candidate(f"GD2026110200{i:02d}", agent) for i, agent in enumerate(["2101"] * 6 + ["2102"] * 2 + ["2201"])]
    first = choose_sample(calls, ["2101", "2102"], 2, DAY)
    assert [c.agent_id for c in first] == ["2101", "2101", "2102", "2102"]
    assert choose_sample(list(reversed(calls)), ["2101", "2102"], 2, DAY) == first  # order-free, repeatable
    days = {tuple(c.ticket for c in choose_sample(calls, ["2101"], 2, DAY + timedelta(days=d))) for d in range(6)}
    assert len(days) > 1  # another day, another draw
    assert choose_sample(calls, ["2101"], 0, DAY) == []


def test_the_summary_averages_scores_and_items_where_they_applied() -> None:
    when = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)

    def review(ticket: str, agent: str, value: float, ratings: dict[str, int | None],
               failed: bool = False) -> QaReviewRecord:
        return QaReviewRecord(ticket, agent, when, "8001", ratings, value, failed, "", when)

    lines = qa_summary([review("GD1", "2101", 80.0, {**ALL_FOUR, "close": 2}),
                        review("GD2", "2101", 0.0, {"compliance": 0}, True),
                        review("GD3", "2102", 90.0, {**ALL_FOUR, "verify": None})], CARD)
    assert [(line.agent, line.reviews, line.calls, line.score, line.failed) for line in lines] == [
        ("2101", 2, 2, 40.0, 1), ("2102", 1, 1, 90.0, 0), ("total", 3, 3, round(170 / 3, 2), 1)]
    assert (lines[0].items["close"], lines[0].items["compliance"], lines[1].items["verify"]) == (2.0, 2.0, None)


def test_the_summary_counts_a_call_reviewed_by_a_lead_and_a_manager_once() -> None:
    """Two reviews of one call are one call: failed once, weighing the mean of its reviews as
    much as a call reviewed once (docs/qa.md, "The report")."""
    when = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)

    def review(ticket: str, reviewer: str, value: float, failed: bool = False,
               close: int | None = 4) -> QaReviewRecord:
        return QaReviewRecord(ticket, "2101", when, reviewer, {**ALL_FOUR, "close": close}, value, failed, "", when)

    both_fail = qa_summary([review("GD1", "8001", 0.0, True), review("GD1", "9001", 0.0, True)], CARD)
    assert [(line.reviews, line.calls, line.failed) for line in both_fail] == [(2, 1, 1), (2, 1, 1)]
    lines = qa_summary([review("GD1", "8001", 0.0, True, close=0), review("GD1", "9001", 80.0, close=2),
                        review("GD2", "8001", 100.0)], CARD)
    (agent, total) = lines
    assert (agent.reviews, agent.calls, agent.failed) == (3, 2, 1)  # GD1 failed by the lead: one failed call
    assert agent.score == 70.0  # GD1: (0 + 80) / 2 = 40, GD2: 100; not (0 + 80 + 100) / 3
    assert agent.items["close"] == 2.5  # GD1: (0 + 2) / 2 = 1, GD2: 4
    assert (total.calls, total.score, total.failed) == (2, 70.0, 1)


def _recording(id_: int, agent: str | None, minute: int, name: str = "") -> Recording:
    return Recording(id_, 1, agent, f"/rec/{name or id_}.wav", datetime(2026, 11, 2, 9, minute, tzinfo=SHANGHAI),
                     60.0, 100, "wav", None)


def test_a_handed_on_calls_parts_are_each_their_agents() -> None:
    """2201 (team2) takes the call, hands it on, 2101 (team1) takes it over: the file on
    2201's channel is 2201's part, the caller's from the hand-off (no agent named) 2101's, the
    call's agent. Each lead plays and scores their own agent's part; a manager the last."""
    recordings = [_recording(7, "2201", 0), _recording(8, None, 2), _recording(9, "2201", 3),  # 2201's again
                  _recording(10, None, 5, f"call{MESSAGE_SUFFIX}")]  # a message the caller left: nobody's part
    assert [(r.id, r.agent_id) for r in call_parts(reversed(recordings), "2101")] == [(7, "2201"), (8, "2101")]
    agents = SETTINGS.agents
    assert (review_part(agents, "8002", "2101", recordings).agent_id,
            review_part(agents, "8002", "2101", recordings).recording) == ("2201", call_parts(recordings, "2101")[0])
    assert review_part(agents, "8001", "2101", recordings).recording == call_parts(recordings, "2101")[1]
    assert review_part(agents, "9001", "2101", recordings).agent_id == "2101"  # the last part a manager scores
    assert review_part(agents, "9001", "2101", recordings, 9).agent_id == "2201"  # named: that recording's
    assert review_part(agents, "9001", "2101", [], None).agent_id == "2101"  # no recording: the call's agent
    with pytest.raises(ReviewRefused, match="agent 2201 is not in 8001's team"):
        review_part(agents, "8001", "2101", recordings, 7)  # another team's agent's part, named
    with pytest.raises(ReviewRefused, match="agent 2101 is not in 8003's team"):
        review_part(agents, "8003", "2101", recordings)
    for unknown in (11, 10):  # not of this call; the message
        with pytest.raises(InvalidFieldError, match=f"recording {unknown} is not one of this call's "
                                                    r"\(its parts: 7, 8\)"):
            review_part(agents, "9001", "2101", recordings, unknown)


# --- storage, HTTP, CLI ----------------------------------------------------------------------


def _id(session: Session, ticket: str) -> int:
    record = repo.get_call_record_by_ticket(session, ticket)
    assert record is not None
    return record.id


def _calls(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Recorded calls of 2101 (two), 2102 and 2201, one without a recording and one nobody took."""
    tickets = {}
    with sessions.begin() as session:
        for i, (agent, recorded, talk) in enumerate((("2101", True, 60), ("2101", True, 90), ("2102", True, 30),
                                                     ("2201", True, 45), ("2101", False, 20), (None, True, 0))):
            when = datetime(2026, 11, 2, 9 + i, tzinfo=SHANGHAI)
            record = repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="inbound", agent_id=agent, queue="hotline", talk_seconds=talk),
                site_prefix="GD", ticket_day=when.date())
            if recorded:
                repo.add_recording(session, NewRecording(record.id, f"/rec/{record.ticket_number}.wav", when, talk,
                                                         100 + talk, "wav", agent,
                                                         pauses=((12.0, 18.5),) if talk == 90 else ()))
            tickets[f"{agent}-{i}"] = record.ticket_number
    return tickets


def test_candidates_reviews_and_their_replacement(sessions: sessionmaker[Session]) -> None:
    tickets = _calls(sessions)
    since, until = datetime(2026, 11, 2, tzinfo=SHANGHAI), datetime(2026, 11, 3, tzinfo=SHANGHAI)
    with sessions.begin() as session:
        found = repo.qa_candidates(session, since=since, until=until)
    assert [(c.agent_id, c.recording.endswith(".wav")) for c in found] == [
        ("2101", True), ("2101", True), ("2102", True), ("2201", True)]  # no recording, no agent: not offered
    assert [c.pauses for c in found] == [(), ((12.0, 18.5),), (), ()]  # where 2101 paused the second one
    review = parse_review({"reviewer": "8001", "ratings": ALL_FOUR}, CARD)
    now = datetime(2026, 11, 3, 10, tzinfo=SHANGHAI)
    with sessions.begin() as session:
        stored = repo.save_qa_review(session, _id(session, tickets["2101-0"]), review, now=now)
        again = repo.save_qa_review(session, _id(session, tickets["2101-0"]), parse_review(
            {"reviewer": "8001", "ratings": {**ALL_FOUR, "compliance": 0}, "comment": "promised a refund"}, CARD),
            now=now)
        with pytest.raises(NotFoundError):
            repo.save_qa_review(session, 9999, review, now=now)
        with pytest.raises(ConflictError):
            repo.save_qa_review(session, _id(session, tickets["None-5"]), review, now=now)
    assert (stored.agent_id, stored.score, stored.failed) == ("2101", 100.0, False)
    assert (again.score, again.failed, again.comment) == (0.0, True, "promised a refund")
    with sessions.begin() as session:
        reviews = repo.list_qa_reviews(session, since=since, until=until)
        after = repo.qa_candidates(session, since=since, until=until)
    assert [(r.ticket, r.reviewer, r.failed) for r in reviews] == [(tickets["2101-0"], "8001", True)]  # replaced
    # a reviewed call is still a candidate (the day's sample does not change), marked reviewed
    assert [(c.ticket, c.reviewed_by) for c in after] == [(c.ticket, ("8001",) if c.ticket == tickets["2101-0"]
                                                            else ()) for c in found]


def test_http_sample_score_and_report(sessions: sessionmaker[Session]) -> None:
    tickets = _calls(sessions)
    api = ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS))  # type: ignore[arg-type]
    status, body = get_json(api, [b"qa", b"sample"], {b"reviewer": [b"8001"], b"day": [b"2026-11-02"]})
    assert status == 200, body
    assert sorted(c["agent_id"] for c in body["calls"]) == ["2101", "2101", "2102"]  # team1 only, 2 each at most
    assert body["per_agent"] == 2 and body["scorecard"][0]["id"] == "greeting"
    status, body = get_json(api, [b"qa", b"sample"], {b"reviewer": [b"2101"]})
    assert (status, body["field"]) == (403, "reviewer") and "not a team lead or a manager" in body["error"]
    status, body = get_json(api, [b"qa", b"sample"], {b"reviewer": [b"8001"], b"day": [b"monday"]})
    assert (status, body) == (400, {"error": "expected YYYY-MM-DD, got 'monday'", "field": "day"})

    path = [b"call-records", tickets["2101-1"].encode(), b"qa"]
    status, body = post_json(api, path, {"reviewer": "8001", "ratings": {**ALL_FOUR, "close": 2}, "comment": "ok"})
    assert status == 200, body
    assert (body["review"]["reviewer"], body["review"]["agent_id"], body["review"]["score"]) == (
        "8001", "2101", 95.0)
    status, body = post_json(api, [b"call-records", tickets["2201-3"].encode(), b"qa"],
                         {"reviewer": "8001", "ratings": ALL_FOUR})
    assert status == 403 and "not in 8001's team" in body["error"]
    status, body = post_json(api, path, {"reviewer": "8001", "ratings": {**ALL_FOUR, "listen": 9}})
    assert (status, body["field"]) == (400, "ratings.listen")
    status, body = post_json(api, [b"call-records", b"GD20261102999", b"qa"], {"reviewer": "8001", "ratings": ALL_FOUR})
    assert (status, body["field"]) == (404, "ticket")

    status, body = get_json(api, [b"reports", b"qa"], {b"from": [b"2026-11-02"]})
    assert status == 200, body
    assert [(line["agent"], line["reviews"], line["score"]) for line in body["lines"]] == [
        ("2101", 1, 95.0), ("total", 1, 95.0)]
    assert body["lines"][0]["items"]["close"] == 2.0


def _handed_on(sessions: sessionmaker[Session]) -> tuple[str, int, int]:
    """2201 (team2) calls a customer and hands them on to 2101 (team1), the call's agent: a
    recording of each part (the second names no agent: the caller's channel), and a message
    file. (ticket, 2201's recording id, 2101's)."""
    with sessions.begin() as session:
        when = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)
        record = repo.create_call_record(session, NewCallRecord(
            started_at=when, direction="outbound", agent_id="2101", talk_seconds=300,
            transfers=("2201>outbound@120",)), site_prefix="GD", ticket_day=when.date())
        first = repo.add_recording(session, NewRecording(record.id, "/rec/part-2201.wav", when, 120, 1, "wav", "2201"))
        second = repo.add_recording(session, NewRecording(record.id, "/rec/part-2101.wav", when.replace(minute=2),
                                                          180, 1, "wav", None))
        repo.add_recording(session, NewRecording(record.id, f"/rec/part{MESSAGE_SUFFIX}.wav",
                                                 when.replace(minute=5), 20, 1, "wav", None))
    return record.ticket_number, first.id, second.id


def test_a_handed_on_call_is_sampled_and_scored_per_agents_part(sessions: sessionmaker[Session]) -> None:
    """Each lead is offered their own agent's part of a call handed on between teams, and the
    score of it goes to that agent; a manager scores both parts, one review each."""
    ticket, part_2201, part_2101 = _handed_on(sessions)
    api = ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS))  # type: ignore[arg-type]
    offered = {}
    for lead in ("8001", "8002"):
        status, body = get_json(api, [b"qa", b"sample"], {b"reviewer": [lead.encode()], b"day": [b"2026-11-02"]})
        assert status == 200, body
        offered[lead] = [(c["ticket"], c["agent_id"], c["recording"], c["recording_id"]) for c in body["calls"]]
    assert offered == {"8001": [(ticket, "2101", "/rec/part-2101.wav", part_2101)],
                       "8002": [(ticket, "2201", "/rec/part-2201.wav", part_2201)]}
    path = [b"call-records", ticket.encode(), b"qa"]
    status, body = post_json(api, path, {"reviewer": "8002", "ratings": ALL_FOUR, "recording": part_2201})
    assert status == 200, body
    assert (body["review"]["agent_id"], body["review"]["recording_id"]) == ("2201", part_2201)
    status, body = post_json(api, path, {"reviewer": "8002", "ratings": ALL_FOUR, "recording": part_2101})
    assert status == 403 and "agent 2101 is not in 8002's team" in body["error"]
    status, body = post_json(api, path, {"reviewer": "8001", "ratings": {**ALL_FOUR, "compliance": 0}})
    assert status == 200, body  # without "recording": the part the lead may score
    assert (body["review"]["agent_id"], body["review"]["recording_id"]) == ("2101", part_2101)
    for part, value in ((part_2201, 3), (part_2101, 2)):
        status, body = post_json(api, path, {"reviewer": "9001", "ratings": {**ALL_FOUR, "close": value},
                                             "recording": part})
        assert status == 200, body
    status, body = post_json(api, path, {"reviewer": "9001", "ratings": ALL_FOUR, "recording": part_2101 + 1})
    assert (status, body["field"]) == (400, "recording")  # the message is no part
    status, body = get_json(api, [b"reports", b"qa"], {b"from": [b"2026-11-02"]})
    assert [(line["agent"], line["reviews"], line["calls"], line["failed"]) for line in body["lines"]] == [
        ("2101", 2, 1, 1), ("2201", 2, 1, 0), ("total", 4, 2, 1)]
    status, body = get_json(api, [b"qa", b"sample"], {b"reviewer": [b"9001"], b"day": [b"2026-11-02"]})
    assert [(c["agent_id"], c["reviewed_by"]) for c in body["calls"]] == [("2101", ["8001", "9001"]),
                                                                        ("2201", ["8002", "9001"])]


def test_the_days_sample_stays_the_same_as_its_calls_are_scored(sessions: sessionmaker[Session]) -> None:
    """Scoring a sampled call leaves the day's sample as it was, the call marked scored: no
    other call takes its place, and once all are scored none is left (qa.sample_per_agent)."""
    with sessions.begin() as session:
        for i in range(5):
            when = datetime(2026, 11, 2, 9 + i, tzinfo=SHANGHAI)
            record = repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="inbound", agent_id="2101", queue="hotline", talk_seconds=60),
                site_prefix="GD", ticket_day=when.date())
            repo.add_recording(session, NewRecording(record.id, f"/rec/{record.ticket_number}.wav", when, 60, 1,
                                                     "wav", "2101"))
    api = ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS))  # type: ignore[arg-type]
    query = {b"reviewer": [b"8001"], b"day": [b"2026-11-02"]}
    status, first = get_json(api, [b"qa", b"sample"], query)
    assert status == 200 and len(first["calls"]) == 2 and first["remaining"] == 2
    for n, call in enumerate(first["calls"], 1):
        status, body = post_json(api, [b"call-records", call["ticket"].encode(), b"qa"],
                                 {"reviewer": "8001", "ratings": ALL_FOUR})
        assert status == 200, body
        status, now = get_json(api, [b"qa", b"sample"], query)
        assert [c["ticket"] for c in now["calls"]] == [c["ticket"] for c in first["calls"]]
        assert [c["reviewed_by"] for c in now["calls"]] == [["8001"]] * n + [[]] * (2 - n)
        assert now["remaining"] == 2 - n


def test_migration_0016_keeps_the_reviews_and_lets_a_reviewer_score_each_part(db_url: str) -> None:
    """Revision 0016 keeps the reviews there are (their agent, no recording) and lets one
    reviewer score two agents' parts of a call; its downgrade keeps one review per call and
    reviewer."""
    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine, "0015")
        when = datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)
        with engine.begin() as connection:  # revision 0015's columns only
            call_id = connection.execute(sa.insert(models.CallRecord.__table__).values(
                ticket_number="GD20261102001", started_at=when, direction="inbound", agent_id="2101",
                talk_seconds=60)).inserted_primary_key[0]
            recording_id = connection.execute(sa.insert(models.Recording.__table__).values(
                call_record_id=call_id, agent_id="2201", path="/rec/a.wav", started_at=when, duration_seconds=60,
                size_bytes=1, format="wav")).inserted_primary_key[0]
            connection.execute(sa.text(
                "INSERT INTO qa_reviews (call_record_id, agent_id, reviewer, ratings, score, failed, comment, "
                "reviewed_at) VALUES (:call, '2101', '9001', '{}', 50, false, 'before', :when)"),
                {"call": call_id, "when": when.replace(tzinfo=None)})
        upgrade_database(engine)
        sessions = make_session_factory(engine)
        review = parse_review({"reviewer": "9001", "ratings": ALL_FOUR, "recording": recording_id}, CARD)
        with sessions.begin() as session:
            stored = repo.save_qa_review(session, call_id, review, now=when)
            reviews = repo.list_qa_reviews(session, since=when, until=when + timedelta(days=1))
        assert (stored.agent_id, stored.recording_id) == ("2201", recording_id)
        assert [(r.agent_id, r.recording_id, r.comment) for r in reviews] == [("2101", None, "before"),
                                                                              ("2201", recording_id, "")]
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0015")
        with engine.connect() as connection:
            kept = connection.execute(sa.text("SELECT agent_id FROM qa_reviews")).scalars().all()
        assert kept == ["2201"]  # the one stored last
    finally:
        engine.dispose()


def test_cli_report_qa_and_rating_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def fill(sessions: sessionmaker[Session]) -> None:
        tickets = _calls(sessions)
        with sessions.begin() as session:
            repo.save_qa_review(session, _id(session, tickets["2102-2"]), parse_review(
                {"reviewer": "9001", "ratings": {**ALL_FOUR, "resolve": 3}}, CARD), now=datetime.now(SHANGHAI))

    site, _ = sqlite_site(tmp_path, fill)
    assert main(["--config", str(site), "report", "qa", "--from", "2026-11-02"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "QA 2026-11-02 .. 2026-11-02 (Asia/Shanghai): mean score 0-100, items rated 0-4"
    assert out[1].split() == ["agent", "reviews", "score", "failed", "greeting", "verify", "listen", "resolve",
                              "close", "compliance"]
    assert out[2].split() == ["2102", "1", "92.5", "0", "4.00", "4.00", "4.00", "3.00", "4.00", "4.00"]
    with pytest.raises(SystemExit):
        main(["--config", str(site), "qa", "score", "GD1", "--as", "8001", "--rate", "greeting:4"])
    assert "expected ITEM=0..4 or ITEM=na, got 'greeting:4'" in capsys.readouterr().err


def test_cli_qa_score_names_the_part_of_a_call_handed_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``qa score --recording ID`` sends the part scored (``recording``); without it, none."""
    from callcenter import cli

    sent: list[tuple[str, str, Any]] = []
    monkeypatch.setattr(cli, "_api", lambda settings, method, path, body=None: (
        sent.append((method, path, body)) or (200, {"ok": True})))
    site, _ = sqlite_site(tmp_path, lambda sessions: None)
    base = ["--config", str(site), "qa", "score", "GD1", "--as", "8001", "--rate", "greeting=4"]
    assert main([*base, "--recording", "7"]) == 0
    assert main(base) == 0
    assert [(m, p, b.get("recording")) for m, p, b in sent] == [
        ("POST", "call-records/GD1/qa", 7), ("POST", "call-records/GD1/qa", None)]
    assert "recording" not in sent[1][2]
    capsys.readouterr()
