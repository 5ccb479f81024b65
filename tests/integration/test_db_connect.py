"""Connecting: failures are transient DatabaseUnavailableErrors that never show a password."""

from __future__ import annotations

import pytest
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from opencdp.db import Database
from opencdp.errors import DatabaseUnavailableError

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://opencdp:{PASSWORD}@127.0.0.1:1/opencdp",
        f"postgresql://opencdp@127.0.0.1:1/opencdp?password={PASSWORD}",
    ],
    ids=["in-userinfo", "in-query"],
)
def test_an_unreachable_server_is_transient_and_redacted(url: str) -> None:
    db = Database(SecretStr(url))

    with pytest.raises(DatabaseUnavailableError) as err:
        db.connect()

    assert err.value.retryable
    assert PASSWORD not in str(err.value)
    assert "postgresql://opencdp@127.0.0.1:1/opencdp" in str(err.value)
    assert err.value.hint is not None
    assert "OPENCDP_DATABASE__URL" in err.value.hint


def test_a_missing_database_is_reported_without_the_password(postgres_admin: str) -> None:
    url = make_conninfo(postgres_admin, dbname="opencdp_no_such_db", password=PASSWORD)

    with pytest.raises(DatabaseUnavailableError, match="opencdp_no_such_db") as err:
        Database(SecretStr(url)).connect()

    assert PASSWORD not in str(err.value)
