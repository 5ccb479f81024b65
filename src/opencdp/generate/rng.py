"""Seeded randomness and the random-looking identifiers built from it.

Every household, account and catalog gets its own `random.Random`, seeded from the run seed,
a purpose and an index. A stream never depends on how much another one consumed, so any
household can be rebuilt on its own and a run is reproducible byte for byte.
"""

from __future__ import annotations

import random
import string
from bisect import bisect
from collections.abc import Sequence
from enum import IntEnum

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
# Random bytes mapped onto base 62 in one `translate` call (the slight bias is harmless).
_BYTE_TO_BASE62 = bytes(ord(BASE62[b % 62]) for b in range(256))


class Purpose(IntEnum):
    HOUSEHOLD = 1
    ACCOUNT = 2
    CATALOG = 3
    PLACES = 4


def rng_for(seed: int, purpose: Purpose, index: int = 0) -> random.Random:
    """The random stream of one (seed, purpose, index); index < 2**40."""
    return random.Random((seed << 48) | (int(purpose) << 40) | index)


class Picker:
    """Draws from a fixed list, optionally weighted; faster than `random.choices` per call."""

    __slots__ = ("_cum", "_n", "_total", "values")

    def __init__(self, values: Sequence[str], weights: Sequence[float] | None = None) -> None:
        if not values:
            raise ValueError("a Picker needs at least one value")
        self.values: tuple[str, ...] = tuple(values)
        self._n = len(self.values)
        self._cum: list[float] | None = None
        self._total = 0.0
        if weights is not None:
            running, cum = 0.0, []
            for weight in weights:
                running += weight
                cum.append(running)
            self._cum, self._total = cum, running

    def __call__(self, rng: random.Random) -> str:
        if self._cum is None:
            return self.values[int(rng.random() * self._n)]
        return self.values[min(bisect(self._cum, rng.random() * self._total), self._n - 1)]


def weighted_index(rng: random.Random, cum_weights: Sequence[float]) -> int:
    """An index drawn with the given cumulative weights (the last one is the total)."""
    return min(bisect(cum_weights, rng.random() * cum_weights[-1]), len(cum_weights) - 1)


def base62(number: int, width: int) -> str:
    """`number` in base 62 (0-9A-Za-z, Salesforce's alphabet), left-padded with zeros."""
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


def random_base62(rng: random.Random, width: int) -> str:
    return rng.randbytes(width).translate(_BYTE_TO_BASE62).decode("ascii")


def random_hex(rng: random.Random, width: int) -> str:
    return f"{rng.getrandbits(4 * width):0{width}x}"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (uuid.uuid4 would read the OS entropy)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean and a long tail (visits, orders, charges)."""
    p = 1.0 / (1.0 + mean)
    count = 0
    while rng.random() > p:
        count += 1
    return count


def below(rng: random.Random, n: int) -> int:
    """An int in [0, n): `int(random() * n)`, several times faster than `randrange`."""
    return int(rng.random() * n)


def between(rng: random.Random, low: int, high: int) -> int:
    """An int in [low, high], like `randint` but faster."""
    return low + int(rng.random() * (high - low + 1))
