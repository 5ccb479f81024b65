"""Verification of signed webhook requests, each with the provider's own scheme.

Pure functions: the HTTP layer passes the raw body bytes (never re-serialised JSON: every
scheme signs the exact bytes), the request headers (looked up case-insensitively), the
source's `VerifyConfig` and `now` (unix seconds, injected so tests control the clock). A
verifier returns a `Verified` or raises `SignatureError`, whose reason is safe to log: it
names headers and claims, never a secret or an expected signature. Every comparison of a
signature is constant-time (`hmac.compare_digest`).

| scheme     | header(s)                                   | signed bytes               | encoding |
|------------|---------------------------------------------|----------------------------|----------|
| `shopify`  | X-Shopify-Hmac-Sha256                       | body                       | base64   |
| `stripe`   | Stripe-Signature `t=..,v1=..`               | `{t}.{body}`               | hex      |
| `standard` | webhook-id, webhook-timestamp, -signature   | `{id}.{timestamp}.{body}`  | base64   |
| `hmac`     | configurable, `sha256=<hex>` or `<hex>`     | body                       | hex      |
| `jwt`      | Authorization: Bearer (see `jwt_auth`)      | the token, not the body    | JWS      |

Several secrets may be configured at once (key rotation): any one that matches passes.
Schemes that sign a timestamp (stripe, standard, jwt) refuse one outside the tolerance in
either direction; the others rely on the replay guard (`replay.RecentIds`) alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

import orjson

from opencdp.collect.network import ip_allowed, parse_networks
from opencdp.collect.replay import RecentIds
from opencdp.errors import ConfigError, TerminalError

# The HTTP layer's one import: the verifiers here, and the network and replay helpers.
__all__ = [
    "SCHEMES",
    "RecentIds",
    "SignatureError",
    "Verified",
    "VerifyConfig",
    "check_config",
    "header",
    "ip_allowed",
    "parse_networks",
    "verify",
    "verify_hmac",
    "verify_jwt",
    "verify_shopify",
    "verify_standard",
    "verify_stripe",
]

# Why a request was refused, for metrics and tests; `reason` is the sentence for people.
FailureCode = Literal[
    "missing_header",  # a required header is absent or empty
    "malformed",  # a header or token cannot be parsed
    "mismatch",  # well-formed, but no configured secret or key produced its signature
    "stale",  # the signed timestamp is older than the tolerance
    "future",  # the signed timestamp is further ahead than the tolerance
    "expired",  # a JWT past its `exp`
    "not_yet_valid",  # a JWT before its `nbf` (or issued in the future)
    "claims",  # a JWT whose audience or issuer is not the configured one, or lacks a claim
    "algorithm",  # a JWT signed with an algorithm no configured key allows
]

_HINTS: Final[dict[str, str]] = {
    "missing_header": "the sender must sign its requests; check the source's scheme",
    "malformed": "the signature header does not follow the scheme; check the source's scheme",
    "mismatch": "check that the configured secret is the provider's current signing secret "
    "and that the body reaches the verifier unmodified (no proxy re-encoding)",
    "stale": "a replayed or long-delayed request, or a sender clock behind ours",
    "future": "the sender's clock is ahead of ours by more than the tolerance",
    "expired": "the token expired; the sender must mint a fresh one",
    "not_yet_valid": "the token is not valid yet; check the sender's clock",
    "claims": "check the source's configured audience and issuer",
    "algorithm": "only HS256 with a shared secret or RS256 with a configured public key is "
    "accepted",
}

SHOPIFY_SIGNATURE: Final = "X-Shopify-Hmac-Sha256"
STRIPE_SIGNATURE: Final = "Stripe-Signature"
DEFAULT_HMAC_HEADER: Final = "X-Hub-Signature-256"
DEFAULT_TOLERANCE: Final = 300.0
DEFAULT_JWT_LEEWAY: Final = 30.0
# A request may carry a few signatures (rotation); more than this is refused as malformed,
# which bounds the work one request can cause.
MAX_SIGNATURES: Final = 16

_SHA256_SIZE: Final = hashlib.sha256().digest_size
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class SignatureError(TerminalError):
    """A webhook request failed verification; the HTTP layer answers 401 and drops it.

    `reason` is safe to log: it never quotes a secret or the signature that was expected.
    `code` is a small fixed vocabulary, fit for a metrics label.
    """

    def __init__(self, reason: str, *, code: FailureCode = "mismatch") -> None:
        super().__init__(f"webhook request not verified: {reason}", hint=_HINTS[code])
        self.reason = reason
        self.code: FailureCode = code


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified request tells about itself.

    `id_signed` says whether `event_id` is covered by the signature (Stripe's body `id`,
    Standard Webhooks' `webhook-id`, a JWT's `jti`). When it is not (Shopify and generic
    HMAC take it from a plain header), a replay of a captured request under a fresh id would
    pass an id-keyed replay guard: key that guard on a digest of the body as well.
    """

    event_id: str | None
    event_type: str | None
    timestamp: float | None
    id_signed: bool = False


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """How one webhook source verifies its requests (built once from settings).

    secrets: shared secrets, any of which may have signed a request (rotation). Shopify:
        the app's client secret; Stripe: the endpoint secret `whsec_...` used as-is;
        Standard Webhooks: `whsec_<base64>`; hmac: the shared secret; jwt: HS256 secrets.
    public_keys: PEM RSA public keys for RS256 JWTs.
    signature_header: the header the `hmac` scheme reads.
    id_header, type_header: for `hmac`, the headers naming the event id and type
        (GitHub: X-GitHub-Delivery, X-GitHub-Event).
    tolerance_seconds: how far a signed timestamp may be from `now`, in either direction.
    audience, issuer: when set, a JWT must carry this `aud` (one of its values) and `iss`.
    jwt_leeway_seconds: clock skew allowed on a JWT's `exp`, `nbf` and `iat`.
    """

    secrets: tuple[str, ...] = field(default=(), repr=False)
    public_keys: tuple[str, ...] = field(default=(), repr=False)
    signature_header: str = DEFAULT_HMAC_HEADER
    id_header: str | None = None
    type_header: str | None = None
    tolerance_seconds: float = DEFAULT_TOLERANCE
    audience: str | None = None
    issuer: str | None = None
    jwt_leeway_seconds: float = DEFAULT_JWT_LEEWAY

    def __post_init__(self) -> None:
        for name in ("secrets", "public_keys"):
            value = getattr(self, name)
            if isinstance(value, str | bytes):
                # A lone string would otherwise be taken as a tuple of one-letter secrets.
                raise ConfigError(
                    f"webhook {name} must be a list of strings, not a single string",
                    hint=f"write {name}: [ ... ] in the source's webhook section",
                )
            object.__setattr__(self, name, tuple(value))
        if not self.tolerance_seconds > 0:
            raise ConfigError("webhook tolerance_seconds must be positive")
        if not self.jwt_leeway_seconds >= 0:
            raise ConfigError("webhook jwt_leeway_seconds must not be negative")
        if not self.signature_header.strip():
            raise ConfigError("webhook signature_header must name a header")


