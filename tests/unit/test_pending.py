"""PendingWork: a stopping service waits for the writes it started, failed ones included."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from callcenter.pending import PendingWork


def test_wait_fires_once_every_tracked_deferred_has_and_results_pass_through() -> None:
    """Nothing running: no wait. Two running: wait fires after both, a failure does not leak."""
    work = PendingWork()
    assert work.wait() is None
    ok: Deferred[int] = Deferred()
    bad: Deferred[int] = Deferred()
    seen: list[object] = []
    work.track(ok).addCallback(seen.append)
    work.track(bad).addErrback(lambda failure: seen.append(type(failure.value)))
    assert len(work) == 2
    waited = work.wait()
    assert waited is not None
    fired: list[object] = []
    waited.addCallback(fired.append)
    ok.callback(7)
    assert fired == [] and len(work) == 1
    bad.errback(ValueError("write failed"))
    assert fired == [None] and len(work) == 0
    assert seen == [7, ValueError]
