"""Agent service: log agents in and out of their queues and pause them, over AMI.

This module owns the call-center rules for agent sessions and nothing about the wire:
which queues an agent joins (``agents.yaml``: queue -> penalty), with which member
interface, and how pause reasons reach Asterisk. The AMI actions themselves are built
by :mod:`callcenter.ami.actions` and sent with the client's ``send``; what the agent
then *is* (ready, paused, ...) is learnt from the events, by
:class:`callcenter.state.agents.AgentBoard`, never assumed from a successful action.

Member interfaces
    Production agents are ``PJSIP/agent<ID>`` (their softphone's endpoint), with the
    same state interface. The lab plays agents with Local channels:
    :data:`LAB_INTERFACES` gives ``Local/<ID>@lab-agents/n`` with state interface
    ``Custom:agent<ID>`` (``dialplans/lab/lab.conf``).

Every method returns a Deferred firing with the :class:`~callcenter.ami.client.AmiResult`
list of the actions sent; an unknown agent id fails at once with
:class:`UnknownAgentError` naming the agent, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred, FirstError, fail, gatherResults
from twisted.python.failure import Failure

from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.client import AmiActionFailed, AmiResult
from callcenter.privacy import mask_number
from callcenter.recording_pause import (
    RecordingPauseRefused,
    mute_actions,
    recording_channels,
)
from callcenter.settings import AgentSettings, Settings
from callcenter.state.agents import CANNOT_CALL_OUT, AgentBoard, AgentState
from callcenter.state.calls import Channel
from callcenter.storage.records import (
    MAX_PAUSE_REASON,
    InvalidFieldError,
    canonical_phone,
)
from callcenter.transfer import (
    TransferRefused,
    check_consult_end,
    check_consult_outside,
    check_transfer,
    check_transfer_to_agent,
    consult_actions,
    consult_outside_actions,
    threeway_actions,
    transfer_action,
    transfer_to_agent_actions,
)
from callcenter.twisted_typing import Clock

__all__ = [
    "LAB_INTERFACES",
    "PJSIP_INTERFACES",
    "AgentError",
    "AgentService",
    "MemberInterfaces",
    "UnknownAgentError",
]


class AgentError(ValueError):
    """A request about an agent that cannot be carried out (nothing was sent)."""


class UnknownAgentError(AgentError, KeyError):
    """The agent id is not in ``agents.yaml``."""

    def __init__(self, agent_id: str, known: Iterable[str]) -> None:
        self.agent_id = agent_id
        sample = ", ".join(sorted(known)[:5])
        super().__init__(f"unknown agent {agent_id!r} (not in agents.yaml; known agents include {sample or 'none'})")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class MemberInterfaces:
    """How an agent id becomes a queue member: its interface and its state interface."""

    interface: Callable[[str], str]
    state_interface: Callable[[str], str]


PJSIP_INTERFACES = MemberInterfaces(lambda a: f"PJSIP/agent{a}", lambda a: f"PJSIP/agent{a}")
"""Production: the agent's softphone endpoint ``PJSIP/agent<ID>``."""

LAB_INTERFACES = MemberInterfaces(lambda a: f"Local/{a}@lab-agents/n", lambda a: f"Custom:agent{a}")
"""Lab: the ``[lab-agents]`` Local channel, its device state set by the dialplan."""


AGENT_ANSWER_SECONDS = 30
"""How long the agent's own phone rings for a call they asked for (click-to-call)."""


class _Ami(Protocol):
    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[AmiResult]: ...


