"""What a load refuses to do, and the integrity checks a historic load can fail."""

from __future__ import annotations

from opencdp.errors import TerminalError


class LoadError(TerminalError):
    """The curated tables cannot be loaded as they are."""


class IntegrityCheckError(LoadError):
    """A table loaded afresh does not match its Iceberg snapshot: nothing was swapped in."""

    def __init__(self, check: str, table: str, detail: str) -> None:
        super().__init__(
            f"integrity check {check!r} failed on table {table}: {detail}; "
            "the load changed nothing",
            hint="the tables being served are the ones before this load; look into the "
            "curated table (opencdp query) and the serving database, then load again",
        )
        self.check = check
        self.table = table
