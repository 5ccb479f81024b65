"""The Shopify tap's pure parts: Link headers, the call-limit bucket, the shop's URL."""

from __future__ import annotations

import pytest
from singer_sdk.exceptions import ConfigValidationError

from opencdp.ingest.taps.shopify import next_page, parse_call_limit, shop_root, throttle_pause

BASE = "https://acme.myshopify.com/admin/api/2024-10/customers.json"


def test_next_page_is_the_query_of_the_next_link() -> None:
    link = f'<{BASE}?limit=250&page_info=eyJsYXN0X2lkIjo0fQ>; rel="next"'
    assert next_page(link) == {"limit": "250", "page_info": "eyJsYXN0X2lkIjo0fQ"}


def test_next_page_after_a_previous_link() -> None:
    link = (
        f'<{BASE}?page_info=cHJldg&limit=50>; rel="previous", '
        f'<{BASE}?page_info=bmV4dA&limit=50>; rel="next"'
    )
    assert next_page(link) == {"page_info": "bmV4dA", "limit": "50"}


@pytest.mark.parametrize(
    "link", [None, "", f'<{BASE}?page_info=cHJldg&limit=50>; rel="previous"', "garbage"]
)
def test_the_last_page_has_no_next_link(link: str | None) -> None:
    assert next_page(link) is None


@pytest.mark.parametrize(
    ("header", "bucket"),
    [
        ("39/40", (39, 40)),
        ("1/80", (1, 80)),
        (None, None),
        ("40", None),
        ("a/b", None),
        ("1/0", None),
    ],
)
def test_parse_call_limit(header: str | None, bucket: tuple[int, int] | None) -> None:
    assert parse_call_limit(header) == bucket


def test_no_pause_while_the_bucket_has_room() -> None:
    assert throttle_pause(1, 40) == 0.0
    assert throttle_pause(37, 40) == 0.0  # the next call still leaves 2 free


def test_the_pause_lets_the_bucket_drain_below_the_reserve() -> None:
    assert throttle_pause(39, 40) == pytest.approx(1.0)  # 2 calls over, leaking 2 a second
    assert throttle_pause(40, 40) == pytest.approx(1.5)
    assert throttle_pause(399, 400) == pytest.approx(0.1)  # a Plus shop leaks 20 a second


@pytest.mark.parametrize(
    ("config", "root"),
    [
        ({"shop": "acme.myshopify.com"}, "https://acme.myshopify.com"),
        ({"shop": "acme"}, "https://acme.myshopify.com"),
        ({"shop": "https://acme.myshopify.com/"}, "https://acme.myshopify.com"),
        ({"shop": "acme", "base_url": "http://127.0.0.1:8080/"}, "http://127.0.0.1:8080"),
    ],
)
def test_shop_root(config: dict[str, str], root: str) -> None:
    assert shop_root(config) == root


def test_a_shop_is_required() -> None:
    with pytest.raises(ConfigValidationError, match="needs `shop`"):
        shop_root({})