class AgentService:
    """Login/logout/pause of agents over AMI (see the module docstring).

    ``board`` is the engine's :class:`AgentBoard` (read by :meth:`queues_of` to log an
    agent out of the queues it is really in); ``clock`` is kept for callers that time
    requests (it is not used to decide states).
    """

    def __init__(
        self,
        settings: Settings,
        ami: _Ami,
        board: AgentBoard,
        clock: Clock,
        *,
        interfaces: MemberInterfaces = PJSIP_INTERFACES,
        channels: Callable[[], Iterable[Channel]] = tuple,
    ) -> None:
        self.settings = settings
        self.ami = ami
        self.board = board
        self.clock = clock
        self.interfaces = interfaces
        self.channels = channels
        """The live channels (the engine's call state): where an agent's call is."""

    def agent(self, agent_id: str) -> AgentSettings:
        """The agent's settings; :class:`UnknownAgentError` when not configured."""
        try:
            return self.settings.agent(agent_id)
        except KeyError:
            raise UnknownAgentError(agent_id, (a.id for a in self.settings.agents)) from None

    def interface(self, agent_id: str) -> str:
        """The queue member interface of ``agent_id``."""
        return self.interfaces.interface(agent_id)

    def queues_of(self, agent_id: str) -> tuple[str, ...]:
        """The queues to leave at logout: configured ones plus any the board saw joined."""
        configured = tuple(self.agent(agent_id).queues)
        seen = self.board.agent(agent_id)
        extra = tuple(q for q in (seen.queues if seen is not None else ()) if q not in configured)
        return configured + extra

    def login(self, agent_id: str, queues: Iterable[str] | None = None) -> Deferred[list[AmiResult]]:
        """``QueueAdd`` the agent to its configured queues (or the given subset of them).

        Penalties come from ``agents.yaml``. A queue the agent is in already ("Already
        there") is no failure: logging in twice leaves them logged in. A queue not configured for the agent fails
        with :class:`AgentError` naming the agent and the queue; nothing is sent. A
        ``per_team`` queue brings its team queue along (the agent's team's).
        """
        try:
            agent = self.agent(agent_id)
            chosen = list(agent.queues) if queues is None else list(queues)
            for queue in chosen:
                if queue not in agent.queues:
                    raise AgentError(
                        f"agent {agent_id!r} does not take calls from queue {queue!r} "
                        f"(agents.yaml queues: {', '.join(agent.queues) or 'none'})"
                    )
            if not chosen:
                raise AgentError(f"agent {agent_id!r} has no queues to log in to (agents.yaml queues: none)")
            chosen += [q for q in agent.queues if q not in chosen and self.settings.queue(q).parent in chosen]
            interface = self.interface(agent_id)
            built = [
                actions.queue_add(
                    queue,
                    interface,
                    penalty=agent.queues[queue],
                    member_name=agent.name,
                    state_interface=self.interfaces.state_interface(agent_id),
                )
                for queue in chosen
            ]
        except (AgentError, actions.AmiActionError) as error:
            return fail(error)
        return self._send_all(built, tolerate=_already_a_member)

    def logout(self, agent_id: str) -> Deferred[list[AmiResult]]:
        """``QueueRemove`` the agent from every queue it may be in. Asterisk answers "Not
        there" for a queue the agent is not in (logged in to some of their queues, or out
        already): that is no failure of a logout."""
        try:
            interface = self.interface(agent_id)
            built = [actions.queue_remove(queue, interface) for queue in self.queues_of(agent_id)]
        except (AgentError, actions.AmiActionError) as error:
            return fail(error)
        return self._send_all(built, tolerate=_not_a_member)

    def pause(self, agent_id: str, reason: str) -> Deferred[list[AmiResult]]:
        """``QueuePause`` the agent in every queue, with ``reason`` (shown to supervisors)."""
        return self._pause(agent_id, True, reason)

    def unpause(self, agent_id: str) -> Deferred[list[AmiResult]]:
        """``QueuePause`` with ``Paused: false`` in every queue."""
        return self._pause(agent_id, False, None)

    def _pause(self, agent_id: str, paused: bool, reason: str | None) -> Deferred[list[AmiResult]]:
        try:
            self.agent(agent_id)
            if paused and not (reason or "").strip():
                raise AgentError(f"agent {agent_id!r}: a pause needs a reason")
            if reason is not None and len(reason) > MAX_PAUSE_REASON:  # the agent time log keeps this many
                raise AgentError(f"agent {agent_id!r}: a pause reason is at most {MAX_PAUSE_REASON} characters, "
                                 f"got {len(reason)}")
            built = [actions.queue_pause(self.interface(agent_id), paused, reason=reason)]
        except (AgentError, actions.AmiActionError) as error:
            return fail(error)
        return self._send_all(built)

    def call(self, agent_id: str, phone: str, *, name: str | None = None,
             customer_id: int | None = None) -> Deferred[AmiResult]:
        """Call a customer for the agent (click-to-call; docs/agents.md, "Calling a customer").

        The agent's phone rings first, showing the customer's number (and name); once it is
        picked up, ``[agent-dial]`` records the call and dials ``phone`` on the
        ``manual_dial`` trunk, and the engine opens the call record and the agent's screen
        pop. ``phone`` is read as the site reads every number (:func:`canonical_phone`; an
        international ``+`` number is dialed with ``00``). Refused before anything is sent:
        an unknown agent, a number that is not one (:class:`InvalidFieldError`), an agent
        logged out, or whose phone is ringing or on a call.
        """
        try:
            self.agent(agent_id)
            number = canonical_phone(phone)
            state = self.board.state_of(agent_id)
            if state is AgentState.LOGGED_OUT:
                raise AgentError(f"agent {agent_id} is logged out: log in first")
            if state in CANNOT_CALL_OUT:
                raise AgentError(f"agent {agent_id} is on a call: call the customer once it ends")
            dial = "00" + number[1:] if number.startswith("+") else number
            label = " ".join((name or "").replace('"', " ").replace(",", " ").split()) or number
            # what the agent's phone shows: with privacy.agent_numbers masked, 138****8000
            shown = mask_number(number) if self.settings.privacy.mask_for_agents else number
            action = actions.originate(
                self.interface(agent_id), context="agent-dial", exten=dial, priority=1,
                caller_id=f'"{shown if label == number else label}" <{shown}>',
                timeout_ms=AGENT_ANSWER_SECONDS * 1000,
                variables={"CC_AGENT": agent_id, "CC_PHONE": number,
                           **({"CC_CUSTOMER_NAME": label} if name and label != number else {}),
                           **({"CC_CUSTOMER_ID": customer_id} if customer_id is not None else {})})
        except (AgentError, InvalidFieldError, actions.AmiActionError) as error:
            return fail(error)
        return self.ami.send(action)

    def transfer(self, agent_id: str, queue: str) -> Deferred[AmiResult]:
        """Hand the agent's caller on to ``queue`` (AMI ``BlindTransfer``; docs/agents.md,
        "Handing a call on"). The agent's phone hangs up and the caller waits in ``queue``;
        the call record and recording go on. Refused before anything is sent
        (:class:`UnknownAgentError`, :class:`~callcenter.transfer.TransferRefused`): an unknown
        agent or queue, an agent not talking to anyone, a queue nobody else is logged in to.
        Asterisk's refusal fails the Deferred (``AmiActionFailed``).
        """
        try:
            self.agent(agent_id)
            channel = check_transfer(self.settings, self.board.agent(agent_id), agent_id, queue,
                                     self.channels(), self.board.agents())
            action = transfer_action(channel, queue)
        except (AgentError, TransferRefused, actions.AmiActionError) as error:
            return fail(error)
        return self.ami.send(action)

    def transfer_to_agent(self, agent_id: str, target_id: str) -> Deferred[AmiResult]:
        """Hand the agent's caller to agent ``target_id``, who is ready: their phone rings with
        the call (docs/agents.md, "Handing a call on"). Unanswered, the caller waits in the
        transferring agent's first queue. Refused before anything is sent
        (:class:`~callcenter.transfer.TransferRefused`) as :meth:`transfer` is, and when the
        target is unknown, the agent themselves, or not ready."""
        try:
            me = self.agent(agent_id)
            channel, customer = check_transfer_to_agent(
                self.settings, self.board.agent(agent_id), agent_id, self.board.agent(target_id), target_id,
                self.channels())
            # as for the phone's own transfer key: else the hotline's queue (TRANSFER_DEFAULT_QUEUE)
            fallback = next(iter(me.queues), None) or self.settings.hotline_queue
            if fallback is None:
                raise TransferRefused("no queue is configured for a caller nobody answers", "to_agent")
            built = transfer_to_agent_actions(channel, customer, target_id, self.interface(target_id), fallback)
        except (AgentError, TransferRefused, actions.AmiActionError) as error:
            return fail(error)
        return self._send_in_order(built)

    def consult(self, agent_id: str, target_id: str) -> Deferred[AmiResult]:
        """Consult agent ``target_id`` (ready) before handing the call over (docs/agents.md,
        "Consult first"): the customer holds, with music, while the colleague's phone rings
        and the two agents talk (AMI ``Atxfer``). Then :meth:`complete_consult` hands the
        customer over and :meth:`cancel_consult` takes them back. Refused before anything is
        sent as :meth:`transfer_to_agent` is."""
        try:
            self.agent(agent_id)
            channel, _ = check_transfer_to_agent(
                self.settings, self.board.agent(agent_id), agent_id, self.board.agent(target_id), target_id,
                self.channels())
            built = consult_actions(channel, target_id, self.interface(target_id))
        except (AgentError, TransferRefused, actions.AmiActionError) as error:
            return fail(error)
        return self._send_in_order(built)

    def consult_number(self, agent_id: str, phone: str) -> Deferred[AmiResult]:
        """Consult an outside number (a supplier, a colleague's mobile) before handing the
        caller over to it (docs/agents.md, "Consult first"): the customer holds while
        ``phone`` is dialed on the agents' outside trunk, as for their own calls; then
        :meth:`complete_consult`, :meth:`conference_consult` or :meth:`cancel_consult`, as
        for a colleague. ``phone`` is read as every number is (:func:`canonical_phone`).
        Refused before anything is sent: an unknown agent, a number that is not one
        (:class:`InvalidFieldError`), an agent not talking to a customer or consulting already."""
        try:
            self.agent(agent_id)
            number = canonical_phone(phone)
            channel = check_consult_outside(self.board.agent(agent_id), agent_id, self.channels())
            built = consult_outside_actions(channel, number)
        except (AgentError, InvalidFieldError, TransferRefused, actions.AmiActionError) as error:
            return fail(error)
        return self._send_in_order(built)

    def complete_consult(self, agent_id: str) -> Deferred[AmiResult]:
        """Hand the held customer to the consulted colleague: the agent's channel hangs up,
        which completes Asterisk's attended transfer. Refused
        (:class:`~callcenter.transfer.ConsultRefused`) with no consult, or before the colleague
        answered."""
        try:
            self.agent(agent_id)
            consult = check_consult_end(agent_id, self.channels(), completing=True)
        except (AgentError, TransferRefused) as error:
            return fail(error)
        return self.ami.send(actions.hangup(consult.agent_channel.name))

    def conference_consult(self, agent_id: str) -> Deferred[AmiResult]:
        """The caller, the agent and the answered colleague in one call (Asterisk's
        ``atxferthreeway``); the agent hanging up then leaves the other two talking. Refused
        as :meth:`complete_consult` is."""
        try:
            self.agent(agent_id)
            consult = check_consult_end(agent_id, self.channels(), completing=True)
            built = threeway_actions(consult)
        except (AgentError, TransferRefused, actions.AmiActionError) as error:
            return fail(error)
        return self._send_in_order(built)

    def cancel_consult(self, agent_id: str) -> Deferred[AmiResult]:
        """Back to the held customer: the colleague's leg is hung up (AMI ``CancelAtxfer``)."""
        try:
            self.agent(agent_id)
            consult = check_consult_end(agent_id, self.channels(), completing=False)
        except (AgentError, TransferRefused) as error:
            return fail(error)
        return self.ami.send(actions.cancel_atxfer(consult.agent_channel.name))

    def pause_recording(self, agent_id: str) -> Deferred[list[AmiResult]]:
        """Silence the recording of the agent's call while the customer reads out a card
        number (AMI ``MixMonitorMute``, both directions, on every channel recording the call;
        docs/agents.md, "Pausing the recording"). It resumes with :meth:`resume_recording`,
        or by itself after ``recordings.pause_limit_seconds``. Refused
        (:class:`RecordingPauseRefused`) with no call or a call not recorded."""
        return self._mute(agent_id, True)

    def resume_recording(self, agent_id: str) -> Deferred[list[AmiResult]]:
        """Record the agent's call again after :meth:`pause_recording`."""
        return self._mute(agent_id, False)

    def _mute(self, agent_id: str, paused: bool) -> Deferred[list[AmiResult]]:
        try:
            self.agent(agent_id)
            built = mute_actions(recording_channels(agent_id, self.channels()), paused)
        except (AgentError, RecordingPauseRefused, actions.AmiActionError) as error:
            return fail(error)
        return self._send_all(built)

    def _send_in_order(self, built: list[AmiAction]) -> Deferred[AmiResult]:
        """Send each action once the one before succeeded; the last one's result."""
        first, *rest = built
        sent: Deferred[AmiResult] = self.ami.send(first)
        for action in rest:
            def then(_: AmiResult, action: AmiAction = action) -> Deferred[AmiResult]:
                return self.ami.send(action)

            sent = sent.addCallback(then)
        return sent

    def _send_all(self, built: list[AmiAction], tolerate: Callable[[AmiActionFailed], bool] | None = None
                  ) -> Deferred[list[AmiResult]]:
        """Send every action; fails with the first action that failed, except refusals
        ``tolerate`` accepts (they count as answered: the result keeps Asterisk's error)."""
        def tolerated(failure: Failure) -> AmiResult:
            error = failure.value
            if tolerate is not None and isinstance(error, AmiActionFailed) and tolerate(error):
                return AmiResult(error.action, error.message.get("ActionID") or "", error.message)
            failure.raiseException()

        sent = [self.ami.send(action).addErrback(tolerated) for action in built]
        gathered: Deferred[list[AmiResult]] = gatherResults(sent, consumeErrors=True)

        def first_error(failure: Failure) -> Failure:
            # Report the action that failed (AmiActionFailed, AmiNotConnected, ...).
            if isinstance(failure.value, FirstError):
                return failure.value.subFailure
            return failure

        gathered.addErrback(first_error)
        return gathered


def _not_a_member(error: AmiActionFailed) -> bool:
    """``QueueRemove``'s answer for an interface that is not a member of the queue."""
    return (error.message.get("Message") or "").endswith("Not there")


def _already_a_member(error: AmiActionFailed) -> bool:
    """``QueueAdd``'s answer for an interface that is a member of the queue already."""
    return (error.message.get("Message") or "").endswith("Already there")
