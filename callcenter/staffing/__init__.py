"""Staffing: Erlang B/C/A formulas, interval plans from forecasts, live staffing advice.

The formulas (:mod:`callcenter.staffing.erlang`) are a pure numpy core shared by reports,
the dialer and the wallboard; :mod:`callcenter.staffing.plan` turns a forecast CSV into an
interval plan; :mod:`callcenter.staffing.live` advises on agents needed now from observed
traffic, without a clock of its own.
"""

from callcenter.staffing.erlang import (
    ErlangAMetrics,
    StaffingRequirement,
    asa,
    erlang_a_abandon,
    erlang_a_asa,
    erlang_a_metrics,
    erlang_a_occupancy,
    erlang_a_required_agents,
    erlang_a_service_level,
    erlang_a_wait,
    erlang_a_wait_exceeds,
    erlang_b,
    erlang_c,
    occupancy,
    required_agents,
    service_level,
    traffic_erlangs,
    wait_exceeds,
)

__all__ = [
    "ErlangAMetrics",
    "StaffingRequirement",
    "asa",
    "erlang_a_abandon",
    "erlang_a_asa",
    "erlang_a_metrics",
    "erlang_a_occupancy",
    "erlang_a_required_agents",
    "erlang_a_service_level",
    "erlang_a_wait",
    "erlang_a_wait_exceeds",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "required_agents",
    "service_level",
    "traffic_erlangs",
    "wait_exceeds",
]