Verifier = Callable[[bytes, Mapping[str, str], VerifyConfig, float], Verified]


# --- helpers -------------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name`, whatever its case, or None when absent or blank.

    The lower-case name is looked up first (the HTTP layer's headers, and a case-insensitive
    mapping such as Starlette's `Headers`, answer it); other mappings fall back to a scan.
    """
    wanted = name.lower()
    value = headers.get(wanted)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if value is None or not value.strip():
        return None
    return value.strip()


def _required(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if value is None:
        raise SignatureError(f"missing header {name}", code="missing_header")
    return value


def _hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    # The one-shot form runs in C (OpenSSL) from start to end: a webhook's hot path.
    return hmac.digest(key, b"".join(parts), "sha256")


def _any_match(expected: Iterable[bytes], candidates: list[bytes]) -> bool:
    # Every pair is compared (no early exit) so the time taken does not tell which secret
    # or which candidate matched; only the total count of secrets and candidates shows.
    matched = False
    for digest in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(digest, candidate)
    return matched


def _bounded(items: list[str], what: str) -> list[str]:
    if len(items) > MAX_SIGNATURES:
        raise SignatureError(
            f"{what} carries {len(items)} signatures (at most {MAX_SIGNATURES})",
            code="malformed",
        )
    return items


def _from_base64(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SHA256_SIZE else None


def _from_hex(value: str) -> bytes | None:
    return bytes.fromhex(value) if _HEX_SHA256.fullmatch(value) else None


def _check_age(timestamp: int, config: VerifyConfig, now: float, what: str) -> None:
    if timestamp < now - config.tolerance_seconds:
        raise SignatureError(
            f"{what} is {now - timestamp:.0f} s old (tolerance {config.tolerance_seconds:g} s)",
            code="stale",
        )
    if timestamp > now + config.tolerance_seconds:
        raise SignatureError(
            f"{what} is {timestamp - now:.0f} s in the future "
            f"(tolerance {config.tolerance_seconds:g} s)",
            code="future",
        )


def _body_fields(body: bytes) -> tuple[str | None, str | None]:
    """`id` and `type` of a JSON object body; (None, None) when it is not one.

    A body that fails to parse after its signature verified is the pipeline's business (it
    lands in the DLQ with a clear error), not a verification failure.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    event_id, event_type = parsed.get("id"), parsed.get("type")
    return (
        event_id if isinstance(event_id, str) else None,
        event_type if isinstance(event_type, str) else None,
    )


