"""Files tap: CSV and JSON-lines exports (a CRM's, say) from a folder or an object store.

Each configured stream reads the files its `path` matches: one file, a folder, or a glob,
local or any fsspec URL (s3://bucket/exports/*.csv); .gz and other compressed files are
read transparently. Runs are incremental by file: the state remembers each file's
modification time and size, and a run reads only files that are new or changed since.
A CSV column is a nullable string; JSON lines get the JSON types of the first
`sample_lines` lines of every matched file, so the schema only changes with the data.

    python -m opencdp.ingest.taps.files --config config.json [--state state.json]
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Literal, cast

import fsspec
import orjson
from fsspec import AbstractFileSystem
from fsspec.utils import infer_compression
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context

from opencdp.ingest.taps._infer import csv_schema, infer_schema

Format = Literal["csv", "jsonl"]
Stamp = dict[str, Any]  # {"modified": ISO time or None, "size": bytes}

# JSON lines per file the schema is inferred from: a record beyond them with a type the
# sample never showed is rejected by the target (kept in the DLQ); 0 reads every line.
DEFAULT_SAMPLE_LINES = 10_000
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_EXTRA = "\0extra"  # DictReader's key for fields beyond the header's


class FileFormatError(ValueError):
    """A matched file does not hold what its stream's format says."""


@dataclass(frozen=True)
class StreamSpec:
    name: str
    path: str
    format: Format | None = None
    key_properties: tuple[str, ...] = ()
    delimiter: str = ","
    encoding: str = "utf-8-sig"  # also reads the byte-order mark spreadsheets write

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> StreamSpec:
        return cls(
            name=config["name"],
            path=config["path"],
            format=config.get("format"),
            key_properties=tuple(config.get("key_properties") or ()),
            delimiter=config.get("delimiter") or ",",
            encoding=config.get("encoding") or "utf-8-sig",
        )


def format_of(path: str, configured: Format | None = None) -> Format:
    """The configured format, else the one the file name says (after any .gz etc.)."""
    if configured:
        return configured
    name = PurePosixPath(path.lower())
    if infer_compression(path):
        name = name.with_suffix("")
    found = _EXTENSIONS.get(name.suffix)
    if found is None:
        raise ValueError(
            f"cannot tell the format of {path}: set the stream's format to csv or jsonl"
        )
    return found


def file_stamp(info: Mapping[str, Any]) -> Stamp:
    """What tells one version of a file from another, from an fsspec listing entry: the
    modification time (local mtime, S3 LastModified, GCS updated, Azure last_modified)
    and the size."""
    value = next(
        (info[k] for k in ("mtime", "LastModified", "last_modified", "updated") if info.get(k)),
        None,
    )
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat()
    return {"modified": value, "size": int(info.get("size") or 0)}


def files_to_read(found: Mapping[str, Stamp], seen: Mapping[str, Stamp]) -> list[str]:
    """The files never read, or changed since they were (pure), in name order."""
    return sorted(url for url, stamp in found.items() if seen.get(url) != stamp)


def _list(fs: AbstractFileSystem, root: str) -> dict[str, dict[str, Any]]:
    """The files under a glob, in a folder (recursively), or the one file; by path."""
    if any(ch in root for ch in "*?["):
        entries = fs.glob(root, detail=True)
    else:
        try:
            info = fs.info(root)
        except FileNotFoundError:
            return {}
        entries = fs.find(root, detail=True) if info["type"] == "directory" else {root: info}
    return {path: info for path, info in sorted(entries.items()) if info.get("type") == "file"}


