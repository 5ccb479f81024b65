"""Migration files and the decision of what to apply, without a database."""

from __future__ import annotations

import pytest

from opencdp.db.plan import AppliedMigration, Migration, checksum, parse_migrations
from opencdp.db.plan import plan_migrations as plan
from opencdp.db.schemas import control_migrations, tenant_migrations, tenant_schema
from opencdp.errors import InvalidNameError, MigrationError

FILES = {
    "0002_api_keys.sql": "CREATE TABLE api_keys (id int);",
    "0001_init.sql": "CREATE TABLE tenants (name text);",
    "0003_runs.sql": "CREATE TABLE runs (id int);",
}


def _applied(*migrations: Migration) -> list[AppliedMigration]:
    return [AppliedMigration(m.version, m.name, m.checksum) for m in migrations]


def test_migrations_are_ordered_by_version() -> None:
    migrations = parse_migrations(FILES, source="here")

    assert [m.label for m in migrations] == ["0001_init", "0002_api_keys", "0003_runs"]
    assert migrations[0].checksum == checksum(FILES["0001_init.sql"])


@pytest.mark.parametrize("name", ["1_init.sql", "0001-init.sql", "0001_Init.sql", "0001_.sql"])
def test_badly_named_files_are_refused(name: str) -> None:
    with pytest.raises(MigrationError, match="not named like a migration"):
        parse_migrations({name: "SELECT 1;"}, source="here")


@pytest.mark.parametrize(
    "names",
    [["0001_a.sql", "0003_c.sql"], ["0001_a.sql", "0001_b.sql"], ["0002_b.sql"]],
    ids=["gap", "duplicate", "not-from-one"],
)
def test_versions_must_run_from_one_without_gaps(names: list[str]) -> None:
    with pytest.raises(MigrationError, match="without gaps or duplicates"):
        parse_migrations(dict.fromkeys(names, "SELECT 1;"), source="here")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(MigrationError, match="is empty"):
        parse_migrations({"0001_init.sql": " \n"}, source="here")


def test_checksums_ignore_line_endings_only() -> None:
    assert checksum("CREATE TABLE a (id int);\r\n") == checksum("CREATE TABLE a (id int);\n")
    assert checksum("CREATE TABLE a (id int);") != checksum("CREATE TABLE a (id bigint);")


def test_plan_returns_what_is_pending_in_order() -> None:
    first, second, third = parse_migrations(FILES, source="here")

    assert plan([first, second, third], [], schema="s") == [first, second, third]
    assert plan([first, second, third], _applied(first), schema="s") == [second, third]
    assert plan([first, second, third], _applied(first, second, third), schema="s") == []


def test_plan_refuses_an_edited_migration() -> None:
    (applied,) = parse_migrations({"0001_init.sql": "CREATE TABLE a (id int);"}, source="x")
    (edited,) = parse_migrations({"0001_init.sql": "CREATE TABLE a (id bigint);"}, source="x")

    with pytest.raises(MigrationError, match="0001_init of schema s was edited") as err:
        plan([edited], _applied(applied), schema="s")
    assert err.value.hint is not None
    assert "new migration file" in err.value.hint


def test_plan_refuses_a_database_newer_than_the_files() -> None:
    first, second, _ = parse_migrations(FILES, source="here")

    with pytest.raises(MigrationError, match="does not ship"):
        plan([first], _applied(first, second), schema="s")


def test_plan_refuses_a_hole_in_what_is_applied() -> None:
    first, second, third = parse_migrations(FILES, source="here")

    with pytest.raises(MigrationError, match="has version 3 applied but not 0002_api_keys"):
        plan([first, second, third], _applied(first, third), schema="s")


def test_the_shipped_migrations_are_valid() -> None:
    assert control_migrations()[0].label == "0001_init"
    assert tenant_migrations()[0].label == "0001_load_state"


def test_tenant_schemas_are_prefixed_and_validated() -> None:
    assert tenant_schema("acme_corp") == "t_acme_corp"
    assert len(tenant_schema("a" * 48)) <= 63  # PostgreSQL's identifier limit
    with pytest.raises(InvalidNameError):
        tenant_schema('acme"; DROP SCHEMA opencdp; --')
