"""Test support: local servers that play providers' APIs (Shopify, Stripe) over real HTTP
on 127.0.0.1, and the synthetic tenant that feeds them."""
