"""AMI actions: the only code in the engine that builds them.

Every function here returns an :class:`AmiAction`, a frozen description of one AMI action
(its name, its headers in order, its channel variables) that the client serialises with
:func:`callcenter.ami.codec.format_action` when it sends it. Building an action already
runs the codec's checks, so a value holding CR or LF (a caller name or a lead field
trying to inject ``\\r\\nAction: Hangup``) raises :class:`AmiActionError` in the caller's
stack, before anything reaches a socket.

Values are written the way ``format_action`` writes them: ``None`` leaves a header out,
booleans become ``true``/``false``, anything else goes through ``str()``. Header names
and meanings follow Asterisk 22 (see ``../shared/ASTERISK.md``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from callcenter.ami.codec import AmiActionError, format_action

__all__ = [
    "AmiAction",
    "AmiActionError",
    "atxfer",
    "blind_transfer",
    "cancel_atxfer",
    "command",
    "core_settings",
    "core_show_channels",
    "event_filter",
    "events",
    "getvar",
    "hangup",
    "login",
    "logoff",
    "message_send",
    "mix_monitor",
    "mix_monitor_mute",
    "originate",
    "ping",
    "play_dtmf",
    "queue_add",
    "queue_pause",
    "queue_penalty",
    "queue_remove",
    "queue_status",
    "queue_summary",
    "redirect",
    "setvar",
    "stop_mix_monitor",
]

#: Headers whose values never appear in ``repr()`` or logs.
_SECRET_HEADERS = frozenset({"secret", "key"})


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, repr=False)
class AmiAction:
    """One AMI action, checked and ready to send (without its ``ActionID``).

    ``headers`` are ``(name, value)`` pairs in wire order (a name may repeat);
    ``variables`` are ``(name, value)`` pairs sent as ``Variable: name=value``. Building
    one (directly or through this module's functions) raises :class:`AmiActionError`
    when a name or value would corrupt the AMI stream.
    """

    name: str
    headers: tuple[tuple[str, str], ...] = ()
    variables: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Run the codec's checks now, in the caller's stack: a bad value must raise
        # here and never at send time, when the action may already be half-queued.
        self.to_bytes()

    def to_bytes(self, action_id: str | None = None) -> bytes:
        """Serialise the action (with ``ActionID: action_id`` when given)."""
        return format_action(
            self.name,
            self.headers,
            action_id=action_id,
            variables=dict(self.variables) if self.variables else None,
        )

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def replace_header(self, name: str, value: object) -> AmiAction:
        """A copy with header ``name`` set to ``value`` (replacing every occurrence)."""
        lowered = name.lower()
        kept = tuple((k, v) for k, v in self.headers if k.lower() != lowered)
        return AmiAction(self.name, (*kept, (name, _text(value))), self.variables)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={'***' if k.lower() in _SECRET_HEADERS else v!r}" for k, v in self.headers
        )
        extra = f" variables={[k for k, _ in self.variables]}" if self.variables else ""
        return f"<AmiAction {self.name} {shown}{extra}>"


def _build(
    name: str,
    headers: Iterable[tuple[str, object]] = (),
    variables: Mapping[str, object] | None = None,
) -> AmiAction:
    pairs = tuple((key, _text(value)) for key, value in headers if value is not None)
    var_pairs = tuple((key, _text(value)) for key, value in (variables or {}).items())
    return AmiAction(name, pairs, var_pairs)


def login(username: str, secret: str, *, events: str | bool = "on") -> AmiAction:
    """``Login`` with a plain-text secret; ``events`` is ``on``, ``off`` or a class list."""
    try:
        return _build("Login", [("Username", username), ("Secret", secret), ("Events", events)])
    except AmiActionError:
        # The codec's message quotes the value: never let a secret reach a log.
        raise AmiActionError("AMI action 'Login': username or secret contains CR, LF or is invalid") from None


def logoff() -> AmiAction:
    """``Logoff``: Asterisk answers ``Response: Goodbye`` and closes the session."""
    return _build("Logoff")


def ping() -> AmiAction:
    """``Ping``: the keepalive; Asterisk answers ``Response: Success``, ``Ping: Pong``."""
    return _build("Ping")


def originate(
    channel: str,
    *,
    context: str | None = None,
    exten: str | None = None,
    priority: int | str | None = None,
    application: str | None = None,
    data: str | None = None,
    caller_id: str | None = None,
    timeout_ms: int | None = None,
    variables: Mapping[str, object] | None = None,
    async_: bool = True,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
    account: str | None = None,
    codecs: str | None = None,
    early_media: bool | None = None,
) -> AmiAction:
    """``Originate`` a call on ``channel`` into a dialplan place or an application.

    Give either ``context``/``exten``/``priority`` (all three) or ``application``
    (with optional ``data``), not both. ``timeout_ms`` is how long the channel may ring
    (Asterisk's default is 30000). ``channel_id``/``other_channel_id`` pre-assign the
    unique ids of the new channel(s). With ``async_`` (the default) Asterisk answers
    ``Originate successfully queued`` at once and reports the outcome later in an
    ``OriginateResponse`` event carrying the same ``ActionID``.
    """
    dialplan = (context, exten, priority)
    if application is not None:
        if any(part is not None for part in dialplan):
            raise AmiActionError("AMI action 'Originate': give context/exten/priority or application, not both")
    elif any(part is None for part in dialplan):
        raise AmiActionError("AMI action 'Originate': needs context, exten and priority (or an application)")
    if data is not None and application is None:
        raise AmiActionError("AMI action 'Originate': data is only meaningful with an application")
    if timeout_ms is not None and timeout_ms <= 0:
        raise AmiActionError(f"AMI action 'Originate': timeout_ms must be positive, not {timeout_ms}")
    return _build(
        "Originate",
        [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", priority),
            ("Application", application),
            ("Data", data),
            ("CallerID", caller_id),
            ("Timeout", timeout_ms),
            ("Account", account),
            ("Codecs", codecs),
            ("EarlyMedia", early_media),
            ("ChannelId", channel_id),
            ("OtherChannelId", other_channel_id),
            ("Async", async_),
        ],
        variables,
    )


def hangup(channel: str, *, cause: int | None = None) -> AmiAction:
    """``Hangup`` a channel (``channel`` may be a name or a ``/regex/``), with a Q.850 cause."""
    return _build("Hangup", [("Channel", channel), ("Cause", cause)])


def command(cli_command: str) -> AmiAction:
    """``Command``: run a CLI command; the lines come back as ``Output:`` headers."""
    return _build("Command", [("Command", cli_command)])


def core_show_channels() -> AmiAction:
    """``CoreShowChannels``: a list action; one ``CoreShowChannel`` event per channel."""
    return _build("CoreShowChannels")


def queue_status(queue: str | None = None, *, member: str | None = None) -> AmiAction:
    """``QueueStatus``: a list action (``QueueParams``, ``QueueMember``, ``QueueEntry`` events)."""
    return _build("QueueStatus", [("Queue", queue), ("Member", member)])


def queue_summary(queue: str | None = None) -> AmiAction:
    """``QueueSummary``: a list action; one ``QueueSummary`` event per queue."""
    return _build("QueueSummary", [("Queue", queue)])


def queue_add(
    queue: str,
    interface: str,
    *,
    penalty: int | None = None,
    paused: bool | None = None,
    reason: str | None = None,
    member_name: str | None = None,
    state_interface: str | None = None,
) -> AmiAction:
    """``QueueAdd``: add a dynamic member (``interface``) to ``queue``."""
    return _build(
        "QueueAdd",
        [
            ("Queue", queue),
            ("Interface", interface),
            ("Penalty", penalty),
            ("Paused", paused),
            ("Reason", reason),
            ("MemberName", member_name),
            ("StateInterface", state_interface),
        ],
    )


def queue_remove(queue: str, interface: str) -> AmiAction:
    """``QueueRemove``: remove a dynamic member from ``queue``."""
    return _build("QueueRemove", [("Queue", queue), ("Interface", interface)])


def queue_pause(
    interface: str,
    paused: bool,
    *,
    queue: str | None = None,
    reason: str | None = None,
) -> AmiAction:
    """``QueuePause``: pause or unpause a member in ``queue`` (in every queue when ``None``)."""
    return _build(
        "QueuePause",
        [("Interface", interface), ("Paused", paused), ("Queue", queue), ("Reason", reason)],
    )


def queue_penalty(interface: str, penalty: int, *, queue: str) -> AmiAction:
    """``QueuePenalty``: a member's penalty in ``queue`` (which callers, limited by
    ``QUEUE_MAX_PENALTY`` and the queue's penalty rules, may ring them), at once for the
    callers already waiting too."""
    return _build("QueuePenalty", [("Interface", interface), ("Penalty", penalty), ("Queue", queue)])


def setvar(variable: str, value: object, *, channel: str | None = None) -> AmiAction:
    """``Setvar``: set a channel variable (a global one when ``channel`` is ``None``)."""
    return _build("Setvar", [("Channel", channel), ("Variable", variable), ("Value", value)])


def getvar(variable: str, *, channel: str | None = None) -> AmiAction:
    """``Getvar``: read a channel (or global) variable or a dialplan function."""
    return _build("Getvar", [("Channel", channel), ("Variable", variable)])


def blind_transfer(channel: str, context: str, exten: str) -> AmiAction:
    """``BlindTransfer``: whoever is bridged to ``channel`` goes to ``exten@context``; ``channel``
    (the transferer) is hung up. Asterisk answers once the transfer is done or refused."""
    return _build("BlindTransfer", [("Channel", channel), ("Context", context), ("Exten", exten)])


def atxfer(channel: str, context: str, exten: str) -> AmiAction:
    """``Atxfer``: an attended (consult-first) transfer from ``channel`` (the transferer) to
    ``exten@context``. Asterisk puts the transferer's party on hold and bridges the transferer
    with whoever answers there; the transferer hanging up completes the transfer. Asterisk
    queues the ``atxfer`` feature code and then ``exten`` as DTMF on the channel, so the
    channel's bridge must allow it a transfer (Queue's ``t``, Dial's ``T``/``t``), the feature
    code must be set (features.conf) and ``exten`` must be digits."""
    return _build("Atxfer", [("Channel", channel), ("Context", context), ("Exten", exten)])


def cancel_atxfer(channel: str) -> AmiAction:
    """``CancelAtxfer``: the transferer goes back to their held party; the consulted party is
    hung up (the ``atxferabort`` feature code, queued as DTMF on ``channel``)."""
    return _build("CancelAtxfer", [("Channel", channel)])


def play_dtmf(channel: str, digit: str, *, receive: bool = False, duration_ms: int | None = None) -> AmiAction:
    """``PlayDTMF``: one DTMF digit sent out on ``channel`` (to its phone); ``receive``: as if
    the channel's phone had pressed it (Asterisk 18+), which bridge features act on."""
    if len(digit) != 1 or digit not in "0123456789*#ABCD":
        raise AmiActionError(f"PlayDTMF takes one DTMF digit (0-9, *, #, A-D), got {digit!r}")
    return _build("PlayDTMF", [("Channel", channel), ("Digit", digit), ("Duration", duration_ms),
                               ("Receive", "true" if receive else None)])


def redirect(
    channel: str,
    context: str,
    exten: str,
    priority: int | str,
    *,
    extra_channel: str | None = None,
    extra_context: str | None = None,
    extra_exten: str | None = None,
    extra_priority: int | str | None = None,
) -> AmiAction:
    """``Redirect`` a channel (and optionally a second one) to a dialplan place."""
    return _build(
        "Redirect",
        [
            ("Channel", channel),
            ("ExtraChannel", extra_channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", priority),
            ("ExtraContext", extra_context),
            ("ExtraExten", extra_exten),
            ("ExtraPriority", extra_priority),
        ],
    )


def mix_monitor(
    channel: str,
    file: str,
    *,
    options: str | None = None,
    command: str | None = None,
) -> AmiAction:
    """``MixMonitor``: record ``channel`` into ``file`` (needs the ``system`` permission)."""
    return _build("MixMonitor", [("Channel", channel), ("File", file), ("Options", options), ("Command", command)])


def mix_monitor_mute(channel: str, *, muted: bool, direction: str = "both") -> AmiAction:
    """``MixMonitorMute``: silence (``muted``) or restore ``channel``'s recording; ``direction``
    ``read`` (from the channel), ``write`` (to it) or ``both``. Asterisk answers with a
    ``MixMonitorMute`` event."""
    if direction not in ("read", "write", "both"):
        raise AmiActionError(f"MixMonitorMute Direction must be read, write or both, got {direction!r}")
    return _build("MixMonitorMute", [("Channel", channel), ("Direction", direction), ("State", "1" if muted else "0")])


def stop_mix_monitor(channel: str, *, mixmonitor_id: str | None = None) -> AmiAction:
    """``StopMixMonitor``: stop one recording (by its MixMonitor id) or the channel's."""
    return _build("StopMixMonitor", [("Channel", channel), ("MixMonitorID", mixmonitor_id)])


def event_filter(expression: str, *, operation: str = "Add") -> AmiAction:
    """``Filter``: add a session event filter such as ``Event: Newchannel`` (needs ``system``)."""
    return _build("Filter", [("Operation", operation), ("Filter", expression)])


def core_settings() -> AmiAction:
    """``CoreSettings``: Asterisk version, limits and the like."""
    return _build("CoreSettings")


def events(event_mask: str | bool) -> AmiAction:
    """``Events``: change the session's event mask (``on``, ``off``, ``system,call,...``)."""
    return _build("Events", [("EventMask", event_mask)])


def message_send(destination: str, sender: str, body: str) -> AmiAction:
    """``MessageSend``: an out-of-call text message (SIP MESSAGE through PJSIP).

    ``destination`` is PJSIP's form, e.g. ``pjsip:sms-gateway/sip:13900000001@10.0.0.5``;
    ``sender`` the From (``"10690000" <sip:10690000@host>``). The body goes base64-encoded
    (``Base64Body``), so any text, Chinese, commas or line breaks, arrives as written.
    Asterisk answers Success once PJSIP took the message, Error if it could not.
    """
    encoded = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return _build("MessageSend", [("Destination", destination), ("From", sender), ("Base64Body", encoded)])
