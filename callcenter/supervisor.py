"""Supervisor listen / whisper / barge: ChanSpy onto an agent's live call.

This module owns the business rules of call supervision and the one AMI action it
sends. A supervisor asks to ``listen`` (hear both parties, unheard), ``whisper``
(speak to the agent only) or ``barge`` (speak to both) on an agent's call; the engine
then originates a call to the supervisor's phone (``PJSIP/agent<SUPERVISOR_ID>``)
that runs ``ChanSpy`` on the agent's channel once answered.

Rules, checked before anything is sent to Asterisk:

* Permission (:func:`check_permission`): a ``lead`` supervises the agents of their
  own team, a ``manager`` every agent; an ``agent`` supervises no one, nobody spies
  on themselves. Unknown ids and refusals raise :class:`NotPermitted` naming both ids.
* The agent's live channel (:func:`find_agent_channel`) comes from the engine's
  :class:`~callcenter.state.calls.CallState`: a channel named ``PJSIP/agent<ID>-...``
  (the agent's softphone) or ``Local/<ID>@...`` (an agent played by a Local channel,
  as queue members ``Local/<ID>@lab-agents/n`` in the lab). None: :class:`AgentNotOnCall`.

The ChanSpy options (:data:`CHANSPY_OPTIONS`) are ``q`` (no beep nor channel name
announced to the supervisor), ``E`` (the supervisor's leg hangs up when the spied
channel does) and ``u`` (the argument is the spied channel's full name, looked up
exactly, not a name prefix that could match another agent's channel), plus ``w``
(whisper) or ``B`` (barge). ChanSpy needs only the ``originate`` AMI permission.

The pure parts (:func:`check_permission`, :func:`find_agent_channel`,
:func:`spy_action`) import nothing from Twisted; :class:`SupervisorService` ties them
to the AMI client and the clock it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime

from callcenter.agent_channels import agent_channel
from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import Message
from callcenter.settings import AgentSettings, Settings
from callcenter.spy_modes import CHANSPY_OPTIONS, SpyMode
from callcenter.state.calls import CallState, Channel, ChannelState

__all__ = [
    "CHANSPY_OPTIONS",
    "DEFAULT_SUPERVISOR_CHANNEL",
    "AgentNotOnCall",
    "CallEndedFirst",
    "NotPermitted",
    "SpyFailed",
    "SpyMode",
    "SpySession",
    "SupervisorError",
    "SupervisorService",
    "check_permission",
    "find_agent_channel",
    "spy_action",
]


DEFAULT_SUPERVISOR_CHANNEL: Final = "PJSIP/{endpoint}"
"""Where the supervisor is called: a template with ``{id}`` and ``{endpoint}``."""

SUPERVISOR_ROLES: Final = ("lead", "manager")

_CALLER_NAME_UNSAFE = re.compile(r'["<>\\]')


# ------------------------------------------------------------------------- errors


class SupervisorError(Exception):
    """A supervision request that cannot be carried out."""


class NotPermitted(SupervisorError):
    """The supervisor may not spy on this agent (or one of the ids is unknown)."""

    def __init__(self, supervisor_id: str, agent_id: str, why: str) -> None:
        self.supervisor_id = supervisor_id
        self.agent_id = agent_id
        self.why = why
        super().__init__(f"supervisor {supervisor_id} may not spy on agent {agent_id}: {why}")


class AgentNotOnCall(SupervisorError):
    """The agent has no live channel to spy on."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        super().__init__(
            f"agent {agent_id} is not on a call (no live channel PJSIP/agent{agent_id}-* or Local/{agent_id}@*)"
        )


class CallEndedFirst(SupervisorError):
    """The agent's call ended while the supervisor's phone rang: ChanSpy found nothing to
    join (its ``u`` option names that call's channel) and hung the supervisor up."""

    def __init__(self, supervisor_id: str, agent_id: str, channel: str) -> None:
        self.supervisor_id = supervisor_id
        self.agent_id = agent_id
        self.channel = channel
        super().__init__(f"agent {agent_id}'s call ({channel}) ended before supervisor {supervisor_id}'s phone "
                         "answered: nothing to listen to; try again on their next call")


