"""The Twisted AMI client: a thin protocol over the sans-IO codec, kept connected.

This module owns the engine's one live AMI session and nothing about call-center rules:

* :class:`AmiProtocol` moves bytes between a transport and
  :class:`~callcenter.ami.codec.AmiParser`. It logs in when the greeting arrives, gives
  every action a unique ``ActionID`` and a :class:`~twisted.internet.defer.Deferred`,
  gathers list actions (``EventList: start`` ... ``EventList: Complete``) into one
  :class:`AmiResult`, times actions out on an injected clock, pings to detect a dead
  peer, and hands every other event to subscribers.
* :class:`AmiClient` is a :class:`~twisted.application.service.Service` that keeps one
  logged-in :class:`AmiProtocol` alive with Twisted's
  :class:`~twisted.application.internet.ClientService` and an exponential backoff. After
  every (re)connection it reads ``CoreShowChannels`` and ``QueueStatus`` and hands them
  to resync listeners before any event of the new session reaches a subscriber, so the
  call-state model can rebuild itself.

Actions are built only by :mod:`callcenter.ami.actions`, which refuses CR/LF in any
value before anything is written. Nothing here imports the global reactor: the clock
and the endpoint are passed in.
"""

from __future__ import annotations

import itertools
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, cast
from typing import Protocol as TypingProtocol

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    FirstError,
    fail,
    gatherResults,
    succeed,
)
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import AmiActionError, AmiParser, Message
from callcenter.twisted_typing import Clock as _Clock
from callcenter.twisted_typing import DelayedCall as _DelayedCall
from callcenter.twisted_typing import Transport as _Transport

__all__ = [
    "AmiActionFailed",
    "AmiClient",
    "AmiConnectionLost",
    "AmiCounters",
    "AmiCredentials",
    "AmiError",
    "AmiLoginFailed",
    "AmiNotConnected",
    "AmiProtocol",
    "AmiResult",
    "AmiTimeout",
    "EventCallback",
    "ListenerHandle",
    "ResyncCallback",
    "Subscribers",
    "Subscription",
]

_log: Final = Logger(namespace="callcenter.ami")

_GREETING_PREFIX: Final = "Asterisk Call Manager/"
#: How many abandoned (timed-out or cancelled) ActionIDs are remembered, so that their
#: late answers are dropped quietly instead of reaching subscribers as events.
_ABANDONED_MAX: Final = 1024
#: Asterisk's own default ring time for ``Originate`` when ``Timeout`` is not given.
_ORIGINATE_DEFAULT_TIMEOUT: Final = 30.0
_PING: Final = actions.ping()

EventCallback = Callable[[Message], object]
"""A subscriber: called with each AMI event (its return value is ignored)."""

ResyncCallback = Callable[[list[Message], list[Message]], object]
"""A resync listener: ``callback(channels, queue_status)`` after every (re)connection."""


# --------------------------------------------------------------------------- errors


class AmiError(Exception):
    """Base class of the AMI client's errors."""


class AmiNotConnected(AmiError):
    """No logged-in AMI session right now: the action was not sent."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the login, did not answer it, or is not an AMI server."""


class AmiConnectionLost(AmiError):
    """The connection closed before the action's answer arrived."""

    def __init__(self, action: AmiAction | None, reason: Failure | None = None) -> None:
        self.action = action
        self.reason = reason
        what = f"AMI action {action.name}" if action is not None else "AMI"
        why = reason.getErrorMessage() if reason is not None else "connection lost"
        super().__init__(f"{what}: connection lost before the answer ({why})")


class AmiTimeout(AmiError):
    """No answer (or no complete event list, or no ``OriginateResponse``) in time."""

    def __init__(self, action: AmiAction, action_id: str, timeout: float) -> None:
        self.action = action
        self.action_id = action_id
        self.timeout = timeout
        super().__init__(f"AMI action {action.name} (ActionID {action_id}): no answer within {timeout:g} s")


class AmiActionFailed(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is that response, kept whole."""

    def __init__(self, action: AmiAction, message: Message) -> None:
        self.action = action
        self.message = message
        super().__init__(f"AMI action {action.name} failed: {message.get('Message') or message.name}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, repr=False)
class AmiCredentials:
    """Who the engine logs in as (``manager.conf`` user), and the ``Events`` it asks for."""

    username: str
    secret: str
    events: str = "on"

    def __repr__(self) -> str:
        return f"AmiCredentials(username={self.username!r}, secret='***', events={self.events!r})"


@dataclass
class AmiResult:
    """The answer to one action.

    ``response`` is Asterisk's ``Response:`` message. For a list action (its response
    says ``EventList: start``) ``events`` holds every item event carrying the action's
    ``ActionID``, in wire order, and ``complete`` the closing ``...Complete`` event
    (``EventList: Complete``, ``ListItems: N``); otherwise ``events`` is empty and
    ``complete`` is ``None``.
    """

    action: AmiAction
    action_id: str
    response: Message
    events: list[Message] = field(default_factory=list)
    complete: Message | None = None

    @property
    def ok(self) -> bool:
        """True when Asterisk answered ``Success`` (or ``Goodbye``/``Follows``)."""
        return self.response.name in ("Success", "Goodbye", "Follows")


@dataclass
class AmiCounters:
    """Counters of what came over the wire, shared by a client's connections (metrics)."""

    events: int = 0
    frame_problems: int = 0
    unrecognised_frames: int = 0
    actions_sent: int = 0
    action_timeouts: int = 0


