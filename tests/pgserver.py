"""pytest plugin: a throw-away PostgreSQL server for the tests marked ``postgres``.

Fixtures:

* ``postgres_url`` (session): the URL of an empty database the session may use. Taken
  from ``CALLCENTER_TEST_PG_URL`` when set; otherwise a private cluster is created with
  ``initdb`` in a temporary directory (owned by the ``postgres`` user when the tests run
  as root, since PostgreSQL refuses to run as root), started with ``pg_ctl`` on a free
  loopback port with its unix socket in that directory and fsync off, and removed at
  the end of the session.
* ``postgres_schema_url`` (function): a URL whose ``search_path`` is a fresh schema,
  dropped after the test, so every test starts from an empty database.

When no server can be had the tests are skipped with the reason, except with
``CI=true``, where they fail: CI must run them.

The PostgreSQL binaries are looked up in ``CALLCENTER_TEST_PG_BIN``, then on ``PATH``,
then in the newest ``/usr/lib/postgresql/*/bin``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

URL_ENV = "CALLCENTER_TEST_PG_URL"
BIN_ENV = "CALLCENTER_TEST_PG_BIN"
DATABASE = "callcenter_test"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be started; the message says why."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip, or fail when CI=true (CI must run the PostgreSQL tests)."""
    message = f"PostgreSQL not available: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def find_bindir() -> Path:
    """The directory holding initdb and pg_ctl; PostgresUnavailable if none."""
    configured = os.environ.get(BIN_ENV)
    if configured:
        candidates = [Path(configured)]
    else:
        on_path = shutil.which("initdb")
        candidates = [Path(on_path).parent] if on_path else []
        versions = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates.extend(versions)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailable(
        f"initdb/pg_ctl not found (set {BIN_ENV}, or install the postgresql package)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TemporaryCluster:
    """A PostgreSQL cluster in a temporary directory, run as ``user`` (None: ourselves)."""

    bindir: Path
    root: Path
    user: pwd.struct_passwd | None
    port: int = 0

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def _run(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs = {
                "user": self.user.pw_uid,
                "group": self.user.pw_gid,
                "extra_groups": [],
            }
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            check=False,
            timeout=START_TIMEOUT_SECONDS + 30,
            **kwargs,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            log = (
                self.logfile.read_text(errors="replace")
                if self.logfile.exists()
                else ""
            )
            raise PostgresUnavailable(
                f"{args[0]} exited with {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()} {log[-2000:]}".strip()
            )

    def init(self) -> None:
        """initdb with trust authentication for local connections only."""
        self._run(
            "initdb",
            "-D", str(self.datadir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip

    def start(self, attempts: int = 3) -> None:
        """pg_ctl start on a free loopback port (retried if the port got taken)."""
        for attempt in range(attempts):
            self.port = free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories='{self.root}'",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=50",
                ]
            )
            try:
                self._run(
                    "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_SECONDS),
                    "-D", str(self.datadir), "-l", str(self.logfile), "-o", options,
                )  # fmt: skip
                return
            except PostgresUnavailable:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (fast shutdown); errors are ignored."""
        with contextlib.suppress(
            PostgresUnavailable, OSError, subprocess.SubprocessError
        ):
            self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.datadir))

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _cluster_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' user to run the server as"
        ) from None


def _create_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """Start a private cluster, create the test database, yield its URL, remove it all."""
    bindir = find_bindir()
    user = _cluster_user()
    root = Path(tempfile.mkdtemp(prefix="callcenter-pg-"))
    cluster = TemporaryCluster(bindir=bindir, root=root, user=user)
    initialized = False
    try:
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster.init()
        initialized = True
        cluster.start()
        _create_database(cluster.url("postgres"), DATABASE)
        yield cluster.url(DATABASE)
    finally:
        if initialized:
            cluster.stop()  # also after a failed start: pg_ctl may have left a server
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty PostgreSQL database for this test session (see module doc)."""
    configured = os.environ.get(URL_ENV)
    if configured:
        yield configured
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(temporary_postgres())
        except PostgresUnavailable as exc:
            skip_or_fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - report any start-up failure the same way
            skip_or_fail(f"{type(exc).__name__}: {exc}")
        yield url


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """URL of ``postgres_url`` whose ``search_path`` is a new schema, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"test_{uuid.uuid4().hex[:12]}"
    base = make_url(postgres_url)
    libpq = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


__all__ = ["postgres_schema_url", "postgres_url", "temporary_postgres"]
