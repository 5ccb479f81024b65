"""DuckDB and Spark give the same answers, and the SQL subset stages may use.

Stage SQL is written once, in DuckDB's dialect; SQLGlot transpiles it for Spark. Each query
below runs on both engines; the results must have the same columns and the same rows, and
Spark's must cast losslessly to DuckDB's types (a writer casts to the table's schema anyway).

Safe as written (pinned by `test_engines_agree`):
- SELECT, WITH, WHERE, DISTINCT, GROUP BY (also GROUP BY ALL), HAVING, UNION ALL, INNER and
  LEFT JOIN, anti joins as NOT EXISTS (…) or LEFT JOIN … WHERE right.key IS NULL,
  SELECT * EXCLUDE (…), IS DISTINCT FROM, IN (…), ILIKE.
- ROW_NUMBER() OVER (PARTITION BY … ORDER BY … [DESC] [NULLS FIRST | LAST]); ORDER BY with
  NULLs, DuckDB's default included (SQLGlot spells out NULLS LAST for Spark).
- COUNT(*), COUNT(x), COUNT(DISTINCT x), SUM, MIN, MAX (numbers, decimals, strings,
  TIMESTAMPTZ), bool_or, bool_and, MAX(boolean), count_if, string_agg(x, sep ORDER BY …).
- COALESCE, ifnull, nullif, CASE, if, greatest, least.
- lower, trim, ltrim, rtrim, split_part, regexp_extract, regexp_matches, concat_ws, concat,
  ||, length, replace, substr, left, lpad, strpos, starts_with, contains, md5, sha256.
- TIMESTAMPTZ columns (Arrow timestamp[us, UTC]): date_trunc, CAST(ts AS DATE),
  strftime(ts, '%Y-%m-%d'), ts + INTERVAL n UNIT, date_diff('day', date, date).
- TRY_CAST(string AS DECIMAL(p, s) | DOUBLE | BOOLEAN | DATE | TIMESTAMPTZ) gives NULL on bad
  input; CAST raises on both engines (as does integer overflow: `test_both_engines_refuse`).
- list_contains, array_length, unnest(list) in the select list; maps and structs pass through
  unchanged; m['key'], s.field, {'k': v} and struct_pack(k := v), map_from_entries.

Written with care (the right-hand form agrees; `test_outside_the_subset_engines_differ`
pins each difference, so this list fails its test when an upgrade changes it):
- Name every computed column (AS name): COUNT(*) is count_star() on DuckDB, count(1) on Spark.
- Dedup: a subquery with ROW_NUMBER() … AS rn and WHERE rn = 1, never QUALIFY (SQLGlot
  rewrites it into a subquery that leaks its helper column `_w` into SELECT * and moves the
  outer ORDER BY inside, where it orders nothing). Order the window totally (a unique
  tie-breaker last), or each engine keeps a different survivor.
- JOIN … USING: Spark moves the key to the front of * and o.*: join ON, or name the columns.
- UNION ALL BY NAME: Spark SQL has none; UNION ALL, same columns in the same order and types.
- AVG(decimal) is DOUBLE on DuckDB, DECIMAL(p+4, s+4) on Spark: AVG(CAST(x AS DOUBLE)).
- SUM(decimal) is DECIMAL(38, s) on DuckDB, DECIMAL(p+10, s) on Spark; SUM(integer) and
  count_if are HUGEINT on DuckDB, BIGINT on Spark: CAST(SUM(x) AS <the column's type>).
- Decimal times integer keeps DECIMAL(18, s) on DuckDB and overflows where Spark widens:
  CAST(x AS DECIMAL(38, s)) * n, then CAST the result to the column's type. Decimal division
  is DOUBLE on DuckDB and DECIMAL on Spark: divide CAST(x AS DOUBLE). Guard every divisor,
  x / NULLIF(y, 0): DuckDB returns inf, Spark raises.
- Decimal or double to integer: DuckDB rounds, Spark truncates: CAST(ROUND(x) AS BIGINT).
- String to integer: TRY_CAST('12.5' AS INTEGER) is 13 on DuckDB, NULL on Spark (so are
  '.5', '1e3', '0x10'): CAST(ROUND(TRY_CAST(s AS DECIMAL(38, 4))) AS BIGINT).
- regexp_replace replaces the first match on DuckDB and every match on Spark: always pass
  'g'. Keep to what RE2 and Java regexes share (no lookaround, no backreferences).
- list(x) / array_agg(x): DuckDB keeps NULLs and gives NULL over no rows, Spark drops NULLs,
  gives [] and ignores ORDER BY: COALESCE(list_sort(list(x) FILTER (WHERE x IS NOT NULL)), []).
- arg_max / arg_min(x, key): DuckDB skips rows whose x is NULL, Spark does not: add
  FILTER (WHERE x IS NOT NULL). first(x ORDER BY …) does not parse on Spark.
- l[n] raises on Spark past the end: CASE WHEN array_length(l) >= n THEN l[n] END.
  len(l) becomes LENGTH (strings only) on Spark: array_length. list_extract does not transpile.
- element_at(map, k) is a list on DuckDB: m[k].
- date_diff on timestamps counts boundaries on DuckDB and whole units on Spark, and months
  differ even on dates: date_diff('day', …) on DATEs only. dayofweek, isodow and dow differ:
  (date_diff('day', DATE '1900-01-01', d) % 7) + 1 is the ISO weekday on both. epoch and
  epoch_ms: not in the subset.
- hash() differs: md5 for stable keys. upper() of some letters (ß) differs: normalise with lower().
- Column types: timestamps in microseconds and no unsigned integers (Spark has neither).
  Types that differ but cast losslessly: ROW_NUMBER, length, year, // … are BIGINT on one
  engine and INT on the other; ROUND(decimal) precision; names and nullability of list
  elements; the name of the UTC zone on TIMESTAMPTZ results (Etc/UTC, UTC).
"""

