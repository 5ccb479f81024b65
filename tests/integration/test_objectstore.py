"""One behaviour suite for every object store backend: a local folder and S3 (moto server)."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import pytest
from tests.support.s3 import s3_client

from opencdp.errors import AlreadyExistsError, ConfigError, NotFoundError
from opencdp.storage import ObjectStore, open_object_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lake_bucket(s3_endpoint: str) -> str:
    """The bucket the S3 store writes to, on this module's moto server."""
    s3_client(s3_endpoint).create_bucket(Bucket="lake")
    return s3_endpoint


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_object_store(str(tmp_path / "store"))
    endpoint = request.getfixturevalue("lake_bucket")
    prefix = f"s3://lake/{tmp_path.name}"
    return open_object_store(
        prefix,
        {"key": "test", "secret": "test", "endpoint_url": endpoint, "skip_instance_cache": True},
    )


def test_write_then_read_round_trips(store: ObjectStore) -> None:
    store.write("raw/acme/shopify/a.ndjson.gz", b"hello")
    assert store.read("raw/acme/shopify/a.ndjson.gz") == b"hello"
    assert store.exists("raw/acme/shopify/a.ndjson.gz")
    assert not store.exists("raw/acme/shopify/b.ndjson.gz")


def test_never_overwrites_unless_asked(store: ObjectStore) -> None:
    store.write("state/x.json", b"one")
    with pytest.raises(AlreadyExistsError):
        store.write("state/x.json", b"two")
    assert store.read("state/x.json") == b"one"
    store.write("state/x.json", b"three", overwrite=True)
    assert store.read("state/x.json") == b"three"


def test_failed_writer_leaves_no_object(store: ObjectStore) -> None:
    class WriterFailedError(Exception):
        pass

    def write_half() -> None:
        with store.writer("raw/t/p/partial.gz") as f:
            f.write(b"half of a file")
            raise WriterFailedError

    with pytest.raises(WriterFailedError):
        write_half()
    assert not store.exists("raw/t/p/partial.gz")
    assert store.list("raw") == []


def test_list_is_sorted_recursive_and_sized(store: ObjectStore) -> None:
    store.write("raw/t/p/year=2025/b", b"22")
    store.write("raw/t/p/year=2025/a", b"1")
    store.write("dlq/t/p/e/x", b"333")
    assert [(i.key, i.size) for i in store.list("raw")] == [
        ("raw/t/p/year=2025/a", 1),
        ("raw/t/p/year=2025/b", 2),
    ]
    assert [i.key for i in store.list()] == [
        "dlq/t/p/e/x",
        "raw/t/p/year=2025/a",
        "raw/t/p/year=2025/b",
    ]
    assert store.list("nothing/here") == []


def test_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFoundError, match="no object"):
        store.read("raw/none")


def test_delete(store: ObjectStore) -> None:
    store.write("a/b", b"x")
    store.delete("a/b")
    assert not store.exists("a/b")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/", "./a"])
def test_keys_cannot_escape_the_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(ConfigError, match="invalid object key"):
        store.write(key, b"x")


def test_uri_names_the_backend(store: ObjectStore) -> None:
    uri = store.uri("raw/x")
    assert uri.startswith(("file:///", "s3://lake/"))
    assert uri.endswith("/raw/x")


def test_local_readers_never_see_partial_files(tmp_path: Path) -> None:
    """A reader racing a writer sees each file either absent or complete."""
    store = open_object_store(str(tmp_path))
    payload = gzip.compress(b'{"n": 1}\n' * 200_000)
    done = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        for i in range(30):
            store.write(f"raw/f{i:03}.gz", payload)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        for info in store.list("raw"):
            data = store.read(info.key)
            assert data == payload, f"{info.key} read with {len(data)} of {len(payload)} bytes"
            seen.append(len(data))
    thread.join()
    assert len(store.list("raw")) == 30
    assert seen, "the reader never overlapped the writer"
