"""Pausing a call's recording while the customer reads out a card number (docs/agents.md,
"Pausing the recording").

Pure: which channels record the agent's call, the AMI actions that mute and unmute them,
and what Asterisk says about them. A call is recorded by ``MixMonitor`` on the channel that
set ``CC_RECORDING`` (the hotline caller's, the agent's own call's agent channel, a dialer
customer's; after a transfer of an agent's own call, the customer's too). ``MixMonitorMute``
with ``Direction: both`` writes silence in place of both parties' audio, so the file keeps
the call's timeline (a reviewer hears where the pause was, and for how long); Asterisk
answers each change with a ``MixMonitorMute`` event, which is what :class:`RecordingPauses`
believes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from callcenter.agent_channels import agent_channel
from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import Message
from callcenter.state.calls import Channel

__all__ = ["Paused", "RecordingPauseRefused", "RecordingPauses", "mute_actions", "pause_offsets",
           "recording_channels"]

RECORDING_VARIABLE = "CC_RECORDING"


class RecordingPauseRefused(Exception):
    """The agent has no recorded call to pause or resume (``field``: the offending input)."""

    def __init__(self, message: str, field: str = "agent") -> None:
        super().__init__(message)
        self.field = field


def recording_channels(agent_id: str, channels: Iterable[Channel]) -> list[Channel]:
    """The channels recording the call the agent is talking on (each has ``CC_RECORDING``
    and the call's linkedid), or :class:`RecordingPauseRefused`: no call, or not recorded."""
    channels = list(channels)
    mine = agent_channel(channels, agent_id)
    if mine is None or mine.bridge_id is None:
        raise RecordingPauseRefused(f"agent {agent_id} is not talking to anyone: no recording to pause")
    recording = [c for c in channels if c.linkedid == mine.linkedid and c.variables.get(RECORDING_VARIABLE)]
    if not recording:
        raise RecordingPauseRefused(f"agent {agent_id}'s call is not recorded")
    return recording


def mute_actions(channels: Iterable[Channel], paused: bool) -> list[AmiAction]:
    """``MixMonitorMute`` (both directions) of each recording channel: silence from now on
    (``paused``), or the call's audio again."""
    return [actions.mix_monitor_mute(c.name, muted=paused) for c in channels]


@dataclass(frozen=True, slots=True)
class Paused:
    """A recording channel Asterisk reports muted: since when (the engine's clock), and the
    file it records (``CC_RECORDING``; None when unknown)."""

    uniqueid: str
    channel: str
    linkedid: str
    since: float
    path: str | None = None


class RecordingPauses:
    """The recording channels Asterisk reports muted (``MixMonitorMute`` events), until
    unmuted or hung up; and each recording file's pauses, until the file is filed."""

    def __init__(self) -> None:
        self._paused: dict[str, Paused] = {}
        self._spans: dict[str, list[tuple[float, float | None]]] = {}

    def handle(self, msg: Message, now: float,
               path_of: Callable[[str], str | None] = lambda uniqueid: None) -> Paused | str | None:
        """Take one event: a :class:`Paused` when a channel's recording was muted (``path_of``
        its uniqueid: the file that channel records), its uniqueid when one was unmuted (or
        hung up muted); None otherwise."""
        fields = msg.fields
        uniqueid = fields.get("Uniqueid") or ""
        if msg.name == "MixMonitorMute" and uniqueid:
            if fields.get("State") == "1":
                if uniqueid in self._paused:
                    return None
                path = path_of(uniqueid)
                paused = Paused(uniqueid, fields.get("Channel") or "", fields.get("Linkedid") or "", now, path)
                self._paused[uniqueid] = paused
                if path:
                    self._spans.setdefault(path, []).append((now, None))
                return paused
            return uniqueid if self._ended(uniqueid, now) else None
        if msg.name == "Hangup" and self._ended(uniqueid, now):
            return uniqueid
        return None

    def _ended(self, uniqueid: str, now: float) -> bool:
        paused = self._paused.pop(uniqueid, None)
        if paused is None:
            return False
        spans = self._spans.get(paused.path or "")
        if spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], now)
        return True

    def of_call(self, linkedid: str) -> Paused | None:
        """The call's recording pause in progress (the earliest muted channel), or None."""
        found = [p for p in self._paused.values() if p.linkedid == linkedid]
        return min(found, key=lambda p: p.since) if found else None

    def get(self, uniqueid: str) -> Paused | None:
        return self._paused.get(uniqueid)

    def take_spans(self, path: str) -> list[tuple[float, float | None]]:
        """The file's pauses as (start, end) clock readings (end None: still paused when the
        file closed, or unknown after a reconnection), forgotten here."""
        return self._spans.pop(path, [])

    def clear(self) -> None:
        """After an AMI reconnection: Asterisk's mutes are unknown until reported again (a
        file's pauses so far are kept; one still open runs to the file's end)."""
        self._paused.clear()


def pause_offsets(spans: list[tuple[float, float | None]], start: float, duration: float
                  ) -> tuple[tuple[float, float], ...]:
    """Pauses (clock readings; end None: paused to the end) as (start, end) seconds into a
    file that began at ``start`` and lasts ``duration`` (0: unknown), to a tenth of a second."""
    offsets: list[tuple[float, float]] = []
    for begin, end in spans:
        first = max(0.0, round(begin - start, 1))
        last = round((end if end is not None else start + duration) - start, 1)
        if duration > 0:
            last = min(last, round(duration, 1))
        if offsets:
            first = max(first, offsets[-1][1])
        if last >= first:
            offsets.append((first, last))
    return tuple(offsets)
