"""Prometheus metrics of the engine.

One :class:`EngineMetrics` per engine, registered in a registry the composition root
passes in (tests use their own ``CollectorRegistry``). The daemon serves it at
``/metrics`` on ``metrics.bind:metrics.port``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["EngineMetrics", "QueueCollector"]


class QueueCollector(Collector):
    """The wallboard's numbers per queue, read at each scrape (a wait grows between events).

    ``views`` returns the engine's :meth:`~callcenter.engine.Engine.queue_views` dicts.
    """

    GAUGES = (
        ("callcenter_queue_callers_waiting", "callers waiting in the queue now", "waiting"),
        ("callcenter_queue_longest_wait_seconds", "seconds the longest-waiting caller has waited", "longest_wait"),
        ("callcenter_queue_offered_today", "calls that joined the queue today (local day)", "offered"),
        ("callcenter_queue_answered_today", "calls answered today", "answered"),
        ("callcenter_queue_abandoned_today", "callers who hung up waiting today", "abandoned"),
        ("callcenter_queue_unanswered_today", "callers who left unanswered today (timeout, no agents)", "unanswered"),
        ("callcenter_queue_service_level_today",
         "answered within the queue's service_level_seconds / calls that left the queue, today", "service_level"),
        ("callcenter_queue_asa_today_seconds", "mean seconds answered callers waited today", "asa"),
    )

    def __init__(self, views: Callable[[], Sequence[dict[str, Any]]]) -> None:
        self.views = views

    def collect(self) -> Iterator[GaugeMetricFamily]:
        views = self.views()
        for name, text, key in self.GAUGES:
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for view in views:
                if view[key] is not None:
                    family.add_metric([view["queue"]], float(view[key]))
            yield family
        agents = GaugeMetricFamily("callcenter_queue_agents", "the queue's logged-in agents now, by state "
                                   "(ready, ringing, on_call, wrap_up, paused)", labels=["queue", "state"])
        for view in views:
            for state, count in view.get("agents", {}).items():
                agents.add_metric([view["queue"], state], float(count))
        yield agents


class EngineMetrics:
    """Every metric the engine exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.ami_connected = Gauge("callcenter_ami_connected", "1 while logged in to Asterisk's AMI", registry=registry)
        self.ami_connections = Counter(
            "callcenter_ami_connections", "AMI sessions established and resynchronised (the first and every reconnection)", registry=registry)
        self.ami_events = Counter("callcenter_ami_events", "AMI events received", ["event"], registry=registry)
        self.ami_frame_problems = Counter(
            "callcenter_ami_frame_problems", "AMI lines that were not headers (logged)", registry=registry)
        self.ami_resyncs = Counter(
            "callcenter_ami_resyncs", "state resynchronisations from CoreShowChannels/QueueStatus", registry=registry)
        self.calls_active = Gauge("callcenter_calls_active", "calls (linkedids) with a live channel", registry=registry)
        self.channels_active = Gauge("callcenter_channels_active", "live Asterisk channels", registry=registry)
        self.calls_started = Counter("callcenter_calls_started", "calls started", registry=registry)
        self.faxes = Counter("callcenter_faxes", "faxes received (inbound) and sent (outbound), by how they ended",
                             ["direction", "status"], registry=registry)
        self.sms_sent = Counter("callcenter_sms_sent", "text messages handed to the SMS gateway, by result",
                                ["result"], registry=registry)
        self.sms_replies = Counter("callcenter_sms_replies", "text messages received, replies and opt-outs",
                                   ["kind"], registry=registry)
        self.transfers = Counter("callcenter_transfers", "calls agents handed on (blind transfers), by the queue "
                                 "they went to ('other': not a queue) and result", ["queue", "result"],
                                 registry=registry)
        self.calls_answered = Counter("callcenter_calls_answered", "calls answered", registry=registry)
        self.calls_ended = Counter("callcenter_calls_ended", "calls ended", registry=registry)
        self.call_duration = Histogram(
            "callcenter_call_duration_seconds", "call durations, start to end", registry=registry,
            buckets=(5, 15, 30, 60, 120, 240, 480, 900, 1800, 3600))
        self.agi_sessions = Counter("callcenter_agi_sessions", "FastAGI sessions", ["script"], registry=registry)
        self.ivr_full = Counter("callcenter_ivr_full", "hotline callers who found every IVR channel taken "
                                "(ivr.channels) and were queued without the menus", registry=registry)
        self.recording_pauses = Counter(
            "callcenter_recording_pauses", "recording channels muted by an agent's pause (card numbers)",
            registry=registry)
        self.recording_auto_resumes = Counter(
            "callcenter_recording_auto_resumes", "paused recordings resumed by the engine after "
            "recordings.pause_limit_seconds (the agent did not resume them)", registry=registry)
        self.queue_messages = Counter(
            "callcenter_queue_messages", "hotline callers who left a queue unanswered and were asked for a "
            "message and a call back, by why: timeout (max_wait), key (message_key), leaveempty (no agent "
            "to answer), full (max_callers)", ["queue", "reason"], registry=registry)
        self.agent_dials_refused = Counter(
            "callcenter_agent_dials_refused", "numbers agents dialed on their softphones that were not called "
            "(manual_dial.do_not_call: block): do_not_call (listed), check_failed (the list could not be read)",
            ["reason"], registry=registry)
        self.http_refused = Counter("callcenter_http_refused", "HTTP requests refused by the sign-in guard: "
                                    "signin (no or wrong credentials), forbidden (not theirs to open), locked (too many wrong sign-ins)",
                                    ["reason"],
                                    registry=registry)
        self.agi_errors = Counter("callcenter_agi_errors", "FastAGI sessions that ended in an error", ["script"],
                                  registry=registry)
        self.staffing_agents_needed = Gauge(
            "callcenter_staffing_agents_needed",
            "Erlang advice: agents needed now for the queue's observed arrival rate and AHT (NaN while unknown)",
            ["queue"], registry=registry)
        self.staffing_arrival_rate = Gauge(
            "callcenter_staffing_arrivals_per_hour", "observed arrival rate of the queue (sliding window)",
            ["queue"], registry=registry)
        self.hotline_holidays_days_left = Gauge(
            "callcenter_hotline_holidays_days_left",
            "days from today (site time zone) to the last holiday the hotline IVR flow lists (below 0: all past; "
            "NaN: it lists none)", registry=registry)
        self.overflow_now = Gauge(
            "callcenter_queue_overflow_now",
            "1 while the queue's primary agents are all away (logged out, paused there, phone unreachable): "
            "its overflow agents ring at once; 0 while one is there to wait for (queues with overflow_after)",
            ["queue"], registry=registry)
        self.agent_transitions = Counter(
            "callcenter_agent_transitions", "agent state changes, by new state", ["state"], registry=registry)
        self.agent_anomalies = Counter(
            "callcenter_agent_anomalies", "agent events that made no sense in the agent's state", registry=registry)
        self.no_answer_pauses = Counter(
            "callcenter_agent_no_answer_pauses",
            "agents Asterisk paused in every queue for letting a queue call ring out (queues.yaml pause_on_no_answer)",
            ["agent"], registry=registry)
        self.db_errors = Counter("callcenter_db_errors", "repository calls that failed", ["operation"],
                                 registry=registry)