from __future__ import annotations

import datetime as dt
import importlib
import string
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencdp.engine.base import Engine, ParquetFiles, Relation
from opencdp.engine.duckdb_engine import DuckDBEngine
from opencdp.engine.spark_engine import SparkEngine
from opencdp.errors import ConfigError, MissingDependencyError, QueryError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ts(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2025, 1, day, hour, tzinfo=dt.UTC)


MONEY = pa.decimal128(18, 4)
ORDERS = pa.table(
    {
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        "profile_id": ["p1", "p1", "p2", None, "p2", "p1"],
        "email": [" A@X.com ", "a@x.com", "b@y.org", None, "B@Y.ORG", "a@x.com"],
        "total": pa.array(
            [
                None if v is None else Decimal(v)
                for v in ("10.5", "2.25", None, "99999999999999.9999", "0.0001", "-3.5")
            ],
            MONEY,
        ),
        "qty": pa.array([1, 2, 3, None, 5, 2], pa.int32()),
        "created_at": pa.array(
            [_ts(1), _ts(31, 23), None, _ts(15), _ts(2, 5), _ts(31, 23)],
            pa.timestamp("us", tz="UTC"),
        ),
        "paid": [True, False, None, True, False, None],
        "tags": pa.array([["a", "b"], [], None, ["c"], ["a"], ["b"]], pa.list_(pa.string())),
        "attrs": pa.array(
            [[("k", "v")], [], None, [("x", "1"), ("y", "2")], [("k", "w")], [("k", None)]],
            pa.map_(pa.string(), pa.string()),
        ),
        "address": pa.array(
            [
                {"city": "Paris", "postcode": "75001"},
                None,
                {"city": None, "postcode": "1"},
                {"city": "Oslo", "postcode": None},
                {"city": "Rome", "postcode": "00100"},
                {"city": "Paris", "postcode": "75002"},
            ],
            pa.struct([("city", pa.string()), ("postcode", pa.string())]),
        ),
        "raw_amount": ["12.5", "x", None, "7", "1e3", " -2.5 "],
    }
)
PROFILES = pa.table({"profile_id": ["p1", "p3"], "name": ["Ann", "Cy"]})
STRINGS = pa.table(
    {"s": [" 7 ", "+3", "-0", ".5", "12.", "1,5", "0x10", "00012", "abc", "", "true", "f"]}
)
RELATIONS: dict[str, Relation] = {"orders": ORDERS, "profiles": PROFILES, "strings": STRINGS}

