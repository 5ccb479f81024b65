"""Counts kept while a tenant is written, in constant memory: people per source and per pair
of sources, and how often each kind of variation could and did apply."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from opencdp.generate.config import SOURCES
from opencdp.generate.people import DUPLICABLE, Household
from opencdp.generate.records import Record

PAIRS: tuple[tuple[str, str], ...] = tuple(combinations(SOURCES, 2))


class Tally:
    def __init__(self) -> None:
        self.people = 0
        self.households = 0
        self.in_source: Counter[str] = Counter()
        self.in_pair: Counter[tuple[str, str]] = Counter()
        self.eligible: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    def household(self, household: Household) -> None:
        self.households += 1
        shared_unit = len(household.members) > 1
        for person in household.members:
            self.people += 1
            self.in_source.update(person.sources)
            self.in_pair.update(combinations(person.sources, 2))
            self.eligible["moved"] += 1
            self.applied["moved"] += person.previous_address is not None
            if shared_unit:
                self.eligible["shared_email"] += 1
                self.applied["shared_email"] += person.shared_email
            self.eligible["duplicate"] += sum(s in DUPLICABLE for s in person.sources)
            self.applied["duplicate"] += len(person.duplicates)

    def variations(self, record: Record) -> None:
        """Count a profile record's record-level kinds (other records have none)."""
        eligible, applied = self.eligible, self.applied
        for kind in record.eligible:
            eligible[kind] += 1
        for kind in record.variations:
            applied[kind] += 1
