"""Benchmark: every pacer on every simulated workload, side by side, with the issue's goals.

Delegates to :mod:`callcenter.dialer.simulate` (the same code as ``callcenter dialer
simulate``): N seeded days per workload per pacer (day d of a workload has the same seed
for every pacer, so all meet the same called parties), on 2 worker processes. Besides the
pacers it runs the three bounds of :data:`~callcenter.dialer.simulate.BOUNDS` (``oracle``,
``oracle-agents``, ``oracle-dials``: they see part of the future; rows labelled "bound,
not a pacer"). Prints the machine, the command, the table and each goal of issue 5 with
PASS/FAIL; exits 1 if a goal fails.

Run from the repository root: ``.venv/bin/python bench/dialer_pacing.py [--days 20]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from callcenter.dialer import simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    simulate.add_arguments(parser)
    args = parser.parse_args(argv)
    args.goals = True
    if not args.pacer:  # the pacers, then the bounds that see part of the future
        args.pacer = [*simulate.DEFAULT_PACERS,
                      *(b for b in simulate.BOUNDS if b not in simulate.DEFAULT_PACERS)]
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, "
          f"Python {platform.python_version()}")
    print(f"command: .venv/bin/python {' '.join(sys.argv)}")
    return simulate.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
