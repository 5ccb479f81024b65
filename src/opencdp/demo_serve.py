"""The serving half of the demo: the demo tenant loaded into PostgreSQL and its search
index, an API key, and the REST API answering a lookup."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass

from opencdp.collect.probe import free_port
from opencdp.db import Database, tenant_schema
from opencdp.demo import TENANT
from opencdp.demo_live import start_opencdp
from opencdp.errors import TransientError
from opencdp.serve.keys import create_key, list_keys, revoke_key
from opencdp.serve.refresh import RefreshReport, refresh_tenant
from opencdp.settings import Settings

KEY_NAME = "demo"


@dataclass(frozen=True)
class ServingDemo:
    refresh: RefreshReport
    url: str
    token: str
    email: str  # of a sample profile, for the example lookups
    phone: str
    profile_id: str


def serve_demo(settings: Settings) -> tuple[ServingDemo, subprocess.Popen[bytes]]:
    """Load, make a fresh demo key (the previous ones are revoked: a token is shown only
    once), start `opencdp serve` and look a sample profile up through it."""
    refresh = refresh_tenant(settings, TENANT)
    db = Database.from_settings(settings)
    for key in list_keys(db, TENANT):
        if key.name == KEY_NAME and key.revoked_at is None:
            revoke_key(db, key.key_id)
    _, token = create_key(db, TENANT, KEY_NAME, ["admin"])
    with db.connect() as conn:
        sample = conn.execute(
            f"SELECT profile_id, email, phone FROM {tenant_schema(TENANT)}.profiles "
            "WHERE email IS NOT NULL AND phone IS NOT NULL "
            "ORDER BY records DESC, profile_id LIMIT 1"
        ).fetchone()
    if sample is None:
        raise TransientError("the demo tenant has no profile with an email and a phone")
    port = free_port(settings.serve.port)
    process = start_opencdp(settings, ["serve", "--workers", "1"], port)
    demo = ServingDemo(
        refresh, f"http://127.0.0.1:{port}", token, sample["email"], sample["phone"],
        sample["profile_id"],
    )  # fmt: skip
    found = lookup(demo, email=demo.email)
    if found.get("profile_id") != demo.profile_id:
        process.kill()
        raise TransientError(f"the API's lookup did not find the sample profile: {found}")
    return demo, process


def lookup(demo: ServingDemo, **identifier: str) -> dict[str, object]:
    query = urllib.parse.urlencode(identifier)
    request = urllib.request.Request(  # noqa: S310 - our own local URL
        f"{demo.url}/v1/profiles/lookup?{query}",
        headers={"Authorization": f"Bearer {demo.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        found: dict[str, object] = json.loads(response.read())
    return found
