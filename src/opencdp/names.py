"""Validation of the names that become paths, Iceberg namespaces and SQL identifiers.

A tenant name ends up in a folder name, an Iceberg namespace, a PostgreSQL schema and a
database role, so it is held to the strictest of those: lower-case letters, digits and
underscores, starting with a letter, at most 48 characters (room for prefixes in role and
schema names within PostgreSQL's 63-byte limit).
"""

from __future__ import annotations

import re

from opencdp.errors import InvalidNameError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def check_name(value: str, kind: str = "tenant") -> str:
    """Return `value` unchanged if it is a safe name, else raise `InvalidNameError`."""
    if not _NAME.fullmatch(value):
        raise InvalidNameError(
            f"invalid {kind} name {value!r}",
            hint=f"a {kind} name uses a-z, 0-9 and _, starts with a letter, at most 48 chars "
            "(for example 'acme_corp')",
        )
    return value
