"""Web and app events in the Segment spec: page, screen, track and identify calls.

Each person browses from one to three devices, each with its own anonymousId. Most people
identify at some point on a device (an `identify` with their traits and a userId), and from
then on that device's events carry the userId; some never identify, so their browsing stays
anonymous. A device's events are in time order; the file as a whole is not.
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate
from typing import Any

from opencdp.generate import timefmt
from opencdp.generate.catalog import Product, Variant
from opencdp.generate.ids import segment_message_id
from opencdp.generate.people import Person
from opencdp.generate.profiles import Profile
from opencdp.generate.records import Record
from opencdp.generate.rng import below, geometric, random_hex, uuid4
from opencdp.generate.sources.shopify import Order, Shop
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World

IDENTIFY_RATE = 0.75  # people who identify on at least one device
MEAN_EVENTS = 5.0  # per device, besides identify and order events
_WEB_LIBRARY = {"name": "analytics.js", "version": "next-1.70.0"}
_APP_LIBRARIES = (
    {"name": "analytics-ios", "version": "4.1.8"},
    {"name": "analytics-android", "version": "4.11.3"},
)


def _os(name: str, version: str) -> dict[str, str]:
    return {"name": name, "version": version}


_APP = {"name": "Shop", "version": "3.12.0", "build": "3120", "namespace": "com.opencdp.shop"}
_APP_DEVICES = (
    ({"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"}, _os("iOS", "17.4")),
    ({"manufacturer": "Apple", "model": "iPhone14,5", "type": "ios"}, _os("iOS", "16.7")),
    ({"manufacturer": "samsung", "model": "SM-S911B", "type": "android"}, _os("Android", "14")),
    ({"manufacturer": "Google", "model": "Pixel 8", "type": "android"}, _os("Android", "14")),
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
)
_APP_AGENT = "Shop/3.12.0 (build 3120)"
_REFERRERS = ("", "", "https://www.google.com/", "https://www.instagram.com/",
              "https://www.facebook.com/", "https://t.co/", "https://www.bing.com/")  # fmt: skip
_SEARCHES = ("gift", "sale", "black", "organic", "linen", "wool socks", "mug", "backpack")
_SCREENS = ("Home", "Product", "Cart", "Search", "Account", "Orders")
_PRODUCT_STEPS = ("Product Viewed", "Product Added")
# What an anonymous step is: page (or screen), product view, add to cart, search, sign-up.
_STEPS = (
    "page",
    "Product Viewed",
    "Product Added",
    "Products Searched",
    "Cart Viewed",
    "Signed Up",
)
_STEP_CUM = tuple(accumulate((0.5, 0.25, 0.1, 0.06, 0.06)))  # the rest: sign-up
_IP_FIRST_OCTETS = (23, 24, 31, 37, 45, 62, 66, 71, 73, 77, 81, 82, 86, 88, 90, 92, 98, 99,
                    104, 108, 109, 173, 174, 176, 185, 188, 212, 213, 217)  # fmt: skip


class _Device:
    """One browser or app install: its anonymousId and the context its events share."""

    __slots__ = ("anonymous_id", "app", "context", "identified", "rng")

    def __init__(self, person: Person, rng: random.Random) -> None:
        self.rng = rng
        self.app = rng.random() < 0.2
        self.identified = False
        octets = (
            _pick(rng, _IP_FIRST_OCTETS),
            below(rng, 256),
            below(rng, 256),
            1 + below(rng, 254),
        )
        ip = ".".join(map(str, octets))
        if self.app:
            device, os = _APP_DEVICES[int(rng.random() * len(_APP_DEVICES))]
            self.anonymous_id = uuid4(rng).upper()
            self.context: dict[str, Any] = {
                "ip": ip,
                "userAgent": _APP_AGENT,
                "locale": person.country.locale,
                "library": _APP_LIBRARIES[device["type"] == "android"],
                "app": _APP,
                "device": {"id": uuid4(rng), **device},
                "os": os,
            }
        else:
            self.anonymous_id = uuid4(rng)
            self.context = {
                "ip": ip,
                "userAgent": _pick(rng, _USER_AGENTS),
                "locale": person.country.locale,
                "library": _WEB_LIBRARY,
            }


def render(
    person: Person,
    profile: Profile,
    rng: random.Random,
    world: World,
    shop: Shop,
    orders: list[Order],
    user_id: str,
) -> list[Record]:
    identifies = rng.random() < IDENTIFY_RATE
    devices = 1 + (rng.random() < 0.3) + (rng.random() < 0.08)
    end_ms = world.end * 1000
    person_id = person.person_id
    records: list[Record] = []
    for number in range(devices):
        device = _Device(person, rng)
        # The device's steps as (time in ms, what happens), already in time order.
        steps: list[tuple[int, str, Order | None]] = []
        t = min(world.end - DAY, person.first_seen + below(rng, 120 * DAY)) * 1000
        for n in range(1 + geometric(rng, MEAN_EVENTS)):
            # The next page of a visit, or a later visit; the first step is always a page of
            # the first visit, which starts at least a day before the end of the history.
            if n == 0 or rng.random() < 0.8:
                t += 5_000 + below(rng, 295_000)
            else:
                t += (DAY + below(rng, 29 * DAY)) * 1000
            if t >= end_ms:
                break
            steps.append((t, _STEPS[bisect(_STEP_CUM, rng.random())], None))
        if identifies and steps and (number == 0 or rng.random() < 0.6):
            after = below(rng, len(steps))
            steps.insert(after + 1, (steps[after][0] + 1, "identify", None))
        if number == 0 and orders:
            steps.extend(
                (o.created * 1000, "Order Completed", o) for o in orders if rng.random() < 0.6
            )
            steps.sort(key=lambda s: (s[0], s[1]))
        for at, step, order in steps:
            event = _event(person, profile, device, shop, step, order, user_id, at)
            if step == "identify":
                record = Record(
                    "events",
                    "events",
                    event["messageId"],
                    person_id,
                    event,
                    profile.applied,
                    profile.eligible,
                )
            else:
                record = Record("events", "events", event["messageId"], person_id, event)
            records.append(record)
    return records


def _pick(rng: random.Random, values: tuple[Any, ...]) -> Any:
    return values[int(rng.random() * len(values))]


def _event(
    person: Person,
    profile: Profile,
    device: _Device,
    shop: Shop,
    step: str,
    order: Order | None,
    user_id: str,
    at: int,
) -> dict[str, Any]:
    rng = device.rng
    if step == "identify":
        device.identified = True
    head = {
        "type": "track",
        "messageId": uuid4(rng) if device.app else segment_message_id(rng),
        "anonymousId": device.anonymous_id,
        "userId": user_id if device.identified else None,
    }
    context = device.context
    if step == "identify":
        head["type"] = "identify"
        body: dict[str, Any] = {"traits": _traits(profile)}
    elif step == "page" and device.app:
        head["type"] = "screen"
        body = {"name": _pick(rng, _SCREENS), "properties": {}}
    elif step == "page":
        page = _page(rng, shop, None)
        head["type"] = "page"
        body = {"name": page["title"], "properties": page}
        context = {**context, "page": page}
    else:
        product = shop.pick(rng) if step in _PRODUCT_STEPS else None
        body = {"event": step, "properties": _properties(rng, person, step, order, product)}
        if not device.app:
            context = {**context, "page": _page(rng, shop, product)}
    timestamp, sent_at = timefmt.segment_pair(at, 20 + below(rng, 2_000))
    return {**head, **body, "context": context, "timestamp": timestamp, "sentAt": sent_at}


def _page(
    rng: random.Random, shop: Shop, product: tuple[Product, Variant] | None
) -> dict[str, str]:
    roll = rng.random()
    if product is not None or 0.3 <= roll < 0.75:
        shown = product[0] if product is not None else shop.pick(rng)[0]
        path, title = f"/products/{shown.handle}", shown.title
    elif roll < 0.3:
        path, title = "/", "Home"
    elif roll < 0.9:
        path, title = "/collections/all", "All products"
    else:
        path, title = "/cart", "Your cart"
    return {
        "path": path,
        "referrer": _pick(rng, _REFERRERS),
        "search": "",
        "title": title,
        "url": f"https://{shop.domain}{path}",
    }


def _product(product: Product, variant: Variant, currency: str, quantity: int) -> dict[str, Any]:
    return {
        "product_id": str(product.id),
        "sku": variant.sku,
        "name": product.title,
        "variant": variant.title,
        "category": product.product_type,
        "price": variant.price / 100,
        "quantity": quantity,
        "currency": currency,
    }


def _properties(
    rng: random.Random,
    person: Person,
    step: str,
    order: Order | None,
    product: tuple[Product, Variant] | None,
) -> dict[str, Any]:
    if order is not None:
        return {
            "order_id": str(order.id),
            "total": order.total / 100,
            "revenue": (order.lines - order.discount) / 100,
            "shipping": order.shipping / 100,
            "tax": order.tax / 100,
            "discount": order.discount / 100,
            "coupon": order.discount_code,
            "currency": order.currency,
            "products": [_product(p, v, order.currency, q) for p, v, q in order.items],
        }
    if product is not None:
        return _product(*product, person.country.currency, 1)
    if step == "Products Searched":
        return {"query": _pick(rng, _SEARCHES)}
    if step == "Cart Viewed":
        return {"cart_id": random_hex(rng, 32)}
    return {"method": "email"}


def _traits(profile: Profile) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    if profile.email is not None:
        traits["email"] = profile.email
    if profile.first_name is not None:
        traits["firstName"] = profile.first_name
    if profile.last_name is not None:
        traits["lastName"] = profile.last_name
    if profile.phone is not None:
        traits["phone"] = profile.phone
    if profile.birth is not None:
        traits["birthday"] = timefmt.iso_date(profile.birth)
    address = profile.address
    if address is not None:
        traits["address"] = {
            "street": address.line1 if not address.line2 else f"{address.line1}, {address.line2}",
            "city": address.city,
            "state": address.region_code or address.region,
            "postalCode": address.postcode,
            "country": address.country.name,
        }
    return traits
