"""What a search asks, decided without the index: user text and filters → a `SearchPlan`.

The text is never handed to a query parser: it is cut into words, each analysed as the
profiles were (documents.py), and each word becomes a clause whose alternatives are exact,
prefix and fuzzy term matches on the fields it may be. Every alternative has a fixed score
and a clause counts its best one, so the ranking reads from the table below: an exact name
beats a misspelled one, an exact email or phone beats everything.

- A query that is only a phone number written any way ("+1 (415) 555-0100", "4155550100")
  is normalized as the pipeline does (phonenumbers, the tenant's default country) and
  matched exactly; its digits also match as the end of a phone ("0100"; a national number
  of another country without its trunk 0: "06 55 99 99 49" ends +33655999949), a postcode
  or an id.
- A word with an @ is an email: exact, prefix ("jsmith@exa") or fuzzy (two edits).
- Any other word matches names exactly or fuzzily (no edit up to 2 letters, one up to 5,
  two beyond; nearer words, and the same letters in another order, rank higher), the last
  word also as a prefix; a word also matches company and places exactly, an email by its
  first letters ("jsmi"), an id whole, and the end of a phone when it is digits.
- With up to two words every word must match; with more, all but one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from opencdp.serve.search.base import SearchError
from opencdp.serve.search.documents import (
    EMAIL,
    FILTERS,
    IDS,
    MAX_WORD,
    MIN_LETTERS,
    NAME,
    NAME_LETTERS,
    PHONE,
    PHONE_SUFFIX,
    TEXT,
    email_term,
    filter_field,
    filter_keyword,
    fold,
    letters,
    phone_suffix_term,
    words,
)
from opencdp.transform.single import normalize_phone

MAX_QUERY_CHARS = 256  # the rest of a longer query is ignored
MAX_WORDS = 8
MAX_LIMIT = 1000
MAX_OFFSET = 10_000
MAX_FILTER_CHARS = 200
MIN_PHONE_DIGITS = 3  # fewer digits are too common to be worth a phone search
MIN_NATIONAL_DIGITS = 6  # a number after its trunk 0 is matched as a phone's end from here

# Scores of the alternatives (a clause scores its best one; a profile, the sum).
EXACT_EMAIL = 10.0
EXACT_PHONE = 10.0
EXACT_ID = 8.0
EMAIL_PREFIX = 6.0  # for a word with an @
PHONE_SUFFIX_MATCH = 6.0  # for a query that is only digits
POSTCODE = 5.0  # for a query that is only digits
FUZZY_EMAIL = (0.0, 4.5, 4.0)  # by edit distance
EXACT_NAME = 3.0
NAME_PREFIX = 2.0
WORD_EMAIL_PREFIX = 2.0  # a word without @ that starts an email
WORD_PHONE_SUFFIX = 2.0  # a word of digits among other words
TRANSPOSED_NAME = 1.75  # the letters of a name word, in another order
FUZZY_NAME = (0.0, 1.5, 1.0)  # by edit distance
EXACT_TEXT = 1.0
TEXT_PREFIX = 0.5

_PHONE_LIKE = re.compile(r"^\+?[0-9\s().\-/]+$")
_EMAIL_TRIM = " \t\"'<>()[],;:"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_BOOLEAN = dict.fromkeys(_TRUE, "true") | dict.fromkeys(_FALSE, "false")


@dataclass(frozen=True, slots=True)
class Match:
    """One term match: `text` exactly, as a prefix, or within `distance` edits."""

    field: str
    text: str
    kind: Literal["exact", "prefix", "fuzzy"]
    score: float
    distance: int = 0


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every clause matches (the words of "jean-luc"); scores add up."""

    clauses: tuple[AnyOf, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """One of the alternatives matches; the clause scores its best."""

    alternatives: tuple[Match | AllOf, ...]


@dataclass(frozen=True, slots=True)
class TermFilter:
    """The field holds one of `values` (exactly, as analysed)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    clauses: tuple[AnyOf, ...]
    required: int  # how many clauses a profile must match
    filters: tuple[TermFilter, ...]

    @property
    def matches_nothing(self) -> bool:
        """No text and no filter: the search finds nothing (it is not a listing)."""
        return not self.clauses and not self.filters


def check_paging(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(
            f"limit must be between 1 and {MAX_LIMIT}, got {limit}", hint="e.g. limit=20"
        )
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchError(
            f"offset must be between 0 and {MAX_OFFSET}, got {offset}",
            hint="narrow the search with more words or filters instead of paging further",
        )


def plan_page(
    q: str, filters: Mapping[str, str] | None, *, limit: int, offset: int, default_country: str
) -> SearchPlan:
    """The plan of one page of results: the paging is checked first, then `plan_search`."""
    check_paging(limit, offset)
    return plan_search(q, filters or {}, default_country=default_country)


def plan_search(q: str, filters: Mapping[str, str], *, default_country: str) -> SearchPlan:
    """The plan for text `q` and trait `filters`; bad filters raise `SearchError`. Any text
    is accepted: what is not a word is ignored."""
    terms = plan_filters(filters)
    text = _clean(q)
    if _is_phone(text):
        clauses: tuple[AnyOf, ...] = (_phone_clause(text, default_country),)
    else:
        clauses = _word_clauses(text.split()[:MAX_WORDS])
    required = len(clauses) if len(clauses) <= 2 else len(clauses) - 1
    return SearchPlan(clauses, required, terms)


def plan_filters(filters: Mapping[str, str]) -> tuple[TermFilter, ...]:
    planned = []
    for name, value in filters.items():
        if name not in FILTERS:
            raise SearchError(
                f"unknown search filter {name!r}",
                hint=f"filter on one of: {', '.join(FILTERS)}",
            )
        if not isinstance(value, str) or not value.strip():
            raise SearchError(f"search filter {name!r} needs a value", hint=f"e.g. {name}=...")
        if len(value) > MAX_FILTER_CHARS:
            raise SearchError(
                f"the value of search filter {name!r} is longer than {MAX_FILTER_CHARS} chars"
            )
        planned.append(TermFilter(filter_field(name), _filter_values(name, value)))
    return tuple(planned)


def _filter_values(name: str, value: str) -> tuple[str, ...]:
    if name == "identified":
        flag = _BOOLEAN.get(value.strip().lower())
        if flag is None:
            raise SearchError(
                f"search filter 'identified' is true or false, got {value!r}",
                hint="identified=true or identified=false",
            )
        return (flag,)
    if name == "sources":  # any of a comma-separated list
        values = tuple(dict.fromkeys(filter_keyword(name, v) for v in value.split(",")))
        if not any(values):
            raise SearchError("search filter 'sources' needs a source", hint="e.g. sources=shopify")
        return tuple(v for v in values if v)
    if name == "country":
        return (_country(value),)
    return (filter_keyword(name, value),)


def _country(value: str) -> str:
    """An ISO alpha-2 code for a country written any way the pipeline understands
    ("France", "fr", "FRA"); the value itself, folded, when it knows none."""
    import pyarrow as pa

    from opencdp.transform.normalize import normalize_countries

    code = normalize_countries(pa.array([value], pa.string()))[0][0].as_py()
    return filter_keyword("country", code or value)


def _clean(q: str) -> str:
    """The query's first MAX_QUERY_CHARS characters, compatibility-normalized (full-width
    letters are letters), control and format characters turned into spaces."""
    text = unicodedata.normalize("NFKC", q[: MAX_QUERY_CHARS * 2])[:MAX_QUERY_CHARS]
    return "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text).strip()


def _is_phone(text: str) -> bool:
    return bool(_PHONE_LIKE.fullmatch(text)) and _digits(text) >= MIN_PHONE_DIGITS


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _phone_clause(text: str, default_country: str) -> AnyOf:
    digits = "".join(ch for ch in text if ch.isdigit())
    alternatives: list[Match | AllOf] = []
    e164 = normalize_phone(text, default_country)
    if e164:
        alternatives.append(Match(PHONE, e164, "exact", EXACT_PHONE))
    alternatives += [
        Match(PHONE_SUFFIX, phone_suffix_term(digits), "prefix", PHONE_SUFFIX_MATCH),
        Match(IDS, digits, "exact", EXACT_ID),
    ]
    national = digits.lstrip("0")  # a national number of another country: 06..., 020...
    if national != digits and len(national) >= MIN_NATIONAL_DIGITS:
        suffix = phone_suffix_term(national)
        alternatives.append(Match(PHONE_SUFFIX, suffix, "prefix", PHONE_SUFFIX_MATCH))
    compact = "".join(text.split())
    if compact.isdigit():
        alternatives.append(Match(TEXT, compact, "exact", POSTCODE))
    return AnyOf(tuple(alternatives))


def _word_clauses(raw_words: list[str]) -> tuple[AnyOf, ...]:
    clauses = []
    last = len(raw_words) - 1
    for i, word in enumerate(raw_words):
        clause = _email_clause(word) if "@" in word else _word_clause(word, last=i == last)
        if clause is not None:
            clauses.append(clause)
    return tuple(clauses)


def _email_clause(word: str) -> AnyOf | None:
    email = email_term(word.strip(_EMAIL_TRIM))
    if not email.strip("@") or len(email) > 254:
        return None
    alternatives: list[Match | AllOf] = [
        Match(EMAIL, email, "exact", EXACT_EMAIL),
        Match(IDS, fold(email), "exact", EXACT_ID),
    ]
    if len(email) >= 3:
        alternatives.append(Match(EMAIL, email, "prefix", EMAIL_PREFIX))
    if len(email) <= MAX_WORD:
        alternatives += _fuzzy(EMAIL, email, FUZZY_EMAIL)
    return AnyOf(tuple(alternatives))


def _word_clause(word: str, *, last: bool) -> AnyOf | None:
    parts = words(word)
    whole = fold(word).strip(_EMAIL_TRIM + ".!?-_/\\")
    extra: list[Match | AllOf] = []
    if whole and len(whole) <= MAX_WORD:
        extra.append(Match(IDS, whole, "exact", EXACT_ID))
        if len(whole) >= 3:
            extra.append(Match(EMAIL, email_term(whole), "prefix", WORD_EMAIL_PREFIX))
    if not parts:
        return AnyOf(tuple(extra)) if extra else None
    if len(parts) == 1:
        return AnyOf((*_part_alternatives(parts[0], last=last), *extra))
    inner = tuple(
        AnyOf(_part_alternatives(p, last=last and k == len(parts) - 1)) for k, p in enumerate(parts)
    )
    return AnyOf((AllOf(inner), *extra))


def _part_alternatives(part: str, *, last: bool) -> tuple[Match, ...]:
    alternatives = [
        Match(NAME, part, "exact", EXACT_NAME),
        Match(TEXT, part, "exact", EXACT_TEXT),
    ]
    alternatives += _fuzzy(NAME, part, FUZZY_NAME)
    if len(part) >= MIN_LETTERS:
        alternatives.append(Match(NAME_LETTERS, letters(part), "exact", TRANSPOSED_NAME))
    if last or len(part) == 1:  # the word being typed, or an initial
        alternatives.append(Match(NAME, part, "prefix", NAME_PREFIX))
        if last and len(part) >= 2:
            alternatives.append(Match(TEXT, part, "prefix", TEXT_PREFIX))
    if part.isdigit() and len(part) >= MIN_PHONE_DIGITS:
        alternatives.append(
            Match(PHONE_SUFFIX, phone_suffix_term(part), "prefix", WORD_PHONE_SUFFIX)
        )
    return tuple(alternatives)


def _fuzzy(field: str, term: str, scores: tuple[float, ...]) -> list[Match]:
    """Matches within one edit, and (for long terms) within two: a fuzzy match scores the
    same whatever its distance, so the nearer words get an alternative of their own."""
    return [Match(field, term, "fuzzy", scores[d], d) for d in range(1, _distance(term) + 1)]


def _distance(term: str) -> int:
    """Edits a misspelling may have: none up to 2 characters, one up to 5, then two."""
    if len(term) <= 2:
        return 0
    return 1 if len(term) <= 5 else 2
