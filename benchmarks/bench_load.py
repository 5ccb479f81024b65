"""Loading profiles into PostgreSQL: the historic and the incremental load beside a plain
COPY of the same rows.

1. generates --profiles synthetic profiles (default 1,000,000) straight as Arrow, with
   realistic widths (traits, consent, external ids, the lineage of 12 traits, computed
   traits), and commits them to the tenant's Iceberg `profiles` table;
2. plain COPY: the same rows as CSV prepared in advance (outside the timing), streamed by
   `COPY ... FROM STDIN (FORMAT csv)` into an empty table with the same columns and no
   index (created and committed beforehand), committed;
3. `load_tenant(..., historic=True, tables=["profiles"])`: read from Iceberg, COPY into a
   fresh table, primary key, integrity checks (count, key checksum), swap, commit (the
   tenant's schema is made beforehand, as `opencdp db migrate` or an earlier load does);
4. changes 1% of the profiles (a new email and update time) in a new snapshot that
   rewrites the whole table, as identity resolution does, and times the incremental load
   (the snapshot diff over every row, the changed rows merged).

    uv run python benchmarks/bench_load.py [--profiles 1000000] [--database-url URL]

The database is the embedded PostgreSQL in benchmarks/work/load/ unless --database-url
names another (a fresh database on that server is created and dropped); the data root is
removed at the end.
Target (issue 7): the historic load at least 0.8x the rows/s of the plain COPY.
Results: benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pyiceberg.expressions import AlwaysTrue

from _common import WORK, machine, write_result
from _profiles import profiles
from opencdp.db import Database, ensure_tenant
from opencdp.identity.model import PROFILES
from opencdp.lake import ensure_namespace, open_catalog
from opencdp.lake.commit import commit, ensure_table
from opencdp.serve.load import load_tenant
from opencdp.serve.load.copy import copy_statement, csv_chunks
from opencdp.serve.load.prepare import Preparer
from opencdp.serve.tables import SERVED
from opencdp.settings import Settings, load_settings

TENANT = "bench"
CHANGED = 0.01


def write_profiles(settings: Settings, data: pa.Table, run_id: str) -> None:
    with open_catalog(settings) as catalog:
        ensure_namespace(catalog, TENANT)
        table = ensure_table(catalog, TENANT, "profiles", PROFILES, (), {})
        commit(table, data, run_id=run_id, replace=AlwaysTrue())


def changed(data: pa.Table, share: float) -> pa.Table:
    """`data` with `share` of its rows given a new email and a later update time."""
    n = data.num_rows
    picked = pa.array(np.arange(n) % int(1 / share) == 0)
    email = pc.if_else(
        picked, pc.binary_join_element_wise(data["email"], "moved", "."), data["email"]
    )
    later = pc.if_else(
        picked,
        pa.array([datetime(2025, 6, 1, tzinfo=UTC)] * n, data["updated_at"].type),
        data["updated_at"],
    )
    data = data.set_column(data.schema.get_field_index("email"), "email", email)
    return data.set_column(data.schema.get_field_index("updated_at"), "updated_at", later)


def prepared_csv(settings: Settings, data: pa.Table) -> list[pa.Buffer]:
    """The rows as the CSV the loader sends (made outside any timing)."""
    prepared = Preparer(SERVED["profiles"])(data)
    return [chunk for chunk, _ in csv_chunks(prepared)]


def plain_copy(conninfo: str, chunks: list[pa.Buffer]) -> float:
    served = SERVED["profiles"]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.copy_profiles")
        conn.execute(served.create_table("public", "copy_profiles"))
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(copy_statement(sql.Identifier("copy_profiles"), served.columns)) as copy,
        ):
            for chunk in chunks:
                copy.write(memoryview(chunk))
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE public.copy_profiles")
    return seconds


def timed_load(
    settings: Settings, conninfo: str, *, historic: bool
) -> tuple[float, dict[str, Any]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    started = time.perf_counter()
    report = load_tenant(settings, TENANT, historic=historic, tables=["profiles"])
    return time.perf_counter() - started, report.summary()["tables"]["profiles"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a PostgreSQL server to use (default: embedded)")
    args = parser.parse_args()
    n = args.profiles

    root = WORK / "load" / f"root-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    database: dict[str, Any] = {}
    dropped: tuple[str, str] | None = None
    if args.database_url:
        name = f"opencdp_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        database = {"url": make_conninfo(args.database_url, dbname=name)}
        dropped = (args.database_url, name)
    settings = load_settings(root, database=database) if database else load_settings(root)
    try:
        started = time.perf_counter()
        data = profiles(n)
        write_profiles(settings, data, "bench-1")
        print(f"{n:,} profiles generated and committed in {time.perf_counter() - started:.1f} s")
        database_of = Database.from_settings(settings)
        conninfo = database_of.conninfo()
        ensure_tenant(database_of, TENANT)  # the schema exists before a load, as in use
        chunks = prepared_csv(settings, data)
        csv_bytes = sum(c.size for c in chunks)

        copy_s = plain_copy(conninfo, chunks)
        del chunks
        print(
            f"plain COPY: {copy_s:.2f} s, {n / copy_s:,.0f} rows/s ({csv_bytes / 1e6:,.0f} MB CSV)"
        )
        historic_s, historic = timed_load(settings, conninfo, historic=True)
        print(f"historic load: {historic_s:.2f} s, {n / historic_s:,.0f} rows/s")
        write_profiles(settings, changed(data, CHANGED), "bench-2")
        incremental_s, incremental = timed_load(settings, conninfo, historic=False)
        print(
            f"incremental load after {CHANGED:.0%} changed: {incremental_s:.2f} s "
            f"({incremental['rows_upserted']:,} rows upserted)"
        )
        ratio = (n / historic_s) / (n / copy_s)
        print(f"historic / COPY rate: {ratio:.2f}x (target >= 0.8x)")
        write_result(
            "load",
            {
                "machine": machine(),
                "database": "url" if args.database_url else "embedded",
                "profiles": n,
                "csv_megabytes": round(csv_bytes / 1e6, 1),
                "plain_copy": {"seconds": round(copy_s, 2), "rows_per_second": round(n / copy_s)},
                "historic": {
                    "seconds": round(historic_s, 2),
                    "rows_per_second": round(n / historic_s),
                    "report": historic,
                },
                "incremental": {
                    "changed_share": CHANGED,
                    "seconds": round(incremental_s, 2),
                    "rows_per_second": round(n / incremental_s),
                    "report": incremental,
                },
                "historic_over_copy": round(ratio, 3),
                "target": ">= 0.8",
            },
        )
    finally:
        if dropped:
            with psycopg.connect(dropped[0], autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dropped[1])
                    )
                )
        else:
            Database.from_settings(settings).server.stop()  # type: ignore[union-attr]
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
