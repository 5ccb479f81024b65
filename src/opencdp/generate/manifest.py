"""manifest.json: what was asked for, what was written, and how it compares to the mix.

Expected counts come from the mix alone (people * share), so a reader can check a tenant
against its request without rerunning anything. Nothing here depends on the clock: the
manifest is as reproducible as the data.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from opencdp.generate.config import SOURCES
from opencdp.generate.records import GROUND_TRUTH, STREAMS
from opencdp.generate.stats import PAIRS, Tally
from opencdp.generate.variations import KINDS, UNITS
from opencdp.generate.world import World

FORMAT_VERSION = 1


def build_manifest(
    world: World, tally: Tally, counts: dict[tuple[str, str], int]
) -> dict[str, Any]:
    """`counts`: records written per (source, stream)."""
    config = world.config
    membership = world.membership
    people = tally.people
    rates = asdict(config.rates)
    return {
        "format_version": FORMAT_VERSION,
        "tenant": config.tenant,
        "seed": config.seed,
        "people": people,
        "households": tally.households,
        "as_of": config.as_of.isoformat(),
        "mix": dict(config.mix),
        "rates": rates,
        "records": sum(counts.values()),
        "files": {s.path: counts[s.source, s.stream] for s in STREAMS},
        "ground_truth": GROUND_TRUTH,
        "sources": {
            source: {
                "people": tally.in_source[source],
                "expected_people": round(people * membership.expected_share((i,)), 1),
                "records": {
                    s.stream: counts[s.source, s.stream] for s in STREAMS if s.source == source
                },
            }
            for i, source in enumerate(SOURCES)
        },
        "overlaps": {
            f"{a}&{b}": {
                "people": tally.in_pair[a, b],
                "expected_people": round(
                    people * membership.expected_share((SOURCES.index(a), SOURCES.index(b))), 1
                ),
            }
            for a, b in PAIRS
        },
        "variations": {
            kind: {
                "unit": UNITS[kind],
                "rate": rates[kind],
                "eligible": tally.eligible[kind],
                "applied": tally.applied[kind],
            }
            for kind in KINDS
        },
    }
