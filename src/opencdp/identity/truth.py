"""The generator's ground truth, turned into the input of `accuracy.score`.

`read_truth` reads ground_truth.csv; `record_truth` names each customer record it knows the
way the identity graph does (`c:{provider}:{source_id}`) and gives its person; `assignments`
adds the profile that resolution gave each of those records.

    truth = record_truth(read_truth(folder / "ground_truth.csv"), events)
    table, unassigned = assignments(truth, customers)
    accuracy = score(table)
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from opencdp.errors import ConfigError, NotFoundError
from opencdp.identity.model import RECORD_PREFIX

TRUTH_COLUMNS = ("source", "stream", "record_id", "person_id")
EVENT_COLUMNS = ("event_id", "type", "user_id", "provider")
CUSTOMER_COLUMNS = ("provider", "source_id", "profile_id")

# Ground-truth streams whose records are customer records, and the provider of their
# curated rows (the record_id is the row's source_id).
CUSTOMER_STREAMS = {
    ("crm", "contacts"): "crm",
    ("shopify", "customers"): "shopify",
    ("stripe", "customers"): "stripe",
}
# The ground truth lists every Segment message under this source, by messageId; only the
# identify calls make customer records (keyed by their userId).
EVENTS_SOURCE = "events"
IDENTIFY = "identify"

_REGENERATE = "generate the tenant again with `opencdp generate`, which writes ground_truth.csv"


def read_truth(path: Path) -> pa.Table:
    """Read ground_truth.csv, every column as a string (an empty person_id stays "")."""
    if not path.is_file():
        raise NotFoundError(f"no ground truth at {path}", hint=_REGENERATE)
    header = _header(path)
    missing = [c for c in TRUTH_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{path} is not a ground truth: it lacks the columns {', '.join(missing)}",
            hint=f"a ground truth has the columns {', '.join(TRUTH_COLUMNS)}; {_REGENERATE}",
        )
    strings = pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    try:
        return pacsv.read_csv(path, convert_options=strings)
    except (OSError, pa.ArrowInvalid) as e:
        raise ConfigError(f"cannot read the ground truth {path}: {e}", hint=_REGENERATE) from e


def _header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read the ground truth {path}: {e}", hint=_REGENERATE) from e


def record_truth(truth: pa.Table, events: pa.Table) -> pa.Table:
    """(record, person) for every customer record of a person in `truth`.

    CRM contacts and Shopify and Stripe customers are named by their record_id. A Segment
    user is named by the userId of its identify calls, looked up in `events` (the curated
    table: event_id, type, user_id, provider); its person is the one most of those calls
    belong to (see `user_conflicts` for how often they disagree)."""
    people = _person_rows(truth)
    parts = [
        _stream_records(people, source, stream, provider)
        for (source, stream), provider in CUSTOMER_STREAMS.items()
    ]
    users = _user_votes(people, events)
    # The most frequent person of each user, the smaller person id on a tie: sorted so,
    # an ordered group_by takes the first.
    users = users.sort_by(
        [("record", "ascending"), ("votes", "descending"), ("person", "ascending")]
    )
    users = users.group_by("record", use_threads=False).aggregate([("person", "first")])
    parts.append(users.rename_columns({"person_first": "person"}).select(["record", "person"]))
    return pa.concat_tables(parts)


def user_conflicts(truth: pa.Table, events: pa.Table) -> int:
    """How many Segment users' identify calls belong to more than one person in `truth`."""
    users = _user_votes(_person_rows(truth), events)
    per_user = users.group_by("record").aggregate([([], "count_all")])
    return int(pc.sum(pc.greater(per_user["count_all"], 1)).as_py() or 0)


def assignments(record_truth: pa.Table, customers: pa.Table) -> tuple[pa.Table, int]:
    """`record_truth` with the profile_id of each record's curated row: the input of
    `accuracy.score`, sorted by record. A record without a curated row or without a
    profile_id keeps a null profile (`score` counts it as a profile of its own); their
    number is returned with the table."""
    _require(record_truth, ("record", "person"), "the record truth")
    _require(customers, CUSTOMER_COLUMNS, "customers")
    profiles = pa.table(
        {
            "record": _node(customers["provider"], customers["source_id"]),
            "profile": customers["profile_id"].cast(pa.string()),
        }
    )
    if len(pc.unique(profiles["record"])) != profiles.num_rows:
        raise ValueError("customers must have one row per (provider, source_id)")
    joined = record_truth.select(["record", "person"]).join(
        profiles, keys="record", join_type="left outer"
    )
    joined = joined.sort_by("record")
    return joined, joined["profile"].null_count


def _person_rows(truth: pa.Table) -> pa.Table:
    """The rows of `truth` about a person (not products, accounts)."""
    _require(truth, TRUTH_COLUMNS, "the ground truth")
    person = truth["person_id"].cast(pa.string())
    return truth.filter(pc.and_(pc.is_valid(person), pc.not_equal(person, "")))


def _stream_records(people: pa.Table, source: str, stream: str, provider: str) -> pa.Table:
    rows = people.filter(
        pc.and_(pc.equal(people["source"], source), pc.equal(people["stream"], stream))
    )
    provider_column = pa.repeat(provider, rows.num_rows)
    return pa.table(
        {
            "record": _node(provider_column, rows["record_id"]),
            "person": rows["person_id"].cast(pa.string()),
        }
    )


def _user_votes(people: pa.Table, events: pa.Table) -> pa.Table:
    """(record, person, votes): the identify calls of each Segment user node, by person."""
    _require(events, EVENT_COLUMNS, "events")
    messages = people.filter(pc.equal(people["source"], EVENTS_SOURCE))
    messages = pa.table(
        {
            "event_id": messages["record_id"].cast(pa.string()),
            "person": messages["person_id"].cast(pa.string()),
        }
    )
    kind, user = events["type"].cast(pa.string()), events["user_id"].cast(pa.string())
    identifies = events.filter(pc.and_(pc.equal(kind, IDENTIFY), pc.is_valid(user)))
    identifies = pa.table(
        {
            "event_id": identifies["event_id"].cast(pa.string()),
            "record": _node(identifies["provider"], identifies["user_id"]),
        }
    )
    joined = messages.join(identifies, keys="event_id", join_type="inner")
    votes = joined.group_by(["record", "person"]).aggregate([([], "count_all")])
    return votes.rename_columns({"count_all": "votes"})


def _node(
    provider: pa.ChunkedArray | pa.Array, source_id: pa.ChunkedArray | pa.Array
) -> pa.ChunkedArray | pa.Array:
    """The identity graph's name of a customer record: c:{provider}:{source_id}."""
    return pc.binary_join_element_wise(
        RECORD_PREFIX, provider.cast(pa.string()), source_id.cast(pa.string()), ":"
    )


def _require(table: pa.Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(
            f"{what} lacks the columns {', '.join(missing)} (it needs {', '.join(columns)})"
        )
