"""Profile search: one index per tenant, kept in sync by the loader, read by the API.

`open_search(settings, tenant)` gives the tenant's `ProfileSearch` (base.py: the contract)
of the backend `serve.search.backend` names: Tantivy (tantivy_index.py), embedded in
`{root}/state/search/{tenant}/`, or an OpenSearch cluster (opensearch_index.py), an index
alias per tenant. What a profile and a query become is decided in documents.py and
query.py, without any index; opensearch_dsl.py turns that into OpenSearch's query DSL.
"""

from __future__ import annotations

from pathlib import Path

from opencdp.names import check_name
from opencdp.serve.search.base import (
    EMPTY_PAGE,
    ProfileSearch,
    SearchBackendError,
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
    "SearchBackendError",
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
    country = settings.tenant(tenant).default_country
    if settings.serve.search.backend == "opensearch":
        from opencdp.serve.search.opensearch_index import OpenSearchProfileSearch

        return OpenSearchProfileSearch(settings.serve.search, tenant, default_country=country)
    from opencdp.serve.search.tantivy_index import TantivyProfileSearch

    return TantivyProfileSearch(search_folder(settings.root, tenant), default_country=country)
