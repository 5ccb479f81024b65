"""A load that fails leaves the database as it was, for real (embedded PostgreSQL and
$OPENCDP_TEST_DATABASE_URL):

- `opencdp load` killed (SIGKILL) in the middle of its transaction: it is held there by a
  row lock this test takes on the load state, which the loader updates after it has
  written a table's rows; readers meanwhile see the old tables, and after the kill the
  database holds exactly the old state; the next load brings the new one;
- a historic load whose integrity check fails: an event trigger makes every new
  `customers__new` drop, change, duplicate or null a row on its way in; nothing changes
  and the error names the check and the table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from tests.support.curated import customer, event, write

from opencdp.db import Database
from opencdp.serve.load import IntegrityCheckError, load_tenant
from opencdp.settings import Settings, load_settings

pytestmark = pytest.mark.integration

TENANT = "acme"
SCHEMA = f"t_{TENANT}"
WAIT_SECONDS = 120


@pytest.fixture
def s(data_root: Path, clean_env: None, database: Database) -> Settings:
    return load_settings(data_root, database={"url": database.conninfo()})


def rows(database: Database, statement: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database.conninfo(), row_factory=dict_row) as conn:
        return conn.execute(statement.encode(), args).fetchall()


def state(database: Database) -> dict[str, Any]:
    """Everything a load may change in the tenant's schema."""
    tables = [r["tablename"] for r in rows(
        database, "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", SCHEMA
    )]  # fmt: skip
    return {
        "tables": tables,
        "customers": rows(database, f"SELECT * FROM {SCHEMA}.customers ORDER BY 1, 2"),
        "events": rows(database, f"SELECT * FROM {SCHEMA}.events ORDER BY event_id"),
        "load_state": rows(database, f"SELECT * FROM {SCHEMA}.load_state ORDER BY 1"),
    }


def first_version(settings: Settings) -> None:
    write(settings, TENANT, "customers", [
        customer("crm", "1", email="a@x.com"), customer("crm", "2"), customer("crm", "3"),
    ])  # fmt: skip
    write(settings, TENANT, "events", [event("segment", "e1")])
    load_tenant(settings, TENANT)


def second_version(settings: Settings) -> None:
    write(settings, TENANT, "customers", [
        customer("crm", "1", email="changed@x.com"), customer("crm", "3"), customer("crm", "4"),
    ])  # fmt: skip
    write(settings, TENANT, "events", [event("segment", "e1"), event("segment", "e2")])


# --- killed mid-transaction -----------------------------------------------------------------