# id -> (query, whether its ORDER BY is part of what is compared)
AGREE: dict[str, tuple[str, bool]] = {
    "row_number": (
        """SELECT order_id, ROW_NUMBER() OVER (
               PARTITION BY profile_id ORDER BY created_at DESC NULLS LAST, order_id) AS rn
           FROM orders""",
        False,
    ),
    "dedup_by_subquery": (
        """SELECT order_id, profile_id FROM (
               SELECT *, ROW_NUMBER() OVER (
                   PARTITION BY profile_id ORDER BY created_at DESC NULLS LAST, order_id DESC
               ) AS rn
               FROM orders) AS ranked
           WHERE rn = 1""",
        False,
    ),
    "aggregates": (
        """SELECT profile_id, COUNT(*) AS n, COUNT(total) AS priced,
                  COUNT(DISTINCT email) AS emails, SUM(total) AS revenue,
                  CAST(SUM(total) AS DECIMAL(18, 4)) AS revenue_typed,
                  MIN(total) AS smallest, MAX(total) AS largest,
                  AVG(CAST(total AS DOUBLE)) AS mean, CAST(SUM(qty) AS BIGINT) AS items,
                  MIN(created_at) AS first_at, MAX(created_at) AS last_at, MAX(email) AS last_email
           FROM orders GROUP BY profile_id""",
        False,
    ),
    "aggregates_over_no_rows": (
        "SELECT COUNT(*) AS n, SUM(total) AS s, MAX(created_at) AS m FROM orders WHERE false",
        False,
    ),
    "boolean_aggregates": (
        """SELECT profile_id, bool_or(paid) AS any_paid, bool_and(paid) AS all_paid,
                  MAX(paid) AS max_paid, count_if(paid) AS paid_orders
           FROM orders GROUP BY ALL HAVING COUNT(*) > 1""",
        False,
    ),
    "latest_non_null_value": (
        """SELECT profile_id, arg_max(email, created_at) FILTER (WHERE email IS NOT NULL) AS e,
                  arg_min(order_id, created_at) FILTER (WHERE order_id IS NOT NULL) AS o
           FROM orders GROUP BY profile_id""",
        False,
    ),
    "string_agg": (
        """SELECT profile_id, string_agg(order_id, ',' ORDER BY order_id DESC) AS ids
           FROM orders GROUP BY profile_id""",
        False,
    ),
    "distinct": ("SELECT DISTINCT profile_id, email IS NULL AS no_email FROM orders", False),
    "left_join": (
        """SELECT o.order_id, p.name FROM orders o
           LEFT JOIN profiles p ON o.profile_id = p.profile_id""",
        False,
    ),
    "anti_join_not_exists": (
        """SELECT o.order_id FROM orders o WHERE NOT EXISTS (
               SELECT 1 FROM profiles p WHERE p.profile_id = o.profile_id)""",
        False,
    ),
    "anti_join_left_join": (
        """SELECT o.order_id FROM orders o LEFT JOIN profiles p USING (profile_id)
           WHERE p.profile_id IS NULL""",
        False,
    ),
    "union_all": (
        """SELECT profile_id, 'order' AS kind FROM orders
           UNION ALL SELECT profile_id, 'profile' AS kind FROM profiles""",
        False,
    ),
    "conditionals": (
        """SELECT order_id, COALESCE(profile_id, 'anonymous') AS p, ifnull(email, '') AS e,
                  nullif(qty, 2) AS q, if(paid, 'paid', 'open') AS state,
                  CASE WHEN qty > 2 THEN 'bulk' WHEN qty IS NULL THEN 'unknown' ELSE 'single'
                  END AS size, greatest(qty, 2) AS at_least_2, least(qty, 2) AS at_most_2,
                  profile_id IS DISTINCT FROM 'p1' AS other, profile_id IN ('p1', 'p3') AS known
           FROM orders""",
        False,
    ),
    "strings": (
        r"""SELECT order_id, lower(trim(email)) AS normalised, split_part(email, '@', 2) AS domain,
                  split_part(email, '@', 3) AS missing_part,
                  regexp_extract(email, '@([a-z]+)\.', 1) AS domain_name,
                  regexp_replace(email, '[^a-z]', '', 'g') AS letters,
                  regexp_matches(email, '^[a-z]+@') AS plain,
                  concat_ws('|', order_id, profile_id, email) AS key, concat(order_id, email) AS c,
                  order_id || profile_id AS piped, length(email) AS len,
                  replace(email, '.', '_') AS r, substr(email, 2, 3) AS sub,
                  left(order_id, 1) AS l, lpad(order_id, 4, '0') AS padded,
                  strpos(email, '@') AS at, starts_with(email, 'a') AS sw,
                  contains(email, 'x') AS has_x, email ILIKE '%X.COM%' AS on_x,
                  md5(concat_ws('|', 'tenant', order_id)) AS h, sha256(order_id) AS h2,
                  ltrim('  x') AS lt, rtrim('x  ') AS rt, lower('ÄÖÜ') AS umlauts
           FROM orders""",
        False,
    ),
    "time": (
        """SELECT order_id, date_trunc('month', created_at) AS month,
                  date_trunc('day', created_at) AS day, CAST(created_at AS DATE) AS d,
                  strftime(created_at, '%Y-%m-%d %H:%M') AS text,
                  created_at + INTERVAL 1 DAY AS next_day, year(created_at) AS y,
                  date_diff('day', CAST(created_at AS DATE), DATE '2025-03-01') AS days_left,
                  (date_diff('day', DATE '1900-01-01', CAST(created_at AS DATE)) % 7) + 1
                      AS iso_weekday
           FROM orders""",
        False,
    ),
    "try_cast": (
        """SELECT s, TRY_CAST(s AS DECIMAL(18, 4)) AS d, TRY_CAST(s AS DOUBLE) AS f,
                  TRY_CAST(s AS BOOLEAN) AS b,
                  CAST(ROUND(TRY_CAST(s AS DECIMAL(38, 4))) AS BIGINT) AS i
           FROM strings""",
        False,
    ),
    "try_cast_time": (
        """SELECT s, TRY_CAST(s AS TIMESTAMPTZ) AS ts, TRY_CAST(s AS DATE) AS d
           FROM (VALUES ('2025-01-15'), ('2025-01-15 10:11:12'), ('2025-01-15T10:11:12Z'),
                        ('2025-01-15T10:11:12.123456+02:00'), ('2025-13-01'), ('15/01/2025'))
                AS v(s)""",
        False,
    ),
    "decimal_arithmetic": (
        """SELECT order_id, CAST(CAST(total AS DECIMAL(38, 4)) * qty AS DECIMAL(38, 4)) AS line,
                  total + total AS twice, total - CAST(1 AS DECIMAL(18, 4)) AS less_one,
                  ROUND(total, 2) AS cents, CAST(ROUND(total) AS BIGINT) AS whole,
                  FLOOR(total) AS down, CEIL(total) AS up,
                  CAST(total AS DOUBLE) / 3 AS third, qty / NULLIF(qty - 2, 0) AS ratio,
                  qty // 2 AS halves, qty % 2 AS odd
           FROM orders""",
        False,
    ),
    "lists": (
        """SELECT order_id, list_contains(tags, 'a') AS has_a, array_length(tags) AS n,
                  CASE WHEN array_length(tags) >= 1 THEN tags[1] END AS first_tag
           FROM orders""",
        False,
    ),
    "list_aggregate": (
        """SELECT profile_id,
                  COALESCE(list_sort(list(email) FILTER (WHERE email IS NOT NULL)), []) AS emails
           FROM orders GROUP BY profile_id""",
        False,
    ),
    "unnest": ("SELECT order_id, unnest(tags) AS tag FROM orders", False),
    "maps_and_structs_pass_through": (
        "SELECT order_id, attrs, address, tags FROM orders",
        False,
    ),
    "map_and_struct_access": (
        """SELECT order_id, attrs['k'] AS k, address.city AS city,
                  {'city': address.city, 'qty': qty} AS packed,
                  struct_pack(email := email, paid := paid) AS packed2,
                  map_from_entries([('order', order_id)]) AS m
           FROM orders""",
        False,
    ),
    "star_exclude_and_cte": (
        """WITH latest AS (SELECT profile_id, MAX(created_at) AS at FROM orders GROUP BY ALL)
           SELECT o.* EXCLUDE (attrs, address, tags) FROM orders o
           JOIN latest l ON l.profile_id = o.profile_id AND o.created_at = l.at""",
        False,
    ),
    "order_by_nulls_default": ("SELECT order_id, qty FROM orders ORDER BY qty, order_id", True),
    "order_by_desc": ("SELECT order_id, qty FROM orders ORDER BY qty DESC, order_id", True),
    "order_by_nulls_first": (
        "SELECT order_id FROM orders ORDER BY profile_id NULLS FIRST, order_id",
        True,
    ),
    "order_by_desc_nulls_first": (
        "SELECT order_id FROM orders ORDER BY created_at DESC NULLS FIRST, order_id",
        True,
    ),
}

