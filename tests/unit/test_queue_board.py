"""The live queue view (pure): waiting callers and the day's counters from AMI queue events."""

from __future__ import annotations

import gzip
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from callcenter.ami.codec import AmiParser, Message
from callcenter.state.queues import CONNECT_GRACE_S, STAYS_KEPT, QueueBoard, QueueStay

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"
DAY = date(2026, 12, 5)


def event(name: str, **fields: object) -> Message:
    return Message.from_pairs([("Event", name), *((k, str(v)) for k, v in fields.items())])


def board() -> QueueBoard:
    return QueueBoard({"hotline": 20, "outbound": 2})


def test_a_caller_waits_then_is_answered_within_the_target() -> None:
    b = board()
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="1.1"), 100.0, DAY)
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="1.2"), 104.0, DAY)
    hotline = b.views(110.0, DAY)[0]
    assert (hotline.queue, hotline.waiting, hotline.longest_wait, hotline.offered) == ("hotline", 2, 10.0, 2)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="1.1"), 112.0, DAY)
    b.handle(event("AgentConnect", Queue="hotline", Uniqueid="1.1", HoldTime=12), 112.1, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="1.2"), 134.0, DAY)
    b.handle(event("AgentConnect", Queue="hotline", Uniqueid="1.2", HoldTime=30), 134.1, DAY)
    b.handle(event("AgentComplete", Queue="hotline", Uniqueid="1.1", TalkTime=60, HoldTime=12), 172.0, DAY)
    v = b.views(180.0, DAY)[0]
    assert (v.waiting, v.longest_wait, v.answered, v.answered_within_target, v.abandoned, v.unanswered) == (
        0, 0.0, 2, 1, 0, 0)
    assert (v.service_level, v.asa, v.average_talk, v.completed) == (0.5, 21.0, 60.0, 1)


def test_abandoned_and_timed_out_callers() -> None:
    """Abandon -> Leave counts one abandoned; a Leave with no connect within the grace is unanswered."""
    b = board()
    for uid in ("2.1", "2.2"):
        b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid=uid), 0.0, DAY)
    b.handle(event("QueueCallerAbandon", Queue="hotline", Uniqueid="2.1", HoldTime=8), 8.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="2.1"), 8.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="2.2"), 300.0, DAY)  # the queue's timeout
    v = b.views(300.0 + CONNECT_GRACE_S / 2, DAY)[0]
    assert (v.abandoned, v.unanswered, v.waiting) == (1, 0, 0)  # 2.2 may still be connected
    v = b.views(300.0 + CONNECT_GRACE_S + 0.1, DAY)[0]
    assert (v.offered, v.answered, v.abandoned, v.unanswered, v.service_level, v.asa) == (2, 0, 1, 1, 0.0, None)


def test_a_new_day_starts_the_counters_again_but_keeps_who_waits() -> None:
    b = board()
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="3.1"), 0.0, DAY)
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="3.2"), 1.0, DAY)
    tomorrow = date(2026, 12, 6)
    v = b.views(5.0, tomorrow)[0]
    assert (v.day, v.offered, v.waiting) == (tomorrow, 0, 2)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="3.1"), 6.0, tomorrow)
    b.handle(event("AgentConnect", Queue="hotline", Uniqueid="3.1", HoldTime=6), 6.0, tomorrow)
    v = b.views(7.0, tomorrow)[0]
    assert (v.day, v.offered, v.answered, v.waiting) == (tomorrow, 0, 1, 1)


def test_resync_rebuilds_the_waiting_callers_from_queue_entries() -> None:
    b = board()
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="gone"), 0.0, DAY)
    b.resync([event("QueueEntry", Queue="hotline", Uniqueid="4.1", Wait=42, Position=1),
              event("QueueEntry", Queue="outbound", Uniqueid="4.2", Wait=1, Position=1),
              event("QueueMember", Queue="hotline", Location="PJSIP/agent1001")], 100.0)
    hotline, outbound = b.views(100.0, DAY)
    assert (hotline.waiting, hotline.longest_wait, outbound.waiting, outbound.longest_wait) == (1, 42.0, 1, 1.0)


def test_other_queues_and_events_are_ignored_and_bad_numbers_fall_back() -> None:
    b = board()
    b.handle(event("QueueCallerJoin", Queue="sales", Uniqueid="5.1"), 0.0, DAY)
    b.handle(event("Newchannel", Uniqueid="5.2"), 0.0, DAY)
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="5.3"), 0.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="5.3"), 9.0, DAY)
    b.handle(event("AgentConnect", Queue="hotline", Uniqueid="5.3", HoldTime="n/a"), 9.0, DAY)
    hotline = b.views(10.0, DAY)[0]
    assert (hotline.offered, hotline.answered, hotline.asa) == (1, 1, 9.0)  # HoldTime unreadable: measured
    assert [v.queue for v in b.views(10.0, DAY)] == ["hotline", "outbound"]


@cache
def capture() -> tuple[Message, ...]:
    return tuple(AmiParser().feed(gzip.decompress(CAPTURE.read_bytes())))


