"""The serving database: one place that decides where it is, and hands out connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row
from pydantic import SecretStr

from opencdp.db.conninfo import describe, parse_conninfo, redact
from opencdp.db.embedded import EmbeddedServer, embedded_pgdata
from opencdp.errors import DatabaseUnavailableError, QueryError, TerminalError
from opencdp.settings import Settings

# What `Database.connect()` gives: a psycopg connection whose rows are dicts.
Connection = psycopg.Connection[DictRow]


class Database:
    """A PostgreSQL reached by URL, or the embedded server, connected to on demand.

    Give exactly one of `url` (a libpq URL or key=value string, which may hold a password)
    and `server`. Nothing is started or connected until `connect()`.
    """

    def __init__(
        self,
        url: SecretStr | None = None,
        *,
        server: EmbeddedServer | None = None,
        connect_timeout: int = 10,
    ) -> None:
        where: SecretStr | EmbeddedServer
        if url is not None and server is None:
            parse_conninfo(url.get_secret_value())  # a malformed URL fails here, not later
            where = url
        elif server is not None and url is None:
            where = server
        else:
            raise ValueError("give either a database URL or an embedded server")
        self._where = where
        self._connect_timeout = connect_timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """`database.url` when it is set, else the embedded server under the data root."""
        if settings.database.url is not None:
            return cls(settings.database.url)
        return cls(server=EmbeddedServer(embedded_pgdata(settings.root)))

    @property
    def server(self) -> EmbeddedServer | None:
        """The embedded server, when OpenCDP runs the database itself."""
        return self._where if isinstance(self._where, EmbeddedServer) else None

    @property
    def location(self) -> str:
        """Where the database is, safe to print and log."""
        if isinstance(self._where, EmbeddedServer):
            return f"embedded PostgreSQL in {self._where.pgdata}"
        return describe(self._where.get_secret_value())

    def conninfo(self) -> str:
        """The connection string, password included: never log it. Starts the embedded server."""
        if isinstance(self._where, EmbeddedServer):
            return self._where.start().conninfo()
        return self._where.get_secret_value()

    def connect(self) -> Connection:
        """A new connection: autocommit off, rows as dicts.

        Use it in a `with` block, which commits on success, rolls back on error and closes.
        """
        conninfo = self.conninfo()
        try:
            return psycopg.connect(
                conninfo,
                autocommit=False,
                row_factory=dict_row,
                connect_timeout=self._connect_timeout,
                application_name="opencdp",
            )
        except psycopg.OperationalError as e:
            raise DatabaseUnavailableError(
                f"cannot connect to the serving database at {self.location}: "
                f"{redact(str(e).strip(), conninfo)}",
                hint=self._unavailable_hint(),
            ) from e

    def _unavailable_hint(self) -> str:
        if isinstance(self._where, EmbeddedServer):
            return (
                f"the embedded server may have stopped or crashed: see its log "
                f"{self._where.log_file}, then retry"
            )
        return (
            "check that PostgreSQL is running and reachable from here, and that "
            "OPENCDP_DATABASE__URL (host, port, user, password, database) is right"
        )


@contextmanager
def database_errors(
    what: str, *, error: type[TerminalError] = QueryError, hint: str | None = None
) -> Iterator[None]:
    """psycopg errors raised inside as OpenCDP errors that start with `what`.

    A lost connection, a cancelled statement or a full disk (psycopg's OperationalError) is
    transient; any other database error is `error`, with `hint`.
    """
    try:
        yield
    except psycopg.OperationalError as e:
        raise DatabaseUnavailableError(
            f"{what}: {e}", hint="the database went away or is overloaded; retry later"
        ) from e
    except psycopg.Error as e:
        raise error(f"{what}: {e}", hint=hint) from e
