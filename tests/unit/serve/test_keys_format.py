"""The pure parts of API keys, tenant roles and audit rows: token format, checks, scopes,
expiry parsing, role names and connection options, and what an audit row may hold."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from psycopg.conninfo import conninfo_to_dict

from opencdp.errors import ConfigError, InvalidNameError
from opencdp.serve.audit import AUDIT_ACTIONS, audit_row
from opencdp.serve.keys import (
    ADMIN,
    EVENTS_READ,
    PROFILES_READ,
    SCOPES,
    TOKEN_LENGTH,
    ExpiredKeyError,
    InvalidKeyError,
    KeyRecord,
    MalformedTokenError,
    ParsedToken,
    Principal,
    RevokedKeyError,
    ScopeError,
    UnknownKeyError,
    WrongSecretError,
    check_expiry,
    check_key,
    check_key_id,
    check_key_name,
    new_token,
    normalize_scopes,
    parse_duration,
    parse_expiry,
    parse_token,
)
from opencdp.serve.roles import tenant_connection_options, tenant_conninfo, tenant_role

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MIGRATIONS = resources.files("opencdp.db") / "migrations"


# --- tokens --------------------------------------------------------------------------------


def test_a_new_token_has_the_documented_form_and_parses_back() -> None:
    new = new_token()
    assert re.fullmatch(r"ocdp_[a-z2-7]{12}_[A-Za-z0-9_-]{43}", new.token)
    assert len(new.token) == TOKEN_LENGTH == 61
    assert new.token.startswith(f"ocdp_{new.key_id}_")
    parsed = parse_token(new.token)
    assert parsed.key_id == new.key_id
    assert parsed.secret_sha256 == new.secret_sha256
    secret = new.token.split("_", 2)[2]
    assert new.secret_sha256 == hashlib.sha256(secret.encode()).digest()
    # Neither the token nor the hash shows in a repr (logs, tracebacks).
    assert secret not in repr(new)
    assert new.secret_sha256.hex() not in repr(new) + repr(parsed)


def test_new_tokens_are_unique() -> None:
    tokens = {new_token().token for _ in range(500)}
    assert len(tokens) == 500
    assert len({t[5:17] for t in tokens}) == 500


def _valid() -> str:
    return new_token().token


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: "", "no API key was given"),
        (lambda: "Bearer " + _valid(), "does not start with ocdp_"),
        (lambda: _valid()[5:], "does not start with ocdp_"),
        (lambda: "xxxx_" + _valid()[5:], "does not start with ocdp_"),
        (lambda: "ocdp_abc_def", "form ocdp_<key id>_<secret>"),
        (lambda: "ocdp_" + "a" * 56, "form ocdp_<key id>_<secret>"),  # no separator
        (lambda: _valid() + "=", "form"),  # padded secret
        (lambda: _valid() + "\n", "form"),
        (lambda: " " + _valid()[1:], "does not start"),
        (lambda: _valid()[:-1] + "é", "form"),  # non-ASCII, same length
        (lambda: _valid()[:-1] + "\u0661", "form"),  # a non-ASCII digit
        (lambda: _valid()[:10] + "\x00" + _valid()[11:], "form"),
        (lambda: "ocdp_" + "A" * 12 + "_" + "b" * 43, "form"),  # upper-case key id
        (lambda: "ocdp_" + "a" * 12 + "_" + "b" * 42 + "+", "form"),  # not base64url
        (lambda: "ocdp_" + "x" * 10_240, "form"),  # 10 KB
    ],
)
def test_malformed_tokens_are_refused_without_echoing_them(
    make: Callable[[], str], reason: str
) -> None:
    token = make()
    with pytest.raises(MalformedTokenError, match=re.escape(reason)) as err:
        parse_token(token)
    assert isinstance(err.value, InvalidKeyError)
    if len(token) >= 30:
        assert token.strip() not in str(err.value)
        assert token[18:30] not in str(err.value)


# --- checking a token against its record ---------------------------------------------------


def _record(token: str, **changes: object) -> KeyRecord:
    parsed = parse_token(token)
    fields: dict[str, object] = {
        "key_id": parsed.key_id,
        "tenant": "acme",
        "secret_sha256": parsed.secret_sha256,
        "scopes": (PROFILES_READ,),
        "expires_at": None,
        "revoked_at": None,
    }
    fields.update(changes)
    return KeyRecord(**fields)  # type: ignore[arg-type]


def test_a_valid_key_gives_its_principal() -> None:
    token = _valid()
    principal = check_key(_record(token), parse_token(token), NOW)
    assert principal == Principal(token[5:17], "acme", (PROFILES_READ,))
    later = NOW + timedelta(days=1)
    assert check_key(_record(token, expires_at=later), parse_token(token), NOW) == principal


def test_each_refusal_has_its_own_error_and_no_secret() -> None:
    token = _valid()
    secret = token[18:]
    parsed = parse_token(token)
    other = parse_token(f"ocdp_{parsed.key_id}_{new_token().token[18:]}")
    cases: list[tuple[KeyRecord | None, ParsedToken, type[InvalidKeyError]]] = [
        (None, parsed, UnknownKeyError),
        (_record(token), other, WrongSecretError),
        (_record(token, revoked_at=NOW - timedelta(hours=1)), parsed, RevokedKeyError),
        (_record(token, expires_at=NOW - timedelta(seconds=1)), parsed, ExpiredKeyError),
        (_record(token, expires_at=NOW), parsed, ExpiredKeyError),  # the instant it expires
        # The secret is checked first: a revoked key's status is for its holder only.
        (_record(token, revoked_at=NOW), other, WrongSecretError),
    ]
    for record, given, error in cases:
        with pytest.raises(error) as err:
            check_key(record, given, NOW)
        assert type(err.value) is error
        assert parsed.key_id in str(err.value)
        assert secret not in str(err.value)
        assert token not in str(err.value)


def test_admin_implies_the_other_scopes() -> None:
    reader = Principal("k", "acme", (PROFILES_READ,))
    admin = Principal("k", "acme", (ADMIN,))
    assert reader.allows(PROFILES_READ)
    assert not reader.allows(EVENTS_READ)
    assert not reader.allows(ADMIN)
    assert all(admin.allows(scope) for scope in SCOPES)
    admin.require(EVENTS_READ)
    with pytest.raises(ScopeError, match="does not have the scope events:read"):
        reader.require(EVENTS_READ)
    with pytest.raises(ValueError, match="unknown scope"):
        reader.allows("profiles:write")


def test_scopes_are_checked_deduplicated_and_ordered() -> None:
    assert normalize_scopes([ADMIN, PROFILES_READ, ADMIN]) == (PROFILES_READ, ADMIN)
    assert normalize_scopes(iter([EVENTS_READ])) == (EVENTS_READ,)
    with pytest.raises(ConfigError, match="unknown scope") as err:
        normalize_scopes([PROFILES_READ, "profiles:write", "Admin"])
    assert "'Admin'" in str(err.value)
    assert "profiles:read, events:read, admin" in str(err.value)
    with pytest.raises(ConfigError, match="at least one scope"):
        normalize_scopes([])


def test_the_scopes_and_actions_agree_with_the_migrations() -> None:
    keys_sql = (MIGRATIONS / "control" / "0002_api_keys.sql").read_text(encoding="utf-8")
    allowed = re.search(r"scopes <@ ARRAY\[([^\]]*)\]", keys_sql)
    assert allowed is not None
    assert tuple(re.findall(r"'([^']+)'", allowed[1])) == SCOPES
    audit_sql = (MIGRATIONS / "tenant" / "0002_audit_log.sql").read_text(encoding="utf-8")
    actions = re.search(r"action IN \(([^)]*)\)", audit_sql)
    assert actions is not None
    assert tuple(re.findall(r"'([^']+)'", actions[1])) == AUDIT_ACTIONS


# --- names, key ids, expiry ----------------------------------------------------------------


def test_key_names() -> None:
    assert check_key_name("  checkout service ") == "checkout service"
    for bad in ["", "   ", "x" * 201, "tab\there", "new\nline"]:
        with pytest.raises(ConfigError, match="1 to 200 printable"):
            check_key_name(bad)


def test_a_key_id_is_checked_and_a_pasted_token_is_not_echoed() -> None:
    token = _valid()
    assert check_key_id(token[5:17]) == token[5:17]
    with pytest.raises(ConfigError, match="whole API key token") as err:
        check_key_id(token)
    assert err.value.hint is not None
    assert token[5:17] in err.value.hint
    assert token[18:] not in str(err.value)
    for bad in ["", "ABCDEFGHIJKL", "abc", "abcdefghijk1", "abcdefghijklm"]:
        with pytest.raises(ConfigError, match="not an API key id"):
            check_key_id(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        (" 2 w ", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "0d", "-1d", "1.5h", "1y", "30", "1d2h", "9" * 10])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="as a duration"):
        parse_duration(text)


def test_a_duration_too_long_for_a_date() -> None:
    with pytest.raises(ConfigError, match="too long"):
        parse_duration("999999999w")
    with pytest.raises(ConfigError, match="too long"):
        parse_expiry("99999999d", None, NOW)


def test_expiry_options() -> None:
    assert parse_expiry(None, None, NOW) is None
    assert parse_expiry("30d", None, NOW) == NOW + timedelta(days=30)
    assert parse_expiry(None, "2026-01-31", NOW) == datetime(2026, 1, 31, tzinfo=UTC)
    at = parse_expiry(None, "2026-01-31T12:00:00+02:00", NOW)
    assert at == datetime(2026, 1, 31, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not both"):
        parse_expiry("30d", "2026-01-31", NOW)
    with pytest.raises(ConfigError, match="as a date and time"):
        parse_expiry(None, "next tuesday", NOW)


def test_an_expiry_must_be_aware_and_ahead() -> None:
    assert check_expiry(None, NOW) is None
    assert check_expiry(NOW + timedelta(seconds=1), NOW) == NOW + timedelta(seconds=1)
    with pytest.raises(ConfigError, match="not in the future"):
        check_expiry(NOW, NOW)
    with pytest.raises(ConfigError, match="time zone"):
        check_expiry(datetime(2030, 1, 1), NOW)


# --- tenant roles --------------------------------------------------------------------------


def test_role_names_fit_postgresql_for_the_longest_tenant_names() -> None:
    assert tenant_role("acme") == "opencdp_tenant_acme"
    longest = "a" * 48
    assert len(tenant_role(longest)) == 63
    for bad in ["Acme", "a" * 49, "acme; drop role x", "", "1acme"]:
        with pytest.raises(InvalidNameError):
            tenant_role(bad)


def test_tenant_connections_take_the_role_and_the_schema() -> None:
    assert tenant_connection_options("acme") == (
        "-c role=opencdp_tenant_acme -c search_path=t_acme"
    )
    plain = conninfo_to_dict(tenant_conninfo("postgresql://u@db.example:5433/cdp", "acme"))
    assert plain["options"] == "-c role=opencdp_tenant_acme -c search_path=t_acme"
    assert (plain["host"], plain["port"], plain["dbname"], plain["user"]) == (
        "db.example",
        "5433",
        "cdp",
        "u",
    )
    # Options already in the URL are kept, ahead of the tenant's.
    with_options = conninfo_to_dict(
        tenant_conninfo("host=db options='-c statement_timeout=5s'", "acme")
    )
    assert with_options["options"] == (
        "-c statement_timeout=5s -c role=opencdp_tenant_acme -c search_path=t_acme"
    )
    with pytest.raises(InvalidNameError):
        tenant_conninfo("host=db", "acme -c role=postgres")


# --- audit rows ----------------------------------------------------------------------------


def test_an_audit_row() -> None:
    row = audit_row("k1", "profile.read", "p_1", {"by": "email", "n": 2}, NOW)
    assert row == (NOW, "k1", "profile.read", "p_1", '{"by": "email", "n": 2}')
    at, *_rest, detail = audit_row("k1", "enrich")
    assert at.tzinfo is not None
    assert detail == "{}"
    assert audit_row("k1", "profile.search", None, {"q": "zoë"})[4] == '{"q": "zoë"}'


def test_request_text_postgresql_cannot_store_is_replaced_not_refused() -> None:
    row = audit_row("k1", "profile.search", "p\x00\ud800", {"q": ["a\x00b", {"\udfff": 1}]})
    assert row[3] == "p\ufffd\ufffd"
    assert row[4] == '{"q": ["a\ufffdb", {"\ufffd": 1}]}'
    assert "\\u0000" not in row[4]
    row[4].encode("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("k1", "profile.write"), "unknown audit action"),
        (("", "profile.read"), "not a key id"),
        (("k\x001", "profile.read"), "not a key id"),
        (("k1", "profile.read", None, {"score": float("nan")}), "detail is not JSON"),
        (("k1", "profile.read", None, {"at": NOW}), "detail is not JSON"),
        (("k1", "profile.read", None, None, datetime(2025, 1, 1)), "time zone"),
    ],
)
def test_what_the_api_itself_gets_wrong_is_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit_row(*args)  # type: ignore[arg-type]
