"""The synthetic tenant the provider servers serve: generated once per test session."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson

from opencdp.generate import GenerateConfig, generate_tenant

PEOPLE = 300
SEED = 1


@functools.cache
def generated() -> Path:
    """A generated tenant's folder: shopify/*.jsonl, stripe/*.jsonl, crm/*.csv, ..."""
    root = Path(tempfile.mkdtemp(prefix="opencdp-taps-data-"))
    atexit.register(shutil.rmtree, root, True)
    generate_tenant(GenerateConfig(tenant="taps", people=PEOPLE, seed=SEED), root / "taps")
    return root / "taps"


def records(source: str, stream: str) -> list[dict[str, Any]]:
    """A generated JSON-lines stream, e.g. records("shopify", "orders")."""
    path = generated() / source / f"{stream}.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
