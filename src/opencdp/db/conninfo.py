"""Connection strings: where they point, said without the password, and error text scrubbed."""

from __future__ import annotations

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from opencdp.errors import ConfigError
from opencdp.logs import REDACTED, redact_text


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """The parameters of a libpq URL or key=value string."""
    try:
        params = conninfo_to_dict(conninfo)
    except ProgrammingError:
        # libpq quotes the part it cannot parse, which may be the password: say nothing of it.
        raise ConfigError(
            "the database URL cannot be parsed",
            hint="write it as postgresql://user@host:port/database with the password after "
            "the user name and a colon, and percent-encode special characters in it",
        ) from None
    return {key: str(value) for key, value in params.items() if value is not None}


def describe(conninfo: str) -> str:
    """Where `conninfo` points, safe to print: postgresql://user@host:port/database."""
    params = parse_conninfo(conninfo)
    user = params.get("user", "")
    host = params.get("host", "")
    port = params.get("port", "")
    dbname = params.get("dbname", user)
    who = f"{user}@" if user else ""
    if host.startswith("/"):  # a Unix socket folder
        suffix = f"&port={port}" if port else ""
        return f"postgresql://{who}/{dbname}?host={host}{suffix}"
    where = f"{host}:{port}" if port else host
    return f"postgresql://{who}{where}/{dbname}"


def redact(text: str, conninfo: str) -> str:
    """`text` with URL passwords, and the password of `conninfo` wherever it appears, hidden."""
    text = redact_text(text)
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except ProgrammingError:
        password = None
    if password:
        text = text.replace(str(password), REDACTED)
    return text
