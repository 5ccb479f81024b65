"""Mappings: how the records of a source stream become rows of a canonical table.

A mapping is data, not code: each canonical column is filled from one or more paths into
the raw line (the first non-null wins), with optional hints (a value translation, amounts
in minor units, a date format). Built-in mappings (transform/mappings/) and the ones a
tenant declares in opencdp.yaml are the same objects, read by the same code.

Paths: `a.b[0].c` into the record; `$` is the whole record; `_meta.x` reads the envelope;
`@.x` reads the current element of the mapping's `explode` array (order line items).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from opencdp.errors import ConfigError
from opencdp.transform.model import Table, table

Root = Literal["record", "meta", "item"]
Step = str | int

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Path:
    root: Root
    steps: tuple[Step, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Path:
        root: Root = "record"
        body = text.strip()
        if body == "$":
            return cls("record", (), text)
        if body.startswith("_meta."):
            root, body = "meta", body.removeprefix("_meta.")
        elif body.startswith("@."):
            root, body = "item", body.removeprefix("@.")
        elif body == "@":
            return cls("item", (), text)
        steps: list[Step] = []
        position = 0
        for match in _STEP.finditer(body):
            gap = body[position : match.start()]
            # A key follows a dot (or starts the path); an index follows directly.
            expected = ("." if position else "") if match[1] is not None else ""
            if gap != expected:
                break
            steps.append(match[1] if match[1] is not None else int(match[2]))
            position = match.end()
        if not steps or position != len(body):
            raise ConfigError(
                f"invalid field path {text!r}",
                hint="write paths like email, default_address.phone, variants[0].price, "
                "_meta.received_at or @.sku",
            )
        return cls(root, tuple(steps), text)

    def get(self, record: Any, meta: Mapping[str, Any], item: Any) -> Any:
        value = record if self.root == "record" else meta if self.root == "meta" else item
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return None
                value = value[step]
            elif isinstance(value, dict):
                value = value.get(step)
            else:
                return None
            if value is None:
                return None
        return value


@dataclass(frozen=True)
class Field:
    """How one canonical column is filled."""

    paths: tuple[Path, ...] = ()
    const: str | None = None
    # Source value (case-insensitive) -> ours; None: known, but no value of ours. The row
    # stage translates (transform/rows.py) and flags a value the map does not name.
    values: Mapping[str, str | None] | None = None
    minor_units: bool = False  # amounts: an integer count of the currency's minor unit
    date_format: str | None = None  # timestamps and dates: a strptime format
    ids: Mapping[str, Path] | None = None  # external_ids: provider name -> path


def F(  # noqa: N802 - reads like a constructor in mapping tables
    *paths: str,
    const: str | None = None,
    values: Mapping[str, str | None] | None = None,
    minor_units: bool = False,
    date_format: str | None = None,
    ids: Mapping[str, str] | None = None,
) -> Field:
    """A Field from path strings (the way mappings are written)."""
    return Field(
        paths=tuple(Path.parse(p) for p in paths),
        const=const,
        values={k.lower(): v for k, v in values.items()} if values is not None else None,
        minor_units=minor_units,
        date_format=date_format,
        ids={name: Path.parse(p) for name, p in ids.items()} if ids is not None else None,
    )


@dataclass(frozen=True)
class SourceMapping:
    """Rows of `table` from the records of `provider`'s `streams`."""

    table: str
    provider: str
    streams: tuple[str, ...]
    fields: Mapping[str, Field]
    explode: str | None = None  # a path: one row per element of this array
    require: tuple[str, ...] = ()  # paths: a record without them is no row of this table
    kinds: tuple[str, ...] = ()  # only lines of these kinds (tap, webhook, track); () = all
    name: str = ""
    _explode: Path | None = field(init=False, repr=False, compare=False)
    _require: tuple[Path, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the compiled paths are set once, here.
        object.__setattr__(self, "_explode", Path.parse(self.explode) if self.explode else None)
        object.__setattr__(self, "_require", tuple(Path.parse(p) for p in self.require))
        model = table(self.table)
        unknown = sorted(set(self.fields) - {c.name for c in model.mapped})
        if unknown:
            raise ConfigError(
                f"mapping {self.label} fills unknown {self.table} columns: {', '.join(unknown)}",
                hint=f"the columns are: {', '.join(c.name for c in model.mapped)}",
            )
        missing = [k for k in model.key if k != "provider" and k not in self.fields]
        if missing:
            raise ConfigError(
                f"mapping {self.label} does not fill the key of {self.table}: {', '.join(missing)}"
            )

    @property
    def label(self) -> str:
        return self.name or f"{self.provider}/{','.join(self.streams)} -> {self.table}"

    @property
    def model(self) -> Table:
        return table(self.table)

    def applies(self, provider: str, stream: str, kind: str) -> bool:
        """Whether lines of this provider, stream and kind are rows of this mapping;
        provider "*" and stream "*" match any."""
        return (
            self.provider in ("*", provider)
            and ("*" in self.streams or stream in self.streams)
            and (not self.kinds or kind in self.kinds)
        )


Getter = Callable[[Any, Mapping[str, Any], Any], Any]


class Extraction:
    """The mapped columns of one table, column by column, as the row stage reads them.

    This is the hot loop of the transform (every field of every line), so each column's
    field is compiled once into a getter specialised for its shape.
    """

    def __init__(self, mapping: SourceMapping) -> None:
        self.mapping = mapping
        self.columns: dict[str, list[Any]] = {name: [] for name in mapping.fields}
        self.lines: list[int] = []
        self.received: list[Any] = []
        model = mapping.model
        self._plan = [
            (self.columns[name], _column_getter(spec, model.kind(name) == "json"))
            for name, spec in mapping.fields.items()
        ]
        self._require = [_path_getter(p) for p in mapping._require]
        self._explode = _path_getter(mapping._explode) if mapping._explode else None

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int, meta: Mapping[str, Any], record: Any) -> None:
        for required in self._require:
            if required(record, meta, None) is None:
                return
        items = [None] if self._explode is None else self._explode(record, meta, None)
        if not isinstance(items, list):
            return
        received = meta.get("received_at")
        for item in items:
            for values, get in self._plan:
                values.append(get(record, meta, item))
            self.lines.append(line)
            self.received.append(received)


