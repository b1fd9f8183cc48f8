"""Transfers of an agent's call to a queue or to one agent, blind or after a consult (docs/agents.md).

An agent talking to a customer hands the customer on to another queue (billing, a team,
the team leads' escalation queue) or to a colleague who is ready: from their page,
``POST /api/agents/<id>/transfer {"queue": NAME}`` or ``{"to_agent": ID}``, or
``callcenter agent transfer``. The engine sends AMI ``BlindTransfer`` on the agent's channel
with Context :data:`TRANSFER_CONTEXT` and Exten ``queue-<NAME>`` (:func:`transfer_exten`) or
``desk-<ID>`` (:func:`transfer_agent_exten`, after :func:`transfer_to_agent_actions` set the
colleague's phone and a fallback queue on the customer's channel); Asterisk moves the customer
(every channel bridged to the agent's) there and hangs the agent's channel up. ``dialplans/transfer.conf``
queues the customer in NAME, keeps the recording going (MixMonitor runs on the customer's
channel) and, for a hotline caller, still runs the CSAT survey after the last agent.

Whoever started it (the engine, or the agent's own softphone with a SIP REFER), Asterisk
reports every blind transfer in a ``BlindTransfer`` event; :func:`parse_blind_transfer`
reads it into a :class:`Transfer`, and the call record keeps one hop per transfer
(:func:`hop`: ``"1001>billing@125"``, who handed the call on, to where, and how many
seconds into the call, which is where it is in the recording).

An agent may also consult the colleague first (docs/agents.md, "Consult first"): AMI
``Atxfer`` holds the customer while the colleague's phone rings (:func:`consult_actions`);
the consult in progress is read from the channels (:func:`consult_leg`), and Asterisk's
``AttendedTransfer`` event, when the agent hands the customer over, reads into the same
:class:`Transfer` (:func:`parse_attended_transfer`).

The rules checked before anything is sent (:func:`check_transfer`,
:func:`check_transfer_to_agent`, :func:`check_consult_end`) and the actions are pure:
nothing here imports Twisted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from callcenter.agent_channels import agent_channel, agent_of_channel
from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import Message
from callcenter.settings import Settings
from callcenter.state.agents import Agent, AgentState
from callcenter.state.calls import Channel, ChannelState
from callcenter.storage.records import TRANSFER_HOP_RE, is_digits

__all__ = [
    "AGENT_TARGET_PREFIX",
    "ATXFER_ABORT",
    "ATXFER_CODE",
    "ATXFER_THREEWAY",
    "CONSULT_PHONE",
    "OUTSIDE_EXTEN_PREFIX",
    "OUTSIDE_TARGET_PREFIX",
    "REFER_CONTEXT",
    "TO_AGENT_PHONE",
    "TRANSFER_CONTEXT",
    "TRANSFER_FALLBACK",
    "Consult",
    "ConsultRefused",
    "Transfer",
    "TransferRefused",
    "UnknownQueue",
    "UnknownTarget",
    "check_consult_end",
    "check_consult_outside",
    "check_transfer",
    "check_transfer_to_agent",
    "consult_actions",
    "consult_leg",
    "consult_outside_actions",
    "hop",
    "is_agent_transfer_exten",
    "outside_number",
    "parse_attended_transfer",
    "parse_blind_transfer",
    "parse_hop",
    "threeway_actions",
    "transfer_action",
    "transfer_agent_exten",
    "transfer_exten",
    "transfer_to_agent_actions",
]

TRANSFER_CONTEXT: Final = "cc-transfer"
"""The dialplan context of ``dialplans/transfer.conf``."""
REFER_CONTEXT: Final = "cc-transfer-refer"
"""The agents' transfer context, one extension per agent id (rendered): where a blind
transfer from an agent's own phone (SIP REFER) lands (the PJSIP endpoints'
``TRANSFER_CONTEXT``), and where a consult's leg starts (the engine's ``Atxfer``, or ``*2``
and an id on the phone). It is also the context of that leg's Local channel, which is how
:func:`consult_leg` knows a consult."""

CONSULT_PHONE: Final = "CC_CONSULT_PHONE"
"""Channel variable ``CC_CONSULT_PHONE_<ID>``, set (inherited once: ``_CC_CONSULT_PHONE_<ID>``)
on the agent's channel before a consult of colleague ``<ID>``: their phone (the queue member
interface), which the consult leg dials. Unset (the phone's own ``*2``): ``PJSIP/agent<ID>``.
Named by the colleague, so that one left from an earlier consult on the same call never
rings another colleague than the one asked for."""
ATXFER_CODE: Final = "*2"
"""features.conf's ``atxfer``: the DTMF Asterisk's ``Atxfer`` action queues on the channel."""
ATXFER_ABORT: Final = "*1"
"""features.conf's ``atxferabort``: what ``CancelAtxfer`` queues."""
ATXFER_THREEWAY: Final = "*3"
"""features.conf's ``atxferthreeway``: pressed (emulated: AMI ``PlayDTMF`` with ``Receive``)
during a consult, it joins the caller, the agent and the colleague in one call."""

OUTSIDE_EXTEN_PREFIX: Final = "000"
"""A consult of an outside number: the ``Atxfer`` extension ``000<number>`` in
:data:`REFER_CONTEXT`, whose leg dials the number on the agents' outside trunk (as an
agent's own call does; ``ask-000<number>`` in ``dialplans/transfer.conf``). Digits only:
``Atxfer`` sends its extension as DTMF. No agent id and no dialable number starts with
``000`` (international numbers start ``00`` and a country code, never 0)."""
OUTSIDE_TARGET_PREFIX: Final = "outside:"
"""A hop's target when the caller was handed to an outside number: ``outside:02012345678``."""

_EXTEN_PREFIX: Final = "queue-"
_AGENT_EXTEN_PREFIX: Final = "desk-"  # not "agent-": n is a pattern character in the dialplan
AGENT_TARGET_PREFIX: Final = "agent:"
"""A hop's target when the call went to one agent: ``agent:2105``."""
TO_AGENT_PHONE: Final = "CC_TO_AGENT_PHONE"
"""Channel variable, set on the customer's channel before a transfer to an agent: the
agent's phone (the queue member interface, ``PJSIP/agent2105``), dialed by cc-transfer."""
TRANSFER_FALLBACK: Final = "CC_TRANSFER_FALLBACK"
"""Channel variable, set likewise: the queue the customer waits in if that agent does not
answer (the transferring agent's first queue)."""


class TransferRefused(ValueError):
    """A transfer that cannot be made; nothing was sent to Asterisk.

    ``field`` names what is wrong: ``queue`` (no such queue) or ``agent`` (the agent's
    call, or the queue's agents, do not allow it now).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownTarget(TransferRefused):
    """The queue or agent to transfer to is not configured."""


class UnknownQueue(UnknownTarget):
    """The queue to transfer to is not configured."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "queue")


def transfer_exten(queue: str) -> str:
    """The extension of :data:`TRANSFER_CONTEXT` that queues a transferred call in ``queue``."""
    return _EXTEN_PREFIX + queue


def transfer_agent_exten(agent_id: str) -> str:
    """The extension of :data:`TRANSFER_CONTEXT` that rings one agent's phone."""
    return _AGENT_EXTEN_PREFIX + agent_id


def is_agent_transfer_exten(context: str, exten: str) -> bool:
    """Is ``exten`` in ``context`` the extension that rings one agent with a handed-on call?"""
    return context == TRANSFER_CONTEXT and exten.startswith(_AGENT_EXTEN_PREFIX)


def _talking_channel(agent: Agent | None, agent_id: str, channels: Iterable[Channel]) -> Channel:
    """The agent's channel in the customer's bridge, or :class:`TransferRefused`."""
    if agent is None or agent.state is AgentState.LOGGED_OUT:
        raise TransferRefused(f"agent {agent_id} is logged out: there is no call to transfer", "agent")
    channels = list(channels)
    channel = agent_channel(channels, agent_id)
    if channel is None:
        raise TransferRefused(f"agent {agent_id} is not on a call: there is no call to transfer", "agent")
    if channel.bridge_id is None:
        raise TransferRefused(f"agent {agent_id}'s call is not connected yet: transfer it once you talk",
                              "agent")
    consult = _consult_of(channel, channels)
    if consult is not None:
        raise TransferRefused(f"agent {agent_id} is consulting {consult.who}: complete or cancel that first", "agent")
    return channel


def check_transfer_to_agent(settings: Settings, agent: Agent | None, agent_id: str, target: Agent | None,
                            target_id: str, channels: Iterable[Channel]) -> tuple[Channel, Channel]:
    """(the agent's channel, the customer's) for handing the call to agent ``target_id``, or
    :class:`TransferRefused`: an unknown agent, the agent themselves, one not ready (logged
    out, paused, ringing, on a call, in wrap-up), or a call whose other party is not one
    channel."""
    channels = list(channels)
    if target_id not in settings.people:
        raise UnknownTarget(f"no agent {target_id!r} to transfer to (not in agents.yaml)", "to_agent")
    if target_id == agent_id:
        raise TransferRefused("an agent cannot hand a call to themselves", "to_agent")
    channel = _talking_channel(agent, agent_id, channels)
    if target is None or target.state is not AgentState.READY:
        state = "logged out" if target is None else target.state.value.replace("_", " ")
        raise TransferRefused(f"agent {target_id} is not ready ({state}): hand the call to a queue instead",
                              "to_agent")
    others = [c for c in channels if c.bridge_id == channel.bridge_id and c.uniqueid != channel.uniqueid]
    if len(others) != 1:
        raise TransferRefused(f"agent {agent_id}'s call has {len(others)} other parties: only a two-party call "
                              "is handed to an agent", "agent")
    return channel, others[0]


def transfer_to_agent_actions(channel: Channel, customer: Channel, target_id: str, target_phone: str,
                              fallback_queue: str) -> list[AmiAction]:
    """``Setvar`` the agent's phone and the fallback queue on the customer's channel, then
    ``BlindTransfer`` it to ring that agent (send them in order)."""
    return [actions.setvar(TO_AGENT_PHONE, target_phone, channel=customer.name),
            actions.setvar(TRANSFER_FALLBACK, fallback_queue, channel=customer.name),
            actions.blind_transfer(channel.name, TRANSFER_CONTEXT, transfer_agent_exten(target_id))]


def check_transfer(settings: Settings, agent: Agent | None, agent_id: str, queue: str,
                   channels: Iterable[Channel], agents: Iterable[Agent]) -> Channel:
    """The agent's channel to transfer from, or :class:`TransferRefused` saying why not.

    ``agent`` is the agent's board entry (None: never seen logged in). Refused: a queue
    that is not configured, an agent who is not talking to anyone (ringing, or no call),
    and a queue nobody is logged in to but the agent themselves (the caller would wait in an
    empty queue: hand the call to a queue someone answers).
    """
    try:
        settings.queue(queue)
    except KeyError:
        names = ", ".join(q.name for q in settings.queues)
        raise UnknownQueue(f"no queue {queue!r} to transfer to (queues: {names})") from None
    channel = _talking_channel(agent, agent_id, channels)
    staffed = [a.id for a in agents
               if a.id != agent_id and queue in a.queues and a.state is not AgentState.LOGGED_OUT]
    if not staffed:
        raise TransferRefused(f"nobody else is logged in to queue {queue!r}: the caller would wait for no one",
                              "queue")
    return channel


def transfer_action(channel: Channel, queue: str) -> AmiAction:
    """``BlindTransfer`` of whoever talks to ``channel`` (the agent's) into ``queue``."""
    return actions.blind_transfer(channel.name, TRANSFER_CONTEXT, transfer_exten(queue))


@dataclass(frozen=True, slots=True)
class Transfer:
    """One blind transfer, as Asterisk's ``BlindTransfer`` event reports it."""

    ok: bool
    """``Result: Success``."""
    result: str
    agent_id: str | None
    """The agent whose channel transferred (None: not an agent's channel)."""
    linkedid: str
    """The transferred call: the customer's ``Linkedid``."""
    transferee_uniqueid: str | None
    target: str
    """The queue for a transfer into :data:`TRANSFER_CONTEXT` (``agent:<ID>`` for one agent),
    else ``exten@context``."""
    transferee_channel: str | None = None
    """The customer's channel (after an attended transfer its recording may have to start)."""


def parse_blind_transfer(msg: Message, agents: Collection[str] = ()) -> Transfer | None:
    """The :class:`Transfer` of a ``BlindTransfer`` event; None for another event or one
    that names no call. ``agents``: the configured ids, which a phone's own transfer
    (:data:`REFER_CONTEXT`) may name."""
    if msg.name != "BlindTransfer":
        return None
    fields = msg.fields
    linkedid = fields.get("TransfereeLinkedid") or fields.get("TransfererLinkedid")
    if not linkedid:
        return None
    context, exten = fields.get("Context") or "", fields.get("Extension") or ""
    if context == TRANSFER_CONTEXT and exten.startswith(_EXTEN_PREFIX):
        target = exten[len(_EXTEN_PREFIX):]
    elif is_agent_transfer_exten(context, exten):
        target = AGENT_TARGET_PREFIX + exten[len(_AGENT_EXTEN_PREFIX):]
    elif context == REFER_CONTEXT and exten in agents:
        target = AGENT_TARGET_PREFIX + exten
    else:
        target = f"{exten}@{context}"
    return _transfer(fields, "TransfererChannel", linkedid, target)


def _transfer(fields: Mapping[str, str], transferer: str, linkedid: str, target: str) -> Transfer:
    """A :class:`Transfer` from an event's common headers; ``transferer`` names the header
    with the transferring channel."""
    result = fields.get("Result") or ""
    return Transfer(
        ok=result == "Success",
        result=result,
        agent_id=agent_of_channel(fields.get(transferer) or ""),
        linkedid=linkedid,
        transferee_uniqueid=fields.get("TransfereeUniqueid") or None,
        target=target,
        transferee_channel=fields.get("TransfereeChannel") or None,
    )


def hop(agent_id: str | None, target: str, offset_seconds: float) -> str:
    """The call record's entry for one transfer: ``"1001>billing@125"``."""
    return f"{agent_id or ''}>{target}@{max(0, int(offset_seconds))}"


def parse_hop(text: str) -> tuple[str | None, str, int]:
    """(agent id or None, target, seconds into the call) of a :func:`hop`; ValueError if not one."""
    match = TRANSFER_HOP_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a transfer hop (AGENT>TARGET@SECONDS): {text!r}")
    return match.group("agent") or None, match.group("target"), int(match.group("offset"))


# ------------------------------------------------------------ consult first (attended)


class ConsultRefused(TransferRefused):
    """Completing or cancelling a consult that is not there (or not answered yet)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "agent")


def consult_actions(channel: Channel, target_id: str, target_phone: str) -> list[AmiAction]:
    """``Setvar`` the colleague's phone on the agent's channel (inherited by the consult
    leg), then ``Atxfer`` it to the colleague's id in :data:`REFER_CONTEXT` (send them in
    order). The ``#`` ends Asterisk's digit collection at once: without it Asterisk waits
    ``transferdigittimeout`` for a longer extension."""
    return [actions.setvar(f"_{CONSULT_PHONE}_{target_id}", target_phone, channel=channel.name),
            actions.atxfer(channel.name, REFER_CONTEXT, target_id + "#")]


def outside_number(number: str) -> str:
    """``number`` (canonical: :func:`~callcenter.storage.records.canonical_phone`) as the
    outside trunk dials it: an international ``+`` number with ``00``."""
    return "00" + number[1:] if number.startswith("+") else number


def consult_outside_actions(channel: Channel, number: str) -> list[AmiAction]:
    """``Atxfer`` the agent's channel to ``000<number>`` in :data:`REFER_CONTEXT`: the
    customer holds while the number is dialed on the agents' outside trunk."""
    return [actions.atxfer(channel.name, REFER_CONTEXT, OUTSIDE_EXTEN_PREFIX + outside_number(number) + "#")]


