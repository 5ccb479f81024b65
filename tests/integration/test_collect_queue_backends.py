"""One behaviour suite for every event queue backend: the disk queue and SQS (moto server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from opencdp.collect.queue import EventQueue, ItemTooLargeError, open_queue
from opencdp.collect.queue.sqs import SqsQueue
from opencdp.errors import ConfigError

pytestmark = pytest.mark.integration

VISIBILITY = 1  # seconds: how soon SQS hands an unacknowledged message out again


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    """A local SQS-compatible server (moto) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def sqs_options(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        **extra,
    }


def create_sqs_queue(endpoint: str) -> str:
    import boto3

    name = f"events-{uuid.uuid4().hex[:8]}"
    boto3.client("sqs", **sqs_options(endpoint)).create_queue(QueueName=name)
    return name


class Backend:
    """Opens queues of one backend, and says how an unacknowledged item comes back."""

    def __init__(self, opener: Callable[[], EventQueue], redeliver: Callable[[], None]) -> None:
        self.open = opener
        self.wait_for_redelivery = redeliver


@pytest.fixture(params=["disk", "sqs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "disk":
        # A disk queue hands unacknowledged items out again when its reader reopens.
        return Backend(lambda: open_queue(None, tmp_path), lambda: None)
    endpoint = request.getfixturevalue("sqs_endpoint")
    name = create_sqs_queue(endpoint)
    options = sqs_options(endpoint, visibility_timeout=VISIBILITY, depth_max_age=0)
    return Backend(
        lambda: open_queue(f"sqs://{name}", tmp_path, options),
        lambda: time.sleep(VISIBILITY + 0.2),
    )


@pytest.fixture
def queue(backend: Backend) -> Iterator[EventQueue]:
    q = backend.open()
    yield q
    q.close()


def put(queue: EventQueue, items: Sequence[bytes]) -> None:
    asyncio.run(queue.put(items))


def drain(queue: EventQueue, timeout: float = 1.0) -> list[bytes]:
    got: list[bytes] = []
    while batch := queue.read(100, timeout if not got else 0):
        got.extend(batch.items)
        queue.ack(batch)
    return got


def lines(n: int) -> list[bytes]:
    return [b'{"_meta":{"id":"%d"},"record":{"n":%d}}' % (i, i) for i in range(n)]


def test_put_read_ack(queue: EventQueue) -> None:
    put(queue, lines(25))  # more than one SQS batch call
    assert sorted(drain(queue)) == sorted(lines(25))
    assert queue.depth() == 0
    assert len(queue.read(10, 0)) == 0


def test_concurrent_puts_all_arrive(queue: EventQueue) -> None:
    async def load() -> None:
        await asyncio.gather(*(queue.put([line]) for line in lines(40)))

    asyncio.run(load())
    assert queue.depth() == 40
    assert sorted(drain(queue)) == sorted(lines(40))


def test_unacknowledged_items_come_back(backend: Backend) -> None:
    q = backend.open()
    put(q, lines(6))
    first = q.read(3, 1)
    assert 0 < len(first) <= 3
    rest = drain(q)  # the first batch is never acknowledged
    q.close()
    backend.wait_for_redelivery()
    q = backend.open()
    assert sorted(drain(q)) == sorted(first.items)
    assert sorted([*first.items, *rest]) == sorted(lines(6))
    q.close()


def test_binary_items_round_trip(queue: EventQueue) -> None:
    odd = [b"\x00\x01\xff binary", "caf\u00e9".encode(), b"ctrl \x07 char"]
    put(queue, odd)
    assert sorted(drain(queue)) == sorted(odd)


def test_items_over_the_limit_are_refused_whole(backend: Backend, tmp_path: Path) -> None:
    q = backend.open()
    limit = 262_144 if isinstance(q, SqsQueue) else 4 << 20
    with pytest.raises(ItemTooLargeError, match="larger than"):
        put(q, [b"fine", b"x" * (limit + 1)])
    assert drain(q, timeout=0) == []
    q.close()


def test_sqs_batches_respect_the_size_limit(sqs_endpoint: str, tmp_path: Path) -> None:
    name = create_sqs_queue(sqs_endpoint)
    q = open_queue(f"sqs://{name}", tmp_path, sqs_options(sqs_endpoint))
    big = [bytes([97 + i]) * 100_000 for i in range(5)]  # 500 KB: three calls of <= 256 KB
    put(q, big)
    assert sorted(drain(q)) == sorted(big)
    q.close()


def test_sqs_queue_url_form(sqs_endpoint: str, tmp_path: Path) -> None:
    import boto3

    name = create_sqs_queue(sqs_endpoint)
    url = boto3.client("sqs", **sqs_options(sqs_endpoint)).get_queue_url(QueueName=name)
    q = open_queue(url["QueueUrl"], tmp_path, sqs_options(sqs_endpoint))
    put(q, [b"by url"])
    assert drain(q) == [b"by url"]
    q.close()


def test_sqs_missing_queue_is_a_configuration_error(sqs_endpoint: str, tmp_path: Path) -> None:
    q = open_queue("sqs://no-such-queue", tmp_path, sqs_options(sqs_endpoint))
    with pytest.raises(ConfigError, match="SQS refused"):
        put(q, [b"x"])
    q.close()


def test_sqs_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="visibility_timeout"):
        open_queue("sqs://q", tmp_path, {"visibility_timeout": -1})
    q = open_queue("https://sqs.eu-west-1.amazonaws.com/123456789012/q", tmp_path)
    assert isinstance(q, SqsQueue)
    assert q.lease_seconds == 900
    q.close()


def test_batcher_drains_sqs_into_the_raw_zone(sqs_endpoint: str, tmp_path: Path) -> None:
    from opencdp.collect.batcher import Batcher
    from opencdp.storage import open_object_store
    from opencdp.storage.ndjson import read_lines

    name = create_sqs_queue(sqs_endpoint)
    q = open_queue(f"sqs://{name}", tmp_path, sqs_options(sqs_endpoint, depth_max_age=0))
    events = [
        b'{"_meta":{"tenant":"acme","provider":"web","stream":"pages","id":"%d"},"record":{}}'
        % (i % 20)
        for i in range(25)  # 5 duplicates
    ]
    put(q, events)
    store = open_object_store(str(tmp_path / "root"))
    batcher = Batcher(q, store)
    batcher.run_once(timeout=1)
    batcher.flush()
    ids = [r["_meta"]["id"] for i in store.list("raw") for r in read_lines(store.read(i.key))]
    assert sorted(ids, key=int) == [str(i) for i in range(20)]
    assert batcher.metrics.duplicates_dropped == 5
    assert q.depth() == 0
    q.close()


def test_sqs_concurrent_puts_share_calls(sqs_endpoint: str, tmp_path: Path) -> None:
    name = create_sqs_queue(sqs_endpoint)
    q = open_queue(f"sqs://{name}", tmp_path, sqs_options(sqs_endpoint, depth_max_age=0))
    assert isinstance(q, SqsQueue)
    put(q, [b"first"])  # connects
    client = q._client
    assert client is not None
    calls: list[int] = []
    send = client.send_message_batch

    def counting_send(**kwargs: Any) -> Any:
        calls.append(len(kwargs["Entries"]))
        return send(**kwargs)

    client.send_message_batch = counting_send  # type: ignore[method-assign]

    async def load() -> None:
        await asyncio.gather(*(q.put([b"event %d" % i]) for i in range(200)))

    asyncio.run(load())
    assert sum(calls) == 200
    assert max(calls) == 10
    assert len(calls) < 200 / 3, calls
    assert q.depth() == 201
    q.close()
