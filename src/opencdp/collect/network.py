"""Per-source IP allow-lists: CIDR blocks, IPv4 and IPv6.

`parse_networks` runs when settings load, so a malformed block is a `ConfigError` at start
rather than a source that silently refuses (or admits) everyone; `ip_allowed` is the
per-request check. An empty allow-list admits every address.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from opencdp.errors import ConfigError

Network = IPv4Network | IPv6Network


def _parse(block: str) -> Network:
    """One CIDR block (a bare address is a /32 or /128); ValueError says why not."""
    text = block.strip()
    try:
        return ip_network(text)
    except ValueError as e:
        if "host bits set" in str(e):
            network = ip_network(text, strict=False)
            raise ValueError(f"{text!r} has host bits set (did you mean {network}?)") from e
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address or CIDR block") from e


def parse_networks(blocks: Sequence[str]) -> tuple[Network, ...]:
    """Parse an allow-list, reporting every malformed block at once as a `ConfigError`."""
    if isinstance(blocks, str):
        raise ConfigError("an IP allow-list must be a list of CIDR blocks, not one string")
    networks: list[Network] = []
    problems: list[str] = []
    for block in blocks:
        try:
            networks.append(_parse(block))
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError(
            f"invalid IP allow-list: {'; '.join(problems)}",
            hint="write CIDR blocks such as 203.0.113.0/24 or 2001:db8::/32",
        )
    return tuple(networks)


@lru_cache(maxsize=1024)
def _cached(block: str) -> Network:
    try:
        return _parse(block)
    except ValueError as e:
        raise ConfigError(f"invalid IP allow-list: {e}") from e


def _client(client_ip: str) -> IPv4Address | IPv6Address | None:
    text = client_ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ip_address(text)
    except ValueError:
        return None


def ip_allowed(client_ip: str, allow: Sequence[str | Network]) -> bool:
    """Whether `client_ip` lies in one of the `allow` blocks (all allowed when it is empty).

    `allow` holds networks from `parse_networks` or CIDR strings (parsed once and cached; a
    malformed one raises `ConfigError`). A client address that cannot be parsed is refused.
    An IPv4-mapped IPv6 client (`::ffff:192.0.2.1`, from a dual-stack socket) also matches
    the IPv4 blocks.
    """
    if not allow:
        return True
    address = _client(client_ip)
    if address is None:
        return False
    addresses: list[IPv4Address | IPv6Address] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        addresses.append(address.ipv4_mapped)
    for block in allow:
        network = _cached(block) if isinstance(block, str) else block
        if any(a.version == network.version and a in network for a in addresses):
            return True
    return False