def _path_getter(path: Path) -> Getter:
    """`path.get`, or a faster equivalent for the common one- and two-key record paths
    and for envelope fields."""
    steps = path.steps
    if path.root == "meta" and len(steps) == 1 and isinstance(steps[0], str):
        name = steps[0]
        return lambda record, meta, item: meta.get(name)
    if path.root != "record" or not all(isinstance(s, str) for s in steps):
        return path.get
    if len(steps) == 1:
        key = steps[0]
        return lambda record, meta, item: record.get(key)
    if len(steps) == 2:
        first, second = steps

        def two(record: Any, meta: Any, item: Any) -> Any:
            inner = record.get(first)
            return inner.get(second) if type(inner) is dict else None

        return two
    return path.get


def _column_getter(spec: Field, json: bool) -> Getter:
    """The column's value as the row stage reads it: text (parsed later by the column's
    kind), JSON text for JSON columns, a dict for external ids."""
    if spec.const is not None:
        const = spec.const
        return lambda record, meta, item: const
    if spec.ids is not None:
        ids = [(name, _path_getter(p)) for name, p in spec.ids.items()]

        def external_ids(record: Any, meta: Any, item: Any) -> Any:
            found = ((name, get(record, meta, item)) for name, get in ids)
            return {name: _scalar_text(v) for name, v in found if v is not None and v != ""}

        return external_ids
    getters = [_path_getter(p) for p in spec.paths]
    if len(getters) == 1 and not json:
        only = getters[0]

        def single(record: Any, meta: Any, item: Any) -> Any:
            value = only(record, meta, item)
            if value is None or type(value) is str:
                return value or None
            return _scalar_text(value)

        return single

    def first(record: Any, meta: Any, item: Any) -> Any:
        for get in getters:
            value = get(record, meta, item)
            if value is not None and value != "":
                break
        else:
            return None
        if json:
            return orjson.dumps(value).decode()
        return _scalar_text(value)

    return first


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()