def _secrets(config: VerifyConfig, scheme: str) -> tuple[str, ...]:
    if not config.secrets:
        raise ConfigError(
            f"the {scheme} webhook source has no secret configured",
            hint='set secrets: [...] in the source\'s webhook section ("env:NAME" reads '
            "the environment)",
        )
    for index, secret in enumerate(config.secrets, start=1):
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"webhook secret #{index} of the {scheme} source is empty")
    return config.secrets


# --- Shopify -------------------------------------------------------------------------------


def verify_shopify(
    body: bytes, headers: Mapping[str, str], config: VerifyConfig, now: float
) -> Verified:
    """Shopify: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(client secret, raw body)).

    Only the body is signed: the topic, webhook id and shop domain headers are not, so the
    tenant must come from the endpoint, never from `X-Shopify-Shop-Domain`. There is no
    signed timestamp; `now` is unused.
    """
    keys = [secret.encode("utf-8") for secret in _secrets(config, "shopify")]
    value = _required(headers, SHOPIFY_SIGNATURE)
    # One signature is sent; a proxy that merges repeated headers joins them with commas.
    entries = _bounded([v.strip() for v in value.split(",") if v.strip()], SHOPIFY_SIGNATURE)
    candidates = [raw for raw in map(_from_base64, entries) if raw is not None]
    if not candidates:
        raise SignatureError(
            f"{SHOPIFY_SIGNATURE} is not a base64 HMAC-SHA256 digest", code="malformed"
        )
    if not _any_match((_hmac_sha256(key, body) for key in keys), candidates):
        raise SignatureError(f"{SHOPIFY_SIGNATURE} matches no configured secret")
    return Verified(
        event_id=header(headers, "X-Shopify-Webhook-Id") or header(headers, "X-Shopify-Event-Id"),
        event_type=header(headers, "X-Shopify-Topic"),
        timestamp=None,
    )


# --- Stripe --------------------------------------------------------------------------------


