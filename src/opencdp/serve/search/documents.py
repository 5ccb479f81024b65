"""Text analysis: a profile into the terms the index holds, a typed word into the same terms.

All analysis happens here, in Python, and the index stores its terms verbatim (Tantivy's
`raw` tokenizer): the words of a name in a profile and the words of a query go through one
function, so they always agree, and no process has to register tokenizers before it opens
the index.

- Words (names, company, places) are folded: lower case, accents and ligatures removed
  (José → jose, Łódź → lodz, Straße → strasse), split on anything but letters and digits.
  A name's words are also kept as their sorted letters, so that a transposed word ("Jhon")
  ranks its original ("John") above other words one edit away ("Jon").
- An email is kept whole, trimmed and lower-cased (the pipeline's own form): an address
  with an accent is a different address, so it is not folded.
- A phone is kept in E.164, and its digits reversed (+14155550100 → 00105551414), so that
  "the last digits" is a prefix query.
- Filter values are folded whole (a city of two words stays one term); postcodes lose their
  spaces, `identified` is "true" or "false".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# Field names of the index.
PROFILE_ID = "profile_id"
NAME = "name"  # words of first, last and full name
NAME_LETTERS = "name_letters"  # the letters of each name word, sorted: "john" -> "hjno"
EMAIL = "email"  # the whole address
PHONE = "phone"  # E.164
PHONE_SUFFIX = "phone_rev"  # the phone's digits, reversed
TEXT = "text"  # words of company, city, region and postcode
IDS = "ids"  # the profile id and the external ids, folded whole

# Trait filters: filter name -> the profile column it reads. Each is indexed whole in a
# field of the same name with a "f_" prefix.
FILTERS: dict[str, str] = {
    "country": "country",
    "region": "region",
    "city": "city",
    "postcode": "postcode",
    "rfm_segment": "rfm_segment",
    "preferred_channel": "preferred_channel",
    "sources": "sources",  # a list: a profile matches when any of its sources does
    "identified": "identified",
}
TEXT_FIELDS = (PROFILE_ID, NAME, NAME_LETTERS, EMAIL, PHONE, PHONE_SUFFIX, TEXT, IDS)

MAX_WORD = 64  # longer "words" are not words: left out of the index and of queries
MIN_LETTERS = 3  # shorter words have too many anagrams for their letters to mean anything
_NAME_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "full_name")
_TEXT_COLUMNS: tuple[str, ...] = ("company", "city", "region", "postcode")
# Letters that NFKD does not decompose into a base letter and a mark.
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "\u0131": "i",
     "ħ": "h", "ŧ": "t", "ŋ": "n", "ĸ": "k"}
)  # fmt: skip
_NOT_WORD = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")
_NOT_DIGIT = r"[^0-9]"


def filter_field(name: str) -> str:
    """The index field of trait filter `name`."""
    return f"f_{name}"


def fold(text: str) -> str:
    """Lower case without accents: "José" → "jose", "Straße" → "strasse"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold()).translate(_LETTERS)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The folded words of `text`: "O'Brien-Núñez" → ["o", "brien", "nunez"]."""
    return [w for w in _NOT_WORD.split(fold(text)) if w and len(w) <= MAX_WORD]


def letters(word: str) -> str:
    """The letters of a word in order: a transposition typo has the same ("jhon", "john")."""
    return "".join(sorted(word))


def keyword(text: str, *, compact: bool = False) -> str:
    """A filter value as indexed: folded, spaces collapsed (removed with `compact`)."""
    return _SPACES.sub("" if compact else " ", fold(text)).strip()


def email_term(text: str) -> str:
    return text.strip().lower()


def phone_suffix_term(digits: str) -> str:
    """What the last digits of a phone are a prefix of."""
    return digits[::-1]


def filter_keyword(name: str, value: str) -> str:
    """A filter value of trait `name` as indexed."""
    return keyword(value, compact=name == "postcode")


def profile_documents(table: pa.Table, *, batch_rows: int = 65_536) -> Iterator[dict[str, Any]]:
    """One dict per profile of `table` (rows of the curated `profiles` table): index field
    -> a term or a list of terms, only fields with a value. Columns the table lacks count
    as null; work is done once per distinct value of a column."""
    for batch in table.to_batches(max_chunksize=batch_rows):
        yield from _batch_documents(batch)


def _batch_documents(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    rows = batch.num_rows
    ids = _strings(batch, PROFILE_ID, rows).to_pylist()
    names = _per_distinct(_joined(batch, _NAME_COLUMNS, rows), _name_terms)
    texts = _per_distinct(_joined(batch, _TEXT_COLUMNS, rows), _text_terms)
    emails = pc.utf8_lower(pc.utf8_trim_whitespace(_strings(batch, "email", rows))).to_pylist()
    phone = _strings(batch, "phone", rows)
    phones = phone.to_pylist()
    suffixes = pc.utf8_reverse(pc.replace_substring_regex(phone, _NOT_DIGIT, "")).to_pylist()
    external = _external_ids(batch, rows)
    filters = [
        (filter_field(name), _filter_values(batch, name, column, rows))
        for name, column in FILTERS.items()
    ]
    for i in range(rows):
        doc: dict[str, Any] = {PROFILE_ID: ids[i], IDS: [fold(ids[i]), *external[i]]}
        name_terms = names[i]
        if name_terms is not None and name_terms[0]:
            doc[NAME] = name_terms[0]
            if name_terms[1]:
                doc[NAME_LETTERS] = name_terms[1]
        if texts[i]:
            doc[TEXT] = texts[i]
        if emails[i]:
            doc[EMAIL] = emails[i]
        if phones[i]:
            doc[PHONE] = phones[i]
        if suffixes[i]:
            doc[PHONE_SUFFIX] = suffixes[i]
        for field, values in filters:
            if values[i]:
                doc[field] = values[i]
        yield doc


def _strings(batch: pa.RecordBatch, name: str, rows: int) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return pa.nulls(rows, pa.string())
    column = batch.column(index)
    return column if column.type == pa.string() else pc.cast(column, pa.string())


def _joined(batch: pa.RecordBatch, columns: tuple[str, ...], rows: int) -> pa.Array:
    """The columns' values of each row in one string (nulls as empty strings)."""
    parts = [pc.fill_null(_strings(batch, c, rows), "") for c in columns]
    return pc.binary_join_element_wise(*parts, " ")


