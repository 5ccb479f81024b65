"""Where the database is, said without its password; nothing here connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from opencdp.db import Database, embedded_pgdata
from opencdp.db.conninfo import describe, redact
from opencdp.db.postmaster import parse_postmaster
from opencdp.errors import ConfigError
from opencdp.settings import load_settings

PASSWORD = "s3cret-pw"
POSTMASTER_PID = Path(__file__).parent / "data" / "db" / "postmaster.pid"


@pytest.mark.parametrize(
    ("conninfo", "expected"),
    [
        (f"postgresql://cdp:{PASSWORD}@db.example.com:6432/serving", "cdp@db.example.com:6432"),
        (f"postgresql://cdp@db.example.com/serving?password={PASSWORD}", "cdp@db.example.com"),
        (f"host=db.example.com user=cdp password={PASSWORD} dbname=serving", "cdp@db.example.com/"),
        ("host=/run/pg port=5433 user=postgres dbname=serving", "postgres@/serving?host=/run/pg"),
    ],
    ids=["url", "url-query", "keywords", "socket"],
)
def test_describe_names_the_place_but_not_the_password(conninfo: str, expected: str) -> None:
    location = describe(conninfo)

    assert expected in location
    assert location.startswith("postgresql://")
    assert "serving" in location
    assert PASSWORD not in location


def test_redact_hides_the_password_wherever_it_appears() -> None:
    conninfo = f"host=db user=cdp password={PASSWORD}"
    text = f"failed for postgresql://cdp:{PASSWORD}@db/x, then with {PASSWORD} again"

    assert PASSWORD not in redact(text, conninfo)
    assert "postgresql://cdp:***@db/x" in redact(text, conninfo)


def test_a_malformed_url_is_a_config_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError) as err:
        Database(SecretStr(f"postgresql://cdp:{PASSWORD}%zz@db/serving"))

    assert PASSWORD not in str(err.value)
    assert err.value.__suppress_context__


def test_a_database_is_either_a_url_or_an_embedded_server() -> None:
    with pytest.raises(ValueError, match="either"):
        Database()


def test_settings_choose_the_url_or_the_embedded_server(tmp_path: Path, clean_env: None) -> None:
    url = f"postgresql://cdp:{PASSWORD}@db.example.com/serving"
    configured = Database.from_settings(load_settings(tmp_path, database={"url": url}))
    embedded = Database.from_settings(load_settings(tmp_path))

    assert configured.server is None
    assert configured.location == "postgresql://cdp@db.example.com/serving"
    assert embedded.server is not None
    assert embedded.server.pgdata == (tmp_path / "state" / "postgres").resolve()
    assert embedded.location == f"embedded PostgreSQL in {embedded_pgdata(tmp_path).resolve()}"


def test_a_ready_postmaster_pid_file_gives_a_socket_connection() -> None:
    postmaster = parse_postmaster(POSTMASTER_PID.read_text(encoding="utf-8"))

    assert postmaster is not None
    assert (postmaster.pid, postmaster.port, postmaster.started_at) == (7861, 5432, 1795630929)
    assert postmaster.ready
    params = conninfo_to_dict(postmaster.conninfo("serving"))
    assert params == {
        "host": "/srv/opencdp data/state/postgres",
        "port": "5432",
        "user": "postgres",
        "dbname": "serving",
    }


def test_a_postmaster_pid_file_being_written_is_not_ready() -> None:
    lines = POSTMASTER_PID.read_text(encoding="utf-8").splitlines()

    starting = parse_postmaster("\n".join(lines[:5]))

    assert starting is not None
    assert not starting.ready
    assert parse_postmaster("\n".join(lines[:2])) is None
    assert parse_postmaster("garbage\n\nnot a time\nport\n") is None


def test_a_server_listening_on_tcp_only_is_reached_on_its_address() -> None:
    text = "42\n/data\n1700000000\n5433\n\n127.0.0.1\n  1 2\nready\n"

    postmaster = parse_postmaster(text)

    assert postmaster is not None
    assert postmaster.socket_dir is None
    assert conninfo_to_dict(postmaster.conninfo())["host"] == "127.0.0.1"