def _stripe_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    v1: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"{STRIPE_SIGNATURE} is not a list of k=v", code="malformed")
        if key == "t":
            if timestamp is not None or not _UNIX_SECONDS.fullmatch(val):
                raise SignatureError(
                    f"{STRIPE_SIGNATURE} needs exactly one t=<unix seconds>", code="malformed"
                )
            timestamp = int(val)
        elif key == "v1":
            v1.append(val)
        # v0 (test-mode legacy) and future schemes are ignored, as Stripe's libraries do.
    if timestamp is None:
        raise SignatureError(f"{STRIPE_SIGNATURE} has no t= timestamp", code="malformed")
    if not v1:
        raise SignatureError(f"{STRIPE_SIGNATURE} has no v1 signature", code="malformed")
    return timestamp, _bounded(v1, STRIPE_SIGNATURE)


def verify_stripe(
    body: bytes, headers: Mapping[str, str], config: VerifyConfig, now: float
) -> Verified:
    """Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]`, hex HMAC-SHA256 of `{t}.{body}`.

    The key is the endpoint secret as configured, `whsec_` prefix included. The signature is
    checked before the timestamp, so "stale" and "future" are only said of genuine requests.
    Unlike Stripe's library, a timestamp too far in the future is refused too.
    """
    keys = [secret.encode("utf-8") for secret in _secrets(config, "stripe")]
    timestamp, v1 = _stripe_header(_required(headers, STRIPE_SIGNATURE))
    candidates = [raw for raw in map(_from_hex, v1) if raw is not None]
    if not candidates:
        raise SignatureError(
            f"{STRIPE_SIGNATURE} has no v1 signature in hex HMAC-SHA256 form", code="malformed"
        )
    prefix = f"{timestamp}.".encode()
    if not _any_match((_hmac_sha256(key, prefix, body) for key in keys), candidates):
        raise SignatureError(f"{STRIPE_SIGNATURE} matches no configured secret")
    _check_age(timestamp, config, now, f"{STRIPE_SIGNATURE} timestamp")
    event_id, event_type = _body_fields(body)
    return Verified(event_id, event_type, float(timestamp), id_signed=event_id is not None)


# --- Standard Webhooks ---------------------------------------------------------------------

_STANDARD_PREFIX: Final = "whsec_"


@lru_cache(maxsize=256)
def _standard_key(secret: str) -> bytes | None:
    text = secret.strip().removeprefix(_STANDARD_PREFIX)
    try:
        # The reference library pads, so an unpadded base64 secret is accepted as well.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def _standard_keys(config: VerifyConfig) -> list[bytes]:
    keys = []
    for index, secret in enumerate(_secrets(config, "standard"), start=1):
        key = _standard_key(secret)
        if key is None:
            raise ConfigError(
                f"webhook secret #{index} of the standard source is not a Standard Webhooks secret",
                hint="a Standard Webhooks secret is 'whsec_' followed by base64",
            )
        keys.append(key)
    return keys


def verify_standard(
    body: bytes, headers: Mapping[str, str], config: VerifyConfig, now: float
) -> Verified:
    """Standard Webhooks (standardwebhooks.com, v1): base64 HMAC-SHA256 of `{id}.{ts}.{body}`.

    `webhook-signature` is a space-separated list of `<version>,<signature>`; only `v1`
    (symmetric) entries are checked, others (e.g. `v1a`, asymmetric) are ignored. Svix's
    `svix-id`/`svix-timestamp`/`svix-signature` names are read when `webhook-id` is absent.
    The event type is the body's `type`, when it has one.
    """
    keys = _standard_keys(config)
    family = (
        "webhook" if header(headers, "webhook-id") or not header(headers, "svix-id") else "svix"
    )
    msg_id = _required(headers, f"{family}-id")
    stamp = _required(headers, f"{family}-timestamp")
    signatures = _required(headers, f"{family}-signature")
    if not _UNIX_SECONDS.fullmatch(stamp):
        raise SignatureError(f"{family}-timestamp is not unix seconds", code="malformed")
    v1 = _bounded(
        [
            sig
            for version, sep, sig in (e.partition(",") for e in signatures.split())
            if sep and version == "v1"
        ],
        f"{family}-signature",
    )
    if not v1:
        raise SignatureError(f"{family}-signature has no v1 signature", code="malformed")
    candidates = [raw for raw in map(_from_base64, v1) if raw is not None]
    if not candidates:
        raise SignatureError(
            f"{family}-signature has no v1 signature in base64 form", code="malformed"
        )
    prefix = f"{msg_id}.{stamp}.".encode()
    if not _any_match((_hmac_sha256(key, prefix, body) for key in keys), candidates):
        raise SignatureError(f"{family}-signature matches no configured secret")
    timestamp = int(stamp)
    _check_age(timestamp, config, now, f"{family}-timestamp")
    _, event_type = _body_fields(body)
    return Verified(msg_id, event_type, float(timestamp), id_signed=True)