class SpyFailed(SupervisorError):
    """The supervisor's phone was not reached (busy, no answer, unknown endpoint...)."""

    def __init__(self, supervisor_id: str, channel: str, response: Message) -> None:
        self.supervisor_id = supervisor_id
        self.channel = channel
        self.response = response
        reason = response.get("Reason") or "?"
        super().__init__(
            f"supervisor {supervisor_id}: calling {channel} failed "
            f"(OriginateResponse {response.get('Response') or '?'}, reason {reason})"
        )


# ------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SpySession:
    """A supervisor's ChanSpy call, once the supervisor's phone answered."""

    supervisor_id: str
    agent_id: str
    mode: SpyMode
    spied_channel: str
    """Name of the agent's channel given to ChanSpy."""
    spied_uniqueid: str
    linkedid: str
    """The agent's call (its ``Linkedid``)."""
    supervisor_channel: str
    """The supervisor's leg as Asterisk named it (``OriginateResponse`` ``Channel``)."""
    supervisor_uniqueid: str | None
    action_id: str | None
    started_at: float


# ------------------------------------------------------------------------- pure rules


def check_permission(
    settings: Settings, supervisor_id: str, agent_id: str
) -> tuple[AgentSettings, AgentSettings]:
    """The (supervisor, agent) settings if the supervisor may spy on the agent.

    Raises :class:`NotPermitted` (naming both ids) for an unknown id, a supervisor
    whose role is ``agent``, a lead outside the agent's team, or oneself.
    """
    try:
        supervisor = settings.agent(supervisor_id)
    except KeyError:
        raise NotPermitted(supervisor_id, agent_id, f"unknown supervisor id {supervisor_id!r}") from None
    try:
        agent = settings.agent(agent_id)
    except KeyError:
        raise NotPermitted(supervisor_id, agent_id, f"unknown agent id {agent_id!r}") from None
    if supervisor.id == agent.id:
        raise NotPermitted(supervisor_id, agent_id, "nobody supervises themselves")
    if supervisor.oversees(agent.team):
        return supervisor, agent
    if supervisor.role == "lead":
        raise NotPermitted(
            supervisor_id,
            agent_id,
            f"a lead supervises only their own team ({supervisor.team or 'none'}); "
            f"agent {agent_id} is in team {agent.team or 'none'}",
        )
    raise NotPermitted(
        supervisor_id,
        agent_id,
        f"role {supervisor.role!r} supervises no one (only {' or '.join(SUPERVISOR_ROLES)})",
    )


def find_agent_channel(channels: Iterable[Channel], agent_id: str) -> Channel:
    """The agent's channel to spy on (:func:`~callcenter.agent_channels.agent_channel`), or
    :class:`AgentNotOnCall`: also while their phone only rings (a queue's offer they may
    never answer: neither in a bridge nor answered)."""
    channel = agent_channel(channels, agent_id)
    if channel is None or (channel.bridge_id is None and channel.state is not ChannelState.UP):
        raise AgentNotOnCall(agent_id)
    return channel


def spy_action(
    supervisor: AgentSettings,
    agent: AgentSettings,
    mode: SpyMode,
    spied: Channel,
    *,
    channel: str,
    timeout_ms: int,
) -> AmiAction:
    """The ``Originate`` calling the supervisor at ``channel`` into ChanSpy on ``spied``."""
    name = _CALLER_NAME_UNSAFE.sub("", supervisor.name).strip() or f"Supervisor {supervisor.id}"
    return actions.originate(
        channel,
        application="ChanSpy",
        data=f"{spied.name},{CHANSPY_OPTIONS[mode]}",
        caller_id=f'"{name} ({mode.value} {agent.id})" <{supervisor.id}>',
        timeout_ms=timeout_ms,
        variables={
            "CC_SPY_SUPERVISOR": supervisor.id,
            "CC_SPY_AGENT": agent.id,
            "CC_SPY_MODE": mode.value,
        },
        async_=True,
    )


# ------------------------------------------------------------------------- service


class Originator(Protocol):
    """What the service needs of :class:`~callcenter.ami.client.AmiClient`."""

    def originate(
        self, action: AmiAction, *, timeout: float | None = None, action_id: str | None = None
    ) -> Deferred[Message]: ...