def check_consult_outside(agent: Agent | None, agent_id: str, channels: Iterable[Channel]) -> Channel:
    """The agent's channel for consulting an outside number, or :class:`TransferRefused`:
    not talking to anyone, or consulting already."""
    return _talking_channel(agent, agent_id, channels)


@dataclass(frozen=True, slots=True)
class Consult:
    """An agent consulting a colleague (or an outside number) while their customer holds."""

    agent_channel: Channel
    leg: Channel
    """The consult leg in the agent's bridge: ``Local/<ID>@cc-transfer-refer-...;1``."""
    target_id: str
    """The colleague's id, or the outside number as dialed (the leg's extension)."""
    outside: bool = False
    """An outside number (``Local/000<number>@cc-transfer-refer``), not a colleague."""

    @property
    def answered(self) -> bool:
        """Has the colleague picked up? (The leg is up once the colleague answers.)"""
        return self.leg.state is ChannelState.UP

    @property
    def who(self) -> str:
        """``agent 2105`` or ``02012345678``, for messages."""
        return self.target_id if self.outside else f"agent {self.target_id}"


def _outside_exten(exten: str) -> str | None:
    """The number of an outside consult's extension (``000<digits>``); None for another."""
    number = exten.removeprefix(OUTSIDE_EXTEN_PREFIX)
    return number if number != exten and is_digits(number) else None


