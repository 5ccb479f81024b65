"""The exact object keys of DESIGN.md §3: pure functions, no I/O.

raw/{tenant}/{provider}/year=YYYY/month=MM/day=DD/{stream}_batch_{NNN}.ndjson.gz
raw/{tenant}/{provider}/year=YYYY/month=MM/day=DD/{stream}_{YYYYMMDDTHHMMSS}.ndjson.gz
dlq/{tenant}/{provider}/{error_type}/{YYYYMMDDTHHMMSS}_{unique}.ndjson.gz
state/...
"""

from __future__ import annotations

import re
from datetime import datetime

from opencdp.names import check_name

RAW = "raw"
DLQ = "dlq"
STATE = "state"
SUFFIX = ".ndjson.gz"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_BATCH_FILE = re.compile(r"^(?P<stream>.+)_batch_(?P<n>\d+)\.ndjson\.gz$")


def file_safe(stream: str) -> str:
    """A Singer stream name as a file-name component ('test:Special!' -> 'test_Special_')."""
    safe = _UNSAFE.sub("_", stream)
    return safe or "_"


def raw_day_prefix(tenant: str, provider: str, day: datetime) -> str:
    return (
        f"{RAW}/{check_name(tenant)}/{check_name(provider, 'provider')}/"
        f"year={day:%Y}/month={day:%m}/day={day:%d}"
    )


def raw_batch_key(tenant: str, provider: str, stream: str, day: datetime, number: int) -> str:
    """The key of batch `number` of `stream` on `day` (tap ingestion)."""
    return f"{raw_day_prefix(tenant, provider, day)}/{file_safe(stream)}_batch_{number:03d}{SUFFIX}"


def raw_timed_key(tenant: str, provider: str, stream: str, at: datetime) -> str:
    """The key of a batch closed at `at` (webhook and tracking-API batches)."""
    return f"{raw_day_prefix(tenant, provider, at)}/{file_safe(stream)}_{at:%Y%m%dT%H%M%S}{SUFFIX}"


def next_batch_number(existing_names: list[str], stream: str) -> int:
    """The first batch number after every `{stream}_batch_NNN` in `existing_names`:
    batch numbers continue across the runs of a day, so a file is never overwritten."""
    safe = file_safe(stream)
    numbers = [
        int(m["n"])
        for name in existing_names
        if (m := _BATCH_FILE.match(name.rsplit("/", 1)[-1])) and m["stream"] == safe
    ]
    return max(numbers, default=0) + 1


def dlq_prefix(tenant: str, provider: str, error_type: str | None = None) -> str:
    prefix = f"{DLQ}/{check_name(tenant)}/{check_name(provider, 'provider')}"
    return f"{prefix}/{check_name(error_type, 'error type')}" if error_type else prefix


def dlq_key(tenant: str, provider: str, error_type: str, at: datetime, unique: str) -> str:
    return f"{dlq_prefix(tenant, provider, error_type)}/{at:%Y%m%dT%H%M%S}_{unique}{SUFFIX}"


def state_key(*parts: str) -> str:
    return "/".join((STATE, *parts))