# id -> a query the engines answer differently; the module docstring says what to write instead.
DIFFER: dict[str, str] = {
    "unnamed_expression": "SELECT COUNT(*) FROM orders",
    "qualify_with_star": """SELECT * FROM orders
        QUALIFY ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY order_id) = 1""",
    "star_of_join_using": "SELECT o.* FROM orders o JOIN profiles p USING (profile_id)",
    "union_all_by_name": "SELECT order_id FROM orders UNION ALL BY NAME SELECT name FROM profiles",
    "avg_of_decimal": "SELECT AVG(total) AS mean FROM orders",
    "decimal_times_integer": "SELECT total * 2 AS doubled FROM orders",
    "decimal_division": "SELECT total / 3 AS third FROM orders",
    "division_by_zero": "SELECT qty / (qty - qty) AS q FROM orders",
    "decimal_to_integer": "SELECT CAST(total AS BIGINT) AS whole FROM orders",
    "string_to_integer": "SELECT s, TRY_CAST(s AS INTEGER) AS i FROM strings",
    "regexp_replace_first": "SELECT regexp_replace(email, '[^a-z]', '') AS e FROM orders",
    "list_keeps_nulls": "SELECT profile_id, list(email) AS e FROM orders GROUP BY profile_id",
    "arg_max_of_null": "SELECT arg_max(paid, created_at) AS p FROM orders",
    "first_ordered": "SELECT first(order_id ORDER BY created_at) AS f FROM orders",
    "index_past_the_end": "SELECT tags[1] AS first_tag FROM orders",
    "len_of_list": "SELECT len(tags) AS n FROM orders",
    "element_at_map": "SELECT element_at(attrs, 'k') AS k FROM orders",
    "date_diff_of_timestamps": """SELECT date_diff('day', created_at,
        TIMESTAMPTZ '2025-03-01 00:00:00+00') AS d FROM orders""",
    "date_diff_months": """SELECT date_diff('month', CAST(created_at AS DATE),
        DATE '2025-03-01') AS m FROM orders""",
    "dayofweek": "SELECT dayofweek(created_at) AS w FROM orders",
    "isodow": "SELECT isodow(created_at) AS w FROM orders",
    "epoch_ms": "SELECT epoch_ms(created_at) AS ms FROM orders",
    "hash": "SELECT hash(order_id) AS h FROM orders",
    "upper_sharp_s": "SELECT upper('straße') AS u",
}