def test_the_real_capture_adds_up() -> None:
    """Asterisk 22, 191 queue joins: every caller answered (159 AgentConnect) or abandoned (32), none left
    waiting; the answered waited what AgentConnect's HoldTime says."""
    b = board()
    holds = []
    for i, msg in enumerate(capture()):
        b.handle(msg, i * 0.001, DAY)  # the capture has no timestamps: 1 ms per event
        if msg.name == "AgentConnect":
            holds.append(float(msg.fields["HoldTime"]))
    views = {v.queue: v for v in b.views(1e9, DAY)}
    total = {k: sum(getattr(v, k) for v in views.values())
             for k in ("offered", "answered", "abandoned", "unanswered", "waiting", "completed")}
    assert total == {"offered": 191, "answered": 159, "abandoned": 32, "unanswered": 0, "waiting": 0,
                     "completed": 159}
    assert sum(v.asa * v.answered for v in views.values() if v.asa is not None) == pytest.approx(sum(holds))


def test_each_stay_ends_once_and_is_handed_to_the_call_record() -> None:
    """stay_of says how a caller's stay ended (answered, abandoned, unanswered) and forgets it."""
    b = board()
    for uid in ("4.1", "4.2", "4.3", "4.4"):
        b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid=uid), 0.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="4.1"), 9.0, DAY)
    b.handle(event("AgentConnect", Queue="hotline", Uniqueid="4.1", HoldTime=9), 9.1, DAY)
    b.handle(event("QueueCallerAbandon", Queue="hotline", Uniqueid="4.2", HoldTime=14), 14.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="4.2"), 14.0, DAY)
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="4.3"), 60.0, DAY)  # timeout, then a menu
    b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid="4.4"), 60.0, DAY)  # timeout, hangs up at once
    assert b.stay_of("4.4", 61.0) == QueueStay("hotline", "unanswered", 60.0)  # within the grace: settled now
    assert b.views(61.0, DAY)[0].unanswered == 1
    assert b.views(70.0, DAY)[0].unanswered == 2  # 4.3 once the grace is over
    assert b.stay_of("4.1", 200.0) == QueueStay("hotline", "answered", 9.0)
    assert b.stay_of("4.2", 200.0) == QueueStay("hotline", "abandoned", 14.0)
    assert b.stay_of("4.3", 200.0) == QueueStay("hotline", "unanswered", 60.0)
    assert [b.stay_of(uid, 200.0) for uid in ("4.1", "4.4", "9.9")] == [None, None, None]
    v = b.views(200.0, DAY)[0]
    assert (v.offered, v.answered, v.abandoned, v.unanswered) == (4, 1, 1, 2)


def test_history_from_the_call_records_adds_to_the_day() -> None:
    """add_history counts stays that ended before the board started, on the same day only."""
    b = board()
    b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid="5.1"), 0.0, DAY)
    b.add_history(DAY, [QueueStay("hotline", "answered", 10.0, 100.0), QueueStay("hotline", "answered", 30.0),
                        QueueStay("hotline", "abandoned", 50.0), QueueStay("hotline", "unanswered", 300.0),
                        QueueStay("sales", "answered", 1.0), QueueStay("hotline", "lost", 1.0)])
    v = b.views(1.0, DAY)[0]
    assert (v.offered, v.answered, v.answered_within_target, v.abandoned, v.unanswered, v.waiting) == (
        5, 2, 1, 1, 1, 1)
    assert (v.asa, v.completed, v.average_talk, v.service_level) == (20.0, 1, 100.0, 0.25)
    b.add_history(date(2026, 12, 4), [QueueStay("hotline", "answered", 1.0)])  # yesterday: not today's
    assert b.views(1.0, DAY)[0].offered == 5


def test_the_board_keeps_a_bounded_number_of_ended_stays() -> None:
    """Stays nobody asks for (calls without a record) do not pile up."""
    b = board()
    for i in range(STAYS_KEPT + 10):
        uid = f"6.{i}"
        b.handle(event("QueueCallerJoin", Queue="outbound", Uniqueid=uid), float(i), DAY)
        b.handle(event("QueueCallerAbandon", Queue="outbound", Uniqueid=uid, HoldTime=1), float(i), DAY)
        b.handle(event("QueueCallerLeave", Queue="outbound", Uniqueid=uid), float(i), DAY)
    assert b.stay_of("6.0", 1e6) is None
    assert b.stay_of(f"6.{STAYS_KEPT + 9}", 1e6) == QueueStay("outbound", "abandoned", 1.0)


def test_a_caller_the_queue_let_go_who_is_still_on_the_line_is_unanswered_not_abandoned() -> None:
    """app_queue sends QueueCallerAbandon when its timeout passes (or an empty queue lets the
    caller go), as when a caller hangs up; the engine, seeing the dialplan go on with the
    caller, moves the stay to unanswered, once. A real abandon stays abandoned."""
    b = board()
    for uniqueid, at in (("2.1", 100.0), ("2.2", 101.0)):
        b.handle(event("QueueCallerJoin", Queue="hotline", Uniqueid=uniqueid), at, DAY)
    for uniqueid in ("2.1", "2.2"):
        b.handle(event("QueueCallerAbandon", Queue="hotline", Uniqueid=uniqueid, HoldTime=12), 113.0, DAY)
        b.handle(event("QueueCallerLeave", Queue="hotline", Uniqueid=uniqueid), 113.0, DAY)
    assert (b.views(114.0, DAY)[0].abandoned, b.views(114.0, DAY)[0].unanswered) == (2, 0)
    b.left_unanswered("2.1")
    b.left_unanswered("2.1")
    b.left_unanswered("9.9")  # no such stay
    hotline = b.views(114.0, DAY)[0]
    assert (hotline.abandoned, hotline.unanswered, hotline.offered) == (1, 1, 2)
    assert b.stay_of("2.1", 120.0) == QueueStay("hotline", "unanswered", 12.0)
    assert b.stay_of("2.2", 120.0) == QueueStay("hotline", "abandoned", 12.0)
