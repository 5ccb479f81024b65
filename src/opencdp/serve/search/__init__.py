"""Profile search: one index per tenant, kept in sync by the loader, read by the API.

`open_search(settings, tenant)` gives the tenant's `ProfileSearch` (base.py: the contract).
The embedded backend is Tantivy (tantivy_index.py) in `{root}/state/search/{tenant}/`; what
a profile and a query become is decided in documents.py and query.py, without the index.
"""

from __future__ import annotations

from pathlib import Path

from opencdp.names import check_name
from opencdp.serve.search.base import (
    EMPTY_PAGE,
    ProfileSearch,
    SearchError,
    SearchHit,
    SearchIndexBusyError,
    SearchIndexUnavailableError,
    SearchPage,
    SearchRebuildNeededError,
)
from opencdp.serve.search.documents import FILTERS
from opencdp.settings import Settings

__all__ = [
    "EMPTY_PAGE",
    "FILTERS",
    "ProfileSearch",
    "SearchError",
    "SearchHit",
    "SearchIndexBusyError",
    "SearchIndexUnavailableError",
    "SearchPage",
    "SearchRebuildNeededError",
    "open_search",
    "search_folder",
]


def search_folder(root: Path, tenant: str) -> Path:
    """Where the tenant's index lives: {root}/state/search/{tenant}."""
    return root / "state" / "search" / check_name(tenant, "tenant")


def open_search(settings: Settings, tenant: str) -> ProfileSearch:
    """The tenant's search index (opened lazily: nothing is read before the first use)."""
    from opencdp.serve.search.tantivy_index import TantivyProfileSearch

    return TantivyProfileSearch(
        search_folder(settings.root, tenant),
        default_country=settings.tenant(tenant).default_country,
    )
