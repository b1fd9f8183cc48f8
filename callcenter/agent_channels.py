"""Which live channel is an agent's: the softphone's or the lab's Local-channel agent's.

An agent's channels are named ``PJSIP/agent<ID>-...`` (their softphone's endpoint) or
``Local/<ID>@...`` (an agent played by a Local channel, as queue members
``Local/<ID>@lab-agents/n`` in the lab). Supervision (ChanSpy) and transfers
(BlindTransfer) both act on the one facing the call. Pure: no Twisted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from callcenter.state.calls import Channel, ChannelState

__all__ = ["agent_channel", "agent_channel_prefixes", "agent_of_channel"]

_CHANNEL_AGENT: Final = re.compile(r"^(?:PJSIP/agent(?P<sip>[0-9]+)-|Local/(?P<local>[0-9]+)@)")


def agent_channel_prefixes(agent_id: str) -> tuple[str, str]:
    """Channel name prefixes of an agent: the softphone and the Local-channel agent."""
    return (f"PJSIP/agent{agent_id}-", f"Local/{agent_id}@")


def agent_of_channel(name: str) -> str | None:
    """``PJSIP/agent2101-0000002a`` or ``Local/2101@lab-agents-00000003;1`` -> ``2101``."""
    match = _CHANNEL_AGENT.match(name)
    if match is None:
        return None
    return match.group("sip") or match.group("local")


def agent_channel(channels: Iterable[Channel], agent_id: str) -> Channel | None:
    """The agent's channel facing their call, or None when the agent has no channel up.

    Among the channels named like the agent's (:func:`agent_channel_prefixes`), the one
    facing the call wins: in a bridge first, then answered, then (for a Local agent) the
    ``;1`` half, which is the half in the caller's bridge and whose written audio the agent
    hears; the newest channel breaks ties.
    """
    prefixes = agent_channel_prefixes(agent_id)
    candidates = [ch for ch in channels if ch.name.startswith(prefixes)]
    if not candidates:
        return None

    def rank(ch: Channel) -> tuple[bool, bool, bool, float]:
        return (
            ch.bridge_id is not None,
            ch.state is ChannelState.UP,
            not ch.name.endswith(";2"),
            ch.created_at,
        )

    return max(candidates, key=rank)
