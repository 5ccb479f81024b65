"""Synthetic multi-source tenants with a ground truth, for measuring identity resolution.

A tenant is a CRM export (Salesforce-shaped CSV), a Shopify store, a Stripe account and
Segment web/app events about the same people, with the variations real data has between
the records of one person. `ground_truth.csv` says which person every record belongs to.

    config = GenerateConfig(tenant="acme", people=10_000, seed=7, mix=parse_mix("crm=0.8"))
    manifest = generate_tenant(config, Path("out/acme"))
"""

from opencdp.generate.config import DEFAULT_MIX, SOURCES, GenerateConfig, parse_mix
from opencdp.generate.records import GROUND_TRUTH, MANIFEST, STREAMS, Record
from opencdp.generate.run import generate_tenant
from opencdp.generate.tenant import Tenant
from opencdp.generate.variations import KINDS, UNITS, Rates, parse_rates

__all__ = [
    "DEFAULT_MIX",
    "GROUND_TRUTH",
    "KINDS",
    "MANIFEST",
    "SOURCES",
    "STREAMS",
    "UNITS",
    "GenerateConfig",
    "Rates",
    "Record",
    "Tenant",
    "generate_tenant",
    "parse_mix",
    "parse_rates",
]
