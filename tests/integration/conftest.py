"""PostgreSQL fixtures: one embedded server per session, a fresh database per test and backend.

Backends: "embedded" (a pgserver PostgreSQL started once for the session) and "external"
(the server at $OPENCDP_TEST_DATABASE_URL, skipped when that is unset). A test that asks for
`database` runs once per backend, each time on a database of its own that is dropped after.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import structlog
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from opencdp.db import Database, EmbeddedServer, embedded_pgdata
from opencdp.engine.base import Engine

TEST_DATABASE_URL = "OPENCDP_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_tmp() -> Iterator[Path]:
    """A folder for embedded servers' data, outside pytest's own temporary folders.

    pytest makes its per-user base folder private (0700) again whenever a session starts,
    and an embedded PostgreSQL started under root runs as the `pgserver` user, which must
    traverse the path to its data folder: another session starting at that moment would
    break it.
    """
    path = Path(tempfile.mkdtemp(prefix="opencdp-test-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_server(postgres_tmp: Path) -> Iterator[EmbeddedServer]:
    """The session's embedded PostgreSQL, running; stopped at the end of the session."""
    server = EmbeddedServer(postgres_tmp / "session" / "pgdata")
    server.start()
    yield server
    _stop(server)


@pytest.fixture
def embedded_root(postgres_tmp: Path) -> Iterator[Path]:
    """A data root of its own; an embedded server a test starts in it is stopped after."""
    root = Path(tempfile.mkdtemp(prefix="root-", dir=postgres_tmp))
    yield root
    _stop(EmbeddedServer(embedded_pgdata(root)))


@pytest.fixture(scope="session", params=["embedded", "external"])
def postgres_admin(request: pytest.FixtureRequest) -> str:
    """A superuser connection string to the backend's server (its `postgres` database)."""
    if request.param == "embedded":
        server: EmbeddedServer = request.getfixturevalue("embedded_server")
        return server.start().conninfo()
    url = os.environ.get(TEST_DATABASE_URL)
    if not url:
        pytest.skip(f"{TEST_DATABASE_URL} is not set")
    return url


@pytest.fixture
def database(postgres_admin: str) -> Iterator[Database]:
    """A `Database` on a new, empty database of the backend's server, dropped after the test."""
    name = f"opencdp_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield Database(SecretStr(make_conninfo(postgres_admin, dbname=name)))
    with psycopg.connect(postgres_admin, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _stop(server: EmbeddedServer) -> None:
    # A test that calls configure_logging leaves structlog writing to that test's captured
    # stderr, closed since: back to the defaults, which print to the current stdout.
    structlog.reset_defaults()
    server.stop()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) for this test module."""
    from tests.support.s3 import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[Engine]:
    """The session's Spark engine: a process runs one Spark master, started once (seconds)."""
    from opencdp.engine.spark_engine import SparkEngine

    with SparkEngine("local[2]") as engine:
        yield engine
