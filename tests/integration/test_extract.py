"""`opencdp extract`: taps run into the target with state, retries, timeout and alerts."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
import yaml
from pydantic import SecretStr

from opencdp.alerts import Alerter
from opencdp.errors import ConfigError
from opencdp.ingest.extract import extract
from opencdp.settings import Settings, load_settings
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

COUNTING_TAP = Path(__file__).parent.parent / "data" / "taps" / "counting_tap.py"


def configure(root: Path, **source: Any) -> Settings:
    source.setdefault("provider", "counter")
    source.setdefault("tap", f"command:{sys.executable} {COUNTING_TAP}")
    config = {"tenants": {"acme": {"sources": {"items": source}}}}
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(root)


def landed(root: Path, stream: str = "items") -> list[int]:
    return sorted(
        doc["record"]["id"]
        for path in (root / "raw").rglob(f"{stream}_batch_*.ndjson.gz")
        for doc in read_lines(path.read_bytes())
    )


def bookmark(root: Path) -> int:
    state = orjson.loads((root / "state" / "singer" / "acme" / "items.json").read_bytes())
    return int(state["bookmarks"]["items"])


def test_extract_lands_records_and_the_next_run_resumes(data_root: Path, clean_env: None) -> None:
    settings = configure(data_root, config={"total": 50})
    result = extract(settings, "acme", "items")
    assert result.status == "success"
    assert result.records == 50
    assert landed(data_root) == list(range(1, 51))
    assert bookmark(data_root) == 50
    again = extract(settings, "acme", "items")
    assert again.status == "success"
    assert again.records == 0  # started from the bookmark: nothing new
    assert len(landed(data_root)) == 50


def test_secrets_come_from_the_environment(
    data_root: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(data_root, config={"total": 3, "token": "env:COUNTER_TOKEN"})
    with pytest.raises(ConfigError, match="COUNTER_TOKEN"):
        extract(settings, "acme", "items")
    monkeypatch.setenv("COUNTER_TOKEN", "s3cret")
    assert extract(settings, "acme", "items").status == "success"
    docs = [d for p in (data_root / "raw").rglob("*.gz") for d in read_lines(p.read_bytes())]
    assert all(d["record"]["secret_seen"] for d in docs)
    assert "s3cret" not in (data_root / "opencdp.yaml").read_text()


def test_selected_streams_only(data_root: Path, clean_env: None) -> None:
    settings = configure(data_root, config={"total": 5}, select=["others"])
    assert extract(settings, "acme", "items").status == "success"
    assert landed(data_root, "others") == [1, 2, 3, 4, 5]
    assert landed(data_root, "items") == []
    bad = configure(data_root, config={"total": 5}, select=["nope"])
    with pytest.raises(ConfigError, match="offers no stream nope"):
        extract(bad, "acme", "items")


def test_failures_are_retried_from_the_last_state(
    data_root: Path, clean_env: None, tmp_path: Path
) -> None:
    settings = configure(
        data_root,
        config={"total": 50, "fail_at": 25, "fail_times": 2, "attempts_file": str(tmp_path / "n")},
        max_retries=3,
    )
    delays: list[float] = []
    result = extract(settings, "acme", "items", sleep=delays.append)
    assert result.status == "success"
    assert [a.exit_code for a in result.attempts] == [1, 1, 0]
    assert delays == [2.0, 4.0]  # exponential backoff
    assert sorted(set(landed(data_root))) == list(range(1, 51))
    # Resumed from bookmark 20 each time: records 21-25 may repeat, nothing before 20 does.
    assert landed(data_root).count(5) == 1
    assert bookmark(data_root) == 50


class AlertSink(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        AlertSink.received.append(orjson.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def alert_url() -> Iterator[str]:
    AlertSink.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), AlertSink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_last_failure_goes_to_the_dlq_and_alerts(
    data_root: Path, clean_env: None, tmp_path: Path, alert_url: str
) -> None:
    settings = configure(
        data_root,
        config={"total": 50, "fail_at": 15, "fail_times": 99, "attempts_file": str(tmp_path / "n")},
        max_retries=2,
    )
    alerter = Alerter(settings.alerts.model_copy(update={"webhook_url": SecretStr(alert_url)}))
    result = extract(settings, "acme", "items", sleep=lambda _: None, alerter=alerter)
    assert result.status == "failed"
    assert len(result.attempts) == 3
    assert "simulated failure at record 15" in (result.error or "")
    [dlq_file] = (data_root / "dlq" / "acme" / "counter" / "tap_failure").glob("*.ndjson.gz")
    [doc] = read_lines(dlq_file.read_bytes())
    assert doc["error"]["type"] == "tap_failure"
    assert doc["record"]["attempts"][0]["stderr_tail"] == ["simulated failure at record 15"]
    [alert] = AlertSink.received
    assert "acme/items failed after 3 attempts" in alert["text"]
    assert set(range(1, 11)) <= set(landed(data_root))  # what landed before stays landed


def test_timeout_stops_cleanly_and_the_next_run_finishes(data_root: Path, clean_env: None) -> None:
    slow = configure(data_root, config={"total": 400, "sleep": 0.01}, timeout_seconds=1.0)
    result = extract(slow, "acme", "items")
    assert result.status == "timeout"
    stopped_at = bookmark(data_root)
    assert 0 < stopped_at < 400
    assert set(range(1, stopped_at + 1)) <= set(landed(data_root))
    fast = configure(data_root, config={"total": 400})
    assert extract(fast, "acme", "items").status == "success"
    assert sorted(set(landed(data_root))) == list(range(1, 401))


def test_unknown_source_and_unknown_builtin(data_root: Path, clean_env: None) -> None:
    settings = configure(data_root, tap="builtin:nope")
    with pytest.raises(ConfigError, match="unknown built-in tap"):
        extract(settings, "acme", "items")
    with pytest.raises(Exception, match="has no source 'other'"):
        extract(settings, "acme", "other")
