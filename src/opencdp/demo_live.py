"""The live half of the demo: the collection service receives the demo tenant's events
through the tracking API and Shopify webhooks, and the batcher lands them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from opencdp.collect.batcher import Batcher
from opencdp.collect.probe import free_port, wait_healthy
from opencdp.collect.queue import open_queue
from opencdp.errors import TransientError
from opencdp.settings import Settings

WRITE_KEY = "demo_write_key"  # the example configuration's demo keys
SHOPIFY_SECRET = "demo_shopify_secret"  # noqa: S105 - the public demo key
TRACKED_EVENTS = 2_000
WEBHOOK_ORDERS = 20


@dataclass
class LiveReport:
    url: str
    events_sent: int
    webhooks_sent: int
    landed: int
    files: int


def start_opencdp(settings: Settings, command: list[str], port: int) -> subprocess.Popen[bytes]:
    """`opencdp COMMAND...` on this data root, running once it answers /healthz on `port`."""
    process = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            "-m",
            "opencdp.cli.main",
            "--root",
            str(settings.root),
            "--log-level",
            "warning",
            *command,
            "--port",
            str(port),
        ],
    )
    if wait_healthy(port):
        return process
    process.kill()
    raise TransientError(f"`opencdp {' '.join(command)}` did not start on port {port}")


def start_service(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    """`opencdp collect serve` without its batcher: the demo drains the queue itself."""
    return start_opencdp(settings, ["collect", "serve", "--no-batcher"], port)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def send_demo_traffic(url: str, exports: Path) -> tuple[int, int]:
    """Tracking-API batches of the generated events, and signed Shopify order webhooks."""
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    sent = 0
    with (exports / "events" / "events.jsonl").open("rb") as f:
        events = [json.loads(line) for line in itertools.islice(f, TRACKED_EVENTS)]
    for start in range(0, len(events), 100):
        batch = json.dumps({"batch": events[start : start + 100]}).encode()
        if _post(f"{url}/v1/batch", batch, headers) == 200:
            sent += len(events[start : start + 100])
    hooks = 0
    with (exports / "shopify" / "orders.jsonl").open("rb") as f:
        for line in itertools.islice(f, WEBHOOK_ORDERS):
            body = line.strip()
            digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
            order_id = json.loads(body)["id"]
            status = _post(
                f"{url}/webhooks/demo/shop_webhooks",
                body,
                {
                    "Content-Type": "application/json",
                    "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Webhook-Id": f"demo-order-{order_id}",
                },
            )
            hooks += status == 200
    return sent, hooks


def drain(settings: Settings) -> tuple[int, int]:
    """Land everything queued now; returns (events written, files written)."""
    queue = open_queue(settings.collect.queue_url, settings.root, settings.collect.queue_options)
    try:
        batcher = Batcher.from_settings(settings, queue)
        while batcher.run_once(timeout=0.5):
            pass
        batcher.flush()
        return batcher.metrics.events_written, batcher.metrics.batches_flushed
    finally:
        queue.close()


def run_live(settings: Settings, exports: Path) -> tuple[LiveReport, subprocess.Popen[bytes]]:
    port = free_port(settings.collect.port)
    process = start_service(settings, port)
    url = f"http://127.0.0.1:{port}"
    try:
        events, hooks = send_demo_traffic(url, exports)
        landed, files = drain(settings)
    except BaseException:
        process.terminate()
        raise
    return LiveReport(url, events, hooks, landed, files), process
