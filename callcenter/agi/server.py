"""Twisted FastAGI server: script routing and a Deferred/async API for handlers.

This module owns the FastAGI connection and nothing about what a call should do:
it feeds bytes to :class:`~callcenter.agi.codec.AgiReader`, routes the session to
the handler registered for its script (the path of ``agi_network_script``), and
gives that handler an :class:`AgiSession` whose commands return Deferreds (so
``await agi.get_data("beep", 5000, 2)`` works in an ``async def`` handler).

Rules it enforces:

* One command on the wire at a time; later ones wait in a queue. (Asterisk cannot
  take two: a command written while GET DATA or STREAM FILE runs makes that
  command stop without a reply, and the replies would go out of step.)
* Every command has a timeout on the injected clock. On expiry the command fails
  with :class:`AgiTimeoutError` and the connection is closed (the reply stream can
  no longer be matched to commands).
* ``HANGUP`` from Asterisk, a ``511`` reply or a lost connection end the session:
  the pending command and every later one fail with :class:`AgiHangupError`. The
  handler keeps running so it can finish its bookkeeping (``finally:`` blocks).
* When the handler returns (or raises) the connection is closed, so Asterisk moves
  on in the dialplan (``AGISTATUS=SUCCESS``). Handler exceptions are logged with
  the script name and the channel's uniqueid; they never reach the reactor.
* An unknown script is logged, reported on the Asterisk console with ``VERBOSE``,
  and the connection closed cleanly, so the dialplan continues.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter.agi.codec import (
    AgiCommand,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiHangupError,
    AgiProtocolError,
    AgiReader,
    AgiReply,
    AgiSessionClosedError,
    AgiTimeoutError,
    GetDataResult,
    PlaybackResult,
    format_command,
)
from callcenter.twisted_typing import Clock as _Clock
from callcenter.twisted_typing import DelayedCall as _DelayedCall
from callcenter.twisted_typing import Transport as _Transport

__all__ = ["AgiHandler", "AgiSession", "FastAgiFactory", "FastAgiProtocol"]

T = TypeVar("T")

AgiHandler = Callable[["AgiSession"], "Coroutine[Any, Any, object] | Deferred[Any]"]
"""A FastAGI script: ``async def handler(agi: AgiSession) -> None`` (or a function
returning a Deferred)."""

_log = Logger()


@dataclass
class _Pending:
    name: str
    line: bytes
    timeout: float
    deferred: Deferred[AgiReply]


class AgiSession:
    """One FastAGI session, as seen by a handler.

    ``env`` is the :class:`~callcenter.agi.codec.AgiEnvironment`. Every command
    returns a Deferred (await it in an ``async def``). Commands run one at a time
    in call order. Failures: :class:`AgiHangupError` once the call is gone,
    :class:`AgiTimeoutError` when Asterisk does not answer in time,
    :class:`~callcenter.agi.codec.AgiCommandError` when Asterisk rejects a command.
    Bad arguments raise :class:`~callcenter.agi.codec.AgiArgumentError` at once.

    ``timeout`` on any command overrides the factory's ``command_timeout`` (seconds;
    ``math.inf`` for none, e.g. for ``exec("Queue", ...)``).
    """

    def __init__(
        self,
        env: AgiEnvironment,
        *,
        clock: _Clock,
        command_timeout: float,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        log: Logger,
    ) -> None:
        self.env = env
        self._clock = clock
        self._command_timeout = command_timeout
        self._write = write
        self._close = close
        self._log = log
        self._queue: deque[_Pending] = deque()
        self._in_flight: _Pending | None = None
        self._timer: _DelayedCall | None = None
        self._end: Callable[[str], AgiError] | None = None
        self._hung_up = False

    # ----------------------------------------------------------------- status

    @property
    def hung_up(self) -> bool:
        """True once Asterisk said ``HANGUP`` (or 511) or the connection was lost."""
        return self._hung_up

    @property
    def closed(self) -> bool:
        """True once no more commands can be sent (hangup, timeout, handler done)."""
        return self._end is not None

    # --------------------------------------------------------------- commands

    def send_command(
        self, name: str, *args: str | int, timeout: float | None = None
    ) -> Deferred[AgiReply]:
        """Send any AGI command (arguments quoted); fire with its raw :class:`AgiReply`.

        510/520 replies are returned as they are; a 511 reply fails with
        :class:`AgiHangupError`.
        """
        return self._submit(name.upper(), format_command(name, *args), timeout)

    def run(self, command: AgiCommand[T], timeout: float | None = None) -> Deferred[T]:
        """Send a prepared :class:`~callcenter.agi.codec.AgiCommand`; fire with its result."""
        return self._submit(command.name, command.line, timeout).addCallback(
            command.interpret
        )

    def answer(self, timeout: float | None = None) -> Deferred[None]:
        """Answer the channel."""
        return self.run(AgiCommand.answer(), timeout)

    def stream_file(
        self,
        name: str,
        escape_digits: str = "",
        offset: int | None = None,
        timeout: float | None = None,
    ) -> Deferred[PlaybackResult]:
        """Play a sound file; fire with the escape digit pressed (or None) and endpos."""
        return self.run(AgiCommand.stream_file(name, escape_digits, offset), timeout)

    def get_data(
        self,
        prompt: str,
        timeout_ms: int | None = None,
        max_digits: int | None = None,
        timeout: float | None = None,
    ) -> Deferred[GetDataResult]:
        """Play ``prompt`` and collect DTMF; fire with ``GetDataResult(digits, timed_out)``.

        Unless ``timeout`` is given, the command may take the usual command timeout
        plus ``timeout_ms`` for each digit asked for.
        """
        if timeout is None and timeout_ms:
            timeout = self._command_timeout + timeout_ms / 1000 * max(
                1, max_digits or 1
            )
        return self.run(AgiCommand.get_data(prompt, timeout_ms, max_digits), timeout)

    def say_digits(
        self, digits: str | int, escape_digits: str = "", timeout: float | None = None
    ) -> Deferred[str | None]:
        """Say ``digits`` one by one; fire with the escape digit pressed, or None."""
        return self.run(AgiCommand.say_digits(digits, escape_digits), timeout)

    def get_variable(
        self, name: str, timeout: float | None = None
    ) -> Deferred[str | None]:
        """Fire with the channel variable's value, or None when it is not set."""
        return self.run(AgiCommand.get_variable(name), timeout)

    def get_full_variable(
        self, expression: str, channel: str | None = None, timeout: float | None = None
    ) -> Deferred[str | None]:
        """Evaluate a ``${...}`` expression on the channel; fire with its value or None."""
        return self.run(AgiCommand.get_full_variable(expression, channel), timeout)

    def set_variable(
        self, name: str, value: str | int, timeout: float | None = None
    ) -> Deferred[None]:
        """Set a channel variable."""
        return self.run(AgiCommand.set_variable(name, value), timeout)

    def exec(
        self, application: str, *args: str | int, timeout: float | None = None
    ) -> Deferred[int]:
        """Run a dialplan application (``args`` joined with ``,``); fire with its result.

        A missing application fails with ``AgiApplicationNotFoundError``. Long
        applications (Queue, Dial) need a ``timeout`` that covers them.
        """
        return self.run(AgiCommand.exec(application, *args), timeout)

    def hangup(
        self, channel: str | None = None, timeout: float | None = None
    ) -> Deferred[None]:
        """Hang up this channel (or the named one)."""
        return self.run(AgiCommand.hangup(channel), timeout)

    def verbose(
        self, message: str, level: int = 1, timeout: float | None = None
    ) -> Deferred[None]:
        """Write ``message`` to the Asterisk console at verbosity ``level``."""
        return self.run(AgiCommand.verbose(message, level), timeout)

    # ---------------------------------------------------------------- queueing

    def _submit(
        self, name: str, line: bytes, timeout: float | None
    ) -> Deferred[AgiReply]:
        if timeout is None:
            timeout = self._command_timeout
        if not timeout > 0:
            raise ValueError(
                f"command timeout must be > 0 (math.inf for none), not {timeout!r}"
            )
        if self._end is not None:
            return fail(self._end(name))
        pending = _Pending(name, line, timeout, Deferred(self._cancel))
        self._queue.append(pending)
        self._pump()
        return pending.deferred

    def _cancel(self, deferred: Deferred[AgiReply]) -> None:
        # A queued command is simply dropped. One already on the wire keeps its slot
        # until Asterisk replies (the reply is then discarded): the next command
        # must not go out while Asterisk is still busy with this one.
        for pending in self._queue:
            if pending.deferred is deferred:
                self._queue.remove(pending)
                return

    def _pump(self) -> None:
        if self._in_flight is not None or self._end is not None or not self._queue:
            return
        pending = self._queue.popleft()
        self._in_flight = pending
        if pending.timeout != math.inf:
            self._timer = self._clock.callLater(
                pending.timeout, self._timed_out, pending
            )
        self._log.debug(
            "AGI {uniqueid} >> {line!r}", uniqueid=self.env.uniqueid, line=pending.line
        )
        self._write(pending.line)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------- events from wire

    def reply_received(self, reply: AgiReply) -> None:
        """Deliver one reply from Asterisk to the command on the wire."""
        if reply.code == 100:
            self._log.debug(
                "AGI {uniqueid} interim reply {raw!r}",
                uniqueid=self.env.uniqueid,
                raw=reply.raw,
            )
            return
        pending = self._in_flight
        if pending is None:
            if self._end is not None:
                self._log.debug(
                    "AGI {uniqueid}: late reply {raw!r} ignored",
                    uniqueid=self.env.uniqueid,
                    raw=reply.raw,
                )
                return
            raise AgiProtocolError(
                f"reply with no command waiting for it: {reply.raw!r}", reply.raw
            )
        self._in_flight = None
        self._stop_timer()
        if reply.code == 511:
            self._hung_up = True
            self.end(
                lambda name: AgiHangupError(
                    f"{name}: channel hung up (511 on an earlier command)"
                )
            )
            if not pending.deferred.called:
                pending.deferred.errback(
                    AgiHangupError(f"{pending.name}: channel is dead ({reply.raw!r})")
                )
            return
        if not pending.deferred.called:
            pending.deferred.callback(reply)
        self._pump()

    def hangup_received(self) -> None:
        """Asterisk said ``HANGUP``: fail what is pending and everything after."""
        if self._end is None:
            self._log.info(
                "AGI {uniqueid} ({script}): channel hung up",
                uniqueid=self.env.uniqueid,
                script=self.env.script,
            )
            self._hung_up = True
        self.end(lambda name: AgiHangupError(f"{name}: channel hung up"))

    def connection_lost(self) -> None:
        """The TCP connection is gone: fail what is pending and everything after."""
        if self._end is None:
            self._hung_up = True
        self.end(lambda name: AgiHangupError(f"{name}: connection to Asterisk lost"))

    def _timed_out(self, pending: _Pending) -> None:
        self._timer = None
        if self._in_flight is not pending:
            return
        self._in_flight = None
        self._log.warn(
            "AGI {uniqueid} ({script}): {command} got no reply within {timeout}s; closing",
            uniqueid=self.env.uniqueid,
            script=self.env.script,
            command=pending.name,
            timeout=pending.timeout,
        )
        self.end(
            lambda name: AgiTimeoutError(
                f"{name}: session closed after {pending.name} timed out"
            )
        )
        if not pending.deferred.called:
            pending.deferred.errback(
                AgiTimeoutError(f"{pending.name}: no reply within {pending.timeout:g}s")
            )
        self._close()

    def end(self, error: Callable[[str], AgiError]) -> None:
        """Stop taking commands: fail the pending ones, and later ones, with ``error(name)``.

        The first call wins; the connection itself is left to the caller.
        """
        if self._end is not None:
            return
        self._end = error
        self._stop_timer()
        failing = list(self._queue)
        self._queue.clear()
        if self._in_flight is not None:
            failing.insert(0, self._in_flight)
            self._in_flight = None
        for pending in failing:
            if not pending.deferred.called:
                pending.deferred.errback(error(pending.name))


