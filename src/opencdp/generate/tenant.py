"""The pure generator: which records a tenant has, in the order they are written.

`Tenant` plans the people household by household and renders each person into the records
of the sources they appear in. Nothing here touches the disk; `run.generate_tenant` streams
the records to files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from opencdp.generate.catalog import build_catalog
from opencdp.generate.companies import company
from opencdp.generate.config import GenerateConfig
from opencdp.generate.ids import Counters
from opencdp.generate.people import Household, Person, plan_households
from opencdp.generate.profiles import Profile, draw_profile
from opencdp.generate.records import Record
from opencdp.generate.rng import below, between, random_hex
from opencdp.generate.sources import crm, segment, shopify, stripe
from opencdp.generate.timefmt import DAY
from opencdp.generate.world import World, build_world


class Tenant:
    def __init__(self, config: GenerateConfig) -> None:
        self.config = config
        self.world: World = build_world(config)
        # Ids are handed out in output order, which is fixed: products, then people.
        self._counters = Counters()
        self.shop = shopify.Shop.of(config.tenant, build_catalog(self.world, self._counters))

    def reference_records(self) -> Iterator[Record]:
        """Records about no person: the shop's products and the CRM's accounts."""
        for product in self.shop.products:
            yield Record("shopify", "products", str(product.id), "", shopify.product_json(product))
        world = self.world
        for index in range(world.accounts):
            account = company(world.seed, index, world.start, world.end)
            yield Record("crm", "accounts", crm.account_id(index), "", crm.account_row(account))

    def households(self) -> Iterator[Household]:
        return plan_households(self.world)

    def person_records(self, person: Person, rng: random.Random) -> list[Record]:
        """Every record of one person, source by source (Shopify before Stripe and events,
        which refer to its orders and customer id)."""
        records: list[Record] = []
        shopify_id: int | None = None
        orders: list[shopify.Order] = []
        for source in person.sources:
            for copy in range(2 if source in person.duplicates else 1):
                profile = draw_profile(person, rng, self.config.rates)
                if source == "crm":
                    records.append(self._contact(person, profile, rng))
                elif source == "shopify":
                    rendered, placed = shopify.render(
                        person, profile, rng, self.world, self._counters, self.shop
                    )
                    shopify_id = shopify_id or int(rendered[0].record_id)
                    orders.extend(placed)
                    records.extend(rendered)
                elif source == "stripe":
                    # A second Stripe customer did not pay the orders the first one paid.
                    paid = orders if copy == 0 else []
                    records.extend(
                        stripe.render(person, profile, rng, self.world, paid, shopify_id)
                    )
                else:
                    user_id = str(shopify_id) if shopify_id else f"usr_{random_hex(rng, 16)}"
                    records.extend(
                        segment.render(person, profile, rng, self.world, self.shop, orders, user_id)
                    )
        return records

    def _contact(self, person: Person, profile: Profile, rng: random.Random) -> Record:
        end = self.world.end
        created = min(end - DAY, person.first_seen + below(rng, 200 * DAY))
        updated = between(rng, created, end)
        contact_id = self._counters.contact()
        row = crm.contact_row(person, profile, contact_id, created, updated, rng)
        return Record(
            "crm",
            "contacts",
            contact_id,
            person.person_id,
            row,
            profile.applied,
            profile.eligible,
        )
