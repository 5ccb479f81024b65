"""API keys of the serving API: created, listed and revoked here, verified on every request.

A token reads `ocdp_<key_id>_<secret>`: the key id (12 characters of lower-case base32) names
the row of `opencdp.api_keys`, the secret (32 random bytes, base64url) is known only to the
holder; the table keeps its SHA-256, so a token is shown once, when its key is created. With
256 random bits a slow password hash would buy nothing, and the API checks a key on every
request (docs/decisions/0008-serving.md).

The pure part (token format, checks, scopes, expiry parsing) is separate from the I/O: the
sync functions for the CLI and `KeyVerifier`, the API's async verifier with its short cache.
Neither a token nor a secret ever reaches a log line or an error message; key ids may.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from base64 import b32encode
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from opencdp.db import CONTROL_SCHEMA, Connection, Database, database_errors
from opencdp.errors import ConfigError, MigrationError, NotFoundError, TerminalError
from opencdp.logs import get_logger
from opencdp.names import check_name

log = get_logger(__name__)

PROFILES_READ = "profiles:read"
EVENTS_READ = "events:read"
ADMIN = "admin"
# In the order they are stored and shown; `admin` implies the others.
SCOPES = (PROFILES_READ, EVENTS_READ, ADMIN)

TOKEN_PREFIX = "ocdp_"  # noqa: S105 - the public prefix of every token
KEY_ID_LENGTH = 12
SECRET_BYTES = 32
SECRET_LENGTH = 43  # base64url of 32 bytes, without padding
TOKEN_LENGTH = len(TOKEN_PREFIX) + KEY_ID_LENGTH + 1 + SECRET_LENGTH
MAX_NAME_LENGTH = 200

_KEY_ID = re.compile(r"[a-z2-7]{12}")
_TOKEN = re.compile(r"ocdp_(?P<key_id>[a-z2-7]{12})_(?P<secret>[A-Za-z0-9_-]{43})")
_DURATION = re.compile(r"(?P<amount>\d{1,9})\s*(?P<unit>[smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_KEYS = sql.Identifier(CONTROL_SCHEMA, "api_keys")
_TENANTS = sql.Identifier(CONTROL_SCHEMA, "tenants")
_COLUMNS = sql.SQL("key_id, tenant, name, scopes, created_at, expires_at, revoked_at")
_SELECT_RECORD = sql.SQL(
    "SELECT key_id, tenant, secret_sha256, scopes, expires_at, revoked_at FROM {} WHERE key_id = %s"
).format(_KEYS)
_MIGRATE_HINT = "run `opencdp db migrate` to create the control schema's tables"


# --- errors --------------------------------------------------------------------------------


class InvalidKeyError(TerminalError):
    """The API key of a request was refused (HTTP 401 at the API edge)."""


class MalformedTokenError(InvalidKeyError):
    """The token is not of the form `ocdp_<key_id>_<secret>`."""


class UnknownKeyError(InvalidKeyError):
    """No API key has the token's key id."""


class WrongSecretError(InvalidKeyError):
    """The key id exists but the token's secret is not that key's."""


class RevokedKeyError(InvalidKeyError):
    """The key was revoked."""


class ExpiredKeyError(InvalidKeyError):
    """The key is past its expiry."""


class ScopeError(TerminalError):
    """The key is valid but lacks the scope the request needs (HTTP 403 at the API edge)."""


# --- what is stored and what a verified key grants -----------------------------------------

KeyStatus = Literal["active", "revoked", "expired"]


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret, nor the secret's hash."""

    key_id: str
    tenant: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime | None = None) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified request is: the key, its tenant and what the key may do."""

    key_id: str
    tenant: str
    scopes: tuple[str, ...]  # in the order of SCOPES

    def allows(self, scope: str) -> bool:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        return scope in self.scopes or ADMIN in self.scopes

    def require(self, scope: str) -> None:
        """Raise `ScopeError` unless the key has `scope` (or `admin`)."""
        if not self.allows(scope):
            raise ScopeError(
                f"API key {self.key_id} does not have the scope {scope}",
                hint=f"use a key created with --scope {scope} (or --scope admin)",
            )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What verification needs of a stored key."""

    key_id: str
    tenant: str
    secret_sha256: bytes = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedToken:
    key_id: str
    secret_sha256: bytes = field(repr=False)


