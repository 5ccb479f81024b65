"""Built-in Singer taps (written with singer-sdk), runnable as `python -m <module>`."""

from __future__ import annotations

# name in opencdp.yaml (`tap: builtin:<name>`) -> module with a singer-sdk Tap's cli
BUILTIN_TAPS: dict[str, str] = {
    "files": "opencdp.ingest.taps.files",
    "shopify": "opencdp.ingest.taps.shopify",
    "stripe": "opencdp.ingest.taps.stripe",
}
