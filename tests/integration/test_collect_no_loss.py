"""Nothing acknowledged is lost: SIGKILL the collection service (workers and batcher) in
the middle of a load, restart it, and find every acknowledged event in the raw zone once."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from tests.support.collect import free_port, start_collect, stop_service

from opencdp.storage.ndjson import read_lines

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITE_KEY = "wk_no_loss"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


def send(url: str, message_id: str) -> bool:
    body = json.dumps({"userId": "u", "event": "Load", "messageId": message_id}).encode()
    request = urllib.request.Request(f"{url}/v1/track", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", AUTH)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def raw_ids(root: Path) -> Counter[str]:
    return Counter(
        doc["_meta"]["id"]
        for path in (root / "raw").rglob("*.ndjson.gz")
        for doc in read_lines(path.read_bytes())
    )


def test_sigkill_mid_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    root = tmp_path / "cdp-data"
    root.mkdir()
    config = {
        "collect": {"batch_max_seconds": 1},
        "tenants": {
            "acme": {
                "sources": {
                    "site": {"provider": "segment", "kind": "tracking", "write_keys": [WRITE_KEY]}
                }
            }
        },
    }
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_collect(root, port, workers=2)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        n = 0
        while not stop.is_set():
            message_id = f"w{worker}-{n}"
            n += 1
            if send(url, message_id):
                with lock:
                    acked.append(message_id)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)  # the batcher has written some files by now, and more are in flight
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(acked) > 200, "the load was too small to mean anything"

    process = start_collect(root, port, workers=2)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            landed = raw_ids(root)
            if all(landed[i] for i in acked):
                break
            time.sleep(0.5)
        missing = [i for i in acked if not landed[i]]
        assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {missing[:5]}"
        twice = [i for i, n in landed.items() if n > 1]
        assert not twice, f"{len(twice)} events landed more than once, e.g. {twice[:5]}"
    finally:
        stop_service(process)