def _per_distinct(column: pa.Array, function: Callable[[str], Any]) -> list[Any]:
    """`function` of each row's value, called once per distinct value (None for null)."""
    encoded = pc.dictionary_encode(column)
    results = [function(v) for v in encoded.dictionary.to_pylist()]
    return [None if k is None else results[k] for k in encoded.indices.to_pylist()]


def _name_terms(text: str) -> tuple[list[str], list[str]]:
    terms = list(dict.fromkeys(words(text)))
    return terms, list(dict.fromkeys(letters(w) for w in terms if len(w) >= MIN_LETTERS))


def _text_terms(text: str) -> list[str]:
    return list(dict.fromkeys(words(text)))


def _external_ids(batch: pa.RecordBatch, rows: int) -> list[list[str]]:
    index = batch.schema.get_field_index("external_ids")
    if index < 0 or not pa.types.is_map(batch.column(index).type):
        return [[]] * rows
    values = batch.column(index).to_pylist()
    return [[fold(v) for _, v in pairs if v] if pairs else [] for pairs in values]


def _filter_values(batch: pa.RecordBatch, name: str, column: str, rows: int) -> list[Any]:
    index = batch.schema.get_field_index(column)
    values = batch.column(index) if index >= 0 else pa.nulls(rows, pa.string())
    if pa.types.is_boolean(values.type):
        return [None if v is None else str(v).lower() for v in values.to_pylist()]
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        cache: dict[str, str] = {}
        return [
            list(
                dict.fromkeys(
                    cache.get(v) or cache.setdefault(v, filter_keyword(name, v)) for v in items if v
                )
            )
            if items
            else None
            for items in values.to_pylist()
        ]
    return _per_distinct(pc.cast(values, pa.string()), lambda v: filter_keyword(name, v))
