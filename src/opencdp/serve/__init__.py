"""Serving: curated tables loaded into PostgreSQL, the profile search index, and the REST API."""
