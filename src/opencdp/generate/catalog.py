"""The shop's product catalog: a few hundred products at most, whatever the tenant's size."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from opencdp.generate.ids import Counters
from opencdp.generate.rng import Picker, Purpose, between, rng_for
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World

# product type: (SKU code, price range in cents, option name, option values)
_TYPES: dict[str, tuple[str, int, int, str, tuple[str, ...]]] = {
    "T-Shirt": ("TEE", 1500, 4500, "Size", ("XS", "S", "M", "L", "XL")),
    "Hoodie": ("HOOD", 3900, 9500, "Size", ("S", "M", "L", "XL")),
    "Sneakers": ("SNKR", 5900, 16000, "Size", ("38", "39", "40", "41", "42", "43", "44")),
    "Jacket": ("JKT", 7900, 24900, "Size", ("S", "M", "L", "XL")),
    "Socks": ("SOCK", 800, 2200, "Size", ("S/M", "L/XL")),
    "Cap": ("CAP", 1800, 3900, "Color", ("Black", "Navy", "Sand", "Olive")),
    "Backpack": ("BAG", 4500, 14900, "Color", ("Black", "Grey", "Forest")),
    "Tote Bag": ("TOTE", 1200, 3500, "Color", ("Natural", "Black")),
    "Mug": ("MUG", 1200, 2800, "Color", ("White", "Speckled", "Midnight")),
    "Candle": ("CNDL", 1600, 4200, "Scent", ("Cedar", "Fig", "Sea Salt", "Amber")),
    "Water Bottle": ("BTL", 1900, 4500, "Color", ("Steel", "Black", "Sage")),
    "Notebook": ("NOTE", 900, 2600, "Paper", ("Lined", "Dotted", "Blank")),
    "Throw Blanket": ("BLKT", 4900, 12900, "Color", ("Oat", "Charcoal", "Rust")),
    "Sunglasses": ("SUN", 3900, 15900, "Color", ("Tortoise", "Black")),
}
# fmt: off
_ADJECTIVES = Picker((
    "Classic", "Everyday", "Organic", "Vintage", "Essential", "Premium", "Lightweight",
    "Recycled", "Handmade", "Minimal", "Cozy", "Urban", "Coastal", "Alpine", "Heritage",
    "Weekend", "Studio", "Field", "Harbor", "Nordic",
))
_MATERIALS = Picker((
    "Cotton", "Linen", "Wool", "Canvas", "Leather", "Ceramic", "Bamboo", "Denim", "Merino",
    "Hemp", "Fleece", "Cork",
))
_VENDOR_WORDS = Picker(
    ("Supply Co.", "Goods", "Studio", "Outfitters", "Works", "Collective", "Trading")
)
# fmt: on
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Variant:
    id: int
    title: str
    sku: str
    price: int  # cents
    position: int


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    title: str
    handle: str
    vendor: str
    product_type: str
    option: str
    tags: str
    created: int
    updated: int
    variants: tuple[Variant, ...]


def catalog_size(people: int) -> int:
    return min(400, max(25, people // 250))


def build_catalog(world: World, counters: Counters) -> tuple[Product, ...]:
    rng = rng_for(world.seed, Purpose.CATALOG)
    vendors = [f"{w} {_VENDOR_WORDS(rng)}" for w in ("North", "Juniper", "Fable", "Oak & Ash")]
    types = list(_TYPES)
    products, handles = [], set()
    for number in range(1, catalog_size(world.config.people) + 1):
        product_type = types[int(rng.random() * len(types))]
        title = f"{_ADJECTIVES(rng)} {_MATERIALS(rng)} {product_type}"
        handle = _SLUG.sub("-", title.lower()).strip("-")
        if handle in handles:
            handle = f"{handle}-{number}"
        handles.add(handle)
        created = between(rng, world.start - 400 * DAY, world.start + 200 * DAY)
        product_id = counters.shopify("product", rng)
        products.append(
            Product(
                id=product_id,
                title=title,
                handle=handle,
                vendor=vendors[int(rng.random() * len(vendors))],
                product_type=product_type,
                option=_TYPES[product_type][3],
                tags=", ".join(_tags(rng, product_type)),
                created=created,
                updated=between(rng, created, world.end),
                variants=_variants(rng, counters, product_type, number),
            )
        )
    return tuple(products)


def _tags(rng: random.Random, product_type: str) -> list[str]:
    tags = [product_type.lower()]
    for tag, p in (("new", 0.2), ("sale", 0.15), ("bestseller", 0.1)):
        if rng.random() < p:
            tags.append(tag)
    return tags


def _variants(
    rng: random.Random, counters: Counters, product_type: str, number: int
) -> tuple[Variant, ...]:
    code, low, high, _, values = _TYPES[product_type]
    price = between(rng, low // 100, high // 100) * 100 - (1 if rng.random() < 0.6 else 0)
    return tuple(
        Variant(
            id=counters.shopify("variant", rng),
            title=value,
            sku=f"{code}-{number:04d}-{value.replace('/', '').replace(' ', '').upper()}",
            price=price,
            position=position,
        )
        for position, value in enumerate(values, start=1)
    )