REFUSED: dict[str, str] = {
    "bad_cast": "SELECT CAST(raw_amount AS DECIMAL(18, 4)) AS a FROM orders",
    "integer_overflow": "SELECT CAST(2147483647 AS INTEGER) + qty AS q FROM orders",
    "bigint_overflow": "SELECT CAST(9223372036854775807 AS BIGINT) + qty AS q FROM orders",
    "integer_division_by_zero": "SELECT qty // 0 AS q FROM orders",
    "decimal_out_of_range": "SELECT CAST(total * 10 AS DECIMAL(18, 4)) AS t FROM orders",
}


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[Engine]:
    with DuckDBEngine(workers=2) as engine:
        yield engine


def assert_same(
    duckdb_engine: Engine,
    spark_engine: Engine,
    sql: str,
    relations: dict[str, Relation] = RELATIONS,
    *,
    ordered: bool = False,
) -> pa.Table:
    """Both engines' answers to `sql` agree; returns DuckDB's."""
    expected = duckdb_engine.query(sql, relations)
    actual = spark_engine.query(sql, relations)
    assert actual.column_names == expected.column_names
    try:
        converted = actual.cast(expected.schema)  # a safe cast: never overflows or truncates
    except pa.ArrowException as e:
        raise AssertionError(f"Spark's types do not cast to DuckDB's: {e}") from e
    assert converted.to_pylist() == actual.to_pylist(), "Spark's types do not fit DuckDB's"
    expected_rows, actual_rows = expected.to_pylist(), converted.to_pylist()
    if not ordered:
        expected_rows.sort(key=repr)
        actual_rows.sort(key=repr)
    assert actual_rows == expected_rows
    return expected


