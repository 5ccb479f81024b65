"""Identity resolution: identifiers, links, guardrails, profiles and survivorship."""