class Subscription:
    """Handle returned by ``subscribe``: :meth:`cancel` stops the deliveries."""

    __slots__ = ("_key", "_registry", "callback", "name")

    def __init__(self, registry: Subscribers, callback: EventCallback, name: str | None) -> None:
        self.callback = callback
        self.name = name
        self._key = None if name is None else name.lower()
        self._registry: Subscribers | None = registry

    @property
    def active(self) -> bool:
        """True until :meth:`cancel` is called."""
        return self._registry is not None

    def cancel(self) -> None:
        """Stop delivering events to this subscriber (idempotent)."""
        registry, self._registry = self._registry, None
        if registry is not None:
            registry._remove(self)

    def wants(self, message: Message) -> bool:
        """True when this subscriber takes ``message`` (by event name, or all events)."""
        return self._key is None or (message.name is not None and message.name.lower() == self._key)

    def __repr__(self) -> str:
        return f"<Subscription {self.name or '*'} {self.callback!r}>"


class ListenerHandle:
    """Handle returned by :meth:`AmiClient.on_resync`: :meth:`cancel` removes the listener."""

    __slots__ = ("_remove",)

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove: Callable[[], None] | None = remove

    @property
    def active(self) -> bool:
        """True until :meth:`cancel` is called."""
        return self._remove is not None

    def cancel(self) -> None:
        """Remove the listener (idempotent)."""
        remove, self._remove = self._remove, None
        if remove is not None:
            remove()


class Subscribers:
    """Event subscribers, delivered to in subscription order; one failing never stops the rest.

    :meth:`hold` buffers deliveries until :meth:`release` (the client holds a new
    session's events while it resynchronises, so the state model sees the snapshot first).
    """

    def __init__(self, log: Logger | None = None) -> None:
        self._log = log or _log
        self._subscriptions: tuple[Subscription, ...] = ()
        self._held: list[Message] | None = None

    def subscribe(self, callback: EventCallback, name: str | None = None) -> Subscription:
        """Call ``callback(message)`` for every event named ``name`` (case-insensitive), or all."""
        subscription = Subscription(self, callback, name)
        self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def __len__(self) -> int:
        return len(self._subscriptions)

    @property
    def holding(self) -> bool:
        """True while deliveries are buffered."""
        return self._held is not None

    def hold(self) -> None:
        """Buffer events from now on instead of delivering them."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver the buffered events in order and stop buffering."""
        held, self._held = self._held, None
        for message in held or ():
            self._deliver(message)

    def dispatch(self, message: Message) -> None:
        """Deliver ``message`` to every interested subscriber (or buffer it while held)."""
        if self._held is not None:
            self._held.append(message)
            return
        self._deliver(message)

    def _deliver(self, message: Message) -> None:
        for subscription in self._subscriptions:
            if not subscription.active or not subscription.wants(message):
                continue
            try:
                subscription.callback(message)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the stream; logged
                self._log.failure(
                    "ami.subscriber_failed", event=message.name, subscriber=repr(subscription.callback)
                )


class _ProtocolLike(TypingProtocol):
    def makeConnection(self, transport: ITransport) -> None: ...
    def dataReceived(self, data: bytes) -> None: ...
    def connectionLost(self, reason: Failure) -> None: ...


class _ProtocolFactory(TypingProtocol):
    def buildProtocol(self, addr: IAddress | None) -> IProtocol | None: ...


class _Endpoint(TypingProtocol):
    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]: ...


class _Credentials(TypingProtocol):
    @property
    def username(self) -> str: ...

    @property
    def secret(self) -> str: ...


@dataclass
class _Pending:
    action: AmiAction
    action_id: str
    deferred: Deferred[AmiResult]
    timeout: float | None
    timer: _DelayedCall | None = None
    response: Message | None = None
    events: list[Message] = field(default_factory=list)


@dataclass
class _EventWaiter:
    action: AmiAction
    event: str
    deferred: Deferred[Message]
    timer: _DelayedCall | None = None
    queued: Deferred[AmiResult] | None = None


def _action_ids(prefix: str) -> Iterator[str]:
    return (f"{prefix}-{n}" for n in itertools.count(1))


def _new_prefix() -> str:
    return f"cc{uuid.uuid4().hex[:8]}"


def _is_list_start(message: Message) -> bool:
    return (message.get("EventList") or "").lower() == "start"


def _is_list_complete(message: Message) -> bool:
    return (message.get("EventList") or "").lower() == "complete"


def _cancel_timer(timer: _DelayedCall | None) -> None:
    if timer is not None and timer.active():
        timer.cancel()


# --------------------------------------------------------------------------- protocol