def consult_leg(agent_id: str, channels: Iterable[Channel]) -> Consult | None:
    """The agent's consult in progress, read from the channels: the agent's channel is
    bridged with a Local channel of :data:`REFER_CONTEXT` (the leg Asterisk's attended
    transfer dialed). None: no consult."""
    channels = list(channels)
    channel = agent_channel(channels, agent_id)
    return None if channel is None else _consult_of(channel, channels)


def _consult_of(channel: Channel, channels: Iterable[Channel]) -> Consult | None:
    """The consult of the agent on ``channel``: a Local channel of :data:`REFER_CONTEXT` in
    its bridge; None: none."""
    if channel.bridge_id is None:
        return None
    for other in channels:
        if (other.bridge_id == channel.bridge_id and other.uniqueid != channel.uniqueid
                and other.name.startswith("Local/") and other.context == REFER_CONTEXT):
            exten = other.exten.rstrip("#")
            outside = _outside_exten(exten)
            return Consult(agent_channel=channel, leg=other, target_id=outside or exten, outside=outside is not None)
    return None


def check_consult_end(agent_id: str, channels: Iterable[Channel], *, completing: bool) -> Consult:
    """The consult to complete or cancel, or :class:`ConsultRefused`: none in progress, or
    (completing) the colleague has not answered yet. Handing the customer to a phone that is
    still ringing would leave them with nobody if it is never answered: wait or cancel."""
    consult = consult_leg(agent_id, channels)
    if consult is None:
        raise ConsultRefused(f"agent {agent_id} is not consulting anyone")
    if completing and not consult.answered:
        raise ConsultRefused(f"{consult.who} has not answered yet: wait, or cancel the consult")
    return consult


