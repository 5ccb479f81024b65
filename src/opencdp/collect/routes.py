"""The sources the collection service answers for, resolved once from the settings.

Secrets are read from the environment here ("env:NAME"), networks parsed, write keys
indexed: the request path only looks things up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from opencdp.collect.signatures import VerifyConfig, check_config, parse_networks
from opencdp.errors import ConfigError
from opencdp.settings import Settings, resolve_env_refs


@dataclass(frozen=True)
class SourceRoute:
    tenant: str
    source: str
    provider: str


@dataclass(frozen=True)
class WebhookRoute(SourceRoute):
    scheme: str
    verification: VerifyConfig
    networks: tuple[IPv4Network | IPv6Network, ...]
    max_body_bytes: int


@dataclass(frozen=True)
class Routes:
    webhooks: dict[tuple[str, str], WebhookRoute] = field(default_factory=dict)
    write_keys: dict[str, SourceRoute] = field(default_factory=dict)
    # tenant -> (requests per second, burst), for tenants with limits of their own
    rate_limits: dict[str, tuple[float, int]] = field(default_factory=dict)


def build_routes(settings: Settings, environ: dict[str, str] | None = None) -> Routes:
    environ = dict(os.environ) if environ is None else environ
    routes = Routes()
    collect = settings.collect
    for tenant, tenant_settings in sorted(settings.tenants.items()):
        if tenant_settings.rate_limit_per_second or tenant_settings.rate_limit_burst:
            routes.rate_limits[tenant] = (
                tenant_settings.rate_limit_per_second or collect.rate_limit_per_second,
                tenant_settings.rate_limit_burst or collect.rate_limit_burst,
            )
        for name, source in sorted(tenant_settings.sources.items()):
            if source.kind == "webhook" and source.webhook is not None:
                hook = source.webhook
                verification = VerifyConfig(
                    secrets=tuple(resolve_env_refs(hook.secrets, environ)),
                    public_keys=tuple(resolve_env_refs(hook.public_keys, environ)),
                    signature_header=hook.signature_header,
                    id_header=hook.id_header,
                    type_header=hook.type_header,
                    tolerance_seconds=hook.tolerance_seconds,
                    audience=hook.audience,
                    issuer=hook.issuer,
                )
                check_config(hook.scheme, verification)  # fail at start, not per request
                routes.webhooks[(tenant, name)] = WebhookRoute(
                    tenant=tenant,
                    source=name,
                    provider=source.provider,
                    scheme=hook.scheme,
                    verification=verification,
                    networks=tuple(parse_networks(hook.allowed_ips)),
                    max_body_bytes=hook.max_body_bytes,
                )
            elif source.kind == "tracking":
                for key in resolve_env_refs(source.write_keys, environ):
                    if key in routes.write_keys:
                        other = routes.write_keys[key]
                        raise ConfigError(
                            f"a write key of {tenant}/{name} is also used by "
                            f"{other.tenant}/{other.source}",
                            hint="every write key must map to one tenant and source",
                        )
                    routes.write_keys[key] = SourceRoute(tenant, name, source.provider)
    return routes
