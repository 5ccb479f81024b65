"""Everything a run shares, fixed before the first person is drawn: the source membership
probabilities, the towns of each country, the number of companies and the time window."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from itertools import accumulate

from opencdp.generate.config import GenerateConfig, Membership
from opencdp.generate.locales import Place, countries
from opencdp.generate.rng import Purpose, rng_for
from opencdp.generate.timefmt import DAY

PLACES_PER_COUNTRY = 400
HISTORY_YEARS = 5
# One company (CRM account) per this many people.
PEOPLE_PER_ACCOUNT = 40


@dataclass(frozen=True, slots=True)
class World:
    config: GenerateConfig
    membership: Membership
    places: dict[str, tuple[Place, ...]]  # country code -> towns, most populous first
    place_cum: tuple[float, ...]  # Zipf-like cumulative weights over a country's towns
    accounts: int
    phone_offset: int
    start: int  # first second of the generated history (Unix)
    end: int  # last second: the end of config.as_of

    @property
    def seed(self) -> int:
        return self.config.seed


def build_world(config: GenerateConfig) -> World:
    end = calendar.timegm(config.as_of.timetuple()) + DAY - 1
    places = {}
    for i, country in enumerate(countries()):
        rng = rng_for(config.seed, Purpose.PLACES, i)
        places[country.code] = tuple(country.place(rng) for _ in range(PLACES_PER_COUNTRY))
    return World(
        config=config,
        membership=Membership.from_mix(config.mix),
        places=places,
        place_cum=tuple(accumulate(1.0 / (k + 1) ** 0.9 for k in range(PLACES_PER_COUNTRY))),
        accounts=max(3, config.people // PEOPLE_PER_ACCOUNT),
        phone_offset=rng_for(config.seed, Purpose.PLACES, 99).randrange(10**9),
        start=end - HISTORY_YEARS * 365 * DAY,
        end=end,
    )