def parse_attended_transfer(msg: Message, agents: Collection[str] = ()) -> Transfer | None:
    """The :class:`Transfer` of an ``AttendedTransfer`` event (the engine's consult, or a
    phone's own attended transfer); None for another event or one naming no call.

    The target is ``agent:<ID>`` when the transfer target is a consult leg of
    :data:`REFER_CONTEXT` for a configured agent, or an agent's own channel (a phone that
    called the colleague and transferred); else ``exten@context`` of the target channel; ""
    when the event has no target channel (Asterisk 22 leaves the ``TransferTarget*``
    headers out when the consult leg was optimised away before the transfer completed)."""
    if msg.name != "AttendedTransfer":
        return None
    fields = msg.fields
    linkedid = fields.get("TransfereeLinkedid") or fields.get("OrigTransfererLinkedid")
    if not linkedid:
        return None
    context = fields.get("TransferTargetContext") or ""
    exten = (fields.get("TransferTargetExten") or "").rstrip("#")
    by_channel = agent_of_channel(fields.get("TransferTargetChannel") or "")
    if context == REFER_CONTEXT and exten in agents:
        target = AGENT_TARGET_PREFIX + exten
    elif context == REFER_CONTEXT and (number := _outside_exten(exten)) is not None:
        target = OUTSIDE_TARGET_PREFIX + number
    elif by_channel is not None and by_channel in agents:
        target = AGENT_TARGET_PREFIX + by_channel
    elif exten or context:
        target = f"{exten}@{context}"
    else:
        target = ""  # no TransferTarget headers: the consult leg was gone (optimised away) first
    return _transfer(fields, "OrigTransfererChannel", linkedid, target)


def threeway_actions(consult: Consult) -> list[AmiAction]:
    """The three-way call of an answered consult: the ``atxferthreeway`` digits, as if the
    agent's phone pressed them (send them in order)."""
    return [actions.play_dtmf(consult.agent_channel.name, digit, receive=True) for digit in ATXFER_THREEWAY]
