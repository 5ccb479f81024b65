"""What to generate: the tenant, its size, the seed, the source mix and the variation rates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from opencdp.errors import ConfigError
from opencdp.generate.variations import Rates, parse_assignments
from opencdp.names import check_name

SOURCES: tuple[str, ...] = ("crm", "shopify", "stripe", "events")
DEFAULT_MIX: dict[str, float] = {"crm": 0.6, "shopify": 0.5, "stripe": 0.35, "events": 0.7}
DEFAULT_AS_OF = date(2025, 6, 30)


@dataclass(frozen=True, slots=True)
class GenerateConfig:
    """A validated request; building one with bad values raises `ConfigError`."""

    tenant: str
    people: int
    seed: int = 42
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    rates: Rates = field(default_factory=Rates)
    # The generated history ends on this day, so that output never depends on the clock.
    as_of: date = DEFAULT_AS_OF

    def __post_init__(self) -> None:
        check_name(self.tenant, "tenant")
        if self.people <= 0:
            raise ConfigError(
                f"--people must be a positive number, got {self.people}",
                hint="ask for at least one person, e.g. --people 1000",
            )
        if self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more, got {self.seed}")
        check_mix(self.mix)


def parse_mix(text: str | None) -> dict[str, float]:
    """'crm=0.6,stripe=0' -> the full mix; sources not named keep their default."""
    mix = dict(DEFAULT_MIX)
    if text and text.strip():
        mix.update(parse_assignments(text, SOURCES, what="source mix"))
    return mix


def check_mix(mix: dict[str, float]) -> None:
    if set(mix) != set(SOURCES) or any(not 0.0 <= p <= 1.0 for p in mix.values()):
        raise ConfigError(
            f"the mix must give a probability between 0 and 1 for each of {', '.join(SOURCES)}",
            hint="e.g. --mix crm=0.6,shopify=0.5,stripe=0.35,events=0.7",
        )
    # Every person appears in at least one source, so on average a person must be in one or
    # more of them; with the sum at 1 or below that is only possible if a source has them all.
    if sum(mix.values()) <= 1.0 and max(mix.values()) < 1.0:
        raise ConfigError(
            f"the source mix {format_mix(mix)} adds up to {sum(mix.values()):.2f}; every "
            "person appears in at least one source, so the probabilities must add up to more "
            "than 1",
            hint="raise some of them, or set one source to 1",
        )


def format_mix(mix: dict[str, float]) -> str:
    return ",".join(f"{s}={mix[s]:g}" for s in SOURCES)


@dataclass(frozen=True, slots=True)
class Membership:
    """How sources are drawn so that each person is in at least one and the share of people
    in source s is exactly mix[s].

    Sources are drawn independently with probabilities q[s], conditioned on at least one:
    P(in s | any) = q[s] / Z with Z = 1 - prod(1 - q). Choosing q[s] = mix[s] * Z makes that
    mix[s]; Z is the fixed point of Z = 1 - prod(1 - mix[s] * Z).
    """

    q: tuple[float, ...]
    z: float
    # Cumulative probabilities of "the first source drawn is s", for sampling without retries.
    first_cum: tuple[float, ...]

    @classmethod
    def from_mix(cls, mix: dict[str, float]) -> Membership:
        p = [mix[s] for s in SOURCES]
        z = 1.0 if max(p) >= 1.0 else _fixed_point(p)
        q = tuple(pi * z for pi in p)
        first, none_before = [], 1.0
        for qi in q:
            first.append(none_before * qi / z)
            none_before *= 1.0 - qi
        cum, running = [], 0.0
        for f in first:
            running += f
            cum.append(running)
        return cls(q=q, z=z, first_cum=tuple(cum))

    def expected_share(self, sources: tuple[int, ...]) -> float:
        """Expected share of people in all of the given sources (by index)."""
        return math.prod(self.q[i] for i in sources) / self.z


def _fixed_point(p: list[float]) -> float:
    def excess(z: float) -> float:
        return 1.0 - math.prod(1.0 - pi * z for pi in p) - z

    lo, hi = 1e-12, 1.0  # excess(lo) > 0 because sum(p) > 1; excess(1) <= 0
    for _ in range(200):
        mid = (lo + hi) / 2
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
