"""Alembic's command line for the shipped migrations, without any ``alembic.ini``.

    python -m callcenter.storage.migrations --url sqlite:///var/callcenter.db current
    python -m callcenter.storage.migrations --url postgresql://cc@db/cc upgrade head
    python -m callcenter.storage.migrations --url sqlite:///tmp/dev.db \\
        revision --autogenerate --rev-id 0002 -m "add campaigns"

``--url`` defaults to the environment variable ``CALLCENTER_DB_URL``. Everything after
it is passed to Alembic's own argument parser (``--help`` lists the commands).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from alembic.config import CommandLine

from callcenter.storage.db import alembic_config


def main(argv: Sequence[str] | None = None) -> None:
    """Run one Alembic command against ``--url`` with the package's migrations."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--url", default=os.environ.get("CALLCENTER_DB_URL"))
    known, rest = parser.parse_known_args(argv)
    cli = CommandLine(prog="python -m callcenter.storage.migrations")
    options = cli.parser.parse_args(rest)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    config = alembic_config(known.url)
    config.cmd_opts = options
    cli.run_cmd(config, options)


if __name__ == "__main__":
    main()