class AmiProtocol(Protocol):
    """One AMI session: login, ActionID -> Deferred, list gathering, events, keepalive.

    ``credentials`` is anything with ``username`` and ``secret`` (and optionally
    ``events``, default ``on``). ``clock`` schedules every timer: the login deadline
    (``login_timeout``, from connection to accepted login), the default per-action
    timeout (``action_timeout``; ``None`` waits forever) and the keepalive (a ``Ping``
    every ``ping_interval`` seconds after login; no answer within ``ping_timeout``
    aborts the connection; ``ping_interval=None`` disables it).

    ActionIDs are ``<prefix>-<n>``; pass ``action_ids`` to share one counter between
    the successive connections of a client. Events go to ``subscribers`` (a fresh
    :class:`Subscribers` unless one is shared).
    """

    def __init__(
        self,
        credentials: _Credentials,
        clock: IReactorTime,
        *,
        action_timeout: float | None = 10.0,
        login_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 10.0,
        originate_margin: float = 10.0,
        action_ids: Iterator[str] | None = None,
        subscribers: Subscribers | None = None,
        counters: AmiCounters | None = None,
        log: Logger | None = None,
    ) -> None:
        self.credentials = credentials
        self.clock: _Clock = cast(_Clock, clock)
        self.action_timeout = action_timeout
        self.login_timeout = login_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.originate_margin = originate_margin
        self.subscribers = subscribers if subscribers is not None else Subscribers(log)
        self.counters = counters if counters is not None else AmiCounters()
        self._log = log or _log
        self._ids = action_ids if action_ids is not None else _action_ids(_new_prefix())
        self._parser = AmiParser()
        self._pending: dict[str, _Pending] = {}
        self._waiters: dict[str, _EventWaiter] = {}
        # ActionID -> True once its (abandoned) list has started.
        self._abandoned: OrderedDict[str, bool] = OrderedDict()
        self._logged_in = False
        self._login_failure: AmiError | None = None
        self._login_waiters: list[Deferred[AmiProtocol]] = []
        self._login_timer: _DelayedCall | None = None
        self._ping_call: _DelayedCall | None = None
        self._lost_callbacks: list[Callable[[Failure], object]] = []
        # Set by AmiClient once ClientService owns the connection (see _GateProtocol).
        self._supervised = False
        #: True once Asterisk said ``FullyBooted`` on this session (at login when it is
        #: already up, or when a boot in progress ends).
        self.fully_booted = False
        self._boot_waiters: list[Deferred[None]] = []

    # -- public API ---------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        """True once Asterisk accepted the login (and while connected)."""
        return self._logged_in and bool(self.connected)

    @property
    def greeting(self) -> str | None:
        """The banner line, e.g. ``Asterisk Call Manager/11.0.0``, once received."""
        return self._parser.greeting

    @property
    def pending_actions(self) -> int:
        """Actions sent and not yet answered."""
        return len(self._pending)

    def when_fully_booted(self, timeout: float) -> Deferred[bool]:
        """A Deferred firing ``True`` at ``FullyBooted``, or ``False`` after ``timeout`` s.

        Asterisk sends ``FullyBooted`` right after login when it is up; when the engine
        reconnects while Asterisk is still loading modules, it comes when the boot ends.
        Actions such as ``QueueStatus`` do not exist until then.
        """
        if self.fully_booted:
            return succeed(True)
        waiter: Deferred[None] = Deferred()
        self._boot_waiters.append(waiter)
        result: Deferred[bool] = Deferred()

        def booted(_: object) -> None:
            if timer.active():
                timer.cancel()
            if not result.called:
                result.callback(True)

        def gave_up() -> None:
            if waiter in self._boot_waiters:
                self._boot_waiters.remove(waiter)
            if not result.called:
                result.callback(False)

        def lost(failure: Failure) -> None:
            if timer.active():
                timer.cancel()
            if not result.called:
                result.errback(failure)

        timer = self.clock.callLater(timeout, gave_up)
        waiter.addCallbacks(booted, lost)
        return result

    def when_logged_in(self) -> Deferred[AmiProtocol]:
        """A Deferred firing with this protocol once logged in.

        It fails with :class:`AmiLoginFailed` (refused, no answer in ``login_timeout``,
        not an AMI server) or :class:`AmiConnectionLost`.
        """
        if self._login_failure is not None:
            return fail(self._login_failure)
        if self._logged_in:
            return succeed(self)
        waiter: Deferred[AmiProtocol] = Deferred(lambda d: self._drop_login_waiter(d))
        self._login_waiters.append(waiter)
        return waiter

    def subscribe(self, callback: EventCallback, name: str | None = None) -> Subscription:
        """Call ``callback(event)`` for events named ``name`` (``None``: every event)."""
        return self.subscribers.subscribe(callback, name)

    def notify_lost(self, callback: Callable[[Failure], object]) -> None:
        """Call ``callback(reason)`` when the connection is lost (before pending actions fail)."""
        self._lost_callbacks.append(callback)

    def send(
        self,
        action: AmiAction,
        timeout: float | None = None,
        *,
        action_id: str | None = None,
    ) -> Deferred[AmiResult]:
        """Send ``action``; the Deferred fires with its :class:`AmiResult`.

        ``timeout`` (seconds) defaults to ``action_timeout``. The Deferred fails with
        :class:`AmiActionFailed` (``Response: Error``), :class:`AmiTimeout`,
        :class:`AmiConnectionLost` or :class:`AmiNotConnected`; cancelling it forgets the
        action (a late answer is dropped). ``action_id`` overrides the generated
        ``ActionID``; an invalid or already-pending one raises :class:`AmiActionError`
        at once, and nothing is written.
        """
        return self._send(action, self.action_timeout if timeout is None else timeout, action_id)

    def originate(
        self,
        action: AmiAction,
        *,
        timeout: float | None = None,
        action_id: str | None = None,
    ) -> Deferred[Message]:
        """Send an ``Originate`` (forced ``Async: true``); fire with its ``OriginateResponse``.

        The Deferred fires with the ``OriginateResponse`` event (matched by ActionID,
        whatever its ``Response``/``Reason``: a busy or unanswered call is a result, not
        an error), never with the ``Originate successfully queued`` response. It fails
        with :class:`AmiActionFailed` if Asterisk refuses the action, and with
        :class:`AmiTimeout` when no ``OriginateResponse`` came within ``timeout``
        (default: the action's ``Timeout`` ms, or Asterisk's 30 s, plus
        ``originate_margin``). The event also reaches subscribers.
        """
        if action.name != "Originate":
            raise AmiActionError(f"originate() needs an Originate action, not {action.name!r}")
        if (action.get("Async") or "").lower() != "true":
            action = action.replace_header("Async", True)
        if timeout is None:
            timeout = self._ring_time(action) + self.originate_margin
        if action_id is None:
            action_id = next(self._ids)
        elif action_id in self._waiters:
            raise AmiActionError(f"ActionID {action_id!r} is already waiting for an event")
        if not self.connected:
            return fail(AmiNotConnected("AMI: not connected; Originate not sent"))
        waiter = _EventWaiter(action, "OriginateResponse", Deferred(lambda d: self._cancel_waiter(action_id)))
        queued = self._send(action, self.action_timeout, action_id)
        waiter.queued = queued
        self._waiters[action_id] = waiter
        waiter.timer = self.clock.callLater(timeout, self._waiter_timed_out, action_id, timeout)

        def not_queued(failure: Failure) -> None:
            current = self._waiters.get(action_id)
            if current is waiter:
                del self._waiters[action_id]
                _cancel_timer(waiter.timer)
                waiter.deferred.errback(failure)

        queued.addCallbacks(lambda _result: None, not_queued)
        return waiter.deferred

    def abort_connection(self) -> None:
        """Drop the connection now (a reconnecting client will dial again)."""
        transport = self._transport()
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if callable(abort):
            abort()
        else:
            transport.loseConnection()

    def _transport(self) -> _Transport | None:
        return cast(_Transport | None, self.transport)

    # -- twisted.internet.protocol.Protocol ----------------------------------------

    def connectionMade(self) -> None:
        """Start the login deadline; the login itself waits for the greeting."""
        self._login_timer = self.clock.callLater(self.login_timeout, self._login_timed_out)

    def dataReceived(self, data: bytes) -> None:
        """Parse ``data`` and route every completed message."""
        had_greeting = self._parser.greeting is not None
        messages = self._parser.feed(data)
        if not had_greeting and self._parser.greeting is not None:
            self._on_greeting(self._parser.greeting)
        for message in messages:
            if not self.connected:
                break
            self._route(message)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail every pending action and waiter with :class:`AmiConnectionLost`; cancel timers."""
        if not self.connected:
            return
        self.connected = False
        self._logged_in = False
        _cancel_timer(self._login_timer)
        _cancel_timer(self._ping_call)
        self._login_timer = self._ping_call = None
        for callback in self._lost_callbacks:
            try:
                callback(reason)
            except Exception:  # noqa: BLE001 - pending actions must still fail; logged
                self._log.failure("ami.lost_callback_failed")
        self._lost_callbacks = []
        boot_waiters, self._boot_waiters = self._boot_waiters, []
        for boot_waiter in boot_waiters:
            boot_waiter.errback(AmiConnectionLost(None, reason))
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            _cancel_timer(entry.timer)
            entry.deferred.errback(AmiConnectionLost(entry.action, reason))
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            _cancel_timer(waiter.timer)
            if not waiter.deferred.called:
                waiter.deferred.errback(AmiConnectionLost(waiter.action, reason))
        if self._login_failure is None:
            # Also makes later when_logged_in() calls fail instead of waiting forever.
            self._fail_login(AmiConnectionLost(None, reason))

    # -- login ----------------------------------------------------------------------

    def _on_greeting(self, greeting: str) -> None:
        if not greeting.startswith(_GREETING_PREFIX):
            self._login_refused(AmiLoginFailed(f"not an AMI server: greeting {greeting!r}"))
            return
        self._log.info("ami.greeting", greeting=greeting)
        events = getattr(self.credentials, "events", "on")
        try:
            login = actions.login(self.credentials.username, self.credentials.secret, events=events)
        except AmiActionError as error:
            self._login_refused(AmiLoginFailed(str(error)))
            return
        self._send(login, None, None).addCallbacks(self._login_accepted, self._login_answer_failed)

    def _login_accepted(self, result: AmiResult) -> None:
        if self._login_failure is not None or not self.connected:
            return
        self._logged_in = True
        _cancel_timer(self._login_timer)
        self._login_timer = None
        self._log.info("ami.logged_in", username=self.credentials.username)
        waiters, self._login_waiters = self._login_waiters, []
        self._schedule_ping()
        for waiter in waiters:
            waiter.callback(self)

    def _login_answer_failed(self, failure: Failure) -> None:
        error = failure.value
        if isinstance(error, AmiActionFailed):
            reason = error.message.get("Message") or "Response: Error"
            self._login_refused(
                AmiLoginFailed(f"AMI login as {self.credentials.username!r} refused by Asterisk: {reason}")
            )
        elif isinstance(error, AmiConnectionLost):
            self._fail_login(error)
        else:
            self._login_refused(AmiLoginFailed(f"AMI login failed: {failure.getErrorMessage()}"))

    def _login_timed_out(self) -> None:
        self._login_timer = None
        stage = "no answer to Login" if self._parser.greeting is not None else "no AMI greeting"
        self._login_refused(AmiLoginFailed(f"AMI login: {stage} within {self.login_timeout:g} s"))

    def _login_refused(self, error: AmiLoginFailed) -> None:
        if self._login_failure is not None:
            return
        self._log.error("ami.login_failed", error=str(error))
        self._fail_login(error)
        self.abort_connection()

    def _fail_login(self, error: AmiError) -> None:
        if self._login_failure is not None:
            return
        self._login_failure = error
        _cancel_timer(self._login_timer)
        self._login_timer = None
        waiters, self._login_waiters = self._login_waiters, []
        for waiter in waiters:
            waiter.errback(error)

    def _drop_login_waiter(self, waiter: Deferred[AmiProtocol]) -> None:
        if waiter in self._login_waiters:
            self._login_waiters.remove(waiter)

    # -- keepalive ------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        if self.ping_interval is None or not self.connected:
            return
        self._ping_call = self.clock.callLater(self.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_call = None
        self._send(_PING, self.ping_timeout, None).addCallbacks(self._pong, self._ping_failed)

    def _pong(self, result: AmiResult) -> None:
        self._schedule_ping()

    def _ping_failed(self, failure: Failure) -> None:
        if isinstance(failure.value, AmiTimeout):
            self._log.warn("ami.ping_timeout", timeout=self.ping_timeout)
            self.abort_connection()
        elif isinstance(failure.value, AmiActionFailed):
            # Asterisk answered: the session is alive even if it disliked the Ping.
            self._schedule_ping()
        # AmiConnectionLost / AmiNotConnected: the connection is gone already.

    # -- sending --------------------------------------------------------------------

    def _send(self, action: AmiAction, timeout: float | None, action_id: str | None) -> Deferred[AmiResult]:
        if action_id is None:
            action_id = next(self._ids)
        elif action_id in self._pending:
            raise AmiActionError(f"ActionID {action_id!r} is already pending")
        data = action.to_bytes(action_id)  # raises AmiActionError before anything is written
        transport = self._transport()
        if not self.connected or transport is None:
            return fail(AmiNotConnected(f"AMI: not connected; {action.name} not sent"))
        deferred: Deferred[AmiResult] = Deferred(lambda d: self._cancel_pending(action_id))
        entry = _Pending(action, action_id, deferred, timeout)
        if timeout is not None:
            entry.timer = self.clock.callLater(timeout, self._timed_out, action_id)
        self._pending[action_id] = entry
        self.counters.actions_sent += 1
        transport.write(data)
        return deferred

    def _timed_out(self, action_id: str) -> None:
        entry = self._pending.pop(action_id, None)
        if entry is None:
            return
        entry.timer = None
        self.counters.action_timeouts += 1
        self._abandon(action_id, started=entry.response is not None)
        timeout = entry.timeout if entry.timeout is not None else 0.0
        self._log.warn("ami.action_timeout", action=entry.action.name, action_id=action_id, timeout=timeout)
        entry.deferred.errback(AmiTimeout(entry.action, action_id, timeout))

    def _cancel_pending(self, action_id: str) -> None:
        entry = self._pending.pop(action_id, None)
        if entry is not None:
            _cancel_timer(entry.timer)
            self._abandon(action_id, started=entry.response is not None)

    def _abandon(self, action_id: str, *, started: bool) -> None:
        self._abandoned[action_id] = started
        while len(self._abandoned) > _ABANDONED_MAX:
            self._abandoned.popitem(last=False)

    def _finish(self, entry: _Pending, response: Message, complete: Message | None = None) -> None:
        del self._pending[entry.action_id]
        _cancel_timer(entry.timer)
        entry.deferred.callback(AmiResult(entry.action, entry.action_id, response, entry.events, complete))

    def _ring_time(self, action: AmiAction) -> float:
        raw = action.get("Timeout")
        try:
            return int(raw) / 1000.0 if raw else _ORIGINATE_DEFAULT_TIMEOUT
        except ValueError:
            return _ORIGINATE_DEFAULT_TIMEOUT

    def _waiter_timed_out(self, action_id: str, timeout: float) -> None:
        waiter = self._waiters.pop(action_id, None)
        if waiter is None:
            return
        waiter.timer = None
        self.counters.action_timeouts += 1
        self._log.warn("ami.originate_timeout", action_id=action_id, timeout=timeout)
        waiter.deferred.errback(AmiTimeout(waiter.action, action_id, timeout))

    def _cancel_waiter(self, action_id: str) -> None:
        waiter = self._waiters.pop(action_id, None)
        if waiter is None:
            return
        _cancel_timer(waiter.timer)
        if waiter.queued is not None and not waiter.queued.called:
            waiter.queued.cancel()

    # -- receiving ------------------------------------------------------------------

    def _route(self, message: Message) -> None:
        for problem in message.problems:
            self.counters.frame_problems += 1
            self._log.warn("ami.malformed_line", problem=problem, message=message.name)
        if message.is_response:
            self._on_response(message)
        elif message.is_event:
            self.counters.events += 1
            if message.name == "FullyBooted" and not self.fully_booted:
                self.fully_booted = True
                waiters, self._boot_waiters = self._boot_waiters, []
                for waiter in waiters:
                    waiter.callback(None)
            self._on_event(message)
        else:
            self.counters.unrecognised_frames += 1
            self._log.warn("ami.unrecognised_frame", text=message.text)

    def _on_response(self, message: Message) -> None:
        action_id = message.action_id
        entry = self._pending.get(action_id) if action_id is not None else None
        if entry is None:
            if action_id is not None and action_id in self._abandoned:
                if _is_list_start(message):
                    self._abandoned[action_id] = True
                else:
                    del self._abandoned[action_id]
                self._log.debug("ami.late_response", action_id=action_id)
                return
            self._log.warn("ami.unmatched_response", action_id=action_id, response=message.name, text=message.text)
            return
        if entry.response is not None:
            self._log.warn("ami.duplicate_response", action_id=action_id, text=message.text)
            return
        if message.name == "Error":
            del self._pending[entry.action_id]
            _cancel_timer(entry.timer)
            entry.deferred.errback(AmiActionFailed(entry.action, message))
        elif _is_list_start(message):
            entry.response = message
        else:
            self._finish(entry, message)

    def _on_event(self, message: Message) -> None:
        action_id = message.action_id
        if action_id is not None:
            entry = self._pending.get(action_id)
            if entry is not None and entry.response is not None:
                # An item of a list this session asked for: part of the answer, not news.
                if _is_list_complete(message):
                    self._finish(entry, entry.response, message)
                else:
                    entry.events.append(message)
                return
            if self._abandoned.get(action_id):
                if _is_list_complete(message):
                    del self._abandoned[action_id]
                return
            waiter = self._waiters.get(action_id)
            if waiter is not None and message.name == waiter.event:
                del self._waiters[action_id]
                _cancel_timer(waiter.timer)
                waiter.deferred.callback(message)
        self.subscribers.dispatch(message)


# --------------------------------------------------------------------------- client


class _AmiFactory(Factory):
    """Builds the client's protocols (remembering the last one for :class:`_GateFactory`)."""

    noisy = False

    def __init__(self, client: AmiClient) -> None:
        self._client = client
        self.last_built: AmiProtocol | None = None

    def buildProtocol(self, addr: IAddress | None) -> AmiProtocol:
        protocol = self._client._build_protocol()
        protocol.factory = self
        self.last_built = protocol
        return protocol


