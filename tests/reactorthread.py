"""pytest plugin: Twisted's global reactor running in a daemon thread for the whole session.

Load it with ``-p tests.reactorthread`` (or ``pytest_plugins = ["tests.reactorthread"]``
in a conftest). Integration tests that talk to a real Asterisk need a running reactor
while the test itself blocks (starting, killing and restarting Asterisk, waiting for a
call to end). The fixture ``reactor_thread`` runs the reactor in its own thread and gives
the test a :class:`ReactorThread`:

- ``reactor_thread.call(fn, *args, timeout=10, **kwargs)`` runs ``fn`` in the reactor
  thread (through :func:`twisted.internet.threads.blockingCallFromThread`); when ``fn``
  returns a Deferred or a coroutine the call waits for its result. Exceptions come back
  to the test as they are (``pytest.raises`` works); no result within ``timeout``
  seconds fails the test with a message naming ``fn`` instead of hanging it.
- ``reactor_thread.wait_for(predicate, timeout=10)`` evaluates ``predicate()`` in the
  reactor thread until it returns something truthy (and returns that), or fails the
  test after ``timeout`` seconds.

Every object owned by the reactor (protocols, services, state models fed by them) must
only be touched through these two methods. The global reactor cannot be restarted, so
it runs once per session and is stopped at the end of the session. Only tests and the
composition root import the global reactor.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.python.failure import Failure

__all__ = ["ReactorThread", "reactor_thread"]

T = TypeVar("T")

#: Extra seconds the test thread waits beyond ``timeout`` for the reactor thread to
#: report back; only reached when the reactor itself is stuck.
_GRACE = 5.0


class ReactorThread:
    """A running global reactor, as a test sees it (see the module docstring)."""

    def __init__(self, reactor: Any, thread: threading.Thread) -> None:
        self.reactor = reactor
        self.thread = thread

    @property
    def clock(self) -> IReactorTime:
        """The reactor as a clock (what the project's classes take as ``clock``)."""
        return cast(IReactorTime, self.reactor)

    def _check_running(self, what: str) -> None:
        if not self.thread.is_alive() or not self.reactor.running:
            pytest.fail(
                f"reactor_thread: the reactor is not running ({what})", pytrace=False
            )

    def call(
        self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0, **kwargs: Any
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in the reactor thread; return its (awaited) result.

        A Deferred or coroutine result is waited for, at most ``timeout`` seconds; then
        the Deferred is cancelled and the test fails, naming ``fn``. Exceptions raised
        by ``fn`` or carried by its Deferred are re-raised here unchanged.
        """
        name = getattr(fn, "__qualname__", None) or repr(fn)
        self._check_running(f"calling {name}")
        timed_out = False

        def run() -> defer.Deferred[Any]:
            result = defer.maybeDeferred(fn, *args, **kwargs)

            def await_coroutine(value: Any) -> Any:
                if inspect.iscoroutine(value):
                    return defer.Deferred.fromCoroutine(value)
                return value

            result.addCallback(await_coroutine)
            # Our own timer rather than Deferred.addTimeout: a canceller or an errback
            # earlier in the chain may turn the CancelledError into something else (an
            # AmiNotConnected, say), and the test must still read "timed out".
            done: defer.Deferred[Any] = defer.Deferred()

            def expire() -> None:
                nonlocal timed_out
                timed_out = True
                result.cancel()
                if not done.called:
                    done.errback(
                        defer.TimeoutError(f"{name}: no result within {timeout:g} s")
                    )

            timer = self.reactor.callLater(timeout, expire)

            def finish(outcome: Any) -> None:
                if timer.active():
                    timer.cancel()
                if done.called:
                    return  # already reported as timed out
                if isinstance(outcome, Failure):
                    done.errback(outcome)
                else:
                    done.callback(outcome)

            result.addBoth(finish)
            return done

        # blockingCallFromThread waits without a limit; run it in a helper thread so a
        # stuck reactor fails the test instead of hanging the session.
        outcome: list[tuple[bool, Any]] = []

        def blocking() -> None:
            try:
                outcome.append(
                    (True, threads.blockingCallFromThread(self.reactor, run))
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
                outcome.append((False, exc))

        waiter = threading.Thread(
            target=blocking, name=f"reactor-call {name}", daemon=True
        )
        waiter.start()
        waiter.join(timeout + _GRACE)
        if not outcome:
            pytest.fail(
                f"reactor_thread.call({name}): the reactor did not answer within {timeout + _GRACE:g} s "
                "(is something blocking the reactor thread?)",
                pytrace=False,
            )
        ok, value = outcome[0]
        if ok:
            return value
        if timed_out:
            pytest.fail(
                f"reactor_thread.call({name}): no result within {timeout:g} s",
                pytrace=False,
            )
        raise value

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,
        *,
        interval: float = 0.05,
        message: str | Callable[[], str] | None = None,
    ) -> T:
        """Poll ``predicate()`` (run in the reactor thread) until it is truthy; return it.

        Fails the test after ``timeout`` seconds with ``message`` (a string, or a
        function called in the reactor thread to describe the state at that moment).
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self.call(predicate, timeout=max(timeout, 1.0))
            if value:
                return cast(T, value)
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        name = getattr(predicate, "__qualname__", None) or repr(predicate)
        if callable(message):
            detail = self.call(message)
        else:
            detail = message or f"{name} stayed false"
        pytest.fail(
            f"reactor_thread.wait_for: not true within {timeout:g} s: {detail}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def reactor_thread() -> Iterator[ReactorThread]:
    """The global reactor running in a daemon thread until the end of the session."""
    from twisted.internet import (
        reactor as global_reactor,  # tests may use the global reactor
    )

    reactor = cast(Any, global_reactor)
    core = cast(IReactorCore, reactor)
    if reactor.running:
        pytest.fail(
            "reactor_thread: the global reactor is already running", pytrace=False
        )
    thread = threading.Thread(
        target=core.run,
        kwargs={"installSignalHandlers": False},
        name="twisted-reactor",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not reactor.running:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(
                "reactor_thread: the global reactor did not start", pytrace=False
            )
        time.sleep(0.005)
    try:
        yield ReactorThread(reactor, thread)
    finally:
        if thread.is_alive():
            reactor.callFromThread(reactor.stop)
            thread.join(15)