def start_load(settings: Settings, database: Database, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENCDP_DATABASE__URL": database.conninfo()}
    log = (settings.root / "load.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "opencdp.cli.main", "--root", str(settings.root),
         "load", "--tenant", TENANT, *args],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


# The loader's session waits on a lock, having written rows into `customers`...
WROTE_CUSTOMERS = (
    " AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    "   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = a.pid AND l.granted"
    f"   AND n.nspname = '{SCHEMA}' AND c.relname = 'customers' AND l.mode = 'RowExclusiveLock')"
)
# ... or having created a table no other session can see yet (customers__new).
CREATED_A_TABLE = (
    " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted"
    "   AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'"
    "   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = l.relation))"
)


def wait_until_blocked(database: Database, process: subprocess.Popen[bytes], done: str) -> int:
    """The loader's backend pid, once it waits on a lock after it has `done` so."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the load ended before it reached the load state"
        waiting = rows(
            database,
            "SELECT a.pid FROM pg_stat_activity a WHERE a.datname = current_database()"
            " AND a.application_name = 'opencdp' AND a.wait_event_type = 'Lock'" + done,
        )
        if waiting:
            return int(waiting[0]["pid"])
        time.sleep(0.1)
    raise AssertionError("the load never reached the load state")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def wait_gone(database: Database, pid: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while rows(database, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid):
        assert time.monotonic() < deadline, "the killed loader's session never ended"
        time.sleep(0.1)


def kill_when_blocked(
    s: Settings, database: Database, done: str, before: dict[str, Any], *args: str
) -> None:
    """Run `opencdp load *args` until it has done `done` and waits on the load_state lock
    held here; check that readers still see `before`; SIGKILL it; release the lock and
    wait until its orphaned session ends."""
    with psycopg.connect(database.conninfo()) as holder:
        holder.execute(f"SELECT * FROM {SCHEMA}.load_state FOR UPDATE")
        process = start_load(s, database, *args)
        try:
            pid = wait_until_blocked(database, process, done)
            assert state(database) == before
            kill(process)
        finally:
            if process.poll() is None:
                process.kill()
        holder.rollback()  # the lock goes: the orphaned session finds its client gone
    wait_gone(database, pid)


def test_a_load_killed_mid_transaction_leaves_the_old_state(
    s: Settings, database: Database
) -> None:
    first_version(s)
    before = state(database)
    second_version(s)
    # Written, not committed: other sessions still read the old rows.
    kill_when_blocked(s, database, WROTE_CUSTOMERS, before)
    assert state(database) == before
    report = load_tenant(s, TENANT)
    assert report.tables["customers"].mode == "diff"
    customers = report.tables["customers"]
    assert (customers.rows_upserted, customers.rows_deleted) == (2, 1)
    emails = rows(database, f"SELECT source_id, email FROM {SCHEMA}.customers ORDER BY 1")
    assert emails == [
        {"source_id": "1", "email": "changed@x.com"},
        {"source_id": "3", "email": None},
        {"source_id": "4", "email": None},
    ]
    events = rows(database, f"SELECT event_id FROM {SCHEMA}.events ORDER BY 1")
    assert [r["event_id"] for r in events] == ["e1", "e2"]


def test_a_historic_load_killed_before_its_swap_changes_nothing(
    s: Settings, database: Database
) -> None:
    first_version(s)
    before = state(database)
    second_version(s)
    # Readers see the old tables, no __new one.
    kill_when_blocked(s, database, CREATED_A_TABLE, before, "--historic")
    assert state(database) == before
    report = load_tenant(s, TENANT, historic=True)
    assert report.tables["customers"].rows_upserted == 3
    customers = rows(database, f"SELECT source_id FROM {SCHEMA}.customers ORDER BY 1")
    assert [r["source_id"] for r in customers] == ["1", "3", "4"]


# --- failed integrity checks ----------------------------------------------------------------

# Each new customers__new gets a BEFORE INSERT trigger that does this to source_id '3'.
SABOTAGE = {
    "row count": "RETURN NULL;",
    "key checksum": "NEW.source_id := '3x'; RETURN NEW;",
    "key uniqueness": "NEW.source_id := '1'; RETURN NEW;",
    "not null": "NEW.source_id := NULL; RETURN NEW;",
}


def install_sabotage(database: Database, action: str) -> None:
    with psycopg.connect(database.conninfo(), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.sabotage_row() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN IF NEW.source_id = '3' THEN {action} END IF; RETURN NEW; END $$".encode()
        )
        conn.execute(
            "CREATE FUNCTION public.sabotage() RETURNS event_trigger LANGUAGE plpgsql AS $$"
            " DECLARE r record; BEGIN"
            " FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP"
            f"  IF r.object_identity = '{SCHEMA}.customers__new' THEN"
            f"   EXECUTE 'CREATE TRIGGER sabotage BEFORE INSERT ON {SCHEMA}.customers__new"
            "     FOR EACH ROW EXECUTE FUNCTION public.sabotage_row()';"
            "  END IF; END LOOP; END $$".encode()
        )
        conn.execute(
            "CREATE EVENT TRIGGER sabotage ON ddl_command_end WHEN TAG IN ('CREATE TABLE')"
            " EXECUTE FUNCTION public.sabotage()"
        )


@pytest.mark.parametrize("check", list(SABOTAGE))
def test_a_failed_check_changes_nothing_and_says_which(
    s: Settings, database: Database, check: str
) -> None:
    first_version(s)
    second_version(s)
    before = state(database)
    install_sabotage(database, SABOTAGE[check])
    with pytest.raises(IntegrityCheckError) as e:
        load_tenant(s, TENANT, historic=True)
    assert (e.value.check, e.value.table) == (check, "customers")
    assert f"integrity check {check!r} failed on table customers" in str(e.value)
    assert "changed nothing" in str(e.value)
    assert state(database) == before