class _GateProtocol(Protocol):
    """Sits between the transport and ClientService's protocol proxy.

    ClientService's state machine has no transition for a connection lost while
    ``prepareConnection`` is pending, or after it failed (automat raises
    ``NoTransition``, and a failed prepare leaves the socket open). Until the client
    marks the session supervised (login and resync done), the gate delivers the loss to
    the :class:`AmiProtocol` alone; from then on through the proxy, so ClientService
    reconnects.
    """

    def __init__(self, inner: IProtocol, ami: AmiProtocol) -> None:
        self.inner = inner
        self._inner = cast(_ProtocolLike, inner)
        self.ami = ami

    def makeConnection(self, transport: ITransport) -> None:
        self.transport = transport
        self.connected = 1
        self._inner.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        self._inner.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = 0
        if self.ami._supervised:
            self._inner.connectionLost(reason)
        else:
            self.ami.connectionLost(reason)


class _GateFactory(Factory):
    noisy = False

    def __init__(self, wrapped: IProtocolFactory, ami_factory: _AmiFactory) -> None:
        self._wrapped = cast(_ProtocolFactory, wrapped)
        self._ami_factory = ami_factory

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        inner = self._wrapped.buildProtocol(addr)
        ami = self._ami_factory.last_built
        if inner is None or ami is None:
            return None
        return _GateProtocol(inner, ami)


