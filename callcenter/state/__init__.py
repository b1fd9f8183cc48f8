"""Sans-IO state models fed by AMI messages (no I/O, no Twisted, no clock).

:mod:`callcenter.state.calls` keeps channels, bridges and calls and emits call facts.
"""

from callcenter.state.calls import (
    DEFAULT_VARIABLES,
    TRANSITIONS,
    Bridge,
    Call,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallStarted,
    CallState,
    Channel,
    ChannelHungUp,
    ChannelState,
    Fact,
    OriginateResult,
    StateAnomaly,
    Transition,
)

__all__ = [
    "DEFAULT_VARIABLES",
    "TRANSITIONS",
    "Bridge",
    "Call",
    "CallAnswered",
    "CallBridged",
    "CallEnded",
    "CallStarted",
    "CallState",
    "Channel",
    "ChannelHungUp",
    "ChannelState",
    "Fact",
    "OriginateResult",
    "StateAnomaly",
    "Transition",
]
