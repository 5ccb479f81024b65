"""Webhook signature schemes, checked against requests signed by the providers' own code.

Stripe requests are signed by the official `stripe` library, Standard Webhooks requests by
the official `standardwebhooks` package. Shopify publishes no library helper and no fixed
test vector, so Shopify headers are computed here with hmac/base64 (independently of the
implementation), plus one vector derived from GitHub's documented HMAC-SHA256 example: the
same MAC over the same raw bytes, base64 instead of hex. The generic HMAC scheme is checked
against that GitHub example as documented.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import stripe
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from opencdp.collect.signatures import (
    MAX_SIGNATURES,
    SCHEMES,
    SignatureError,
    Verified,
    VerifyConfig,
    check_config,
    verify,
    verify_hmac,
    verify_shopify,
    verify_standard,
    verify_stripe,
)
from opencdp.errors import ConfigError, TerminalError

NOW = 1_750_000_000.0
TOLERANCE = 300

# GitHub's documented test values (docs.github.com, "Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

STRIPE_BODY = (
    b'{"id":"evt_1NG8Du2eZvKYlo2CUI4Nq5Gd","object":"event","api_version":"2024-06-20",'
    b'"created":1750000000,"type":"customer.created","data":{"object":{"id":"cus_9s6X",'
    b'"object":"customer","email":"jenny.rosen@example.com"}}}'
)
STANDARD_BODY = b'{"type":"contact.created","timestamp":"2025-06-15T15:06:40Z","data":{"id":7}}'
SHOPIFY_BODY = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"12.50"}'


def rejected(call: Callable[[], Verified]) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value


# --- Shopify -------------------------------------------------------------------------------

SHOPIFY_SECRET = "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"
SHOPIFY_OLD_SECRET = "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"


def shopify_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(signature: str, **extra: str) -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Shop-Domain": "acme.myshopify.com",
        **extra,
    }


SHOPIFY = VerifyConfig(secrets=(SHOPIFY_SECRET,))


def test_shopify_valid() -> None:
    headers = shopify_headers(shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY))
    assert verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW) == Verified(
        event_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        event_type="orders/create",
        timestamp=None,
        id_signed=False,
    )


def test_shopify_vector_derived_from_githubs_documented_example() -> None:
    signature = base64.b64encode(bytes.fromhex(GITHUB_SIGNATURE.removeprefix("sha256="))).decode()
    config = VerifyConfig(secrets=(GITHUB_SECRET,))
    verified = verify_shopify(GITHUB_BODY, {"X-Shopify-Hmac-Sha256": signature}, config, NOW)
    assert verified.event_id is None
    assert (
        rejected(
            lambda: verify_shopify(
                b"Hello, World?", {"X-Shopify-Hmac-Sha256": signature}, config, NOW
            )
        ).code
        == "mismatch"
    )


def test_shopify_headers_are_case_insensitive_and_event_id_falls_back() -> None:
    headers = {
        "x-shopify-hmac-sha256": shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY),
        "x-shopify-topic": "customers/update",
        "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }
    verified = verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW)
    assert verified.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert verified.event_type == "customers/update"


def test_shopify_wrong_secret() -> None:
    headers = shopify_headers(shopify_hmac("shpss_someone_else", SHOPIFY_BODY))
    error = rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW))
    assert error.code == "mismatch"
    assert "X-Shopify-Hmac-Sha256" in error.reason


def test_shopify_tampered_body() -> None:
    headers = shopify_headers(shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY))
    tampered = SHOPIFY_BODY.replace(b"12.50", b"0.01")
    assert rejected(lambda: verify_shopify(tampered, headers, SHOPIFY, NOW)).code == "mismatch"
    # Re-serialising the JSON (a space after each colon) breaks it too: raw bytes only.
    reserialised = SHOPIFY_BODY.replace(b'":', b'": ')
    assert rejected(lambda: verify_shopify(reserialised, headers, SHOPIFY, NOW)).code == "mismatch"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_shopify_missing_header(value: str | None) -> None:
    headers = shopify_headers("x")
    del headers["X-Shopify-Hmac-Sha256"]
    if value is not None:
        headers["X-Shopify-Hmac-Sha256"] = value
    error = rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW))
    assert error.code == "missing_header"
    assert error.reason == "missing header X-Shopify-Hmac-Sha256"


@pytest.mark.parametrize(
    "signature",
    [
        "not base64 at all!",
        # The hex digest where base64 is expected: valid base64 letters, wrong length.
        hmac.new(SHOPIFY_SECRET.encode(), SHOPIFY_BODY, hashlib.sha256).hexdigest(),
        "c2hvcnQ=",
    ],
)
def test_shopify_malformed_header(signature: str) -> None:
    headers = shopify_headers(signature)
    assert rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW)).code == "malformed"


@pytest.mark.parametrize("now", [NOW - 86_400 * 365, NOW + 86_400 * 365])
def test_shopify_signs_no_timestamp_so_only_the_replay_guard_limits_age(now: float) -> None:
    # Shopify's HMAC covers the body alone: neither a stale nor a future "timestamp"
    # exists to refuse; replays are dropped by RecentIds on X-Shopify-Webhook-Id.
    headers = shopify_headers(shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY))
    assert verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, now).timestamp is None


def test_shopify_rotated_secrets_both_accepted() -> None:
    config = VerifyConfig(secrets=(SHOPIFY_SECRET, SHOPIFY_OLD_SECRET))
    for secret in (SHOPIFY_SECRET, SHOPIFY_OLD_SECRET):
        headers = shopify_headers(shopify_hmac(secret, SHOPIFY_BODY))
        assert verify_shopify(SHOPIFY_BODY, headers, config, NOW).event_type == "orders/create"
    headers = shopify_headers(shopify_hmac("shpss_retired_long_ago", SHOPIFY_BODY))
    assert rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, config, NOW)).code == "mismatch"


def test_shopify_multiple_signatures_any_match() -> None:
    # A proxy that merges a repeated header joins the values with ", ".
    good = shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY)
    other = shopify_hmac("shpss_someone_else", SHOPIFY_BODY)
    headers = shopify_headers(f"{other}, {good}")
    assert verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW).event_type == "orders/create"
    headers = shopify_headers(", ".join([other] * 3))
    assert rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW)).code == "mismatch"
    headers = shopify_headers(", ".join([good] * (MAX_SIGNATURES + 1)))
    assert rejected(lambda: verify_shopify(SHOPIFY_BODY, headers, SHOPIFY, NOW)).code == "malformed"


# --- Stripe --------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_5f1d8e3c0b9a47e6a2c4d6f8b0e1a3c5"
STRIPE_OLD_SECRET = "whsec_0a9b8c7d6e5f40312233445566778899"
STRIPE = VerifyConfig(secrets=(STRIPE_SECRET,))


def stripe_header(
    secret: str = STRIPE_SECRET, timestamp: float = NOW, body: bytes = STRIPE_BODY
) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(timestamp)
    )
    return header


def stripe_signatures(header: str) -> list[str]:
    return [item for item in header.split(",") if item.startswith("v1=")]


def test_stripe_valid() -> None:
    headers = {"Stripe-Signature": stripe_header()}
    assert verify_stripe(STRIPE_BODY, headers, STRIPE, NOW) == Verified(
        event_id="evt_1NG8Du2eZvKYlo2CUI4Nq5Gd",
        event_type="customer.created",
        timestamp=NOW,
        id_signed=True,
    )


def test_stripe_agrees_with_the_official_library() -> None:
    header = stripe_header()
    # tolerance=None: the library's own clock check is off; ours uses the injected `now`.
    assert stripe.WebhookSignature.verify_header(STRIPE_BODY, header, STRIPE_SECRET, None)
    tampered = STRIPE_BODY.replace(b"jenny", b"jane")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(tampered, header, STRIPE_SECRET, None)
    assert (
        rejected(lambda: verify_stripe(tampered, {"Stripe-Signature": header}, STRIPE, NOW)).code
        == "mismatch"
    )


def test_stripe_with_the_wall_clock_like_construct_event() -> None:
    now = time.time()
    header = stripe_header(timestamp=now)
    event = stripe.Webhook.construct_event(STRIPE_BODY, header, STRIPE_SECRET)
    verified = verify_stripe(STRIPE_BODY, {"stripe-signature": header}, STRIPE, now)
    assert (verified.event_id, verified.event_type) == (event.id, event.type)


def test_stripe_wrong_secret() -> None:
    headers = {"Stripe-Signature": stripe_header(secret="whsec_not_the_endpoint_secret")}
    assert rejected(lambda: verify_stripe(STRIPE_BODY, headers, STRIPE, NOW)).code == "mismatch"


def test_stripe_secret_is_used_as_is_with_its_prefix() -> None:
    # Unlike Standard Webhooks, the whsec_ prefix is part of the HMAC key.
    headers = {"Stripe-Signature": stripe_header(secret=STRIPE_SECRET.removeprefix("whsec_"))}
    assert rejected(lambda: verify_stripe(STRIPE_BODY, headers, STRIPE, NOW)).code == "mismatch"


def test_stripe_tampered_body_or_timestamp() -> None:
    header = stripe_header()
    tampered = STRIPE_BODY.replace(b"customer.created", b"customer.deleted")
    assert (
        rejected(lambda: verify_stripe(tampered, {"Stripe-Signature": header}, STRIPE, NOW)).code
        == "mismatch"
    )
    moved = header.replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")
    assert (
        rejected(lambda: verify_stripe(STRIPE_BODY, {"Stripe-Signature": moved}, STRIPE, NOW)).code
        == "mismatch"
    )


def test_stripe_missing_header() -> None:
    error = rejected(
        lambda: verify_stripe(STRIPE_BODY, {"Content-Type": "application/json"}, STRIPE, NOW)
    )
    assert (error.code, error.reason) == ("missing_header", "missing header Stripe-Signature")


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "t=,v1=abc",
        "t=17500x0000,v1=" + "0" * 64,
        "v1=" + "0" * 64,  # no timestamp
        f"t={int(NOW)},t={int(NOW)},v1=" + "0" * 64,  # two timestamps
        f"t={int(NOW)}",  # no signature
        f"t={int(NOW)},v0=" + "0" * 64,  # only the legacy scheme
        f"t={int(NOW)},v1=not-hex",
        f"t={int(NOW)},v1=" + "0" * 63,
    ],
)
def test_stripe_malformed_header(value: str) -> None:
    error = rejected(lambda: verify_stripe(STRIPE_BODY, {"Stripe-Signature": value}, STRIPE, NOW))
    assert error.code == "malformed"


def test_stripe_stale_timestamp() -> None:
    headers = {"Stripe-Signature": stripe_header(timestamp=NOW - TOLERANCE - 1)}
    error = rejected(lambda: verify_stripe(STRIPE_BODY, headers, STRIPE, NOW))
    assert error.code == "stale"
    assert "301 s old" in error.reason


def test_stripe_future_timestamp() -> None:
    headers = {"Stripe-Signature": stripe_header(timestamp=NOW + TOLERANCE + 1)}
    error = rejected(lambda: verify_stripe(STRIPE_BODY, headers, STRIPE, NOW))
    assert error.code == "future"
    assert "in the future" in error.reason


@pytest.mark.parametrize("offset", [-TOLERANCE, -1, 0, 1, TOLERANCE])
def test_stripe_within_tolerance_both_ways(offset: int) -> None:
    headers = {"Stripe-Signature": stripe_header(timestamp=NOW + offset)}
    assert verify_stripe(STRIPE_BODY, headers, STRIPE, NOW).timestamp == NOW + offset


def test_stripe_custom_tolerance() -> None:
    headers = {"Stripe-Signature": stripe_header(timestamp=NOW - 60)}
    strict = VerifyConfig(secrets=(STRIPE_SECRET,), tolerance_seconds=30)
    assert rejected(lambda: verify_stripe(STRIPE_BODY, headers, strict, NOW)).code == "stale"


def test_stripe_signature_is_checked_before_the_timestamp() -> None:
    # A forged, stale request is a mismatch: "stale" is only said of genuine requests.
    headers = {"Stripe-Signature": stripe_header(secret="whsec_forged", timestamp=NOW - 3600)}
    assert rejected(lambda: verify_stripe(STRIPE_BODY, headers, STRIPE, NOW)).code == "mismatch"


def test_stripe_rotated_secrets_both_accepted() -> None:
    config = VerifyConfig(secrets=(STRIPE_SECRET, STRIPE_OLD_SECRET))
    for secret in (STRIPE_SECRET, STRIPE_OLD_SECRET):
        headers = {"Stripe-Signature": stripe_header(secret=secret)}
        assert verify_stripe(STRIPE_BODY, headers, config, NOW).event_type == "customer.created"


def test_stripe_multiple_signatures_any_v1_matches() -> None:
    # During a secret roll Stripe signs with both: t=..,v1=<new>,v1=<old> (and may add v0).
    new = stripe_signatures(stripe_header(secret=STRIPE_SECRET))
    old = stripe_signatures(stripe_header(secret=STRIPE_OLD_SECRET))
    value = ",".join([f"t={int(NOW)}", *new, *old, "v0=" + "1" * 64])
    for secret in (STRIPE_SECRET, STRIPE_OLD_SECRET):
        config = VerifyConfig(secrets=(secret,))
        assert verify_stripe(STRIPE_BODY, {"Stripe-Signature": value}, config, NOW).event_id
    config = VerifyConfig(secrets=("whsec_unrelated",))
    assert (
        rejected(lambda: verify_stripe(STRIPE_BODY, {"Stripe-Signature": value}, config, NOW)).code
        == "mismatch"
    )


def test_stripe_too_many_signatures() -> None:
    value = ",".join([f"t={int(NOW)}"] + stripe_signatures(stripe_header()) * (MAX_SIGNATURES + 1))
    assert (
        rejected(lambda: verify_stripe(STRIPE_BODY, {"Stripe-Signature": value}, STRIPE, NOW)).code
        == "malformed"
    )


@pytest.mark.parametrize("body", [b"not json", b'["a list"]', b'{"id": 42, "type": null}'])
def test_stripe_verified_body_without_id_or_type(body: bytes) -> None:
    # Bad JSON that was genuinely signed is the pipeline's to reject (DLQ), not a 401.
    headers = {"Stripe-Signature": stripe_header(body=body)}
    verified = verify_stripe(body, headers, STRIPE, NOW)
    assert (verified.event_id, verified.event_type, verified.id_signed) == (None, None, False)


# --- Standard Webhooks ---------------------------------------------------------------------

# The example secret format of the Standard Webhooks spec and its reference libraries.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_OLD_SECRET = "whsec_" + base64.b64encode(b"opencdp-previous-signing-key-32b").decode()
STANDARD = VerifyConfig(secrets=(STANDARD_SECRET,))
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def standard_headers(
    secret: str = STANDARD_SECRET,
    timestamp: float = NOW,
    body: bytes = STANDARD_BODY,
    msg_id: str = MSG_ID,
) -> dict[str, str]:
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_standard_valid() -> None:
    assert verify_standard(STANDARD_BODY, standard_headers(), STANDARD, NOW) == Verified(
        event_id=MSG_ID, event_type="contact.created", timestamp=NOW, id_signed=True
    )


def test_standard_agrees_with_the_official_library() -> None:
    now = time.time()
    headers = standard_headers(timestamp=now)
    assert Webhook(STANDARD_SECRET).verify(STANDARD_BODY, headers)["type"] == "contact.created"
    assert verify_standard(STANDARD_BODY, headers, STANDARD, now).event_id == MSG_ID
    tampered = STANDARD_BODY.replace(b'"id":7', b'"id":8')
    with pytest.raises(WebhookVerificationError):
        Webhook(STANDARD_SECRET).verify(tampered, headers)
    assert rejected(lambda: verify_standard(tampered, headers, STANDARD, now)).code == "mismatch"


def test_standard_unpadded_and_unprefixed_secrets() -> None:
    raw = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    unpadded = base64.b64encode(raw).decode().rstrip("=")
    for secret in (unpadded, "whsec_" + unpadded):
        config = VerifyConfig(secrets=(secret,))
        assert verify_standard(STANDARD_BODY, standard_headers(), config, NOW).event_id == MSG_ID


def test_standard_wrong_secret() -> None:
    headers = standard_headers(secret=STANDARD_OLD_SECRET)
    assert (
        rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW)).code == "mismatch"
    )


def test_standard_tampered_body() -> None:
    headers = standard_headers()
    assert (
        rejected(lambda: verify_standard(STANDARD_BODY + b" ", headers, STANDARD, NOW)).code
        == "mismatch"
    )


@pytest.mark.parametrize(
    ("name", "value"), [("webhook-id", "msg_other"), ("webhook-timestamp", str(int(NOW) - 1))]
)
def test_standard_id_and_timestamp_are_signed(name: str, value: str) -> None:
    # Neither can be swapped, so a replay cannot dodge the id-keyed replay guard.
    headers = {**standard_headers(), name: value}
    assert (
        rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW)).code == "mismatch"
    )


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_missing_header(name: str) -> None:
    headers = standard_headers()
    del headers[name]
    error = rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW))
    assert (error.code, error.reason) == ("missing_header", f"missing header {name}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "2025-06-15T15:06:40Z"),
        ("webhook-timestamp", "1750000000.5"),
        ("webhook-signature", "v1"),  # no comma
        ("webhook-signature", "v1a,c2lnbmF0dXJl"),  # only an asymmetric entry
        ("webhook-signature", "v1,%%%not-base64%%%"),
        ("webhook-signature", "v1,c2hvcnQ="),  # base64, but not 32 bytes
    ],
)
def test_standard_malformed_header(name: str, value: str) -> None:
    headers = {**standard_headers(), name: value}
    assert (
        rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW)).code == "malformed"
    )


def test_standard_stale_timestamp() -> None:
    headers = standard_headers(timestamp=NOW - TOLERANCE - 1)
    assert rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW)).code == "stale"


def test_standard_future_timestamp() -> None:
    headers = standard_headers(timestamp=NOW + TOLERANCE + 1)
    assert rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW)).code == "future"


@pytest.mark.parametrize("offset", [-TOLERANCE, 0, TOLERANCE])
def test_standard_within_tolerance_both_ways(offset: int) -> None:
    headers = standard_headers(timestamp=NOW + offset)
    assert verify_standard(STANDARD_BODY, headers, STANDARD, NOW).timestamp == NOW + offset


def test_standard_rotated_secrets_both_accepted() -> None:
    config = VerifyConfig(secrets=(STANDARD_SECRET, STANDARD_OLD_SECRET))
    for secret in (STANDARD_SECRET, STANDARD_OLD_SECRET):
        headers = standard_headers(secret=secret)
        assert verify_standard(STANDARD_BODY, headers, config, NOW).event_id == MSG_ID


def test_standard_multiple_signatures_and_unknown_versions() -> None:
    new = standard_headers()["webhook-signature"]
    old = standard_headers(secret=STANDARD_OLD_SECRET)["webhook-signature"]
    headers = {
        **standard_headers(),
        "webhook-signature": f"v1a,ZWQyNTUxOQ== v2,whatever {old} {new}",
    }
    for secret in (STANDARD_SECRET, STANDARD_OLD_SECRET):
        config = VerifyConfig(secrets=(secret,))
        assert verify_standard(STANDARD_BODY, headers, config, NOW).event_id == MSG_ID
    unrelated = "whsec_" + base64.b64encode(b"u" * 32).decode()
    config = VerifyConfig(secrets=(unrelated,))
    assert rejected(lambda: verify_standard(STANDARD_BODY, headers, config, NOW)).code == "mismatch"


@pytest.mark.parametrize("version", ["v1a", "v2", "V1", ""])
def test_standard_only_v1_entries_count(version: str) -> None:
    # A valid HMAC under another version label is not a v1 signature.
    valid = standard_headers()["webhook-signature"].removeprefix("v1,")
    headers = {**standard_headers(), "webhook-signature": f"{version},{valid}"}
    error = rejected(lambda: verify_standard(STANDARD_BODY, headers, STANDARD, NOW))
    assert (error.code, error.reason) == ("malformed", "webhook-signature has no v1 signature")


def test_standard_svix_header_names() -> None:
    headers = {k.replace("webhook-", "svix-"): v for k, v in standard_headers().items()}
    assert verify_standard(STANDARD_BODY, headers, STANDARD, NOW).event_id == MSG_ID


def test_standard_body_without_type() -> None:
    body = b'{"data":{"id":7}}'
    headers = standard_headers(body=body)
    assert verify_standard(body, headers, STANDARD, NOW).event_type is None


@pytest.mark.parametrize("secret", ["whsec_%%%", "whsec_", "whsec_====", ""])
def test_standard_unusable_secret_is_a_config_error(secret: str) -> None:
    config = VerifyConfig(secrets=(secret,))
    with pytest.raises(ConfigError) as caught:
        check_config("standard", config)
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in str(caught.value)
    with pytest.raises(ConfigError):
        verify_standard(STANDARD_BODY, standard_headers(), config, NOW)


# --- generic HMAC-SHA256 -------------------------------------------------------------------

HMAC = VerifyConfig(
    secrets=(GITHUB_SECRET,), id_header="X-GitHub-Delivery", type_header="X-GitHub-Event"
)


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_hmac_githubs_documented_example() -> None:
    headers = {
        "X-Hub-Signature-256": GITHUB_SIGNATURE,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    assert verify_hmac(GITHUB_BODY, headers, HMAC, NOW) == Verified(
        event_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        event_type="push",
        timestamp=None,
        id_signed=False,
    )


@pytest.mark.parametrize(
    "value",
    [
        GITHUB_SIGNATURE.removeprefix("sha256="),  # bare hex
        GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256="),  # upper-case hex
        "SHA256=" + GITHUB_SIGNATURE.removeprefix("sha256="),
    ],
)
def test_hmac_accepted_forms(value: str) -> None:
    assert verify_hmac(GITHUB_BODY, {"x-hub-signature-256": value}, HMAC, NOW).event_id is None


def test_hmac_configurable_header() -> None:
    config = VerifyConfig(secrets=("s3cr3t-for-acme",), signature_header="X-Acme-Signature")
    headers = {"X-Acme-Signature": hex_hmac("s3cr3t-for-acme", b"{}")}
    assert verify_hmac(b"{}", headers, config, NOW).timestamp is None
    # The default header is not read when another is configured.
    github = {"X-Hub-Signature-256": "sha256=" + hex_hmac("s3cr3t-for-acme", b"{}")}
    assert rejected(lambda: verify_hmac(b"{}", github, config, NOW)).code == "missing_header"


def test_hmac_wrong_secret() -> None:
    headers = {"X-Hub-Signature-256": "sha256=" + hex_hmac("not the secret", GITHUB_BODY)}
    assert rejected(lambda: verify_hmac(GITHUB_BODY, headers, HMAC, NOW)).code == "mismatch"


def test_hmac_tampered_body() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    assert rejected(lambda: verify_hmac(b"Hello, World", headers, HMAC, NOW)).code == "mismatch"


def test_hmac_missing_header() -> None:
    error = rejected(lambda: verify_hmac(GITHUB_BODY, {"X-Hub-Signature": "sha1=abc"}, HMAC, NOW))
    assert (error.code, error.reason) == ("missing_header", "missing header X-Hub-Signature-256")


@pytest.mark.parametrize(
    "value",
    [
        "sha1=" + hashlib.sha1(GITHUB_BODY).hexdigest(),  # another algorithm  # noqa: S324
        "sha256=",
        "sha256=xyz",
        "sha256=" + "0" * 63,
        base64.b64encode(bytes.fromhex(GITHUB_SIGNATURE[7:])).decode(),  # base64, not hex
    ],
)
def test_hmac_malformed_header(value: str) -> None:
    headers = {"X-Hub-Signature-256": value}
    assert rejected(lambda: verify_hmac(GITHUB_BODY, headers, HMAC, NOW)).code == "malformed"


@pytest.mark.parametrize("algorithm", ["sha1", "sha512", "md5"])
def test_hmac_other_algorithm_labels_are_not_accepted(algorithm: str) -> None:
    # The right digest under another algorithm's label is not an HMAC-SHA256 signature.
    digest = GITHUB_SIGNATURE.removeprefix("sha256=")
    headers = {"X-Hub-Signature-256": f"{algorithm}={digest}"}
    assert rejected(lambda: verify_hmac(GITHUB_BODY, headers, HMAC, NOW)).code == "malformed"


@pytest.mark.parametrize("now", [0.0, NOW + 86_400 * 365])
def test_hmac_signs_no_timestamp(now: float) -> None:
    # No stale or future refusal exists for this scheme: replays are RecentIds' job.
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    assert verify_hmac(GITHUB_BODY, headers, HMAC, now).timestamp is None


def test_hmac_rotated_secrets_both_accepted() -> None:
    config = VerifyConfig(secrets=("the-new-shared-secret", GITHUB_SECRET))
    for secret in config.secrets:
        headers = {"X-Hub-Signature-256": "sha256=" + hex_hmac(secret, GITHUB_BODY)}
        assert verify_hmac(GITHUB_BODY, headers, config, NOW).timestamp is None


def test_hmac_multiple_signatures_any_match() -> None:
    other = "sha256=" + hex_hmac("not the secret", GITHUB_BODY)
    headers = {"X-Hub-Signature-256": f"{other}, sha1=00, {GITHUB_SIGNATURE}"}
    assert verify_hmac(GITHUB_BODY, headers, HMAC, NOW).timestamp is None
    headers = {"X-Hub-Signature-256": f"{other}, {other}"}
    assert rejected(lambda: verify_hmac(GITHUB_BODY, headers, HMAC, NOW)).code == "mismatch"


# --- the dispatcher, the configuration and the error -----------------------------------------


def signed_request(scheme: str) -> tuple[bytes, dict[str, str], VerifyConfig]:
    if scheme == "shopify":
        return SHOPIFY_BODY, shopify_headers(shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY)), SHOPIFY
    if scheme == "stripe":
        return STRIPE_BODY, {"Stripe-Signature": stripe_header()}, STRIPE
    if scheme == "standard":
        return STANDARD_BODY, standard_headers(), STANDARD
    return GITHUB_BODY, {"X-Hub-Signature-256": GITHUB_SIGNATURE}, HMAC


@pytest.mark.parametrize("scheme", ["shopify", "stripe", "standard", "hmac"])
def test_verify_dispatches_by_scheme(scheme: str) -> None:
    body, headers, config = signed_request(scheme)
    assert verify(scheme, body, headers, config, NOW) == SCHEMES[scheme](body, headers, config, NOW)
    check_config(scheme, config)
    others = [s for s in ("shopify", "stripe", "standard", "hmac") if s != scheme]
    for other in others:
        # Refused either as a request (SignatureError) or, for a secret that cannot serve
        # the other scheme at all, as configuration (ConfigError): never verified.
        with pytest.raises((SignatureError, ConfigError)):
            verify(other, body, headers, config, NOW)


def test_scheme_names() -> None:
    assert set(SCHEMES) == {"shopify", "stripe", "standard", "hmac", "jwt"}


@pytest.mark.parametrize("scheme", ["Shopify", "github", "", "none"])
def test_unknown_scheme_is_a_config_error(scheme: str) -> None:
    body, headers, config = signed_request("hmac")
    with pytest.raises(ConfigError, match="unknown webhook scheme"):
        verify(scheme, body, headers, config, NOW)
    with pytest.raises(ConfigError, match="unknown webhook scheme"):
        check_config(scheme, config)


@pytest.mark.parametrize("scheme", ["shopify", "stripe", "standard", "hmac", "jwt"])
def test_no_secret_is_a_config_error(scheme: str) -> None:
    body, headers, _ = signed_request(scheme)
    with pytest.raises(ConfigError):
        check_config(scheme, VerifyConfig())
    with pytest.raises(ConfigError):
        verify(scheme, body, headers, VerifyConfig(), NOW)
    with pytest.raises(ConfigError):
        check_config(scheme, VerifyConfig(secrets=("  ",)))


def test_config_refuses_a_single_string_and_keeps_secrets_out_of_repr() -> None:
    with pytest.raises(ConfigError, match="list of strings"):
        VerifyConfig(secrets="whsec_one_string")  # type: ignore[arg-type]
    config = VerifyConfig(secrets=["shpss_listed_secret"])  # type: ignore[arg-type]
    assert config.secrets == ("shpss_listed_secret",)
    assert "shpss_listed_secret" not in repr(config)
    assert hash(config)  # frozen and hashable, so it can key caches


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tolerance_seconds": 0},
        {"tolerance_seconds": -5},
        {"jwt_leeway_seconds": -1},
        {"signature_header": " "},
    ],
)
def test_config_bounds(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        VerifyConfig(secrets=("s",), **kwargs)  # type: ignore[arg-type]


def test_signature_error_is_terminal_with_a_hint() -> None:
    error = rejected(
        lambda: verify_hmac(b"x", {"X-Hub-Signature-256": GITHUB_SIGNATURE}, HMAC, NOW)
    )
    assert isinstance(error, TerminalError)
    assert not error.retryable
    assert error.hint
    assert str(error).startswith("webhook request not verified: ")


def failures() -> list[tuple[str, bytes, dict[str, str], VerifyConfig, list[str]]]:
    """Refused requests, each with the strings its error must never show."""
    shopify_expected = shopify_hmac(SHOPIFY_SECRET, b"tampered")
    stripe_expected = hex_hmac(STRIPE_SECRET, f"{int(NOW)}.tampered".encode())
    standard_key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    standard_expected = base64.b64encode(
        hmac.new(standard_key, f"{MSG_ID}.{int(NOW)}.tampered".encode(), hashlib.sha256).digest()
    ).decode()
    return [
        (
            "shopify",
            b"tampered",
            shopify_headers(shopify_hmac(SHOPIFY_SECRET, SHOPIFY_BODY)),
            SHOPIFY,
            [SHOPIFY_SECRET, shopify_expected],
        ),
        (
            "stripe",
            b"tampered",
            {"Stripe-Signature": stripe_header()},
            STRIPE,
            [STRIPE_SECRET, stripe_expected],
        ),
        (
            "standard",
            b"tampered",
            standard_headers(),
            STANDARD,
            [STANDARD_SECRET, STANDARD_SECRET[6:], standard_expected],
        ),
        (
            "hmac",
            b"tampered",
            {"X-Hub-Signature-256": GITHUB_SIGNATURE},
            HMAC,
            [GITHUB_SECRET, hex_hmac(GITHUB_SECRET, b"tampered")],
        ),
        (
            "stripe",
            STRIPE_BODY,
            {"Stripe-Signature": stripe_header(timestamp=NOW - 999)},
            STRIPE,
            [STRIPE_SECRET],
        ),
    ]


@pytest.mark.parametrize(("scheme", "body", "headers", "config", "hidden"), failures())
def test_errors_never_show_a_secret_or_the_expected_signature(
    scheme: str, body: bytes, headers: dict[str, str], config: VerifyConfig, hidden: list[str]
) -> None:
    error = rejected(lambda: verify(scheme, body, headers, config, NOW))
    shown = f"{error} {error.reason} {error.hint} {error!r}"
    for secret in hidden:
        assert secret not in shown