class FastAgiProtocol(Protocol):
    """One FastAGI connection from Asterisk: reads the environment, runs the handler."""

    def __init__(self, factory: FastAgiFactory) -> None:
        self.factory = factory
        self.session: AgiSession | None = None
        self._reader = AgiReader()
        self._env_timer: _DelayedCall | None = None
        self._closing = False

    def connectionMade(self) -> None:
        """Start waiting for the environment (it must come within ``command_timeout``)."""
        self.factory.connections.add(self)
        self._env_timer = self.factory.clock.callLater(
            self.factory.command_timeout, self._no_environment
        )

    def dataReceived(self, data: bytes) -> None:
        """Feed Asterisk's bytes to the reader and dispatch what comes out."""
        if self._closing:
            return
        try:
            for item in self._reader.feed(data):
                if self._closing:
                    return
                if isinstance(item, AgiEnvironment):
                    self._start(item)
                    continue
                session = self.session
                assert session is not None  # the reader yields the environment first
                if isinstance(item, AgiHangup):
                    session.hangup_received()
                else:
                    session.reply_received(item)
        except AgiProtocolError as exc:
            self._protocol_error(exc)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail every pending command; the handler finishes on its own."""
        self._closing = True
        self._stop_env_timer()
        self.factory.connections.discard(self)
        if self.session is not None:
            self.session.connection_lost()

    # ---------------------------------------------------------------- internals

    def _stop_env_timer(self) -> None:
        if self._env_timer is not None and self._env_timer.active():
            self._env_timer.cancel()
        self._env_timer = None

    def _no_environment(self) -> None:
        self._env_timer = None
        self.factory.log.warn(  # noqa: G010 - twisted.logger.Logger has no .warning()
            "FastAGI connection from {peer} sent no environment within {timeout}s; closing",
            peer=self._peer(),
            timeout=self.factory.command_timeout,
        )
        self._close()

    def _transport(self) -> _Transport | None:
        return cast(_Transport | None, self.transport)

    def _peer(self) -> str:
        transport = self._transport()
        return str(transport.getPeer()) if transport is not None else "?"

    def _close(self) -> None:
        self._stop_env_timer()
        transport = self._transport()
        if not self._closing:
            self._closing = True
            if transport is not None:
                transport.loseConnection()

    def _write(self, line: bytes) -> None:
        transport = self._transport()
        if transport is not None and not self._closing:
            transport.write(line)

    def _protocol_error(self, exc: AgiProtocolError) -> None:
        env = self.session.env if self.session is not None else None
        self.factory.log.error(
            "FastAGI protocol error from {peer} (script {script!r}, uniqueid {uniqueid}): {error}; closing",
            peer=self._peer(),
            script=env.script if env else None,
            uniqueid=env.uniqueid if env else None,
            error=str(exc),
        )
        if self.session is not None:
            self.session.end(
                lambda name: AgiSessionClosedError(f"{name}: session closed: {exc}")
            )
        self._close()

    def _start(self, env: AgiEnvironment) -> None:
        self._stop_env_timer()
        factory = self.factory
        self.session = session = AgiSession(
            env,
            clock=factory.clock,
            command_timeout=factory.command_timeout,
            write=self._write,
            close=self._close,
            log=factory.log,
        )
        handler = factory.router.get(env.script)
        if handler is None:
            factory.log.warn(  # noqa: G010 - twisted.logger.Logger has no .warning()
                "FastAGI: no handler for script {script!r} (channel {channel}, uniqueid {uniqueid}); "
                "closing so the dialplan continues",
                script=env.script,
                channel=env.channel,
                uniqueid=env.uniqueid,
            )
            handler = _unknown_script
        else:
            factory.log.info(
                "FastAGI: script {script!r} for {channel} (uniqueid {uniqueid})",
                script=env.script,
                channel=env.channel,
                uniqueid=env.uniqueid,
            )
        maybeDeferred(handler, session).addBoth(self._handler_done, session)

    def _handler_done(self, result: object, session: AgiSession) -> None:
        env = session.env
        log = self.factory.log
        if isinstance(result, Failure):
            if isinstance(result.value, AgiHangupError):
                log.info(
                    "FastAGI script {script!r} ended by hangup (uniqueid {uniqueid}): {error}",
                    script=env.script,
                    uniqueid=env.uniqueid,
                    error=result.getErrorMessage(),
                )
            else:
                log.failure(
                    "FastAGI handler for script {script!r} failed (uniqueid {uniqueid}, channel {channel})",
                    failure=result,
                    script=env.script,
                    uniqueid=env.uniqueid,
                    channel=env.channel,
                )
        session.end(
            lambda name: AgiSessionClosedError(f"{name}: the handler has returned")
        )
        self._close()


async def _unknown_script(agi: AgiSession) -> None:
    await agi.verbose(
        f"callcenter: no FastAGI handler for script {agi.env.script!r}", 1
    )


class FastAgiFactory(ServerFactory):
    """Builds :class:`FastAgiProtocol` for each connection from Asterisk.

    ``router`` maps a script name (the path of ``agi_network_script``, without
    slashes: ``"ivr/main"``) to its handler. ``clock`` is the reactor (or a
    ``Clock`` in tests); ``command_timeout`` is the default per-command timeout in
    seconds. ``connections`` holds the open connections.
    """

    noisy = False

    def __init__(
        self,
        router: Mapping[str, AgiHandler],
        clock: IReactorTime,
        command_timeout: float = 30.0,
        log: Logger | None = None,
    ) -> None:
        if not command_timeout > 0:
            raise ValueError(f"command_timeout must be > 0, not {command_timeout!r}")
        self.router: dict[str, AgiHandler] = {
            name.strip("/"): handler for name, handler in router.items()
        }
        self.clock: _Clock = cast(_Clock, clock)
        self.command_timeout = command_timeout
        self.log = log if log is not None else _log
        self.connections: set[FastAgiProtocol] = set()

    def buildProtocol(self, addr: IAddress | None) -> FastAgiProtocol:
        """One protocol per connection."""
        return FastAgiProtocol(self)