@pytest.mark.parametrize(("sql", "ordered"), AGREE.values(), ids=AGREE.keys())
def test_engines_agree(
    duckdb_engine: Engine, spark_engine: Engine, sql: str, ordered: bool
) -> None:
    assert assert_same(duckdb_engine, spark_engine, sql, ordered=ordered).num_rows > 0


@pytest.mark.xfail(raises=(AssertionError, QueryError), strict=True, reason="outside the subset")
@pytest.mark.parametrize("sql", DIFFER.values(), ids=DIFFER.keys())
def test_outside_the_subset_engines_differ(
    duckdb_engine: Engine, spark_engine: Engine, sql: str
) -> None:
    assert_same(duckdb_engine, spark_engine, sql)


@pytest.mark.parametrize("sql", REFUSED.values(), ids=REFUSED.keys())
def test_both_engines_refuse(duckdb_engine: Engine, spark_engine: Engine, sql: str) -> None:
    for engine in (duckdb_engine, spark_engine):
        with pytest.raises(QueryError):
            engine.query(sql, RELATIONS)


def test_parquet_files_read_alike(
    duckdb_engine: Engine, spark_engine: Engine, tmp_path: Path
) -> None:
    paths = []
    for i, part in enumerate((ORDERS.slice(0, 2), ORDERS.slice(2, 3), ORDERS.slice(5))):
        path = tmp_path / f"part-{i}.parquet"
        pq.write_table(part, path)
        paths.append(str(path))
    files = ParquetFiles(tuple(paths), ORDERS.schema)
    result = assert_same(
        duckdb_engine,
        spark_engine,
        "SELECT o.*, p.name FROM orders o LEFT JOIN profiles p ON o.profile_id = p.profile_id",
        {"orders": files, "profiles": PROFILES},
    )
    assert result.num_rows == ORDERS.num_rows


def test_empty_parquet_files_are_an_empty_relation(
    duckdb_engine: Engine, spark_engine: Engine
) -> None:
    empty = {"orders": ParquetFiles((), ORDERS.schema)}
    rows = assert_same(duckdb_engine, spark_engine, "SELECT * FROM orders", empty)
    assert rows.num_rows == 0
    assert rows.column_names == ORDERS.column_names
    counted = assert_same(
        duckdb_engine, spark_engine, "SELECT COUNT(*) AS n, MAX(total) AS m FROM orders", empty
    )
    assert counted.to_pylist() == [{"n": 0, "m": None}]


