"""IP allow-lists: IPv4 and IPv6 CIDR blocks, parsed once at load time."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

import pytest

from opencdp.collect.network import ip_allowed, parse_networks
from opencdp.errors import ConfigError

ALLOW = ["203.0.113.0/24", "198.51.100.7", "2001:db8:abcd::/48"]


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("203.0.113.1", True),
        ("203.0.113.255", True),
        ("203.0.114.1", False),
        ("198.51.100.7", True),  # a bare address is a /32
        ("198.51.100.8", False),
        ("2001:db8:abcd:12::1", True),
        ("2001:db8:abce::1", False),
        ("[2001:db8:abcd::5]", True),  # bracketed, as in a URL
        ("::ffff:203.0.113.9", True),  # IPv4-mapped, from a dual-stack socket
        ("::ffff:192.0.2.1", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("not-an-ip", False),
        ("", False),
        ("203.0.113.1:443", False),
    ],
)
def test_inside_and_outside(client: str, allowed: bool) -> None:
    assert ip_allowed(client, ALLOW) is allowed
    assert ip_allowed(client, parse_networks(ALLOW)) is allowed


@pytest.mark.parametrize("client", ["203.0.113.1", "2001:db8::1", "10.1.2.3", "garbage"])
def test_an_empty_list_allows_everyone(client: str) -> None:
    assert ip_allowed(client, []) is True
    assert ip_allowed(client, ()) is True


def test_v4_and_v6_lists_are_separate() -> None:
    assert ip_allowed("10.0.0.1", ["::/0"]) is False
    assert ip_allowed("2001:db8::1", ["0.0.0.0/0"]) is False
    assert ip_allowed("10.0.0.1", ["0.0.0.0/0"]) is True
    assert ip_allowed("2001:db8::1", ["::/0"]) is True


def test_parse_networks() -> None:
    networks = parse_networks([" 10.0.0.0/8 ", "2001:db8::/32", "192.0.2.1"])
    assert networks == (
        IPv4Network("10.0.0.0/8"),
        IPv6Network("2001:db8::/32"),
        IPv4Network("192.0.2.1/32"),
    )
    assert parse_networks([]) == ()


def test_every_malformed_block_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_networks(["10.0.0.0/8", "10.0.0.300/24", "example.com", "2001:db8::/129"])
    message = str(caught.value)
    for bad in ("10.0.0.300/24", "example.com", "2001:db8::/129"):
        assert bad in message
    assert "'10.0.0.0/8'" not in message


def test_host_bits_set_suggests_the_network() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 10\.0\.0\.0/8"):
        parse_networks(["10.0.0.1/8"])


def test_a_single_string_is_refused() -> None:
    with pytest.raises(ConfigError, match="list of CIDR blocks"):
        parse_networks("10.0.0.0/8")


def test_a_malformed_string_block_at_check_time_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ip_allowed("10.0.0.1", ["10.0.0.0/33"])
