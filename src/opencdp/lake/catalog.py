"""The Iceberg catalog: a SQLite file in the data root by default, any PyIceberg catalog
(REST, Glue, SQL on PostgreSQL, ...) by configuration alone.

The properties are decided by pure functions; `open_catalog` is the only I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NotInstalledError

from opencdp.errors import ConfigError, NotFoundError
from opencdp.settings import Settings

CATALOG_FILE = "catalog.db"
WAREHOUSE_FOLDER = "warehouse"

# fsspec/s3fs option names (settings.storage.options) -> PyIceberg FileIO properties, so that
# one `storage` section reaches both the raw zone and the Iceberg warehouse.
_S3_OPTIONS = {
    "endpoint_url": "s3.endpoint",
    "key": "s3.access-key-id",
    "secret": "s3.secret-access-key",
    "token": "s3.session-token",
    "region_name": "s3.region",
    "anon": "s3.anonymous",
}


def warehouse_uri(storage_url: str) -> str:
    """`{storage_url}/warehouse` as a URI: a local folder becomes a file:// URI whose path is
    the folder's path as it is. PyIceberg takes a file:// path literally, without decoding
    it: a percent-encoded URI (Path.as_uri) would put a root named "my cdp" in a folder
    named "my%20cdp" beside it."""
    if "://" in storage_url:
        return f"{storage_url.rstrip('/')}/{WAREHOUSE_FOLDER}"
    folder = (Path(storage_url).resolve() / WAREHOUSE_FOLDER).as_posix()
    if "#" in folder or "?" in folder:
        # A URI would read them as the start of a fragment or a query.
        raise ConfigError(
            f"the storage folder {folder!r} holds '#' or '?', which an Iceberg table "
            "location (a URI) cannot hold",
            hint="choose a root folder without them",
        )
    return f"file://{folder}"


def fileio_properties(options: Mapping[str, Any]) -> dict[str, str]:
    """The PyIceberg FileIO properties for fsspec storage options (S3 keys only)."""
    # s3fs takes the region and sometimes the endpoint inside client_kwargs.
    flat = {**options.get("client_kwargs", {}), **options}
    properties: dict[str, str] = {}
    for option, prop in _S3_OPTIONS.items():
        value = flat.get(option)
        if value is not None:
            properties[prop] = str(value).lower() if isinstance(value, bool) else str(value)
    return properties


def embedded_properties(settings: Settings) -> dict[str, str]:
    """The properties of the default catalog: SQLite in the data root, warehouse in storage."""
    database = settings.root.resolve() / CATALOG_FILE
    return {
        "uri": f"sqlite:///{database}",
        "warehouse": warehouse_uri(settings.storage_url),
        **fileio_properties(settings.storage.options),
    }


def open_catalog(settings: Settings) -> Catalog:
    """The configured Iceberg catalog. Close it when done (it is a context manager)."""
    name = settings.catalog.name
    if not settings.catalog.properties:
        if not settings.root.is_dir():
            raise NotFoundError(
                f"data root {settings.root.resolve()} does not exist",
                hint="create it with `opencdp init`, or pass --root / set OPENCDP_ROOT",
            )
        # Built directly rather than via load_catalog, so that a ~/.pyiceberg.yaml or
        # PYICEBERG_* variables never redirect the embedded default.
        return SqlCatalog(name, **embedded_properties(settings))
    properties = settings.catalog.properties
    kind = properties.get("type", "inferred from the uri")
    try:
        return load_catalog(name, **properties)
    except NotInstalledError as e:
        # PyIceberg's message names the extra to install, e.g. pip install 'pyiceberg[glue]'.
        raise ConfigError(
            f"the Iceberg catalog {name!r} (type {kind}) needs a library that is not "
            f"installed: {e}",
            hint="install that extra into the environment that runs opencdp "
            "(uv pip install ...), or change catalog.properties in opencdp.yaml",
        ) from e
    except ValueError as e:
        raise ConfigError(
            f"cannot open the Iceberg catalog {name!r} (type {kind}): {e}",
            hint="check catalog.properties in opencdp.yaml or OPENCDP_CATALOG__PROPERTIES, "
            "e.g. {type: rest, uri: https://...} or {type: sql, uri: postgresql+psycopg://...}",
        ) from e
