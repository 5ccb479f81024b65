"""API keys against a real PostgreSQL (embedded and $OPENCDP_TEST_DATABASE_URL): created,
listed, revoked, verified by the sync check and the API's cached async verifier, and the
`opencdp keys` commands."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from typer.testing import CliRunner

from opencdp.cli import main as cli
from opencdp.db import Database, ensure_tenant, migrate_control
from opencdp.errors import ConfigError, InvalidNameError, MigrationError, NotFoundError
from opencdp.serve.keys import (
    ADMIN,
    EVENTS_READ,
    PROFILES_READ,
    ApiKey,
    ExpiredKeyError,
    InvalidKeyError,
    KeyVerifier,
    MalformedTokenError,
    Principal,
    RevokedKeyError,
    UnknownKeyError,
    WrongSecretError,
    create_key,
    list_keys,
    new_token,
    revoke_key,
    verify_key,
)
from opencdp.serve.roles import tenant_role

pytestmark = pytest.mark.integration

# Roles are per server, not per database: names of this run's own, dropped after each test.
ACME = f"acme_{secrets.token_hex(4)}"
GLOBEX = f"globex_{secrets.token_hex(4)}"


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    ensure_tenant(database, ACME)
    ensure_tenant(database, GLOBEX)
    yield database
    with database.connect() as conn:
        for tenant in (ACME, GLOBEX):
            role = tenant_role(tenant)
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _secret(token: str) -> str:
    return token.split("_", 2)[2]


def _stored(db: Database, key_id: str) -> dict[str, object]:
    with db.connect() as conn:
        row = conn.execute("SELECT * FROM opencdp.api_keys WHERE key_id = %s", (key_id,)).fetchone()
    assert row is not None
    return dict(row)


def _expire(db: Database, key_id: str) -> None:
    # Time passes: the key's expiry is now behind.
    with db.connect() as conn:
        conn.execute(
            "UPDATE opencdp.api_keys SET created_at = now() - interval '2 days', "
            "expires_at = now() - interval '1 day' WHERE key_id = %s",
            (key_id,),
        )


# --- creating, listing ---------------------------------------------------------------------


def test_a_created_key_is_stored_hashed_and_verifies(db: Database) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    key, token = create_key(db, ACME, " reader ", [EVENTS_READ, PROFILES_READ], expires)
    assert token.startswith(f"ocdp_{key.key_id}_")
    assert (key.tenant, key.name, key.scopes) == (ACME, "reader", (PROFILES_READ, EVENTS_READ))
    assert key.expires_at == expires
    assert key.revoked_at is None
    assert key.status() == "active"
    stored = _stored(db, key.key_id)
    assert stored["secret_sha256"] == hashlib.sha256(_secret(token).encode()).digest()
    # The secret itself is nowhere in the row.
    assert _secret(token) not in repr(stored)
    assert verify_key(db, token) == Principal(key.key_id, ACME, (PROFILES_READ, EVENTS_READ))


def test_keys_are_listed_by_tenant_without_secrets(db: Database) -> None:
    first, token = create_key(db, ACME, "first", [ADMIN])
    second, _ = create_key(db, ACME, "second", [PROFILES_READ])
    other, _ = create_key(db, GLOBEX, "other", [EVENTS_READ])
    assert [k.key_id for k in list_keys(db)] == [first.key_id, second.key_id, other.key_id]
    assert list_keys(db, ACME) == [first, second]
    assert list_keys(db, GLOBEX) == [other]
    assert list_keys(db, "initech") == []
    assert all(isinstance(k, ApiKey) for k in list_keys(db))
    assert _secret(token) not in repr(list_keys(db))
    with pytest.raises(InvalidNameError):
        list_keys(db, "Acme; --")


def test_bad_creations_are_refused_and_create_nothing(db: Database) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"scopes": ["profiles:write"]}, ConfigError, "unknown scope"),
        ({"scopes": []}, ConfigError, "at least one scope"),
        ({"tenant": "initech"}, NotFoundError, "there is no tenant initech"),
        ({"tenant": "Initech!"}, InvalidNameError, "invalid tenant name"),
        ({"name": " "}, ConfigError, "1 to 200 printable"),
        ({"expires_at": past}, ConfigError, "not in the future"),
        ({"expires_at": datetime(2099, 1, 1)}, ConfigError, "time zone"),
    ]
    for changes, error, message in cases:
        args: dict[str, object] = {"tenant": ACME, "name": "k", "scopes": [PROFILES_READ]}
        args.update(changes)
        with pytest.raises(error, match=message):
            create_key(db, **args)  # type: ignore[arg-type]
    assert list_keys(db) == []


def test_the_table_refuses_bad_rows_whatever_the_code_does(db: Database) -> None:
    new = new_token()
    bad_rows = [
        (new.key_id, ACME, "k", new.secret_sha256, ["profiles:write"]),
        (new.key_id, ACME, "k", new.secret_sha256, []),
        (new.key_id, ACME, "k", new.secret_sha256, [None]),
        (new.key_id, ACME, "k", b"short", [ADMIN]),
        ("NOT-AN-ID", ACME, "k", new.secret_sha256, [ADMIN]),
        (new.key_id, "initech", "k", new.secret_sha256, [ADMIN]),
    ]
    for row in bad_rows:
        with db.connect() as conn, pytest.raises(psycopg.errors.IntegrityError):
            conn.execute(
                "INSERT INTO opencdp.api_keys (key_id, tenant, name, secret_sha256, scopes) "
                "VALUES (%s, %s, %s, %s, %s)",
                row,
            )


def test_without_the_control_schema_the_error_says_to_migrate(database: Database) -> None:
    with pytest.raises(MigrationError, match="no API key table") as err:
        list_keys(database)
    assert "opencdp db migrate" in str(err.value)
    migrate_control(database)
    assert list_keys(database) == []


# --- refusals ------------------------------------------------------------------------------


def test_every_refusal_of_a_token(db: Database) -> None:
    key, token = create_key(db, ACME, "k", [PROFILES_READ])
    revoked, revoked_token = create_key(db, ACME, "revoked", [ADMIN])
    revoke_key(db, revoked.key_id)
    expired, expired_token = create_key(db, ACME, "expired", [ADMIN])
    _expire(db, expired.key_id)
    unknown = new_token().token
    wrong_secret = f"ocdp_{key.key_id}_{_secret(new_token().token)}"
    cases: list[tuple[str, type[InvalidKeyError]]] = [
        ("", MalformedTokenError),
        ("not a key", MalformedTokenError),
        (token[:-1] + "é", MalformedTokenError),
        (token + "x" * 10_240, MalformedTokenError),
        (unknown, UnknownKeyError),
        (wrong_secret, WrongSecretError),
        (revoked_token, RevokedKeyError),
        (expired_token, ExpiredKeyError),
    ]

    async def through_the_verifier() -> list[InvalidKeyError]:
        refusals = []
        async with KeyVerifier(db.conninfo(), cache_seconds=60) as verifier:
            for given, error in cases:
                with pytest.raises(error) as err:
                    await verifier.verify(given)
                refusals.append(err.value)
            assert (await verifier.verify(token)).key_id == key.key_id
        return refusals

    refusals = asyncio.run(through_the_verifier())
    for (given, error), refusal in zip(cases, refusals, strict=True):
        with pytest.raises(error):
            verify_key(db, given)
        assert type(refusal) is error
        for secret in (_secret(token), _secret(revoked_token), _secret(expired_token)):
            assert secret not in str(refusal)
    statuses = {k.key_id: k.status() for k in list_keys(db, ACME)}
    assert statuses == {key.key_id: "active", revoked.key_id: "revoked", expired.key_id: "expired"}


def test_revoking_is_at_once_and_revoking_again_changes_nothing(db: Database) -> None:
    key, token = create_key(db, ACME, "k", [ADMIN])
    revoked = revoke_key(db, key.key_id)
    assert revoked.revoked_at is not None
    assert revoked.status() == "revoked"
    with pytest.raises(RevokedKeyError, match=f"API key {key.key_id} was revoked"):
        verify_key(db, token)
    again = revoke_key(db, key.key_id)
    assert again == revoked  # the first revocation time stays
    with pytest.raises(NotFoundError, match="no API key has the id"):
        revoke_key(db, new_token().key_id)
    with pytest.raises(ConfigError, match="whole API key token") as err:
        revoke_key(db, token)
    assert _secret(token) not in str(err.value)


# --- the API's verifier --------------------------------------------------------------------


def test_the_cache_decides_how_soon_a_revocation_takes_effect(db: Database) -> None:
    key, token = create_key(db, ACME, "k", [PROFILES_READ])

    async def check() -> None:
        async with (
            AsyncConnectionPool(db.conninfo(), min_size=1, max_size=2, open=False) as pool,
        ):
            cached = KeyVerifier(pool, cache_seconds=3600)
            short = KeyVerifier(pool, cache_seconds=0.5)
            uncached = KeyVerifier(pool, cache_seconds=0)
            for verifier in (cached, short, uncached):
                assert (await verifier.verify(token)).tenant == ACME
            revoke_key(db, key.key_id)
            with pytest.raises(RevokedKeyError):
                await uncached.verify(token)
            # Within its cache time a verifier still trusts what it read...
            assert (await cached.verify(token)).key_id == key.key_id
            # ...but the secret is checked on every request all the same.
            with pytest.raises(WrongSecretError):
                await cached.verify(f"ocdp_{key.key_id}_{_secret(new_token().token)}")
            cached.forget(key.key_id)
            with pytest.raises(RevokedKeyError):
                await cached.verify(token)
            await asyncio.sleep(0.6)
            with pytest.raises(RevokedKeyError):
                await short.verify(token)

    asyncio.run(check())


def test_an_expiry_takes_effect_at_once_even_when_cached(db: Database) -> None:
    key, token = create_key(
        db, ACME, "k", [PROFILES_READ], datetime.now(UTC) + timedelta(seconds=2)
    )
    assert key.expires_at is not None
    expires_at = key.expires_at

    async def check() -> None:
        async with KeyVerifier(db.conninfo(), cache_seconds=3600) as verifier:
            assert (await verifier.verify(token)).key_id == key.key_id
            await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.1)
            with pytest.raises(ExpiredKeyError):
                await verifier.verify(token)

    asyncio.run(check())


def test_an_unknown_key_id_is_remembered_too(db: Database) -> None:
    unknown = new_token()

    async def check() -> None:
        async with KeyVerifier(db.conninfo(), cache_seconds=3600) as verifier:
            with pytest.raises(UnknownKeyError):
                await verifier.verify(unknown.token)
            # The key is created after: the verifier learns of it once it forgets.
            with db.connect() as conn:
                conn.execute(
                    "INSERT INTO opencdp.api_keys (key_id, tenant, name, secret_sha256, scopes) "
                    "VALUES (%s, %s, 'late', %s, %s)",
                    (unknown.key_id, ACME, unknown.secret_sha256, [ADMIN]),
                )
            with pytest.raises(UnknownKeyError):
                await verifier.verify(unknown.token)
            verifier.forget()
            assert (await verifier.verify(unknown.token)).scopes == (ADMIN,)

    asyncio.run(check())


def test_many_concurrent_requests_verify_the_right_keys(db: Database) -> None:
    keys = [create_key(db, tenant, "k", [ADMIN]) for tenant in (ACME, GLOBEX) for _ in range(3)]

    async def check() -> list[Principal]:
        async with KeyVerifier(db.conninfo(), cache_seconds=5, pool_size=2) as verifier:
            tokens = [token for _, token in keys] * 50
            return await asyncio.gather(*(verifier.verify(token) for token in tokens))

    principals = asyncio.run(check())
    expected = [(key.key_id, key.tenant) for key, _ in keys] * 50
    assert [(p.key_id, p.tenant) for p in principals] == expected


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def opencdp(db: Database, tmp_path: Path) -> object:
    if not any(group.name == "keys" for group in cli.app.registered_groups):
        cli._register()
    env = {"OPENCDP_DATABASE__URL": db.conninfo(), "COLUMNS": "200"}

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli.app, ["--root", str(tmp_path), *args], env=env)
        return result.exit_code, result.stdout, result.stderr

    return run


def test_the_keys_commands(opencdp, db: Database) -> None:  # type: ignore[no-untyped-def]
    code, out, err = opencdp(
        "keys", "create", "--tenant", ACME, "--name", "crm sync", "--expires-in", "30d"
    )
    assert code == 0, out + err
    token = next(line.split()[1] for line in out.splitlines() if line.startswith("token"))
    assert "profiles:read, events:read" in out  # the default scopes
    assert "only time the token is shown" in err
    assert verify_key(db, token).tenant == ACME
    key_id = token[5:17]

    code, out, err = opencdp("keys", "create", "--tenant", GLOBEX, "--name", "ops",
                             "--scope", "admin", "--expires-at", "2099-01-31")  # fmt: skip
    assert code == 0, out + err
    assert "2099-01-31 00:00" in out

    code, out, _ = opencdp("keys", "list")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "KEY", "ID", "TENANT", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED", "STATUS"
    ]  # fmt: skip
    assert key_id in out
    assert "crm sync" in out
    assert _secret(token) not in out
    code, out, _ = opencdp("keys", "list", "--tenant", GLOBEX)
    assert key_id not in out
    assert "ops" in out

    code, out, _ = opencdp("keys", "revoke", key_id)
    assert code == 0
    assert f"key {key_id} (crm sync) of tenant {ACME} is revoked since" in out
    code, again, _ = opencdp("keys", "revoke", key_id)
    assert code == 0
    assert again == out
    code, out, _ = opencdp("keys", "list", "--tenant", ACME)
    assert out.splitlines()[1].split()[-1] == "revoked"
    with pytest.raises(RevokedKeyError):
        verify_key(db, token)


def test_the_keys_commands_refuse_bad_input(opencdp, db: Database) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (("create", "--tenant", "initech", "--name", "x"), "there is no tenant initech"),
        (("create", "--tenant", ACME, "--name", "x", "--scope", "write"), "unknown scope"),
        (("create", "--tenant", ACME, "--name", "x", "--expires-in", "soon"), "as a duration"),
        (("create", "--tenant", ACME, "--name", "x", "--expires-at", "2000-01-01"), "future"),
        (
            ("create", "--tenant", ACME, "--name", "x", "--expires-in", "1d", "--expires-at", "x"),
            "not both",
        ),
        (("revoke", new_token().key_id), "no API key has the id"),
        (("revoke", "nope"), "not an API key id"),
    ]
    for args, message in cases:
        code, out, err = opencdp("keys", *args)
        assert code == 2, (args, out, err)
        assert message in err
    assert list_keys(db) == []
    # A whole token passed to revoke: refused, its secret not repeated.
    token = new_token().token
    code, _, err = opencdp("keys", "revoke", token)
    assert code == 2
    assert _secret(token) not in err
    assert token[5:17] in err


def test_creating_a_key_prepares_the_tenants_role(opencdp, db: Database) -> None:  # type: ignore[no-untyped-def]
    code, out, err = opencdp("keys", "create", "--tenant", ACME, "--name", "x")
    assert code == 0, out + err
    with db.connect() as conn:
        role = conn.execute(
            "SELECT rolcanlogin, has_table_privilege(oid, %s, 'INSERT') AS ins "
            "FROM pg_roles WHERE rolname = %s",
            (f"t_{ACME}.audit_log", tenant_role(ACME)),
        ).fetchone()
    assert role == {"rolcanlogin": False, "ins": True}


def test_list_says_when_there_are_none(opencdp) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = opencdp("keys", "list", "--tenant", ACME)
    assert code == 0
    assert out.strip() == f"no API keys for tenant {ACME}"