@implementer(IStreamClientEndpoint)
class _GatedEndpoint:
    """Wraps the real endpoint so every connection goes through a :class:`_GateProtocol`."""

    def __init__(self, endpoint: IStreamClientEndpoint, ami_factory: _AmiFactory, log: Logger) -> None:
        self._endpoint = cast(_Endpoint, endpoint)
        self._ami_factory = ami_factory
        self._log = log

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        gate_factory = cast(IProtocolFactory, _GateFactory(protocolFactory, self._ami_factory))
        connecting = self._endpoint.connect(gate_factory)

        def connected(gate: IProtocol) -> IProtocol:
            return cast(_GateProtocol, gate).inner

        def failed(failure: Failure) -> Failure:
            if not isinstance(failure.value, CancelledError | ConnectingCancelledError):  # stopping: no failure
                self._log.warn("ami.connect_failed", endpoint=_describe(self._endpoint),
                               error=failure.getErrorMessage())
            return failure

        return connecting.addCallbacks(connected, failed)

    def __repr__(self) -> str:
        # Twisted's ClientService logs "Scheduling retry N to connect <repr> in S seconds."
        return f"AMI at {_describe(self._endpoint)}"


class AmiClient(Service):
    """A service that keeps one logged-in AMI session, reconnecting with backoff.

    It wraps :class:`~twisted.application.internet.ClientService`: each connection's
    ``prepareConnection`` step waits for the login, then resynchronises (``CoreShowChannels``
    and ``QueueStatus``, handed to :meth:`on_resync` listeners); events that arrive
    meanwhile are held and delivered to subscribers afterwards. A refused login or a
    refused connection (Asterisk down) counts as a failed attempt and is retried with
    ``retry_policy`` (default: exponential backoff from 0.5 s up to 10 s) for as long as
    the service runs.

    :meth:`send` and :meth:`originate` use the current session and **fail fast** with
    :class:`AmiNotConnected` when there is none: a dialer must not queue originates that
    would all fire, stale, when Asterisk comes back. Code that must wait uses
    :meth:`when_connected` first.
    """

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        credentials: _Credentials,
        clock: IReactorTime,
        *,
        retry_policy: Callable[[int], float] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 10.0,
        action_timeout: float = 10.0,
        login_timeout: float = 10.0,
        originate_margin: float = 10.0,
        boot_timeout: float = 60.0,
        action_id_prefix: str | None = None,
        log: Logger | None = None,
    ) -> None:
        self.endpoint = endpoint
        #: Seconds to wait for ``FullyBooted`` after login before resyncing anyway.
        self.boot_timeout = boot_timeout
        self.credentials = credentials
        self.clock: _Clock = cast(_Clock, clock)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.login_timeout = login_timeout
        self.originate_margin = originate_margin
        self._log = log or _log
        self._ids = _action_ids(action_id_prefix or _new_prefix())
        self.subscribers = Subscribers(self._log)
        self.counters = AmiCounters()
        self._resync_callbacks: list[ResyncCallback] = []
        self._protocol: AmiProtocol | None = None
        #: Sessions that completed login and resync (the first connection and every reconnection).
        self.connections_made = 0
        #: ``clock.seconds()`` when the current or last session became ready.
        self.last_connected: float | None = None
        #: ``clock.seconds()`` when the last ready session was lost.
        self.last_disconnected: float | None = None
        #: Resynchronisations delivered to listeners, and ones that failed (logged).
        self.resyncs = 0
        self.resync_failures = 0
        self._factory = _AmiFactory(self)
        self._service = ClientService(
            cast(IStreamClientEndpoint, _GatedEndpoint(endpoint, self._factory, self._log)),
            cast(IProtocolFactory, self._factory),
            retryPolicy=retry_policy if retry_policy is not None else backoffPolicy(initialDelay=0.5, maxDelay=10),
            clock=clock,
            prepareConnection=self._prepare,
        )

    # -- state for metrics and health -----------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a logged-in, resynchronised session is up."""
        return self._protocol is not None

    @property
    def reconnects(self) -> int:
        """Sessions made after the first one."""
        return max(0, self.connections_made - 1)

    @property
    def protocol(self) -> AmiProtocol | None:
        """The current session, or ``None``."""
        return self._protocol

    # -- public API -----------------------------------------------------------------

    def subscribe(self, callback: EventCallback, name: str | None = None) -> Subscription:
        """Call ``callback(event)`` for events named ``name`` (``None``: all), across reconnections."""
        return self.subscribers.subscribe(callback, name)

    def on_resync(self, callback: ResyncCallback) -> ListenerHandle:
        """Call ``callback(channels, queue_status)`` after every (re)connection.

        ``channels`` are the ``CoreShowChannel`` events, ``queue_status`` the
        ``QueueParams``/``QueueMember``/``QueueEntry`` events, both in wire order. The
        listener runs before any event of the new session reaches a subscriber; one
        raising is logged and the others still run.
        """
        self._resync_callbacks.append(callback)

        def remove() -> None:
            if callback in self._resync_callbacks:
                self._resync_callbacks.remove(callback)

        return ListenerHandle(remove)

    def when_connected(self, fail_after_failures: int | None = None) -> Deferred[AmiProtocol]:
        """Fire with the current session, or the next one once logged in and resynchronised.

        With ``fail_after_failures=n`` it fails after ``n`` failed connection attempts in
        a row (e.g. ``ConnectionRefusedError`` or :class:`AmiLoginFailed`); it fails with
        :class:`AmiNotConnected` when the service stops.
        """
        waiting = self._service.whenConnected(failAfterFailures=fail_after_failures)

        def stopped(failure: Failure) -> Failure:
            if isinstance(failure.value, CancelledError):
                raise AmiNotConnected("AMI client stopped")
            return failure

        return waiting.addCallbacks(lambda protocol: cast(AmiProtocol, protocol), stopped)

    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[AmiResult]:
        """Send ``action`` on the current session (see :meth:`AmiProtocol.send`).

        Fails fast with :class:`AmiNotConnected` when no session is up.
        """
        protocol = self._protocol
        if protocol is None:
            return fail(AmiNotConnected(f"AMI: not connected; {action.name} not sent"))
        return protocol.send(action, timeout, action_id=action_id)

    def originate(
        self, action: AmiAction, *, timeout: float | None = None, action_id: str | None = None
    ) -> Deferred[Message]:
        """Originate on the current session (see :meth:`AmiProtocol.originate`); fails fast when down."""
        protocol = self._protocol
        if protocol is None:
            return fail(AmiNotConnected("AMI: not connected; Originate not sent"))
        return protocol.originate(action, timeout=timeout, action_id=action_id)

    # -- twisted.application.service.Service ----------------------------------------

    def startService(self) -> None:
        """Start connecting (and keep reconnecting until stopped)."""
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._service.startService()

    def stopService(self) -> Deferred[None]:
        """Log off if connected, stop reconnecting and close the connection."""
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        protocol = self._protocol
        if protocol is not None:
            protocol.send(actions.logoff(), timeout=1.0).addErrback(lambda _failure: None)
        return self._service.stopService()

    # -- connection life cycle --------------------------------------------------------

    def _build_protocol(self) -> AmiProtocol:
        return AmiProtocol(
            self.credentials,
            cast(IReactorTime, self.clock),
            action_timeout=self.action_timeout,
            login_timeout=self.login_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            originate_margin=self.originate_margin,
            action_ids=self._ids,
            subscribers=self.subscribers,
            counters=self.counters,
            log=self._log,
        )

    def _prepare(self, connection: IProtocol) -> Deferred[None]:
        # ``connection`` is ClientService's proxy; attribute access reaches our protocol.
        proxy = cast(AmiProtocol, connection)
        self.subscribers.hold()
        ready: Deferred[None] = Deferred(lambda d: proxy.abort_connection())

        def logged_in(protocol: AmiProtocol) -> None:
            # Resync only once Asterisk has finished booting: before that QueueStatus is
            # an unknown command (app_queue not loaded) and the snapshot would be lost.
            booted = protocol.when_fully_booted(self.boot_timeout)

            def resync(was_booted: bool) -> None:
                if not was_booted:
                    self._log.warn("ami.not_fully_booted", timeout=self.boot_timeout)
                self._resync(protocol).addBoth(resynced, protocol)

            booted.addCallbacks(resync, lambda failure: resynced(failure, protocol))

        def resynced(outcome: object, protocol: AmiProtocol) -> None:
            if ready.called or not protocol.connected:
                self.subscribers.release()
                if not ready.called:
                    ready.errback(AmiConnectionLost(None))
                return
            protocol._supervised = True
            self._protocol = protocol
            protocol.notify_lost(lambda reason: self._lost(protocol, reason))
            self.connections_made += 1
            self.last_connected = self.clock.seconds()
            transport = protocol._transport()
            peer = transport.getPeer() if transport is not None else None
            self._log.info(
                "ami.connected", peer=str(peer), connections=self.connections_made, resynced=outcome is True
            )
            self.subscribers.release()
            ready.callback(None)

        def login_failed(failure: Failure) -> None:
            self.subscribers.release()
            if not ready.called:
                ready.errback(failure)

        proxy.when_logged_in().addCallbacks(logged_in, login_failed)
        return ready

    def _resync(self, protocol: AmiProtocol) -> Deferred[bool]:
        channels = protocol.send(actions.core_show_channels())
        queues = protocol.send(actions.queue_status())
        gathered = gatherResults([channels, queues], consumeErrors=True)

        def deliver(results: list[AmiResult]) -> bool:
            self.resyncs += 1
            for callback in list(self._resync_callbacks):
                try:
                    callback(results[0].events, results[1].events)
                except Exception:  # noqa: BLE001 - one listener's bug must not starve the others; logged
                    self._log.failure("ami.resync_listener_failed", listener=repr(callback))
            return True

        def failed(failure: Failure) -> bool:
            if isinstance(failure.value, FirstError):
                failure = failure.value.subFailure
            if isinstance(failure.value, AmiConnectionLost):
                return False
            self.resync_failures += 1
            self._log.error("ami.resync_failed", error=failure.getErrorMessage())
            return False

        return gathered.addCallbacks(deliver, failed)

    def _lost(self, protocol: AmiProtocol, reason: Failure) -> None:
        if self._protocol is protocol:
            self._protocol = None
            self.last_disconnected = self.clock.seconds()
            self._log.warn("ami.disconnected", reason=reason.getErrorMessage())


def _describe(endpoint: object) -> str:
    """``host:port`` of a TCP client endpoint (Twisted keeps them private), else its repr."""
    host, port = getattr(endpoint, "_host", None), getattr(endpoint, "_port", None)
    return f"{host}:{port}" if host is not None and port is not None else repr(endpoint)
