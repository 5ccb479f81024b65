"""Loading: the curated Iceberg tables into the tenant's PostgreSQL schema.

`load_tenant` loads what changed since the last load (the snapshot diff, merged) or, with
`historic=True`, every table afresh, checked and swapped in; either way in one
transaction. Its report holds the profiles that changed, for the search index.
"""

from opencdp.serve.load.errors import IntegrityCheckError, LoadError
from opencdp.serve.load.report import LoadReport, Mode, TableLoad
from opencdp.serve.load.run import load_tenant

__all__ = ["IntegrityCheckError", "LoadError", "LoadReport", "Mode", "TableLoad", "load_tenant"]
