"""The Singer target's guarantees: batching, envelopes, DLQ, drift, BATCH, state safety."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencdp.ingest.pipeline import ingest_lines
from opencdp.ingest.schemas import SchemaRegistry
from opencdp.ingest.singer.state import StateStore
from opencdp.ingest.singer.target import SingerTarget
from opencdp.settings import Settings
from opencdp.storage import open_object_store
from opencdp.storage.ndjson import read_lines
from opencdp.storage.rawzone import DeadLetterWriter, RawZoneWriter

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "SCHEMA",
    "stream": "customers",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": ["string", "null"]},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
}


def record(i: int, **extra: Any) -> dict[str, Any]:
    rec = {"id": i, "email": f"p{i}@example.com", "updated_at": "2025-01-15T01:00:00Z", **extra}
    return {"type": "RECORD", "stream": "customers", "record": rec}


def state(i: int) -> dict[str, Any]:
    return {"type": "STATE", "value": {"bookmarks": {"customers": {"id": i}}}}


def lines(*messages: dict[str, Any] | bytes) -> list[bytes]:
    return [m if isinstance(m, bytes) else orjson.dumps(m) for m in messages]


def tap_output(n: int, state_every: int = 100, start: int = 1) -> list[bytes]:
    out: list[dict[str, Any]] = [SCHEMA]
    for i in range(start, start + n):
        out.append(record(i))
        if i % state_every == 0:
            out.append(state(i))
    return lines(*out)


def raw_docs(root: Path, tenant: str = "acme") -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((root / "raw" / tenant).rglob("*.ndjson.gz"))
        for doc in read_lines(path.read_bytes())
    ]


def dlq_docs(root: Path, error_type: str) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((root / "dlq").rglob(f"{error_type}/*.ndjson.gz"))
        for doc in read_lines(path.read_bytes())
    ]


def saved_state(root: Path, source: str = "shop") -> dict[str, Any]:
    value = orjson.loads((root / "state" / "singer" / "acme" / f"{source}.json").read_bytes())
    assert isinstance(value, dict)
    return value


def test_batches_hold_at_most_batch_size_and_numbers_continue(settings: Settings) -> None:
    summary = ingest_lines(
        settings, tenant="acme", provider="shop", lines=tap_output(25), batch_size=10
    )
    assert summary.streams["customers"].files == 3
    names = sorted(Path(k).name for k in summary.raw_files)
    assert names == [f"customers_batch_{n:03d}.ndjson.gz" for n in (1, 2, 3)]
    again = ingest_lines(
        settings, tenant="acme", provider="shop", lines=tap_output(5), batch_size=10
    )
    assert [Path(k).name for k in again.raw_files] == ["customers_batch_004.ndjson.gz"]
    sizes = [len(list(read_lines((settings.root / k).read_bytes()))) for k in summary.raw_files]
    assert sizes == [10, 10, 5]
    assert len(raw_docs(settings.root)) == 30


def test_raw_files_are_partitioned_by_tenant_provider_and_day(settings: Settings) -> None:
    summary = ingest_lines(settings, tenant="acme", provider="shop", lines=tap_output(3))
    [key] = summary.raw_files
    today = datetime.now().astimezone().astimezone(tz=None)
    parts = key.split("/")
    assert parts[:3] == ["raw", "acme", "shop"]
    assert parts[3].startswith("year=")
    assert parts[4].startswith("month=")
    assert parts[5].startswith("day=")
    assert int(parts[3][5:]) in (today.year, today.year + 1)


def test_envelope_carries_lineage(settings: Settings) -> None:
    message = record(7)
    message["time_extracted"] = "2025-01-15T01:02:03Z"
    ingest_lines(settings, tenant="acme", provider="shop", lines=lines(SCHEMA, message))
    [doc] = raw_docs(settings.root)
    meta = doc["_meta"]
    assert meta["id"] == "7"
    assert meta["extracted_at"] == "2025-01-15T01:02:03Z"
    assert meta["schema_version"] == 1
    assert meta["event_type"] is None
    assert meta["batch_id"]
    assert datetime.fromisoformat(meta["received_at"].replace("Z", "+00:00")).tzinfo is not None
    assert doc["record"] == message["record"]


def test_summary_counts_bytes(settings: Settings) -> None:
    summary = ingest_lines(settings, tenant="acme", provider="shop", lines=tap_output(2000))
    stats = summary.streams["customers"]
    assert (stats.records_in, stats.written, stats.rejected) == (2000, 2000, 0)
    on_disk = sum((settings.root / k).stat().st_size for k in summary.raw_files)
    assert stats.compressed_bytes == on_disk
    assert stats.raw_bytes > 5 * stats.compressed_bytes


def test_bad_lines_go_to_the_dlq_and_the_rest_is_consumed(settings: Settings) -> None:
    summary = ingest_lines(
        settings,
        tenant="acme",
        provider="shop",
        lines=lines(
            SCHEMA,
            b"{not json",
            b'["a", "list"]',
            {"type": "BOGUS", "stream": "customers"},
            {"type": "RECORD", "stream": "customers"},
            record(1),
            record(2, updated_at="yesterday"),
            {"type": "RECORD", "stream": "customers", "record": {"email": "x@y.z"}},
            state(2),
        ),
    )
    assert not summary.ok
    assert summary.protocol_errors == 4
    assert [d["record"]["id"] for d in raw_docs(settings.root)] == [1]
    assert dlq_docs(settings.root, "malformed_json")[0]["record"] == "{not json"
    assert len(dlq_docs(settings.root, "malformed_message")) == 2
    assert len(dlq_docs(settings.root, "unknown_message_type")) == 1
    [bad_date] = dlq_docs(settings.root, "validation")
    assert bad_date["error"]["field"] == "updated_at"
    assert bad_date["error"]["expected"] == "format date-time"
    assert bad_date["error"]["got"] == '"yesterday"'
    [no_key] = dlq_docs(settings.root, "missing_key_property")
    assert no_key["record"] == {"email": "x@y.z"}
    assert saved_state(settings.root) == state(2)["value"]


def drifted_schema() -> dict[str, Any]:
    properties = {"id": {"type": "string"}, "updated_at": {"type": "string"}}
    return {**SCHEMA, "schema": {"type": "object", "properties": properties}}


def test_drift_is_recorded_and_accepted_with_warn(settings: Settings) -> None:
    summary = ingest_lines(
        settings,
        tenant="acme",
        provider="shop",
        lines=lines(SCHEMA, record(1), drifted_schema(), {**record(2), "record": {"id": "2"}}),
    )
    assert summary.ok
    changes = summary.drift["customers"]
    assert "- email (removed)" in changes
    assert "~ id: type integer -> string" in changes
    assert "! id no longer required" in changes
    registry = SchemaRegistry(open_object_store(str(settings.root)), "acme", "shop")
    assert [v.version for v in registry.versions("customers")] == [1, 2]
    assert registry.get("customers").drift == tuple(changes)
    assert len(raw_docs(settings.root)) == 2


def test_drift_sends_records_to_the_dlq_with_dlq_policy(settings: Settings) -> None:
    summary = ingest_lines(
        settings,
        tenant="acme",
        provider="shop",
        lines=lines(SCHEMA, record(1), drifted_schema(), {**record(2), "record": {"id": "2"}}),
        drift_policy="dlq",
    )
    assert summary.ok  # drift is a data decision, not a protocol error
    assert [d["record"]["id"] for d in raw_docs(settings.root)] == [1]
    [held] = dlq_docs(settings.root, "schema_drift")
    assert "email (removed)" in held["error"]["reason"]


def test_batch_messages_read_their_manifest(settings: Settings, tmp_path: Path) -> None:
    part = tmp_path / "part-1.jsonl.gz"
    part.write_bytes(
        gzip.compress(b"\n".join(orjson.dumps(record(i)["record"]) for i in range(1, 4)))
    )
    batch = {
        "type": "BATCH",
        "stream": "customers",
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "manifest": [part.as_uri()],
    }
    missing = {**batch, "manifest": [(tmp_path / "gone.jsonl.gz").as_uri()]}
    summary = ingest_lines(
        settings, tenant="acme", provider="shop", lines=lines(SCHEMA, batch, missing)
    )
    assert sorted(d["record"]["id"] for d in raw_docs(settings.root)) == [1, 2, 3]
    assert summary.protocol_errors == 1
    assert "gone.jsonl.gz" in dlq_docs(settings.root, "batch_file")[0]["error"]["reason"]


class CrashingRawWriter(RawZoneWriter):
    """Fails on the nth batch commit, as a full disk or a killed process would."""

    def __init__(self, *args: Any, fail_on: int) -> None:
        super().__init__(*args)
        self.commits = 0
        self.fail_on = fail_on

    def commit_batch(self, stream: str, data: bytes, day: datetime) -> str:
        self.commits += 1
        if self.commits == self.fail_on:
            raise OSError("disk full")
        return super().commit_batch(stream, data, day)


def test_state_is_saved_only_after_every_earlier_record_is_durable(settings: Settings) -> None:
    store = open_object_store(str(settings.root))
    second = {**SCHEMA, "stream": "orders"}
    messages = [SCHEMA, second]
    for i in range(1, 61):
        messages.append(record(i))
        if i % 3 == 0:  # a slow stream: its batch stays open across many states
            messages.append({"type": "RECORD", "stream": "orders", "record": {"id": i}})
        messages.append(state(i))
    target = SingerTarget(
        tenant="acme",
        provider="shop",
        raw=CrashingRawWriter(store, "acme", "shop", fail_on=4),
        dead_letters=DeadLetterWriter(store, "acme", "shop"),
        registry=SchemaRegistry(store, "acme", "shop"),
        state=StateStore(store, "acme", "shop"),
        batch_size=10,
    )
    with pytest.raises(OSError, match="disk full"):
        target.consume(lines(*messages))
    # customers batches 1-3 (ids 1-30) were committed, but the orders batch holding ids
    # 3..30 was still open: no state may claim more than what is durable everywhere.
    durable = {
        d["record"]["id"] for d in raw_docs(settings.root) if d["_meta"]["stream"] == "customers"
    }
    assert durable == set(range(1, 31))
    bookmark = (
        saved_state(settings.root)["bookmarks"]["customers"]["id"]
        if (settings.root / "state" / "singer" / "acme" / "shop.json").exists()
        else 0
    )
    assert bookmark < 3  # the first orders record (id 3) was never written


def ingest_command(root: Path, *extra: str) -> list[str]:
    """The installed `opencdp ingest` for tenant acme and provider shop."""
    opencdp = Path(sys.executable).parent / "opencdp"
    return [
        str(opencdp),
        "--root",
        str(root),
        "ingest",
        "--tenant",
        "acme",
        "--provider",
        "shop",
        *extra,
    ]


def feed_and_kill(root: Path, messages: list[bytes], env: dict[str, str]) -> None:
    """Start `opencdp ingest`, feed it, SIGKILL it once it has saved a state."""
    process = subprocess.Popen(
        ingest_command(root, "--batch-size", "500"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdin is not None
    state_file = root / "state" / "singer" / "acme" / "shop.json"
    for n, line in enumerate(messages):
        process.stdin.write(line + b"\n")
        if n % 1000 == 0:
            process.stdin.flush()
        if n > len(messages) // 2 and state_file.exists():
            break
    process.stdin.flush()
    deadline = time.monotonic() + 30
    while not state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def subprocess_env(data_root: Path, clean_env: None) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}


def test_killed_run_resumes_from_its_state_without_loss(
    data_root: Path, subprocess_env: dict[str, str]
) -> None:
    total = 20_000
    feed_and_kill(data_root, tap_output(total), subprocess_env)
    bookmark = saved_state(data_root)["bookmarks"]["customers"]["id"]
    landed = {d["record"]["id"] for d in raw_docs(data_root)}
    assert set(range(1, bookmark + 1)) <= landed, "a saved state claims records that were lost"
    assert bookmark < total

    # The next run starts after the bookmark, as a tap given --state does.
    rerun = subprocess.run(
        ingest_command(data_root),
        input=b"\n".join(tap_output(total - bookmark, start=bookmark + 1)) + b"\n",
        capture_output=True,
        env=subprocess_env,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert {d["record"]["id"] for d in raw_docs(data_root)} == set(range(1, total + 1))
    assert saved_state(data_root)["bookmarks"]["customers"]["id"] == total


def test_stdin_pipe_through_the_installed_command(
    data_root: Path, subprocess_env: dict[str, str]
) -> None:
    result = subprocess.run(
        ingest_command(data_root),
        input=b"\n".join(tap_output(250)),
        capture_output=True,
        env=subprocess_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert "customers" in result.stderr.decode()
    assert len(raw_docs(data_root)) == 250
