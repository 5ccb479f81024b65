"""Record identifiers in each source's own style.

Shopify and Salesforce hand out increasing ids, so those come from counters that advance as
records are made (in a fixed order, hence reproducible). Stripe and Segment ids are random
strings drawn from the household's stream.
"""

from __future__ import annotations

import random

from opencdp.generate.rng import base62, random_base62, random_hex

# Salesforce's 18-character ids end with three characters that encode which of the first
# 15 are upper case, so that case-insensitive tools can still tell ids apart.
_CASE_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(key_prefix: str, number: int) -> str:
    """An 18-character id: 3-char object prefix (001 account, 003 contact), pod, counter."""
    body = f"{key_prefix}8d0{base62(number, 9)}"
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(body[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _CASE_SUFFIX[bits]
    return body + suffix


def stripe_id(rng: random.Random, prefix: str, width: int = 24) -> str:
    return f"{prefix}_{random_base62(rng, width)}"


def segment_message_id(rng: random.Random) -> str:
    return f"ajs-next-{random_hex(rng, 32)}"


_BASES = {
    "customer": 7_100_000_000_000,
    "address": 8_900_000_000_000,
    "order": 5_600_000_000_000,
    "product": 8_100_000_000,
    "variant": 44_300_000_000_000,
    "contact": 0,
    "order_number": 1000,
}
# Each step skips a random gap below the stride, as ids shared with other shops do.
_STRIDE = 1_000


class Counters:
    """Increasing Shopify and Salesforce ids, never repeated."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = dict.fromkeys(_BASES, 0)

    def shopify(self, kind: str, rng: random.Random) -> int:
        n = self._next[kind]
        self._next[kind] = n + 1
        return _BASES[kind] + n * _STRIDE + int(rng.random() * _STRIDE)

    def order_number(self) -> int:
        n = self._next["order_number"]
        self._next["order_number"] = n + 1
        return _BASES["order_number"] + 1 + n

    def contact(self) -> str:
        n = self._next["contact"]
        self._next["contact"] = n + 1
        return salesforce_id("003", n + 1)
