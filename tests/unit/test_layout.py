from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opencdp.errors import InvalidNameError
from opencdp.storage import layout
from opencdp.storage.ndjson import GzipLines, read_lines

DAY = datetime(2025, 1, 15, 1, 2, 3, tzinfo=UTC)


def test_raw_keys_follow_the_design() -> None:
    assert layout.raw_batch_key("acme_corp", "shopify", "customers", DAY, 7) == (
        "raw/acme_corp/shopify/year=2025/month=01/day=15/customers_batch_007.ndjson.gz"
    )
    assert layout.raw_timed_key("acme_corp", "segment", "track", DAY) == (
        "raw/acme_corp/segment/year=2025/month=01/day=15/track_20250115T010203.ndjson.gz"
    )
    assert layout.dlq_key("acme", "shopify", "validation", DAY, "ab12") == (
        "dlq/acme/shopify/validation/20250115T010203_ab12.ndjson.gz"
    )


def test_stream_names_become_safe_file_names() -> None:
    assert layout.file_safe("test:Special!in?attrs") == "test_Special_in_attrs"
    assert layout.file_safe("../../etc") == "_etc"
    assert layout.file_safe("Camel-Case_1") == "Camel-Case_1"


def test_batch_numbers_continue_after_existing_files() -> None:
    names = [
        "raw/a/p/year=2025/month=01/day=15/customers_batch_001.ndjson.gz",
        "raw/a/p/year=2025/month=01/day=15/customers_batch_012.ndjson.gz",
        "raw/a/p/year=2025/month=01/day=15/orders_batch_040.ndjson.gz",
        "raw/a/p/year=2025/month=01/day=15/customers_20250115T010203.ndjson.gz",
    ]
    assert layout.next_batch_number(names, "customers") == 13
    assert layout.next_batch_number(names, "orders") == 41
    assert layout.next_batch_number(names, "products") == 1
    assert (
        layout.next_batch_number([*names, "x/customers_batch_1000.ndjson.gz"], "customers") == 1001
    )


def test_tenant_and_provider_are_checked() -> None:
    with pytest.raises(InvalidNameError):
        layout.raw_batch_key("../x", "p", "s", DAY, 1)
    with pytest.raises(InvalidNameError):
        layout.dlq_prefix("acme", "Shop/ify")


@pytest.mark.parametrize("use_executor", [False, True])
def test_gzip_lines_round_trip(use_executor: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        lines = GzipLines(executor=pool if use_executor else None)
        docs = [{"n": i, "pad": "x" * (i % 300)} for i in range(20_000)]  # several chunks
        for doc in docs:
            lines.add_json(doc)
        data = lines.finish()
    assert lines.lines == 20_000
    assert lines.raw_bytes > 3_000_000
    assert list(read_lines(data)) == docs
