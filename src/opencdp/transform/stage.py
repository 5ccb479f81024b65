"""Stage one raw file: read and validate its lines, map them, run the row-local stages, and
write one Parquet file per canonical table into a local staging folder.

`stage_file` is what the engine maps over the raw files in parallel workers (a process pool
on DuckDB, Python workers on Spark). It returns only small things: counts, the staged file
paths and the rejected lines, which the driver writes to the DLQ.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip, isal_zlib

from opencdp.errors import NotFoundError
from opencdp.ingest.schemas import SchemaRegistry
from opencdp.ingest.validation import RecordValidator
from opencdp.storage.objectstore import ObjectStore, open_object_store
from opencdp.transform.mapping import Extraction, SourceMapping
from opencdp.transform.model import table
from opencdp.transform.quality import column_counts
from opencdp.transform.rows import build_table

KINDS = ("tap", "webhook", "track")


@dataclass(frozen=True)
class FileJob:
    storage_url: str
    storage_options: dict[str, Any]
    tenant: str
    key: str  # the raw file
    mappings: tuple[SourceMapping, ...]
    default_country: str
    out_dir: str  # local folder for the staged Parquet files
    index: int  # the file's number in the run: names its staged files


@dataclass
class FileResult:
    key: str
    lines: int = 0
    unmapped: int = 0  # valid lines that no mapping reads (e.g. CRM accounts)
    rows: Counter[str] = field(default_factory=Counter)  # table -> staged rows
    staged: dict[str, str] = field(default_factory=dict)  # table -> Parquet path
    rejected: list[dict[str, Any]] = field(default_factory=list)  # DLQ documents
    # (table, provider, column, "checked" | "invalid") -> values: for the quality report
    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)


# igzip (ISA-L) reads gzip several times faster than zlib; the package has no type hints.
_gunzip: Callable[[bytes], bytes] = igzip.decompress
# What igzip raises on a file that is not gzip, is cut short or corrupt (isal's stub types
# its error class as an instance).
_DAMAGE = (OSError, EOFError, cast(type[Exception], isal_zlib.error))
_SALVAGE_CHUNK = 1 << 16

# Per worker process, which may outlive a run (the engine keeps its workers): one store per
# URL and options, one validator per schema version (a registered version never changes).
# A version not registered is remembered for one file only: it may be registered later.
_stores: dict[tuple[str, str], ObjectStore] = {}
_validators: dict[tuple[str, str, str, str, int], RecordValidator] = {}
_unregistered: set[tuple[str, str, str, str, int]] = set()


def stage_file(job: FileJob) -> FileResult:
    store_key = (job.storage_url, repr(sorted(job.storage_options.items())))
    store = _stores.get(store_key)
    if store is None:
        store = _stores[store_key] = open_object_store(job.storage_url, job.storage_options)
    _unregistered.clear()
    provider = job.key.split("/")[2]  # raw/{tenant}/{provider}/...
    result = FileResult(job.key)
    extractions = [Extraction(m) for m in job.mappings]
    wanted: dict[tuple[str, str], list[Extraction]] = {}
    data, unreadable = _read(store, job.key)
    if unreadable is not None:
        result.rejected.append(unreadable)
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        result.lines += 1
        try:
            meta, record = _check_line(line, job, provider, store)
        except _BadLine as bad:
            result.rejected.append(_dead_letter(job.key, number, bad))
            continue
        stream_kind = (meta["stream"], meta["kind"])
        targets = wanted.get(stream_kind)
        if targets is None:
            targets = wanted[stream_kind] = [
                e for e in extractions if e.mapping.applies(provider, *stream_kind)
            ]
        if not targets:
            result.unmapped += 1
        for extraction in targets:
            extraction.add(number, meta, record)
    tables: dict[str, list[pa.Table]] = {}
    for extraction in extractions:
        if len(extraction):
            built = build_table(
                extraction,
                provider=provider,
                raw_file=job.key,
                default_country=job.default_country,
            )
            tables.setdefault(extraction.mapping.table, []).append(built)
    for name, parts in tables.items():
        staged = pa.concat_tables(parts)
        path = Path(job.out_dir) / name / f"{job.index:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(staged, path, compression="snappy")
        result.staged[name] = str(path)
        result.rows[name] = staged.num_rows
        for (provider_, column, what), n in column_counts(table(name), staged).items():
            result.counts[(name, provider_, column, what)] += n
    return result


def _read(store: ObjectStore, key: str) -> tuple[bytes, dict[str, Any] | None]:
    """A raw file's text, and the DLQ document naming it when it could not be read whole."""
    try:
        compressed = store.read(key)
    except NotFoundError:
        # Deleted after the run planned it: nothing is left to read, and a rerun that resumes
        # the plan must not stop on it again.
        return b"", _unreadable(key, "missing_file", "the raw file is gone")
    data, damage = _decompress(compressed)
    if damage is None:
        return data, None
    read = sum(1 for line in data.splitlines() if line.strip())
    reason = f"the raw file is damaged ({damage}); the {read:,} lines before it were read"
    return data, _unreadable(key, "damaged_file", reason)