@pytest.mark.parametrize("engine_name", ["duckdb_engine", "spark_engine"])
def test_map_keeps_order_on_both_engines(engine_name: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    letters = list(string.ascii_lowercase)
    assert engine.map(str.upper, letters) == [letter.upper() for letter in letters]
    assert engine.map(str.upper, []) == []


@pytest.mark.parametrize("engine_name", ["duckdb_engine", "spark_engine"])
def test_map_raises_the_functions_own_error(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    with pytest.raises(ValueError, match="invalid literal for int"):
        engine.map(int, ["1", "2", "three", "4"])


def test_spark_errors_name_the_query(spark_engine: Engine) -> None:
    with pytest.raises(QueryError, match="cannot translate"):
        spark_engine.query("SELEC order_id FROM orders", RELATIONS)
    with pytest.raises(QueryError) as caught:
        spark_engine.query("SELECT no_such_column FROM orders", RELATIONS)
    message = str(caught.value)
    assert "no_such_column" in message
    assert "the query, in Spark SQL" in message
    assert "hint:" in message


def test_spark_views_live_for_one_query(spark_engine: Engine) -> None:
    spark_engine.query("SELECT * FROM profiles", RELATIONS)
    with pytest.raises(QueryError, match="profiles"):
        spark_engine.query("SELECT * FROM profiles", {})


def test_values_survive_the_round_trip(duckdb_engine: Engine, spark_engine: Engine) -> None:
    # Extremes of the types stages keep: they must come back exactly.
    table = pa.table(
        {
            "money": pa.array([Decimal("99999999999999.9999"), Decimal("-0.0001")], MONEY),
            "at": pa.array(
                [dt.datetime(1900, 1, 1, tzinfo=dt.UTC), _ts(1).replace(microsecond=1)],
                pa.timestamp("us", tz="UTC"),
            ),
            "local_at": pa.array([dt.datetime(2025, 1, 1, 12), None], pa.timestamp("us")),
            "n": pa.array([2**63 - 1, -(2**63)], pa.int64()),
            "text": ["é👍", ""],
        }
    )
    result = assert_same(duckdb_engine, spark_engine, "SELECT * FROM t", {"t": table})
    assert result.cast(table.schema).equals(table)


def test_engines_share_spark_but_not_settings(spark_engine: Engine) -> None:
    lenient = SparkEngine("local[2]", {"spark.sql.ansi.enabled": "false"})
    sql = "SELECT CAST(raw_amount AS INTEGER) AS a FROM orders"
    assert None in lenient.query(sql, RELATIONS).column("a").to_pylist()
    with pytest.raises(QueryError):
        spark_engine.query(sql, RELATIONS)
    with pytest.raises(ConfigError, match="local"):
        SparkEngine("local[1]")
    with pytest.raises(ConfigError, match=r"spark\.driver\.memory"):
        SparkEngine("local[2]", {"spark.driver.memory": "1g"})


def test_without_pyspark_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "opencdp.engine.spark_engine")
    for name in ("py4j.protocol", "pyspark.errors", "pyspark.logger", "pyspark.sql"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="--extra spark"):
        importlib.import_module("opencdp.engine.spark_engine")


def test_tables_with_empty_chunks_read_alike(duckdb_engine: Engine, spark_engine: Engine) -> None:
    # concat_tables keeps empty chunks; PySpark alone would stop reading at the first one.
    empty, rows = pa.table({"x": pa.array([], pa.int64())}), pa.table({"x": [1, 2, 3]})
    table = pa.concat_tables([empty, empty, rows, empty, rows])
    for engine in (duckdb_engine, spark_engine):
        assert engine.query("SELECT sum(x) AS s FROM t", {"t": table}).to_pylist() == [{"s": 12}]
