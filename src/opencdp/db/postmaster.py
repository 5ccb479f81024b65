"""The `postmaster.pid` file that a running PostgreSQL server keeps in its data folder.

Its lines (PostgreSQL's src/include/utils/pidfile.h): pid, data folder, start time in epoch
seconds, port, first socket folder, first listen address, shared memory key, status. The
server writes them in steps while it starts, so a short file means "starting".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

# The superuser that pgserver's initdb creates (with trust authentication on its socket).
SUPERUSER = "postgres"
DEFAULT_DBNAME = "postgres"


@dataclass(frozen=True)
class Postmaster:
    pid: int
    started_at: int
    port: int
    socket_dir: Path | None
    listen_address: str | None
    status: str | None  # starting, ready, stopping, standby; None until written

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def conninfo(self, dbname: str = DEFAULT_DBNAME) -> str:
        """A libpq connection string to `dbname` on this server, as its superuser."""
        if self.socket_dir is not None:
            host = str(self.socket_dir)
        elif self.listen_address in (None, "*"):
            host = "127.0.0.1"
        else:
            host = self.listen_address
        return make_conninfo(host=host, port=self.port, user=SUPERUSER, dbname=dbname)


def parse_postmaster(text: str) -> Postmaster | None:
    """The contents of a postmaster.pid file; None when it is too short or garbled to use."""
    lines = [line.strip() for line in text.splitlines()]
    if len(lines) < 4:
        return None
    try:
        pid, started_at, port = int(lines[0]), int(lines[2]), int(lines[3])
    except ValueError:
        return None
    socket_dir, listen_address, status = (
        (lines[i] if len(lines) > i and lines[i] else None) for i in (4, 5, 7)
    )
    return Postmaster(
        pid=pid,
        started_at=started_at,
        port=port,
        socket_dir=Path(socket_dir) if socket_dir else None,
        listen_address=listen_address,
        status=status,
    )