class SupervisorService:
    """Supervision requests -> permission check -> ChanSpy Originate.

    ``supervisor_channel`` is the template of the supervisor's phone channel
    (``{id}``, ``{endpoint}``; default ``PJSIP/{endpoint}`` i.e. ``PJSIP/agent8001``);
    a lab passes e.g. ``Local/park@lab-test``. ``ring_timeout`` is how long the
    supervisor's phone rings (seconds).
    """

    def __init__(
        self,
        settings: Settings,
        ami: Originator,
        calls: CallState,
        clock: IReactorTime,
        *,
        supervisor_channel: str = DEFAULT_SUPERVISOR_CHANNEL,
        ring_timeout: float = 30.0,
    ) -> None:
        if ring_timeout <= 0:
            raise ValueError(f"ring_timeout must be positive, not {ring_timeout}")
        self.settings = settings
        self.ami = ami
        self.calls = calls
        self.clock = clock
        self.supervisor_channel = supervisor_channel
        self.ring_timeout = ring_timeout

    def channel_for(self, supervisor: AgentSettings, override: str | None = None) -> str:
        """The channel that rings the supervisor (``override`` is a template too)."""
        template = self.supervisor_channel if override is None else override
        try:
            return template.format(id=supervisor.id, endpoint=supervisor.endpoint)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"supervisor channel template {template!r}: only {{id}} and {{endpoint}} may be used ({exc})"
            ) from None

    def prepare(
        self, supervisor_id: str, agent_id: str, mode: SpyMode | str, *, channel: str | None = None
    ) -> tuple[AmiAction, AgentSettings, AgentSettings, SpyMode, Channel]:
        """Check the request and build the Originate, without sending it.

        Raises ValueError (bad mode), :class:`NotPermitted` or :class:`AgentNotOnCall`.
        """
        spy_mode = SpyMode.parse(mode)
        supervisor, agent = check_permission(self.settings, supervisor_id, agent_id)
        spied = find_agent_channel(self.calls.channels.values(), agent.id)
        action = spy_action(
            supervisor,
            agent,
            spy_mode,
            spied,
            channel=self.channel_for(supervisor, channel),
            timeout_ms=int(self.ring_timeout * 1000),
        )
        return action, supervisor, agent, spy_mode, spied

    def spy(
        self, supervisor_id: str, agent_id: str, mode: SpyMode | str, *, channel: str | None = None
    ) -> Deferred[SpySession]:
        """Call the supervisor into ChanSpy on the agent's live channel.

        The Deferred fires with a :class:`SpySession` once the supervisor's phone
        answered (the ``OriginateResponse`` said ``Success``), and fails with
        :class:`NotPermitted` / :class:`AgentNotOnCall` / ValueError before any AMI
        action is sent, with :class:`SpyFailed` when the phone was not reached, with
        :class:`CallEndedFirst` when the agent's call ended while it rang, or with
        the AMI client's errors (not connected, refused, timed out).
        """
        try:
            action, supervisor, agent, spy_mode, spied = self.prepare(
                supervisor_id, agent_id, mode, channel=channel
            )
        except (SupervisorError, ValueError) as exc:
            return fail(exc)
        target = action.get("Channel") or ""

        def answered(response: Message) -> SpySession:
            if (response.get("Response") or "") != "Success":
                raise SpyFailed(supervisor.id, target, response)
            if spied.uniqueid not in self.calls.channel_ids:  # the phone rang up to ring_timeout
                raise CallEndedFirst(supervisor.id, agent.id, spied.name)
            return SpySession(
                supervisor_id=supervisor.id,
                agent_id=agent.id,
                mode=spy_mode,
                spied_channel=spied.name,
                spied_uniqueid=spied.uniqueid,
                linkedid=spied.linkedid,
                supervisor_channel=response.get("Channel") or target,
                supervisor_uniqueid=_uniqueid(response.get("Uniqueid")),
                action_id=response.get("ActionID"),
                started_at=self.clock.seconds(),
            )

        return self.ami.originate(action).addCallback(answered)


def _uniqueid(value: str | None) -> str | None:
    return None if value in (None, "", "<null>") else value
