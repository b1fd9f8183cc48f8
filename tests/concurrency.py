"""Run the same work in several threads at once and collect what each round returned."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def run_at_once(threads: int, rounds: int, work: Callable[[], Iterable[T]]) -> list[T]:
    """Start ``threads`` threads together (a barrier); each calls ``work`` ``rounds`` times.

    Returns every item every call returned. Any exception in a thread fails the caller with
    an AssertionError listing them all (none is lost).
    """
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(rounds):
                items = list(work())
                with lock:
                    results.extend(items)
        except BaseException as exc:  # noqa: BLE001 - reported below, with the others
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in workers), "a worker thread did not finish"
    assert errors == [], errors
    return results
