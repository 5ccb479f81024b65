"""JWT bearer tokens for webhook sources: HS256 with shared secrets, RS256 with public keys.

Each configured key allows exactly one algorithm, decided by what the key is: a shared
secret only HS256, a PEM RSA public key only RS256. The token's `alg` header merely picks
among the keys that allow it, so `none` never verifies, and neither does the classic
algorithm confusion (an HS256 token whose HMAC key is the RSA public key: the public key is
never offered to HMAC). PyJWT checks the signature, audience and issuer; the time claims
are checked here against the injected `now`, since PyJWT reads the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.types import Options

from opencdp.collect.signatures import (
    SignatureError,
    Verified,
    VerifyConfig,
    header,
)
from opencdp.errors import ConfigError

AUTHORIZATION: Final = "Authorization"
MIN_HMAC_KEY_BYTES: Final = 32  # RFC 7518 §3.2: a key at least as long as the hash
MIN_RSA_BITS: Final = 2048

_JwtKey = bytes | RSAPublicKey

# Signature, audience and issuer by PyJWT (`exp` must be present); times by us.
_PYJWT_OPTIONS: Final[Options] = {
    "require": ["exp"],
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}


@lru_cache(maxsize=64)
def _rsa_key(pem: str) -> RSAPublicKey | None:
    try:
        key = load_pem_public_key(pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return None
    return key if isinstance(key, RSAPublicKey) else None


def _keys(config: VerifyConfig) -> dict[str, list[_JwtKey]]:
    """The configured keys by the one algorithm each allows; `ConfigError` if unusable."""
    keys: dict[str, list[_JwtKey]] = {}
    for index, secret in enumerate(config.secrets, start=1):
        raw = secret.encode("utf-8") if isinstance(secret, str) else b""
        if raw.lstrip().startswith(b"-----BEGIN"):
            raise ConfigError(
                f"JWT secret #{index} looks like a PEM key",
                hint="put PEM public keys under public_keys; secrets are HS256 shared secrets",
            )
        if len(raw) < MIN_HMAC_KEY_BYTES:
            raise ConfigError(
                f"JWT secret #{index} is shorter than {MIN_HMAC_KEY_BYTES} bytes",
                hint="HS256 needs a secret of at least 32 bytes (RFC 7518 §3.2); generate one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            )
        keys.setdefault("HS256", []).append(raw)
    for index, pem in enumerate(config.public_keys, start=1):
        key = _rsa_key(pem) if isinstance(pem, str) else None
        if key is None:
            raise ConfigError(
                f"JWT public key #{index} is not a PEM RSA public key",
                hint="give the '-----BEGIN PUBLIC KEY-----' block of an RSA key",
            )
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"JWT public key #{index} has {key.key_size} bits (at least {MIN_RSA_BITS})"
            )
        keys.setdefault("RS256", []).append(key)
    if not keys:
        raise ConfigError(
            "the jwt webhook source has neither secrets nor public_keys",
            hint="set secrets (HS256) or public_keys (RS256) in the source's webhook section",
        )
    return keys


def check_jwt_keys(config: VerifyConfig) -> None:
    """Raise `ConfigError` unless every configured JWT secret and public key is usable."""
    _keys(config)


def _bearer_token(headers: Mapping[str, str]) -> str:
    value = header(headers, AUTHORIZATION)
    if value is None:
        raise SignatureError(f"missing header {AUTHORIZATION}", code="missing_header")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise SignatureError(f"{AUTHORIZATION} is not 'Bearer <token>'", code="malformed")
    return token


def _number(payload: Mapping[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignatureError(f"JWT claim {claim} is not a number", code="malformed")
    return float(value)


def _decode(token: str, key: _JwtKey, algorithm: str, config: VerifyConfig) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=config.audience,
            issuer=config.issuer,
            options=_PYJWT_OPTIONS,
        )
    except jwt.InvalidAudienceError:
        if config.audience is None:
            reason = "JWT names an audience but the source is configured with none"
        else:
            reason = "JWT audience is not the configured one"
        raise SignatureError(reason, code="claims") from None
    except jwt.InvalidIssuerError:
        raise SignatureError("JWT issuer is not the configured one", code="claims") from None
    except jwt.MissingRequiredClaimError as e:
        raise SignatureError(f"JWT lacks the {e.claim} claim", code="claims") from None


def verify_bearer(headers: Mapping[str, str], config: VerifyConfig, now: float) -> Verified:
    """Verify `Authorization: Bearer <JWT>`; the event id is the token's `jti`, if any.

    Requires `exp`; checks `nbf` and `iat` when present; all three with
    `config.jwt_leeway_seconds` of clock skew.
    """
    keys = _keys(config)
    token = _bearer_token(headers)
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        raise SignatureError("the bearer token is not a JWT", code="malformed") from None
    candidates = keys.get(algorithm) if isinstance(algorithm, str) else None
    if not candidates:
        shown = repr(algorithm)[:24] if isinstance(algorithm, str) else "missing"
        raise SignatureError(
            f"JWT algorithm {shown} is not allowed (configured: {', '.join(sorted(keys))})",
            code="algorithm",
        )
    assert isinstance(algorithm, str)
    payload: dict[str, Any] | None = None
    for key in candidates:
        try:
            payload = _decode(token, key, algorithm, config)
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            raise SignatureError("the JWT cannot be decoded", code="malformed") from None
        break
    if payload is None:
        raise SignatureError("JWT signature matches no configured key")

    leeway = config.jwt_leeway_seconds
    expires = _number(payload, "exp")
    assert expires is not None  # PyJWT enforced `require: exp`
    if expires <= now - leeway:
        raise SignatureError(f"JWT expired {now - expires:.0f} s ago", code="expired")
    not_before = _number(payload, "nbf")
    if not_before is not None and not_before > now + leeway:
        raise SignatureError(
            f"JWT is not valid for another {not_before - now:.0f} s (nbf)", code="not_yet_valid"
        )
    issued = _number(payload, "iat")
    if issued is not None and issued > now + leeway:
        raise SignatureError(
            f"JWT is issued {issued - now:.0f} s in the future (iat)", code="not_yet_valid"
        )
    jti = payload.get("jti")
    event_id = jti if isinstance(jti, str) else None
    return Verified(event_id, None, issued, id_signed=event_id is not None)
