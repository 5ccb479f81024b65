"""The embedded catalog with its warehouse in S3: the `storage` section alone reaches the
Iceberg FileIO. S3 is a moto server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from tests.support.s3 import CREDENTIALS, REGION, s3_client

from opencdp.engine.query import run_query
from opencdp.lake import ensure_namespace, open_catalog, table_identifier
from opencdp.settings import load_settings

pytestmark = pytest.mark.integration


def test_tables_in_an_s3_warehouse(s3_endpoint: str, data_root: Path, clean_env: None) -> None:
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="lake")
    settings = load_settings(
        data_root,
        storage={
            "url": "s3://lake/cdp",
            "options": {
                "endpoint_url": s3_endpoint,
                **CREDENTIALS,
                "client_kwargs": {"region_name": REGION},
            },
        },
    )
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, "acme")
        table = catalog.create_table(
            table_identifier("acme", "orders"), schema=pa.schema([("total", pa.int64())])
        )
        table.append(pa.table({"total": [10, 32]}))
        result = run_query(catalog, "acme", "SELECT sum(total) AS total FROM orders")

    assert result.to_pylist() == [{"total": 42}]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
    assert any(k.startswith("cdp/warehouse/acme/orders/data/") for k in keys)
    assert (data_root / "catalog.db").is_file()  # the catalog itself stays embedded