# --- generic HMAC-SHA256 -------------------------------------------------------------------


def verify_hmac(
    body: bytes, headers: Mapping[str, str], config: VerifyConfig, now: float
) -> Verified:
    """Generic HMAC-SHA256 of the raw body in hex, `sha256=<hex>` or bare `<hex>` (GitHub's
    `X-Hub-Signature-256` form), read from `config.signature_header`.

    No timestamp is signed; `now` is unused. Event id and type come from the optional
    `config.id_header` / `config.type_header`, which are not signed.
    """
    keys = [secret.encode("utf-8") for secret in _secrets(config, "hmac")]
    name = config.signature_header
    value = _required(headers, name)
    entries = _bounded([v.strip() for v in value.split(",") if v.strip()], name)
    candidates = []
    for entry in entries:
        algorithm, sep, digest = entry.partition("=")
        if sep and algorithm.strip().lower() != "sha256":
            continue
        raw = _from_hex(digest.strip() if sep else entry)
        if raw is not None:
            candidates.append(raw)
    if not candidates:
        raise SignatureError(f"{name} is not an HMAC-SHA256 hex digest", code="malformed")
    if not _any_match((_hmac_sha256(key, body) for key in keys), candidates):
        raise SignatureError(f"{name} matches no configured secret")
    return Verified(
        event_id=header(headers, config.id_header) if config.id_header else None,
        event_type=header(headers, config.type_header) if config.type_header else None,
        timestamp=None,
    )


# --- JWT bearer (PyJWT imported only when used) --------------------------------------------


def verify_jwt(
    body: bytes, headers: Mapping[str, str], config: VerifyConfig, now: float
) -> Verified:
    """`Authorization: Bearer <JWT>`, HS256 or RS256; see `opencdp.collect.jwt_auth`.

    The token authenticates the sender, not the body: it signs no digest of it.
    """
    from opencdp.collect.jwt_auth import verify_bearer

    return verify_bearer(headers, config, now)


# --- dispatch ------------------------------------------------------------------------------

SCHEMES: Final[Mapping[str, Verifier]] = {
    "shopify": verify_shopify,
    "stripe": verify_stripe,
    "standard": verify_standard,
    "hmac": verify_hmac,
    "jwt": verify_jwt,
}


def _verifier(scheme: str) -> Verifier:
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise ConfigError(
            f"unknown webhook scheme {scheme!r}",
            hint=f"use one of: {', '.join(SCHEMES)}",
        ) from None


def check_config(scheme: str, config: VerifyConfig) -> None:
    """Raise `ConfigError` now, at load time, for what would otherwise fail every request:
    an unknown scheme, no secrets, a secret or key that cannot be used."""
    _verifier(scheme)
    if scheme == "jwt":
        from opencdp.collect.jwt_auth import check_jwt_keys

        check_jwt_keys(config)
    elif scheme == "standard":
        _standard_keys(config)
    else:
        _secrets(config, scheme)


def verify(
    scheme: str,
    body: bytes,
    headers: Mapping[str, str],
    config: VerifyConfig,
    now: float,
) -> Verified:
    """Verify one request with `scheme` (shopify, stripe, standard, hmac or jwt).

    Raises `SignatureError` for a request that does not verify, and `ConfigError` for an
    unknown scheme or a configuration that cannot verify anything.
    """
    return _verifier(scheme)(body, headers, config, now)
