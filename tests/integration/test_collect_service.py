"""The collection service over real HTTP: `opencdp collect serve` in a subprocess on
127.0.0.1, genuinely signed webhooks, the official Segment and RudderStack clients, and
what lands in the raw zone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import jwt
import pytest
import standardwebhooks
import yaml
from prometheus_client.parser import text_string_to_metric_families
from stripe import WebhookSignature
from tests.support.collect import free_port, start_collect, stop_service

from opencdp.storage.ndjson import read_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP_SECRET = "shpss_test_secret"
STRIPE_SECRET = "whsec_stripe_test_secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()
GITHUB_SECRET = "github-hmac-secret"
JWT_SECRET = "jwt-shared-secret-of-enough-length-for-hs256"
WRITE_KEY = "wk_acme_site"


def config() -> dict[str, Any]:
    def hook(provider: str, **webhook: Any) -> dict[str, Any]:
        return {"provider": provider, "kind": "webhook", "webhook": webhook}

    return {
        "collect": {"batch_max_seconds": 1, "dedup_window_seconds": 600},
        "tenants": {
            "acme": {
                "sources": {
                    "shop": hook("shopify", scheme="shopify", secrets=["env:SHOP_SECRET"]),
                    "pay": hook("stripe", scheme="stripe", secrets=[STRIPE_SECRET]),
                    "std": hook("svix", scheme="standard", secrets=[STANDARD_SECRET]),
                    "gh": hook(
                        "github",
                        scheme="hmac",
                        secrets=[GITHUB_SECRET],
                        id_header="X-GitHub-Delivery",
                        type_header="X-GitHub-Event",
                        max_body_bytes=4096,
                    ),
                    "partner": hook("partner", scheme="jwt", secrets=[JWT_SECRET]),
                    "office": hook("crm", scheme="hmac", secrets=["s"], allowed_ips=["10.0.0.0/8"]),
                    "site": {"provider": "segment", "kind": "tracking", "write_keys": [WRITE_KEY]},
                }
            },
            "tiny": {
                "rate_limit_per_second": 0.5,
                "rate_limit_burst": 2,
                "sources": {"hook": hook("shopify", scheme="shopify", secrets=["tiny"])},
            },
        },
    }


@dataclass
class Server:
    url: str
    root: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("collect") / "cdp-data"
    root.mkdir()
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config()), encoding="utf-8")
    port = free_port()
    process = start_collect(root, port, env={"SHOP_SECRET": SHOP_SECRET})
    yield Server(f"http://127.0.0.1:{port}", root, process)
    stop_service(process, signal.SIGINT)


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], Message]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers  # header names: any case


def landed(root: Path, tenant: str, provider: str, wait: float = 10.0) -> list[dict[str, Any]]:
    """Raw-zone lines of a provider, once the batcher has flushed what was sent."""

    def read() -> list[dict[str, Any]]:
        return [
            doc
            for path in sorted((root / "raw" / tenant / provider).rglob("*.ndjson.gz"))
            for doc in read_lines(path.read_bytes())
        ]

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if read():
            time.sleep(1.5)  # one more flush interval: let late events land too
            break
        time.sleep(0.2)
    return read()


def shopify_headers(body: bytes, secret: str, webhook_id: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Topic": "orders/create",
    }


def test_health_and_metrics(server: Server) -> None:
    with urllib.request.urlopen(f"{server.url}/readyz") as response:
        assert json.loads(response.read())["status"] == "ready"
    with urllib.request.urlopen(f"{server.url}/metrics") as response:
        text = response.read().decode()
    assert "opencdp_collect_queue_depth" in text


def test_shopify_webhook_lands_with_its_envelope(server: Server) -> None:
    body = json.dumps({"id": 820982911946154508, "email": "jon@example.com"}).encode()
    status, doc, _ = post(
        f"{server.url}/webhooks/acme/shop", body, shopify_headers(body, SHOP_SECRET, "wh-1")
    )
    assert (status, doc["status"]) == (200, "accepted")
    [line] = landed(server.root, "acme", "shopify")
    assert line["_meta"]["kind"] == "webhook"
    assert line["_meta"]["id"] == "wh-1"
    assert line["_meta"]["event_type"] == "orders/create"
    assert line["_meta"]["stream"] == "orders"
    assert line["record"] == json.loads(body)


def test_wrong_secret_and_tampered_body_are_refused(server: Server) -> None:
    body = b'{"id": 1}'
    status, doc, _ = post(
        f"{server.url}/webhooks/acme/shop", body, shopify_headers(body, "wrong", "wh-2")
    )
    assert status == 401
    assert "signature" in doc["detail"]
    headers = shopify_headers(body, SHOP_SECRET, "wh-3")
    status, _, _ = post(f"{server.url}/webhooks/acme/shop", b'{"id": 2}', headers)
    assert status == 401


def stripe_event(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "type": "charge.succeeded", "data": {"object": {}}}).encode()


def test_stripe_signed_by_the_official_library_and_replay_protection(server: Server) -> None:
    body = stripe_event("evt_1")
    header = WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)
    status, doc, _ = post(f"{server.url}/webhooks/acme/pay", body, {"Stripe-Signature": header})
    assert (status, doc["status"]) == (200, "accepted")
    status, doc, _ = post(f"{server.url}/webhooks/acme/pay", body, {"Stripe-Signature": header})
    assert (status, doc["status"]) == (200, "duplicate")  # replayed id: not stored again
    lines = landed(server.root, "acme", "stripe")
    assert [line["_meta"]["id"] for line in lines] == ["evt_1"]
    assert lines[0]["_meta"]["stream"] == "charge"


@pytest.mark.parametrize("offset", [-1000, 1000])
def test_stripe_stale_or_future_timestamps_are_refused(server: Server, offset: int) -> None:
    body = stripe_event(f"evt_t{offset}")
    header = WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp=int(time.time()) + offset
    )
    status, doc, _ = post(f"{server.url}/webhooks/acme/pay", body, {"Stripe-Signature": header})
    assert status == 401
    assert "timestamp" in doc["detail"] or "tolerance" in doc["detail"]


def test_standard_webhooks_signed_by_the_official_package(server: Server) -> None:
    body = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}})
    signer = standardwebhooks.Webhook(STANDARD_SECRET)
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign("msg_1", now, body),
    }
    status, _, _ = post(f"{server.url}/webhooks/acme/std", body.encode(), headers)
    assert status == 200
    headers["webhook-signature"] = standardwebhooks.Webhook(
        "whsec_" + base64.b64encode(b"another-key-entirely-32-bytes!!!").decode()
    ).sign("msg_1", now, body)
    status, _, _ = post(f"{server.url}/webhooks/acme/std", body.encode(), headers)
    assert status == 401
    [line] = landed(server.root, "acme", "svix")
    assert line["_meta"]["event_type"] == "invoice.paid"


def test_generic_hmac_body_limit_and_verified_bad_json_goes_to_the_dlq(server: Server) -> None:
    def signed(body: bytes, delivery: str) -> dict[str, str]:
        digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Event": "push",
        }

    good = b'{"ref": "refs/heads/main"}'
    assert post(f"{server.url}/webhooks/acme/gh", good, signed(good, "d1"))[0] == 200
    big = json.dumps({"x": "y" * 5000}).encode()
    assert post(f"{server.url}/webhooks/acme/gh", big, signed(big, "d2"))[0] == 413
    bad = b'{"ref": '
    status, doc, _ = post(f"{server.url}/webhooks/acme/gh", bad, signed(bad, "d3"))
    assert status == 400
    assert "JSON" in doc["detail"]
    deadline = time.monotonic() + 5
    while not list((server.root / "dlq" / "acme" / "github").rglob("*.ndjson.gz")):
        assert time.monotonic() < deadline, "the verified bad body was not kept in the DLQ"
        time.sleep(0.1)
    [kept] = [
        d
        for p in (server.root / "dlq" / "acme" / "github").rglob("*.ndjson.gz")
        for d in read_lines(p.read_bytes())
    ]
    assert kept["record"] == bad.decode()
    assert kept["error"]["type"] == "invalid_json"


def test_jwt_bearer(server: Server) -> None:
    token = jwt.encode({"exp": int(time.time()) + 60, "jti": "j1"}, JWT_SECRET, "HS256")
    body = b'{"event": "lead.created"}'
    url = f"{server.url}/webhooks/acme/partner"
    assert post(url, body, {"Authorization": f"Bearer {token}"})[0] == 200
    expired = jwt.encode({"exp": int(time.time()) - 600, "jti": "j2"}, JWT_SECRET, "HS256")
    assert post(url, body, {"Authorization": f"Bearer {expired}"})[0] == 401
    assert post(url, body)[0] == 401


def test_unknown_tenant_or_source_disallowed_ip_and_content_type(server: Server) -> None:
    assert post(f"{server.url}/webhooks/nope/shop", b"{}")[0] == 404
    assert post(f"{server.url}/webhooks/acme/nope", b"{}")[0] == 404
    assert post(f"{server.url}/webhooks/acme/office", b"{}")[0] == 403  # 127.0.0.1 not allowed
    request = urllib.request.Request(f"{server.url}/webhooks/acme/shop", data=b"a=b", method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 415


def test_rate_limit_answers_429_with_retry_after(server: Server) -> None:
    statuses = []
    for n in range(6):
        body = f'{{"n": {n}}}'.encode()
        status, _, headers = post(
            f"{server.url}/webhooks/tiny/hook", body, shopify_headers(body, "tiny", f"t{n}")
        )
        statuses.append(status)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]


def test_tracking_api_with_the_official_segment_client(server: Server) -> None:
    from segment.analytics.client import Client

    client = Client(write_key=WRITE_KEY, host=server.url, sync_mode=True)
    client.identify(user_id="u1", traits={"email": "ann@example.com"}, message_id="seg-1")
    client.track(
        user_id="u1", event="Order Completed", properties={"total": 12.5}, message_id="seg-2"
    )
    client.page(anonymous_id="a1", name="Home", message_id="seg-3")
    client.identify(user_id="u1", traits={}, message_id="seg-1")  # a retry: deduplicated
    client.flush()
    lines = landed(server.root, "acme", "segment")
    by_id = {line["_meta"]["id"]: line for line in lines}
    assert set(by_id) >= {"seg-1", "seg-2", "seg-3"}
    assert [line["_meta"]["id"] for line in lines].count("seg-1") == 1
    assert by_id["seg-2"]["_meta"]["event_type"] == "Order Completed"
    assert by_id["seg-2"]["_meta"]["stream"] == "track"
    assert by_id["seg-1"]["record"]["traits"] == {"email": "ann@example.com"}
    assert "receivedAt" in by_id["seg-3"]["record"]


def test_tracking_api_with_the_rudderstack_client_sending_gzip(server: Server) -> None:
    from rudderstack.analytics.client import Client

    client = Client(write_key=WRITE_KEY, host=server.url, sync_mode=True, gzip=True)
    client.track(user_id="u2", event="Product Viewed", message_id="rud-1")
    client.flush()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = {line["_meta"]["id"] for line in landed(server.root, "acme", "segment", wait=1)}
        if "rud-1" in ids:
            break
    assert "rud-1" in ids


def test_wrong_write_key_and_oversized_events(server: Server) -> None:
    event = json.dumps({"userId": "u", "event": "E"}).encode()
    auth = {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()}
    assert post(f"{server.url}/v1/track", event, auth)[0] == 401
    good = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    big = json.dumps({"userId": "u", "event": "E", "properties": {"x": "y" * 40_000}}).encode()
    status, doc, _ = post(f"{server.url}/v1/track", big, good)
    assert status in (400, 413)
    assert "limit" in doc["detail"]
    assert post(f"{server.url}/v1/track", b"{oops", good)[0] == 400


def test_metrics_count_requests_and_show_the_batchers_counters(server: Server) -> None:
    body = json.dumps({"id": 7, "email": "eve@example.com"}).encode()
    headers = shopify_headers(body, SHOP_SECRET, "wh-metrics")
    assert post(f"{server.url}/webhooks/acme/shop", body, headers)[0] == 200
    assert post(f"{server.url}/webhooks/made-up/path", b"{}")[0] == 404

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"{server.url}/metrics") as response:
            text = response.read().decode()
        return {
            f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    flushed = "opencdp_collect_batcher_batches_flushed_total[]"
    deadline = time.monotonic() + 15
    while (values := scrape()).get(flushed, 0) < 1:  # served by a worker, counted by the parent
        assert time.monotonic() < deadline, "the batcher's flushes never showed in /metrics"
        time.sleep(0.2)
    shop = "[('source', 'shop'), ('status', '200'), ('tenant', 'acme')]"
    assert values[f"opencdp_collect_requests_total{shop}"] >= 1
    # Names made up in a path are never labels: such requests count under "-".
    unknown = "[('source', '-'), ('status', '404'), ('tenant', '-')]"
    assert values[f"opencdp_collect_requests_total{unknown}"] >= 1
    assert not [key for key in values if "made-up" in key]
