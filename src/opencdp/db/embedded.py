"""The embedded PostgreSQL server: a real PostgreSQL run from a folder under the data root.

The `pgserver` package ships the binaries, runs initdb and starts the server; it is imported
only when a server has to be started. The server outlives the process that started it, so
later commands and other processes reuse it through its `postmaster.pid` file, until
`opencdp db stop`. Under root, pgserver runs PostgreSQL as its own `pgserver` system user:
it hands the data folder to that user and opens every parent folder for traversal (o+rx).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from opencdp.db.postmaster import Postmaster, parse_postmaster
from opencdp.errors import ConfigError, DatabaseUnavailableError
from opencdp.logs import get_logger

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = get_logger(__name__)

# Slack between the start time PostgreSQL writes in postmaster.pid and the process's own.
_START_TIME_SLACK = 2.0
_POLL = 0.1


def embedded_pgdata(root: Path) -> Path:
    """The data folder of the embedded server of a data root."""
    return root / "state" / "postgres"


class EmbeddedServer:
    """The PostgreSQL server whose data lives in `pgdata`, started on demand."""

    def __init__(self, pgdata: Path, *, timeout: float = 60.0) -> None:
        self.pgdata = pgdata.resolve()
        self.timeout = timeout

    @property
    def log_file(self) -> Path:
        return self.pgdata / "log"

    def running(self) -> Postmaster | None:
        """The live server on this folder, ready or still starting; None when there is none."""
        try:
            text = (self.pgdata / "postmaster.pid").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        postmaster = parse_postmaster(text)
        if postmaster is None or not _is_alive(postmaster):
            return None
        return postmaster

    def start(self) -> Postmaster:
        """The running server, started first if there is none."""
        postmaster = self._wait_until_settled()
        if postmaster is not None:
            return postmaster
        self._launch()
        postmaster = self._wait_until_settled()
        if postmaster is None:
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL in {self.pgdata} stopped right after it started",
                hint=f"see its log {self.log_file}",
            )
        log.info("embedded postgres ready", pgdata=str(self.pgdata), pid=postmaster.pid)
        return postmaster

    def stop(self) -> bool:
        """Stop the server and wait until it is down; False when it was not running."""
        postmaster = self.running()
        if postmaster is None:
            return False
        try:
            # SIGINT is PostgreSQL's "fast shutdown", what `pg_ctl stop` sends by default.
            os.kill(postmaster.pid, signal.SIGINT)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + self.timeout
        while self.running() is not None:
            if time.monotonic() > deadline:
                raise DatabaseUnavailableError(
                    f"the embedded PostgreSQL in {self.pgdata} (pid {postmaster.pid}) did not "
                    f"stop within {self.timeout:.0f} s",
                    hint=f"see its log {self.log_file}; run `opencdp db stop` again",
                )
            time.sleep(_POLL)
        log.info("embedded postgres stopped", pgdata=str(self.pgdata), pid=postmaster.pid)
        return True

    def _wait_until_settled(self) -> Postmaster | None:
        """The ready server; None when there is none. Waits while one starts or stops."""
        deadline = time.monotonic() + self.timeout
        while (postmaster := self.running()) is not None and not postmaster.ready:
            if time.monotonic() > deadline:
                raise DatabaseUnavailableError(
                    f"the embedded PostgreSQL in {self.pgdata} is still "
                    f"{postmaster.status or 'starting'} after {self.timeout:.0f} s",
                    hint=f"see its log {self.log_file}",
                )
            time.sleep(_POLL)
        return postmaster

    def _launch(self) -> None:
        if any(c.isspace() for c in str(self.pgdata)):
            # pgserver hands the folder to PostgreSQL unquoted as its socket folder (-k), and
            # PostgreSQL refuses the words after the space ("invalid argument").
            raise ConfigError(
                f"the embedded PostgreSQL cannot run in {self.pgdata}: its path holds a space",
                hint="use a data root whose path has no spaces, or set OPENCDP_DATABASE__URL "
                "to use another PostgreSQL",
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        try:
            # Not pgserver.get_server: it caches one handle per folder for the life of the
            # process, which goes stale once the server is stopped. The constructor takes
            # pgserver's inter-process lock, runs initdb once and starts the server.
            _postgres_server_class()(self.pgdata, cleanup_mode=None)
        # pgserver fails with whatever its steps raise: a failed or slow pg_ctl or initdb,
        # file permissions, or a bare assert on the state of the server.
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as e:
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL in {self.pgdata} could not start: {e}",
                hint=f"see its log {self.log_file}; or set OPENCDP_DATABASE__URL to use "
                "another PostgreSQL",
            ) from e


def _postgres_server_class() -> type[PostgresServer]:
    # pgserver picks its lock folder when imported; when XDG_RUNTIME_DIR is unset (root,
    # containers, CI) platformdirs warns and falls back to a private temporary folder, which
    # is fine for a lock file. The warning would only be noise (and an error under pytest).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        from pgserver.postgres_server import PostgresServer
    return PostgresServer


def _is_alive(postmaster: Postmaster) -> bool:
    # A pid file left behind by a crash or a reboot can name a pid that another program now
    # has: the process must also have started when the server did.
    import psutil  # type: ignore[import-untyped]  # installed with pgserver

    try:
        created = float(psutil.Process(postmaster.pid).create_time())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process that exists; cannot tell more
    return abs(created - postmaster.started_at) <= _START_TIME_SLACK
