"""The disk queue and the batcher across processes, with SIGKILLs.

Writer processes (as the server's workers would) put envelope lines with concurrent asyncio
producers and log every id whose `put` returned; a batcher process drains the queue into
the raw zone. Processes are killed with SIGKILL mid-load and restarted; in the end every
acknowledged id must be in the raw zone exactly once.

This file is also the processes' entry point:
    python test_collect_queue_processes.py writer FOLDER NAME COUNT CONCURRENCY ACKLOG
    python test_collect_queue_processes.py batcher ROOT MAX_EVENTS MAX_AGE
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from opencdp.collect.batcher import Batcher, BatcherConfig
from opencdp.collect.queue import open_queue
from opencdp.collect.queue.disk import SEGMENTS, DiskQueue
from opencdp.storage import open_object_store
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

STREAMS = ("pages", "orders", "identify")
TENANTS = ("acme", "globex")


def line(writer: str, i: int) -> bytes:
    meta = {
        "tenant": TENANTS[i % 2],
        "provider": "web",
        "stream": STREAMS[i % 3],
        "kind": "track",
        "id": f"{writer}-{i}",
        "received_at": "2025-01-15T01:00:00.000Z",
        "extracted_at": None,
        "batch_id": None,
        "schema_version": None,
        "event_type": None,
    }
    return orjson.dumps({"_meta": meta, "record": {"i": i, "pad": "x" * 200}})


# --- the processes -------------------------------------------------------------------------


def writer_main(folder: str, name: str, count: int, concurrency: int, acklog: str) -> None:
    queue = DiskQueue(Path(folder))
    log_fd = os.open(acklog, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def producer(first: int) -> None:
        for i in range(first, count, concurrency):
            await queue.put([line(name, i)])
            if i % 10 == 0:  # a client retrying a request that was in fact stored
                await queue.put([line(name, i)])
            os.write(log_fd, f"{name}-{i}\n".encode())  # acknowledged to the "client"

    async def main() -> None:
        await asyncio.gather(*(producer(k) for k in range(concurrency)))

    asyncio.run(main())
    queue.close()


def batcher_main(root: str, max_events: int, max_age: float) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    queue = open_queue(None, Path(root))
    config = BatcherConfig(
        max_events=max_events, max_age=max_age, read_items=100, read_timeout=0.05
    )
    Batcher(queue, open_object_store(root), config).run_forever(stop)
    queue.close()


# --- helpers -------------------------------------------------------------------------------


def spawn(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert process.stderr is not None
    process.stderr.close()


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()


def acked_ids(acklog: Path) -> list[str]:
    if not acklog.exists():
        return []
    text = acklog.read_text()
    whole = text if text.endswith("\n") else text.rsplit("\n", 1)[0]  # a torn last line
    return whole.split()


def raw_ids(root: Path) -> Counter[str]:
    store = open_object_store(str(root))
    return Counter(
        record["_meta"]["id"]
        for info in store.list("raw")
        for record in read_lines(store.read(info.key))
    )


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.slow
def test_several_writer_processes_one_reader(tmp_path: Path) -> None:
    folder = tmp_path / "queue"
    count = 1500
    writers = [spawn("writer", folder, f"w{n}", count, 8, tmp_path / f"w{n}.log") for n in range(3)]
    reader = DiskQueue(folder)
    got: list[bytes] = []
    while any(w.poll() is None for w in writers) or reader.depth():
        batch = reader.read(500, 0.05)
        got.extend(batch.items)
        reader.ack(batch)
    for w in writers:
        finish(w)
    got.extend(reader.read(100_000, 0).items)

    ids = [orjson.loads(item)["_meta"]["id"] for item in got]
    expected = {f"w{n}-{i}" for n in range(3) for i in range(count)}
    assert set(ids) == expected
    # Each writer's retried items (i % 10 == 0) are there twice, nothing else is.
    assert len(ids) == len(expected) + 3 * len(range(0, count, 10))
    # One producer's items keep their order.
    for n in range(3):
        for producer in range(8):
            mine = [
                int(x.split("-")[1])
                for x in dict.fromkeys(ids)
                if x.startswith(f"w{n}-") and int(x.split("-")[1]) % 8 == producer
            ]
            assert mine == sorted(mine)
    reader.close()
    assert list((folder / SEGMENTS).glob("*.seg")) == []


@pytest.mark.slow
def test_sigkill_writers_and_batcher_loses_nothing_and_writes_once(tmp_path: Path) -> None:
    root = tmp_path / "cdp-data"
    folder = root / "state" / "queue"
    count = 4000
    logs = {name: tmp_path / f"{name}.log" for name in ("w0", "w1", "w2", "w0r")}

    def spawn_writer(name: str) -> subprocess.Popen[bytes]:
        return spawn("writer", folder, name, count, 16, logs[name])

    def spawn_batcher() -> subprocess.Popen[bytes]:
        return spawn("batcher", root, 300, 0.2)

    def raw_files() -> int:
        raw = root / "raw"
        return sum(1 for _ in raw.rglob("*.ndjson.gz")) if raw.exists() else 0

    writers = {name: spawn_writer(name) for name in ("w0", "w1", "w2")}
    batcher = spawn_batcher()

    # A writer dies in the middle of its load, and is replaced by a new worker.
    wait_for(lambda: len(acked_ids(logs["w0"])) >= count // 3, "w0's first third")
    kill(writers.pop("w0"))
    assert len(acked_ids(logs["w0"])) < count  # it was killed in the middle
    writers["w0r"] = spawn_writer("w0r")

    # The batcher dies three times while it drains.
    for files in (2, 6, 10):
        wait_for(lambda files=files: raw_files() >= files, f"{files} raw files")  # type: ignore[misc]
        kill(batcher)
        batcher = spawn_batcher()

    for writer in writers.values():
        finish(writer)
    observer = DiskQueue(folder)
    wait_for(lambda: observer.depth() == 0, "the batcher to drain the queue")
    batcher.send_signal(signal.SIGTERM)
    finish(batcher)

    written = raw_ids(root)
    acknowledged = [x for log in logs.values() for x in acked_ids(log)]
    assert len(acknowledged) > 3 * count  # w0's part, w1, w2 and w0r in full
    missing = [x for x in acknowledged if written[x] == 0]
    assert missing == []
    twice = {x: n for x, n in written.items() if n > 1}
    assert twice == {}
    # Nothing else landed either: only items some writer put.
    assert set(written) <= {f"{w}-{i}" for w in logs for i in range(count)}
    assert list((folder / SEGMENTS).glob("*.seg")) == []
    observer.close()


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "writer":
        writer_main(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif role == "batcher":
        batcher_main(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(f"unknown role {role!r}")
