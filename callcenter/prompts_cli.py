"""``callcenter prompts build``: render the IVR flows' prompts into Asterisk sound files.

Registered on the main parser by :func:`add_parser`; :func:`run` executes it. The work is
done by :func:`callcenter.prompts.build_prompts`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_FLOWS_DIR", "DEFAULT_OUT_DIR", "PROJECT_ROOT", "add_parser", "run"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOWS_DIR = PROJECT_ROOT / "ivr_flows"
DEFAULT_OUT_DIR = PROJECT_ROOT / "var" / "sounds"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``prompts build`` on an ``argparse`` sub-parsers object."""
    prompts = subparsers.add_parser("prompts", help="IVR prompt audio")
    sub = prompts.add_subparsers(dest="prompts_command", required=True, metavar="COMMAND")
    p: argparse.ArgumentParser = sub.add_parser(
        "build", help="render every flow's prompts to 8 kHz WAV files",
        description="Render the prompts of every IVR flow (FLOWS/*.yaml) with espeak-ng and "
        "sox into OUT/custom/<flow>/<prompt>-<language>.wav, which Asterisk plays as "
        "custom/<flow>/<prompt>-<language>. A recording in "
        "FLOWS/recordings/<flow>/<prompt>-<language>.wav (or .gsm) is converted instead. "
        "Prompts unchanged since the last build are skipped.")
    p.add_argument("--flows", type=Path, default=DEFAULT_FLOWS_DIR, metavar="DIR",
                   help=f"directory of flow YAML files (default {DEFAULT_FLOWS_DIR})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, metavar="DIR",
                   help=f"sounds directory to write (default {DEFAULT_OUT_DIR})")
    p.add_argument("--force", action="store_true",
                   help="render every prompt even when unchanged")
    p.add_argument("--timeout", type=_positive, default=60.0, metavar="SECONDS",
                   help="limit for each espeak-ng / sox run (default 60)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``prompts build``; 0 on success, 1 on a bad flow or a failed render."""
    from callcenter.prompts import PromptError, build_prompts

    def progress(action: str, output: str) -> None:
        print(f"{action:8} {args.out / output}")

    try:
        report = build_prompts(args.flows, args.out, force=args.force,
                               timeout=args.timeout, progress=progress)
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"prompts: {len(report.rendered)} rendered, {len(report.skipped)} unchanged, "
          f"{len(report.removed)} removed (into {args.out})")
    return 0


if __name__ == "__main__":  # pragma: no cover - manual use before the CLI wiring
    _parser = argparse.ArgumentParser(prog="callcenter")
    add_parser(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args()
    sys.exit(_args.func(_args))
