"""The catalog properties, decided without touching a catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencdp.errors import ConfigError
from opencdp.lake.catalog import embedded_properties, fileio_properties, warehouse_uri
from opencdp.settings import Settings


@pytest.mark.parametrize(
    ("storage_url", "expected"),
    [
        ("s3://bucket/prefix", "s3://bucket/prefix/warehouse"),
        ("s3://bucket/prefix/", "s3://bucket/prefix/warehouse"),
        ("gs://bucket", "gs://bucket/warehouse"),
        ("file:///data/cdp", "file:///data/cdp/warehouse"),
        ("/data/cdp", "file:///data/cdp/warehouse"),
        ("/data/my cdp", "file:///data/my cdp/warehouse"),  # PyIceberg does not decode
        ("/data/100%", "file:///data/100%/warehouse"),
    ],
)
def test_warehouse_is_a_uri_under_the_storage_url(storage_url: str, expected: str) -> None:
    assert warehouse_uri(storage_url) == expected


def test_a_relative_storage_path_becomes_absolute() -> None:
    assert warehouse_uri("cdp-data") == f"file://{Path.cwd() / 'cdp-data' / 'warehouse'}"


@pytest.mark.parametrize("folder", ["/data/a#b", "/data/what?"])
def test_a_storage_folder_a_uri_cannot_hold_is_refused(folder: str) -> None:
    with pytest.raises(ConfigError, match="cannot hold"):
        warehouse_uri(folder)


def test_fsspec_s3_options_become_pyiceberg_fileio_properties() -> None:
    options = {
        "endpoint_url": "http://127.0.0.1:9000",
        "key": "AKIA",
        "secret": "s3cret",
        "client_kwargs": {"region_name": "eu-west-1"},
        "anon": False,
        "use_ssl": False,  # no PyIceberg counterpart: left out
    }
    assert fileio_properties(options) == {
        "s3.endpoint": "http://127.0.0.1:9000",
        "s3.access-key-id": "AKIA",
        "s3.secret-access-key": "s3cret",
        "s3.region": "eu-west-1",
        "s3.anonymous": "false",
    }


def test_a_top_level_option_wins_over_client_kwargs() -> None:
    options = {"endpoint_url": "http://a", "client_kwargs": {"endpoint_url": "http://b"}}
    assert fileio_properties(options) == {"s3.endpoint": "http://a"}


def test_embedded_catalog_is_sqlite_in_the_root_with_the_warehouse_beside_it(
    tmp_path: Path, clean_env: None
) -> None:
    settings = Settings(root=tmp_path)
    assert embedded_properties(settings) == {
        "uri": f"sqlite:///{tmp_path.resolve()}/catalog.db",
        "warehouse": (tmp_path.resolve() / "warehouse").as_uri(),
    }


def test_embedded_catalog_keeps_its_warehouse_in_object_storage(
    tmp_path: Path, clean_env: None
) -> None:
    settings = Settings(
        root=tmp_path,
        storage={"url": "s3://lake/cdp", "options": {"endpoint_url": "http://minio:9000"}},
    )
    properties = embedded_properties(settings)
    assert properties["uri"] == f"sqlite:///{tmp_path.resolve()}/catalog.db"
    assert properties["warehouse"] == "s3://lake/cdp/warehouse"
    assert properties["s3.endpoint"] == "http://minio:9000"