class Source:
    """The files one stream's path matches, and how to read them."""

    def __init__(self, spec: StreamSpec, storage_options: Mapping[str, Any]) -> None:
        self.spec = spec
        self.fs, root = fsspec.core.url_to_fs(spec.path, **storage_options)
        files = _list(self.fs, root)
        if not files:
            raise FileNotFoundError(
                f"stream {spec.name!r}: no file matches {spec.path} "
                "(check the stream's path in the tap configuration)"
            )
        # State and errors name files by full URL (file:///..., s3://...).
        self.paths = {self.fs.unstrip_protocol(p): p for p in files}
        self.stamps = {self.fs.unstrip_protocol(p): file_stamp(i) for p, i in files.items()}
        formats = {format_of(p, spec.format) for p in files}
        if len(formats) > 1:
            raise ValueError(f"stream {spec.name!r} matches both CSV and JSON-lines files")
        self.format: Format = formats.pop()

    def schema(self, sample_lines: int) -> dict[str, Any]:
        if self.format == "csv":
            columns: dict[str, None] = {}
            for url in self.paths:
                columns.update(dict.fromkeys(self._header(url)))
            schema = csv_schema(list(columns))
        else:
            limit = sample_lines or None
            schema = infer_schema(
                itertools.chain.from_iterable(
                    itertools.islice(self._json_lines(url), limit) for url in self.paths
                )
            )
        missing = [k for k in self.spec.key_properties if k not in schema["properties"]]
        if missing:
            raise ValueError(
                f"stream {self.spec.name!r}: key property {missing[0]!r} is in none of its files"
            )
        return schema

    def read(self, url: str) -> Iterator[dict[str, Any]]:
        return self._csv_rows(url) if self.format == "csv" else self._json_lines(url)

    def _open(self, url: str) -> BinaryIO:
        return cast(BinaryIO, self.fs.open(self.paths[url], "rb", compression="infer"))

    def _text(self, raw: BinaryIO) -> io.TextIOWrapper:
        return io.TextIOWrapper(raw, encoding=self.spec.encoding, newline="")

    def _header(self, url: str) -> list[str]:
        with self._open(url) as raw, self._text(raw) as text:
            return next(csv.reader(text, delimiter=self.spec.delimiter), [])

    def _csv_rows(self, url: str) -> Iterator[dict[str, Any]]:
        with self._open(url) as raw, self._text(raw) as text:
            reader = csv.DictReader(text, delimiter=self.spec.delimiter, restkey=_EXTRA)
            for row in reader:
                if _EXTRA in row:
                    raise FileFormatError(
                        f"{url} line {reader.line_num}: more fields than the header has"
                    )
                yield row

    def _json_lines(self, url: str) -> Iterator[dict[str, Any]]:
        with self._open(url) as raw:
            for number, line in enumerate(raw, 1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise FileFormatError(f"{url} line {number}: not JSON ({e})") from e
                if not isinstance(record, dict):
                    raise FileFormatError(f"{url} line {number}: not a JSON object")
                yield record


class FileStream(Stream):
    # Records land exactly as the files hold them.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, source: Source, sample_lines: int) -> None:
        super().__init__(tap, name=source.spec.name, schema=source.schema(sample_lines))
        self.primary_keys = source.spec.key_properties
        self.source = source

    def get_records(self, context: Context | None) -> Iterator[dict[str, Any]]:
        # Files gone from the source are forgotten, so the state does not grow forever.
        seen = {
            url: stamp
            for url, stamp in self.stream_state.get("files", {}).items()
            if url in self.source.stamps
        }
        self.stream_state["files"] = seen
        for url in files_to_read(self.source.stamps, seen):
            self.logger.info("Reading %s", url)
            yield from self.source.read(url)
            # Marked read only after its last record: an interrupted file is read again.
            seen[url] = self.source.stamps[url]


_STREAM = th.ObjectType(
    th.Property("name", th.StringType, required=True),
    th.Property("path", th.StringType, required=True, description="A file, folder or glob"),
    th.Property("format", th.StringType(allowed_values=["csv", "jsonl"])),
    th.Property("key_properties", th.ArrayType(th.StringType)),
    th.Property("delimiter", th.StringType, description="CSV only; default ','"),
    th.Property("encoding", th.StringType, description="Default utf-8 (with or without BOM)"),
)


class TapFiles(Tap):
    name = "tap-files-opencdp"
    config_jsonschema = th.PropertiesList(
        th.Property("streams", th.ArrayType(_STREAM), required=True),
        th.Property(
            "storage_options",
            th.ObjectType(additional_properties=True),
            description="fsspec options, e.g. endpoint_url and credentials for S3",
        ),
        th.Property(
            "sample_lines",
            th.IntegerType(minimum=0),
            default=DEFAULT_SAMPLE_LINES,
            description="JSON lines read per file to infer the schema; 0 reads them all",
        ),
    ).to_dict()

    def discover_streams(self) -> Sequence[FileStream]:
        options = self.config.get("storage_options") or {}
        sample = int(self.config["sample_lines"])
        return [
            FileStream(self, Source(StreamSpec.of(spec), options), sample)
            for spec in self.config["streams"]
        ]


if __name__ == "__main__":
    TapFiles.cli()