@dataclass(frozen=True)
class NewToken:
    key_id: str
    token: str = field(repr=False)
    secret_sha256: bytes = field(repr=False)


# --- pure ----------------------------------------------------------------------------------


def new_token() -> NewToken:
    """A fresh key id and secret, as the token shown once and the hash that is stored."""
    key_id = b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:KEY_ID_LENGTH]
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(key_id, f"{TOKEN_PREFIX}{key_id}_{secret}", _hash(secret))


def parse_token(token: str) -> ParsedToken:
    """The key id and the secret's hash of `token`, or `MalformedTokenError` (not echoing it)."""
    if not token:
        raise MalformedTokenError(
            "no API key was given", hint="send it as the header Authorization: Bearer ocdp_..."
        )
    # The length first: a long string is refused without further work.
    match = _TOKEN.fullmatch(token) if len(token) == TOKEN_LENGTH else None
    if match is None:
        reason = (
            "it does not start with ocdp_"
            if not token.startswith(TOKEN_PREFIX)
            else f"it is not {TOKEN_LENGTH} characters of the form ocdp_<key id>_<secret>"
        )
        raise MalformedTokenError(
            f"the API key is malformed: {reason}",
            hint="use the whole token printed by `opencdp keys create`",
        )
    return ParsedToken(match["key_id"], _hash(match["secret"]))


def check_key(record: KeyRecord | None, token: ParsedToken, now: datetime) -> Principal:
    """The principal of a parsed token given its stored record, or why it is refused.

    The secret is compared first, so that only the holder of the secret learns whether the
    key was revoked or has expired.
    """
    if record is None:
        raise UnknownKeyError(
            f"no API key has the id {token.key_id}",
            hint="it may have been deleted, or belong to another database",
        )
    if not hmac.compare_digest(record.secret_sha256, token.secret_sha256):
        raise WrongSecretError(
            f"the secret does not match API key {token.key_id}",
            hint="use the whole token printed by `opencdp keys create`",
        )
    if record.revoked_at is not None:
        raise RevokedKeyError(
            f"API key {record.key_id} was revoked at {_show(record.revoked_at)}",
            hint="create a new key with `opencdp keys create`",
        )
    if record.expires_at is not None and record.expires_at <= now:
        raise ExpiredKeyError(
            f"API key {record.key_id} expired at {_show(record.expires_at)}",
            hint="create a new key with `opencdp keys create`",
        )
    return Principal(record.key_id, record.tenant, record.scopes)


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, each once, in their canonical order; at least one."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ConfigError(
            f"unknown scope(s): {', '.join(repr(s) for s in unknown)}",
            hint=f"scopes are {', '.join(SCOPES)} (admin implies the others)",
        )
    if not wanted:
        raise ConfigError(
            "an API key needs at least one scope", hint=f"give one of {', '.join(SCOPES)}"
        )
    return tuple(s for s in SCOPES if s in wanted)


def check_key_name(name: str) -> str:
    """A key's name, stripped: what it is for, shown by `opencdp keys list`."""
    stripped = name.strip()
    if not stripped or len(stripped) > MAX_NAME_LENGTH or not stripped.isprintable():
        raise ConfigError(
            "an API key name must be 1 to 200 printable characters",
            hint="name it after what uses it, for example 'checkout-service'",
        )
    return stripped