def _decompress(compressed: bytes) -> tuple[bytes, str | None]:
    """A raw file's text, and what is wrong with it when it is damaged (not gzip, cut short,
    corrupt): then the text before the damage, so that no readable line is lost (a line cut
    in two is rejected as a line)."""
    try:
        return _gunzip(compressed), None
    except _DAMAGE as e:
        damage = str(e) or type(e).__name__
    text = bytearray()
    decoder = zlib.decompressobj(wbits=31)  # one gzip member
    position = 0
    try:
        while position < len(compressed):
            chunk = compressed[position : position + _SALVAGE_CHUNK]
            position += len(chunk)
            text += decoder.decompress(chunk)
            if decoder.eof:  # the next member starts in what this one left over
                position -= len(decoder.unused_data)
                decoder = zlib.decompressobj(wbits=31)
    except zlib.error:
        pass  # the damage: keep what came before it
    return bytes(text), damage


def _unreadable(key: str, kind: str, reason: str) -> dict[str, Any]:
    """The DLQ document of a raw file that could not be read whole (no line number: it
    names the file). A damaged file stays in the raw zone as it is."""
    return _dead_letter(key, None, _BadLine(kind, reason, None, {}, None))


class _BadLine(Exception):  # noqa: N818 - a finding about input, not a program error
    def __init__(self, kind: str, reason: str, at: str | None, meta: Any, record: Any) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.at = at
        self.meta = meta if isinstance(meta, dict) else {}
        self.record = record


def _check_line(
    line: bytes, job: FileJob, provider: str, store: ObjectStore
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The envelope and record of a good line; _BadLine says what is wrong with another."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise _BadLine(
            "invalid_envelope", f"not JSON: {e}", None, {}, line.decode(errors="replace")
        ) from None
    meta = doc.get("_meta") if isinstance(doc, dict) else None
    record = doc.get("record") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or not isinstance(record, dict):
        reason = "a raw line needs a _meta object and a record object"
        raise _BadLine("invalid_envelope", reason, None, meta, doc)
    for name in ("stream", "kind", "received_at"):
        if not isinstance(meta.get(name), str):
            raise _BadLine(
                "invalid_envelope", f"_meta.{name} is missing", f"_meta.{name}", meta, record
            )
    if meta.get("tenant") != job.tenant or meta.get("provider") != provider:
        reason = (
            f"the line belongs to {meta.get('tenant')}/{meta.get('provider')}, "
            f"not to {job.tenant}/{provider} where it is stored"
        )
        raise _BadLine("invalid_envelope", reason, "_meta.tenant", meta, record)
    if meta["kind"] not in KINDS:
        raise _BadLine(
            "invalid_envelope", f"unknown kind {meta['kind']!r}", "_meta.kind", meta, record
        )
    version = meta.get("schema_version")
    # Lines written by taps name the schema version they were validated against; webhook
    # and tracking-API lines were checked by the collection service when they arrived.
    if isinstance(version, int):
        validator = _validator(store, job, provider, meta["stream"], version)
        if validator is None:
            reason = f"schema version {version} of stream {meta['stream']!r} is not registered"
            raise _BadLine("unknown_schema", reason, "_meta.schema_version", meta, record)
        error = validator.check(record)
        if error is not None:
            raise _BadLine("validation", error.reason, error.field, meta, record)
    return meta, record


def _validator(
    store: ObjectStore, job: FileJob, provider: str, stream: str, version: int
) -> RecordValidator | None:
    cache_key = (job.storage_url, job.tenant, provider, stream, version)
    if cache_key in _unregistered:
        return None
    if cache_key not in _validators:
        try:
            found = SchemaRegistry(store, job.tenant, provider).get(stream, version)
        except NotFoundError:
            _unregistered.add(cache_key)
            return None
        _validators[cache_key] = RecordValidator(found.schema, found.key_properties)
    return _validators[cache_key]


def _dead_letter(key: str, line: int | None, bad: _BadLine) -> dict[str, Any]:
    return {
        "_meta": bad.meta,
        "record": bad.record,
        "error": {
            "type": bad.kind,
            "reason": bad.reason,
            "field": bad.at,
            "stage": "transform",
            "raw_file": key,
            "line": line,
            "retry_count": 0,
        },
    }
