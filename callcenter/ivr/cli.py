"""``callcenter ivr check FILE...``: validate IVR flow files.

Registered on the main parser by :func:`add_parser`; :func:`run` executes it. Prints
each problem as ``file:line:column: field: message`` on stderr and exits 1 when any
file has a problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from callcenter.ivr.check import check_file

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ivr check`` on an ``argparse`` sub-parsers object."""
    ivr = subparsers.add_parser("ivr", help="IVR flows")
    sub = ivr.add_subparsers(dest="ivr_command", required=True, metavar="COMMAND")
    p: argparse.ArgumentParser = sub.add_parser(
        "check", help="validate IVR flow files",
        description="Report unknown node kinds, dangling targets, unreachable nodes, missing "
        "prompts or languages and loops without exit, with file and line.")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Check every file; 0 when all are valid, 1 otherwise."""
    failed = 0
    for path in args.files:
        try:
            problems = check_file(path)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"{path}: OK")
    if failed:
        print(f"{failed} of {len(args.files)} flow file(s) invalid", file=sys.stderr)
    return 1 if failed else 0