def check_key_id(key_id: str) -> str:
    """`key_id` if it has the form of a key id; a whole token is refused without echoing it."""
    if _KEY_ID.fullmatch(key_id):
        return key_id
    token = _TOKEN.fullmatch(key_id)
    if token is not None:
        raise ConfigError(
            "that is a whole API key token, not its key id",
            hint=f"give only the key id: {token['key_id']}",
        )
    raise ConfigError(
        "not an API key id",
        hint="a key id is 12 characters of a-z and 2-7; `opencdp keys list` shows them",
    )


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` as a positive duration."""
    match = _DURATION.fullmatch(text.strip())
    amount = int(match["amount"]) if match else 0
    if match is None or amount == 0:
        raise ConfigError(
            f"cannot read {text!r} as a duration",
            hint="write a positive whole number and a unit s, m, h, d or w, e.g. 30d",
        )
    try:
        return timedelta(**{_UNITS[match["unit"]]: amount})
    except OverflowError:
        raise ConfigError(f"the duration {text!r} is too long", hint="use at most years") from None


def parse_expiry(expires_in: str | None, expires_at: str | None, now: datetime) -> datetime | None:
    """The expiry of a new key from `--expires-in` or `--expires-at` (ISO; UTC if no zone)."""
    if expires_in is not None and expires_at is not None:
        raise ConfigError(
            "give either --expires-in or --expires-at, not both", hint="keep the one you meant"
        )
    if expires_in is not None:
        try:
            return now + parse_duration(expires_in)
        except OverflowError:
            raise ConfigError(f"the duration {expires_in!r} is too long") from None
    if expires_at is None:
        return None
    try:
        when = datetime.fromisoformat(expires_at)
    except ValueError:
        raise ConfigError(
            f"cannot read {expires_at!r} as a date and time",
            hint="write it as ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00+02:00",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def check_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise ConfigError(
            "the expiry of an API key needs a time zone", hint="give an aware datetime (UTC)"
        )
    if expires_at <= now:
        raise ConfigError(
            f"the expiry {_show(expires_at)} is not in the future",
            hint="give a later time, or --expires-in 30d",
        )
    return expires_at


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def _show(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- stored keys (sync: the CLI, tools) ----------------------------------------------------


def create_key(
    db: Database,
    tenant: str,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key of `tenant` (which must be registered) and its token, shown only now."""
    check_name(tenant, "tenant")
    name = check_key_name(name)
    wanted = normalize_scopes(scopes)
    expires_at = check_expiry(expires_at, datetime.now(UTC))
    with database_errors(f"creating an API key for tenant {tenant}"), db.connect() as conn:
        _require_keys_table(conn)
        registered = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(_TENANTS), (tenant,)
        ).fetchone()
        if registered is None:
            raise NotFoundError(
                f"there is no tenant {tenant} in {db.location}",
                hint=f"create it with `opencdp db migrate --tenant {tenant}`, or check the name",
            )
        for attempt in range(3):
            new = new_token()
            try:
                with conn.transaction():  # a savepoint: a key id taken already is drawn again
                    row = conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (key_id, tenant, name, secret_sha256, scopes, "
                            "expires_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}"
                        ).format(_KEYS, _COLUMNS),
                        (new.key_id, tenant, name, new.secret_sha256, list(wanted), expires_at),
                    ).fetchone()
                break
            except psycopg.errors.UniqueViolation:
                if attempt == 2:
                    raise
    assert row is not None
    key = _api_key(row)
    log.info("API key created", key_id=key.key_id, tenant=tenant, scopes=",".join(wanted))
    return key, new.token


def list_keys(db: Database, tenant: str | None = None) -> list[ApiKey]:
    """Every key, or those of `tenant`, by tenant and creation time."""
    if tenant is not None:
        check_name(tenant, "tenant")
    where = sql.SQL("WHERE tenant = %s" if tenant is not None else "")
    params = (tenant,) if tenant is not None else ()
    with database_errors("listing API keys"), db.connect() as conn:
        _require_keys_table(conn)
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} {} ORDER BY tenant, created_at, key_id").format(
                _COLUMNS, _KEYS, where
            ),
            params,
        ).fetchall()
    return [_api_key(row) for row in rows]


def revoke_key(db: Database, key_id: str) -> ApiKey:
    """Revoke a key, from now on; revoking a revoked key changes nothing and returns it."""
    check_key_id(key_id)
    with database_errors(f"revoking API key {key_id}"), db.connect() as conn:
        _require_keys_table(conn)
        row = conn.execute(
            sql.SQL(
                "UPDATE {} SET revoked_at = greatest(now(), created_at) "
                "WHERE key_id = %s AND revoked_at IS NULL RETURNING {}"
            ).format(_KEYS, _COLUMNS),
            (key_id,),
        ).fetchone()
        if row is None:
            row = conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE key_id = %s").format(_COLUMNS, _KEYS), (key_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"no API key has the id {key_id}", hint="`opencdp keys list` shows the keys"
                )
        else:
            log.info("API key revoked", key_id=key_id, tenant=row["tenant"])
    return _api_key(row)


def verify_key(db: Database, token: str) -> Principal:
    """Check a token against the database now, without a cache (`KeyVerifier` caches)."""
    parsed = parse_token(token)
    with database_errors("checking an API key"), db.connect() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        row = cur.execute(_SELECT_RECORD, (parsed.key_id,)).fetchone()
    return check_key(_record(row), parsed, datetime.now(UTC))


def _require_keys_table(conn: Connection) -> None:
    found = conn.execute("SELECT to_regclass(%s) AS t", (f"{CONTROL_SCHEMA}.api_keys",)).fetchone()
    if found is None or found["t"] is None:
        raise MigrationError("the database has no API key table yet", hint=_MIGRATE_HINT)


def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        tenant=row["tenant"],
        name=row["name"],
        scopes=_ordered(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _record(row: tuple[Any, ...] | None) -> KeyRecord | None:
    if row is None:
        return None
    key_id, tenant, secret_sha256, scopes, expires_at, revoked_at = row
    return KeyRecord(key_id, tenant, bytes(secret_sha256), _ordered(scopes), expires_at, revoked_at)


def _ordered(scopes: Iterable[str]) -> tuple[str, ...]:
    stored = set(scopes)
    return tuple(s for s in SCOPES if s in stored)


# --- the API's verifier (async, cached) ----------------------------------------------------


class KeyVerifier:
    """Verifies the token of each API request, reading a key from the database at most once
    every `cache_seconds` (0: on every request).

    The cache holds what the database said of a key id (including that there is none);
    the secret is checked, and expiry against the clock, on every request, so a revocation
    takes effect within `cache_seconds` and an expiry at once. Concurrent requests for a key
    that is not cached share one query.

    `source` is a connection string (the verifier then keeps a small pool of its own, opened
    by `open()` and closed by `close()`, or `async with`) or a pool the caller owns; either
    connects as the API's own user, which reads the control schema.
    """

    def __init__(
        self,
        source: str | AsyncConnectionPool[Any],
        *,
        cache_seconds: float,
        max_cached: int = 10_000,
        pool_size: int = 2,
    ) -> None:
        if not cache_seconds >= 0:
            raise ValueError("cache_seconds must be 0 or more")
        self._owned = isinstance(source, str)
        self._pool: AsyncConnectionPool[Any] = (
            AsyncConnectionPool(
                source,
                min_size=1,
                max_size=pool_size,
                kwargs={"autocommit": True, "application_name": "opencdp serve keys"},
                open=False,
                name="api keys",
            )
            if isinstance(source, str)
            else source
        )
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._pending: dict[str, asyncio.Task[KeyRecord | None]] = {}

    async def open(self) -> None:
        """Open the verifier's own pool (a pool given by the caller is the caller's to open)."""
        if self._owned:
            with database_errors("connecting to check API keys"):
                await self._pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        if self._owned:
            await self._pool.close()
        self._cache.clear()

    async def __aenter__(self) -> KeyVerifier:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def verify(self, token: str) -> Principal:
        """The principal of `token`, or an `InvalidKeyError` saying why not."""
        parsed = parse_token(token)
        cached = self._cache.get(parsed.key_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            record = cached[1]
        else:
            record = await self._load(parsed.key_id)
        return check_key(record, parsed, datetime.now(UTC))

    def forget(self, key_id: str | None = None) -> None:
        """Drop the cached state of `key_id`, or of every key."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    async def _load(self, key_id: str) -> KeyRecord | None:
        task = self._pending.get(key_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key_id))
            self._pending[key_id] = task
            task.add_done_callback(lambda done: self._fetched(key_id, done))
        # A request that is cancelled does not cancel the query the others wait for.
        return await asyncio.shield(task)

    def _fetched(self, key_id: str, task: asyncio.Task[KeyRecord | None]) -> None:
        self._pending.pop(key_id, None)
        if not task.cancelled():
            task.exception()  # retrieved: the waiters have it, asyncio need not warn

    async def _fetch(self, key_id: str) -> KeyRecord | None:
        started = time.monotonic()
        with database_errors("checking an API key"):
            async with self._pool.connection() as conn:
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(_SELECT_RECORD, (key_id,))
                row = await cur.fetchone()
        record = _record(row)
        if self._cache_seconds > 0:
            if len(self._cache) >= self._max_cached:
                self._evict(started)
            self._cache[key_id] = (started, record)
        return record

    def _evict(self, now: float) -> None:
        fresh = {k: v for k, v in self._cache.items() if now - v[0] < self._cache_seconds}
        # Still full (a flood of made-up key ids): start over rather than grow.
        self._cache = fresh if len(fresh) < self._max_cached else {}
