"""The files tap's pure parts: formats, file versions, which files a run reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from opencdp.ingest.taps.files import StreamSpec, file_stamp, files_to_read, format_of


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/exports/contacts.csv", "csv"),
        ("s3://bucket/crm/Contacts.CSV", "csv"),
        ("/exports/contacts.csv.gz", "csv"),
        ("/exports/customers.jsonl", "jsonl"),
        ("/exports/customers.ndjson.bz2", "jsonl"),
    ],
)
def test_the_format_follows_the_extension(path: str, found: str) -> None:
    assert format_of(path) == found


def test_a_configured_format_wins() -> None:
    assert format_of("/exports/contacts.txt", "csv") == "csv"


def test_an_unknown_extension_asks_for_a_format() -> None:
    with pytest.raises(ValueError, match="set the stream's format to csv or jsonl"):
        format_of("/exports/contacts.txt")


def test_stamps_from_local_and_object_store_listings_agree() -> None:
    at = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
    local = {"name": "/x/a.csv", "size": 120, "type": "file", "mtime": at.timestamp()}
    s3 = {"name": "b/a.csv", "size": 120, "type": "file", "LastModified": at}
    azure = {
        "name": "b/a.csv",
        "size": 120,
        "last_modified": at.astimezone(timezone(timedelta(hours=2))),
    }
    gcs = {"name": "b/a.csv", "size": 120, "updated": "2025-07-01T09:30:00+00:00"}
    expected = {"modified": "2025-07-01T09:30:00+00:00", "size": 120}
    assert file_stamp(local) == file_stamp(s3) == file_stamp(azure) == file_stamp(gcs) == expected


def test_a_listing_without_times_still_tells_sizes_apart() -> None:
    assert file_stamp({"name": "a", "size": 5}) == {"modified": None, "size": 5}


def test_a_run_reads_new_and_changed_files_only() -> None:
    old = {"modified": "2025-07-01T09:30:00+00:00", "size": 120}
    found = {
        "file:///x/a.csv": old,
        "file:///x/b.csv": {**old, "size": 121},  # grew
        "file:///x/c.csv": {**old, "modified": "2025-07-02T00:00:00+00:00"},  # rewritten
        "file:///x/d.csv": old,  # new
    }
    seen = {"file:///x/a.csv": old, "file:///x/b.csv": old, "file:///x/c.csv": old}
    assert files_to_read(found, seen) == ["file:///x/b.csv", "file:///x/c.csv", "file:///x/d.csv"]
    assert files_to_read(found, found) == []


def test_a_stream_spec_from_config() -> None:
    spec = StreamSpec.of({"name": "contacts", "path": "crm/*.csv", "key_properties": ["Id"]})
    assert spec == StreamSpec("contacts", "crm/*.csv", None, ("Id",), ",", "utf-8-sig")
