"""AMI throughput: this project's parser + call-state model against panoramisk's parser.

Usage (from the repository root)::

    .venv/bin/python bench/ami_throughput.py [--repeat N] [--chunk BYTES] [--capture PATH]

Input is the recorded Asterisk 22 capture (``tests/fixtures/ami/``), decompressed
once in memory and fed in ``--chunk``-byte pieces (64 KiB by default, like socket
reads). Each contender runs ``--repeat`` times, interleaved, and its best time counts:

* ``callcenter AmiParser + CallState``: ``AmiParser.feed`` then
  ``CallState.handle_all`` on every chunk (the work the AMI client does per read);
* ``callcenter AmiParser alone``: for reference;
* ``panoramisk AMIProtocol.data_received``: panoramisk's own parse path, unchanged:
  its ``AMIProtocol.data_received`` (decode, split on blank lines, keep the tail in
  its queue, ``Message.from_line``) with ``handle_message`` replaced by a list
  append, i.e. without the response matching and event dispatch that follow parsing.
  No event loop is involved: ``data_received`` is a plain method.

The goal (project issue): parse + call-state update at least 2x the messages/s of
panoramisk's parser alone. Exit status 0 after a run, 2 when panoramisk is missing.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callcenter.ami.codec import AmiParser
from callcenter.state.calls import CallState

_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CAPTURE = _ROOT / "tests" / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"
GOAL = 2.0


def run_callcenter(chunks: list[bytes]) -> int:
    """Parse every chunk and apply the messages to a fresh CallState; messages seen."""
    parser = AmiParser()
    state = CallState()
    feed = parser.feed
    handle_all = state.handle_all
    count = 0
    now = 0.0
    for chunk in chunks:
        messages = feed(chunk)
        count += len(messages)
        handle_all(messages, now)
        now += 0.001
    return count


def run_callcenter_parser(chunks: list[bytes]) -> int:
    """Parse every chunk with AmiParser alone; messages seen."""
    feed = AmiParser().feed
    count = 0
    for chunk in chunks:
        count += len(feed(chunk))
    return count


def make_panoramisk_runner() -> Callable[[list[bytes]], int] | None:
    """Build the panoramisk contender, or None when panoramisk is not installed."""
    try:
        from panoramisk.ami_protocol import AMIProtocol
    except ImportError:
        return None

    class _ParseOnly(AMIProtocol):  # type: ignore[misc]
        """panoramisk's protocol with the post-parse dispatch replaced by a list."""

        parsed: list[Any]

        def handle_message(self, message: Any) -> None:
            self.parsed.append(message)

    def run_panoramisk(chunks: list[bytes]) -> int:
        protocol = _ParseOnly()
        protocol.connection_made(None)  # sets its queue/version; transport unused
        protocol.parsed = []
        data_received = protocol.data_received
        for chunk in chunks:
            data_received(chunk)
        return len(protocol.parsed)

    return run_panoramisk


def _nproc() -> int:
    """Usable CPUs, as ``nproc`` counts them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def timed_run(
    runner: Callable[[list[bytes]], int], chunks: list[bytes]
) -> tuple[float, int]:
    """One timed run (after a collection, so garbage of the last run is not billed)."""
    gc.collect()
    start = time.perf_counter()
    count = runner(chunks)
    return time.perf_counter() - start, count


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=65536)
    args = parser.parse_args(argv)

    run_panoramisk = make_panoramisk_runner()
    if run_panoramisk is None:
        print(
            "panoramisk is not installed (only this benchmark needs it); install it:\n"
            "    pip install panoramisk   (here: .venv/bin/pip install panoramisk)",
            file=sys.stderr,
        )
        return 2
    from importlib.metadata import version

    data = gzip.decompress(args.capture.read_bytes())
    chunks = [data[i : i + args.chunk] for i in range(0, len(data), args.chunk)]

    contenders: list[tuple[str, Callable[[list[bytes]], int]]] = [
        ("callcenter AmiParser + CallState", run_callcenter),
        ("callcenter AmiParser alone", run_callcenter_parser),
        (f"panoramisk {version('panoramisk')} parser alone", run_panoramisk),
    ]
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, runner in contenders:
            seconds, count = timed_run(runner, chunks)
            best[name] = min(best.get(name, seconds), seconds)
            counts[name] = count

    print(
        f"capture: {args.capture.name} ({len(data):,} bytes), {args.chunk:,}-byte chunks, best of {args.repeat}"
    )
    print(
        f"machine: {platform.machine()}, nproc {_nproc()}, Python {platform.python_version()}"
    )
    print()
    print(
        f"| {'contender':<36} | {'messages':>8} | {'best s':>7} | {'messages/s':>10} | {'MB/s':>6} |"
    )
    print(f"|{'-' * 38}|{'-' * 9}:|{'-' * 8}:|{'-' * 11}:|{'-' * 7}:|")
    for name, _runner in contenders:
        seconds = best[name]
        rate = counts[name] / seconds
        print(
            f"| {name:<36} | {counts[name]:>8,} | {seconds:>7.4f} | {rate:>10,.0f} | {len(data) / seconds / 1e6:>6.1f} |"
        )
    ours = counts[contenders[0][0]] / best[contenders[0][0]]
    theirs = counts[contenders[2][0]] / best[contenders[2][0]]
    ratio = ours / theirs
    verdict = "goal met" if ratio >= GOAL else "goal NOT met"
    print()
    print(
        f"ratio (callcenter parse + call state) / (panoramisk parse alone): {ratio:.2f}x ({verdict}: >= {GOAL:.0f}x)"
    )
    if len(set(counts.values())) != 1:
        print(f"warning: message counts differ: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
