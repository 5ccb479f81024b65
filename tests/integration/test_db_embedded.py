"""The embedded server: started on demand, shared by processes, stopped on request."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opencdp.db import Database, EmbeddedServer, embedded_pgdata, ensure_tenant
from opencdp.db.schemas import tenant_migrations
from opencdp.errors import ConfigError
from opencdp.settings import load_settings

pytestmark = pytest.mark.integration

OPENCDP = Path(sys.executable).with_name("opencdp")


def _opencdp(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `opencdp` command with no OPENCDP_* settings but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    return subprocess.run(
        [str(OPENCDP), "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=clean | env,
        timeout=300,
        check=False,
    )


def _pid(status_output: str) -> int:
    match = re.search(r"pid (\d+)", status_output)
    assert match, status_output
    return int(match[1])


def test_the_server_starts_on_demand_and_is_reused(embedded_root: Path, clean_env: None) -> None:
    settings = load_settings(embedded_root)
    db = Database.from_settings(settings)
    assert db.server is not None
    assert db.server.pgdata == embedded_pgdata(embedded_root).resolve()
    assert db.server.running() is None  # nothing starts before a connection is needed

    with db.connect() as conn:
        assert conn.info.server_version >= 160000
    first = db.server.running()
    ensure_tenant(db, "acme")
    other = Database.from_settings(settings)
    with other.connect():
        pass

    assert first is not None
    assert other.server is not None
    running = other.server.running()
    assert running is not None
    assert running.pid == first.pid


def test_a_stopped_server_starts_again_with_its_data(embedded_root: Path) -> None:
    server = EmbeddedServer(embedded_pgdata(embedded_root))
    first = server.start()
    db = Database(server=server)
    ensure_tenant(db, "acme")

    assert server.stop() is True
    assert server.running() is None
    assert server.stop() is False

    with db.connect() as conn:  # starts it again, in this same process
        rows = conn.execute("SELECT name FROM opencdp.tenants").fetchall()
    second = server.running()
    assert second is not None
    assert second.pid != first.pid
    assert rows == [{"name": "acme"}]


@pytest.mark.slow
def test_processes_share_the_server_until_db_stop(embedded_root: Path) -> None:
    first = _opencdp(embedded_root, "db", "status")
    assert first.returncode == 0, first.stderr
    second = _opencdp(embedded_root, "db", "status")
    assert second.returncode == 0, second.stderr

    # The first process exited, and the second found its server running.
    assert _pid(first.stdout) == _pid(second.stdout)
    server = EmbeddedServer(embedded_pgdata(embedded_root))
    running = server.running()
    assert running is not None
    assert running.pid == _pid(first.stdout)

    stopped = _opencdp(embedded_root, "db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert server.running() is None
    assert "not running" in _opencdp(embedded_root, "db", "stop").stdout


@pytest.mark.slow
def test_db_migrate_sets_up_declared_and_named_tenants(embedded_root: Path) -> None:
    (embedded_root / "opencdp.yaml").write_text("tenants:\n  demo: {}\n", encoding="utf-8")

    migrated = _opencdp(embedded_root, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "opencdp: applied 0001_init" in migrated.stdout
    assert "t_demo: applied 0001_load_state" in migrated.stdout

    named = _opencdp(embedded_root, "db", "migrate", "--tenant", "acme")
    assert named.returncode == 0, named.stderr
    assert "opencdp: up to date" in named.stdout
    assert "t_acme: applied 0001_load_state" in named.stdout

    status = _opencdp(embedded_root, "db", "status").stdout
    latest = len(tenant_migrations())
    assert re.search(rf"t_acme +version {latest} of {latest}", status), status
    assert re.search(rf"t_demo +version {latest} of {latest}", status), status


@pytest.mark.slow
def test_the_cli_reports_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://opencdp:s3cret-pw@127.0.0.1:1/opencdp"

    status = _opencdp(tmp_path, "db", "status", OPENCDP_DATABASE__URL=url)
    stop = _opencdp(tmp_path, "db", "stop", OPENCDP_DATABASE__URL=url)

    assert status.returncode == 75  # transient: worth retrying
    assert "hint:" in status.stderr
    assert stop.returncode == 2  # a URL database is not OpenCDP's to stop
    for result in (status, stop):
        assert "s3cret-pw" not in result.stdout + result.stderr


def test_a_data_root_whose_path_holds_a_space_gets_a_clear_error(tmp_path: Path) -> None:
    """PostgreSQL would refuse the socket folder pgserver passes it unquoted."""
    pgdata = tmp_path / "my root" / "state" / "postgres"
    with pytest.raises(ConfigError, match="holds a space") as raised:
        EmbeddedServer(pgdata).start()
    assert "OPENCDP_DATABASE__URL" in str(raised.value)
    assert not pgdata.exists()
