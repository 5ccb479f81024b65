"""Normalization: text → canonical values (emails, E.164 phones, names, ISO-3166 countries,
ISO-4217 currencies, exact amounts, UTC instants and dates).

Every function takes and returns pyarrow arrays of one length and never mutates its input.
What cannot be normalized becomes null and is flagged in the `invalid` array that comes
with it; a flag is null where no value was given (null or blank), so "missing" is never
"invalid". Work is vectorized with pyarrow.compute; what needs Python runs once per distinct
value.

Phone numbers follow the `phonenumbers` library (Google's libphonenumber) exactly. Its
Python parser costs about 0.1 ms a number, too slow for millions of distinct numbers, so
numbers written with digits, spaces, ( ) . / - and a leading + are parsed here with the
library's own metadata, compiled to RE2 patterns and applied to whole arrays, step for step
as `phonenumbers.parse`, `is_valid_number` and `number_type` do. The rest (letters,
extensions, a national number read in a region whose national prefix needs a transform
rule, such as AR, BR or JP, non-geographic codes) goes through `phonenumbers` itself,
cached per (text, country) for the life of the process.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, NamedTuple

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pycountry
from phonenumbers import PhoneMetadata, PhoneNumberDesc, PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from opencdp.transform.clean import clean_text

_NULL_STRING = pa.scalar(None, pa.string())
_NULL_BOOL = pa.scalar(None, pa.bool_())


def _text(values: pa.Array) -> pa.StringArray:
    """As string, trimmed, blank → null."""
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    return pc.if_else(pc.equal(text, ""), _NULL_STRING, text)


def _invalid(given: pa.Array, result: pa.Array) -> pa.BooleanArray:
    """True where a value was given and none came out, null where none was given."""
    return pc.if_else(pc.is_null(given), _NULL_BOOL, pc.is_null(result))


def per_distinct(text: pa.Array, function: Callable[[str], Any], type_: pa.DataType) -> pa.Array:
    """`function` applied once per distinct non-null string of `text`, its results of type
    `type_` spread back over the rows (null where `text` is null)."""
    encoded = pc.dictionary_encode(text)
    results = pa.array([function(v) for v in encoded.dictionary.to_pylist()], type_)
    return results.take(encoded.indices)


def _range(size: int) -> pa.Int64Array:
    """0, 1, ..., size - 1."""
    return pc.indices_nonzero(pc.fill_null(pa.nulls(size, pa.bool_()), True)).cast(pa.int64())


def _reorder(positions: list[pa.Array], columns: list[list[pa.Array]], size: int) -> list[pa.Array]:
    """Columns computed in pieces (each piece with the positions it covers) put back in
    position order over `size` rows, null where no piece covers a position."""
    covered = pa.concat_arrays([p.cast(pa.int64()) for p in positions]) if positions else None
    if covered is None or len(covered) == 0:
        return [pa.nulls(size, c[0].type if c else pa.string()) for c in columns]
    missing = pa.array([], pa.int64())
    if len(covered) < size:
        missing = pc.indices_nonzero(pc.invert(pc.is_in(_range(size), value_set=covered)))
        missing = missing.cast(pa.int64())
    order = pc.sort_indices(pa.concat_arrays([covered, missing]))
    return [
        pa.concat_arrays([*pieces, pa.nulls(len(missing), pieces[0].type)]).take(order)
        for pieces in columns
    ]


# --- emails --------------------------------------------------------------------------------

# RFC 5322 dot-atoms in ASCII; a domain of LDH labels and an alphabetic (or IDNA) top level.
EMAIL_PATTERN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


MAX_EMAIL, MAX_EMAIL_LOCAL = 254, 64  # characters in all, and before the @


def normalize_emails(values: pa.Array) -> tuple[pa.StringArray, pa.BooleanArray]:
    """Trimmed, lower-cased addresses that pass a syntax check (one @, a dotted domain, at
    most 64 characters before the @ and 254 in all); typos in domains are kept as written."""
    text = pc.utf8_lower(_text(values))
    ok = pc.and_(
        pc.match_substring_regex(text, EMAIL_PATTERN),
        pc.and_(
            pc.less_equal(pc.binary_length(text), MAX_EMAIL),
            pc.less_equal(pc.find_substring(text, "@"), MAX_EMAIL_LOCAL),
        ),
    )
    emails = pc.if_else(ok, text, _NULL_STRING)
    return emails, _invalid(text, emails)


# --- names ---------------------------------------------------------------------------------

# Lower case inside a name (Ludwig van Beethoven, Maria de la Cruz), capitalised when last.
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "des", "del", "della", "la", "le", "du", "di", "da",
     "dos", "das", "ten", "ter", "zu", "zum", "zur", "vom", "y"}
)  # fmt: skip
_WORD_PARTS = re.compile("([-'\u2019])")  # hyphen, apostrophe, typographic apostrophe


def normalize_names(values: pa.Array) -> pa.StringArray:
    """Cleaned names; one written all in upper or all in lower case is title-cased with
    particles in lower case (van der Berg), hyphens and apostrophes (Jean-Luc, O'Brien) and
    Mc (McDonald). Mixed case is kept as written: MacLeod and Macleod are both names."""
    text = clean_text(values)
    one_case = pc.fill_null(pc.or_(pc.utf8_is_upper(text), pc.utf8_is_lower(text)), False)
    if not pc.any(one_case).as_py():
        return text
    fixed = per_distinct(pc.filter(text, one_case), _name_case, pa.string())
    return pc.replace_with_mask(text, one_case, fixed)


def _name_case(name: str) -> str:
    words = name.lower().split(" ")
    last = len(words) - 1
    return " ".join(
        word if i < last and word in _PARTICLES else _capitalize(word)
        for i, word in enumerate(words)
    )


def _capitalize(word: str) -> str:
    out = "".join(part[:1].upper() + part[1:] for part in _WORD_PARTS.split(word))
    if out.startswith("Mc") and len(out) > 2:
        out = "Mc" + out[2].upper() + out[3:]
    return out


# --- countries -----------------------------------------------------------------------------

# Names that are not in ISO 3166 (pycountry has the codes, English and official names):
# local names, old names, sports codes and the spellings free-text address fields use.
_COUNTRY_ALIASES = {
    "US": ("U.S.", "U.S.A.", "America", "United States of America", "Estados Unidos"),
    "GB": ("UK", "U.K.", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland", "Royaume-Uni", "Vereinigtes Königreich"),
    "DE": ("Deutschland", "GER", "BRD", "Allemagne", "Alemania", "Germania", "Duitsland"),
    "FR": ("République française", "Frankreich", "Francia", "Frankrijk"),
    "ES": ("España", "Espagne", "Spanien", "Spagna", "Spanje"),
    "NL": ("Nederland", "Holland", "The Netherlands", "Pays-Bas", "Niederlande",
           "Países Bajos", "NED"),
    "IT": ("Italia", "Italien", "Italie"),
    "BR": ("Brasil",),
    "CH": ("Schweiz", "Suisse", "Svizzera", "SUI"),
    "AT": ("Österreich", "Autriche"),
    "BE": ("Belgique", "België", "Belgien"),
    "PL": ("Polska",),
    "SE": ("Sverige",),
    "NO": ("Norge",),
    "DK": ("Danmark",),
    "FI": ("Suomi",),
    "IE": ("Éire", "Republic of Ireland"),
    "GR": ("Hellas", "Ellada"),
    "CZ": ("Česko", "Czech Republic"),
    "TR": ("Turkey", "Türkei"),
    "RU": ("Russia", "Rossiya"),
    "KR": ("Korea", "South Korea", "Republic of Korea"),
    "KP": ("North Korea",),
    "CN": ("PRC", "Mainland China"),
    "IR": ("Iran",),
    "MX": ("México",),
    "AE": ("UAE", "Emirates"),
    "CD": ("DRC", "DR Congo"),
    "CI": ("Ivory Coast",),
    "MK": ("Macedonia",),
    "MM": ("Burma",),
}  # fmt: skip
_KEY_DROP = re.compile("[.'\u2019]")
_KEY_SPACE = re.compile(r"[^\w]+")


def _country_key(text: str) -> str:
    """'U.S.A.' -> 'usa', 'The Netherlands' -> 'netherlands', 'España' -> 'espana'."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    folded = _KEY_SPACE.sub(" ", _KEY_DROP.sub("", folded)).strip()
    return folded.removeprefix("the ")


@cache
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                index.setdefault(_country_key(name), country.alpha_2)
    for code, aliases in _COUNTRY_ALIASES.items():
        for alias in aliases:
            index[_country_key(alias)] = code
    return index


def _country(text: str) -> str | None:
    return _country_index().get(_country_key(text))


def normalize_countries(values: pa.Array) -> tuple[pa.StringArray, pa.BooleanArray]:
    """ISO-3166 alpha-2 codes from alpha-2 or alpha-3 codes, English and official names, and
    common local names and aliases (Deutschland, UK, U.S., España), in any case."""
    text = _text(values)
    codes = per_distinct(text, _country, pa.string())
    return codes, _invalid(text, codes)


# --- currencies and amounts ----------------------------------------------------------------

AMOUNT = pa.decimal128(18, 4)
# ISO 4217 minor-unit exponents other than 2; None for units without minor units (metals,
# SDR, test and no-currency codes). Source: ISO 4217 list one.
_EXPONENTS: Mapping[str, int | None] = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
    **dict.fromkeys(
        ("XAD", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS",
         "XUA", "XXX"),
        None,
    ),
}  # fmt: skip
# A decimal with at most 14 integer digits and 4 decimals (zeros beyond those are dropped).
_DECIMAL_TEXT = r"^[+-]?\d{1,14}(?:\.\d{0,4}0*)?$"
_INTEGER_TEXT = r"^[+-]?\d{1,14}(?:\.0*)?$"


@cache
def _currencies() -> pa.Array:
    return pa.array(sorted(c.alpha_3 for c in pycountry.currencies), pa.string())


@cache
def _scales() -> tuple[pa.Array, pa.Array]:
    """Every currency code and 10^-exponent of its minor unit (null when it has none)."""
    codes = _currencies().to_pylist()
    exponents = [_EXPONENTS.get(code, 2) for code in codes]
    factors = [None if e is None else Decimal(1).scaleb(-e) for e in exponents]
    return pa.array(codes, pa.string()), pa.array(factors, pa.decimal128(5, 4))


def normalize_currencies(values: pa.Array) -> tuple[pa.StringArray, pa.BooleanArray]:
    """Upper-cased ISO-4217 codes (eur → EUR); unknown codes are invalid."""
    text = pc.utf8_upper(_text(values))
    codes = pc.if_else(pc.is_in(text, value_set=_currencies()), text, _NULL_STRING)
    return codes, _invalid(text, codes)


def to_amounts(
    values: pa.Array, currencies: pa.Array, *, minor_units: bool = False
) -> tuple[pa.Decimal128Array, pa.BooleanArray]:
    """Exact decimal(18, 4) amounts from decimal strings ("132.19") or numbers.

    With `minor_units` a value is an integer count of the currency's minor unit (Stripe:
    11099 EUR → 110.99, 500 JPY → 500, 1234 KWD → 1.234), scaled by the ISO-4217 exponent of
    the row's currency; a row without a known currency is then invalid. Without it the
    currencies are not read. Strings are parsed as decimals, never through floats; more than
    4 decimals (other than trailing zeros) is invalid. Floats are rounded to 4 decimals.
    """
    if pa.types.is_floating(values.type):
        values = pc.round(values, 4, round_mode="half_to_even")
    text = _text(values)
    if minor_units:
        ok = pc.match_substring_regex(text, _INTEGER_TEXT)
        whole = pc.replace_substring_regex(pc.if_else(ok, text, _NULL_STRING), r"\.0*$", "")
        codes, factors = _scales()
        index = pc.index_in(pc.utf8_upper(_text(currencies)), value_set=codes)
        factor = factors.take(index)
        units = pc.cast(pc.cast(whole, pa.int64()), pa.decimal128(19, 0))
        amounts = pc.cast(pc.multiply(units, factor), AMOUNT)
    else:
        ok = pc.match_substring_regex(text, _DECIMAL_TEXT)
        exact = pc.replace_substring_regex(
            pc.if_else(ok, text, _NULL_STRING), r"^([^.]*\.\d{0,4})\d*$", r"\1"
        )
        amounts = pc.cast(exact, AMOUNT)
    return amounts, _invalid(text, amounts)


# --- instants and dates --------------------------------------------------------------------

UTC_TIMESTAMP = pa.timestamp("us", "UTC")
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_ISO_TIME = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
_ZONED = rf"^{_ISO_DATE}{_ISO_TIME}(?:Z|[+-]\d{{2}}(?::?\d{{2}})?)$"
_NAIVE = rf"^{_ISO_DATE}(?:{_ISO_TIME})?$"
_EPOCH_TEXT = r"^\d{9,11}$"  # 1973-03-03 to 5138: shorter digit strings are not instants
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 8192


def _cast_tolerant(text: pa.Array, type_: pa.DataType) -> pa.Array:
    """`text` cast to `type_`, null in the chunks holding a value that does not cast (a
    shape a regex accepted, such as 2024-02-30): those go to the per-value fallback."""
    try:
        return pc.cast(text, type_)
    except pa.ArrowInvalid:
        chunks = []
        for start in range(0, len(text), _CHUNK):
            chunk = text.slice(start, _CHUNK)
            try:
                chunks.append(pc.cast(chunk, type_))
            except pa.ArrowInvalid:
                chunks.append(pa.nulls(len(chunk), type_))
        return pa.concat_arrays(chunks) if chunks else pa.nulls(0, type_)


def _from_seconds(seconds: pa.Array) -> pa.Array:
    """Unix seconds (integers or floats) → UTC timestamps; out of years 1-9999 → null."""
    in_range = pc.less_equal(pc.abs(seconds), _MAX_SECONDS)
    seconds = pc.if_else(in_range, seconds, pa.scalar(None, seconds.type))
    if pa.types.is_floating(seconds.type):
        micros = pc.cast(pc.round(pc.multiply(seconds, 1e6)), pa.int64())
    else:
        micros = pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000)
    return pc.cast(micros, pa.timestamp("us")).cast(UTC_TIMESTAMP)


@lru_cache(maxsize=65_536)
def _instant(text: str) -> int | None:
    """Microseconds since the epoch of an ISO-8601 text Python reads (naive → UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def to_utc_timestamps(values: pa.Array) -> tuple[pa.TimestampArray, pa.BooleanArray]:
    """UTC instants from ISO-8601 texts with Z or an offset (2024-10-15T00:03:53-05:00),
    naive ones and dates (taken as UTC), Unix epoch seconds (1733213958, as a number or
    digits), and timestamps or dates."""
    kind = values.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        naive = kind.tz is None if pa.types.is_timestamp(kind) else True
        stamps = pc.cast(values, pa.timestamp("us") if naive else UTC_TIMESTAMP)
        stamps = stamps.cast(UTC_TIMESTAMP)
        return stamps, _invalid(values, stamps)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        stamps = _from_seconds(values)
        return stamps, _invalid(values, stamps)
    text = _text(values)
    epoch = pc.match_substring_regex(text, _EPOCH_TEXT)
    zoned = pc.match_substring_regex(text, _ZONED)
    naive_text = pc.match_substring_regex(text, _NAIVE)
    stamps = pc.coalesce(
        _from_seconds(pc.cast(pc.if_else(epoch, text, _NULL_STRING), pa.int64())),
        _cast_tolerant(pc.if_else(zoned, text, _NULL_STRING), UTC_TIMESTAMP),
        _cast_tolerant(pc.if_else(naive_text, text, _NULL_STRING), pa.timestamp("us")).cast(
            UTC_TIMESTAMP
        ),
    )
    rest = pc.and_(pc.is_valid(text), pc.is_null(stamps))
    if pc.any(rest).as_py():
        micros = per_distinct(pc.filter(text, rest), _instant, pa.int64())
        fixed = pc.cast(micros, pa.timestamp("us")).cast(UTC_TIMESTAMP)
        stamps = pc.replace_with_mask(stamps, rest, fixed)
    return stamps, _invalid(text, stamps)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def to_dates(values: pa.Array) -> tuple[pa.Date32Array, pa.BooleanArray]:
    """Calendar dates from ISO-8601 texts (1988-03-03, the generator's only birth date
    format; a date-time gives its date as written), or from dates and timestamps."""
    kind = values.type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        days = pc.cast(values, pa.date32())
        return days, _invalid(values, days)
    text = _text(values)
    iso = pc.match_substring_regex(text, rf"^{_ISO_DATE}(?:[T ].*)?$")
    head = pc.utf8_slice_codeunits(pc.if_else(iso, text, _NULL_STRING), 0, 10)
    days = _cast_tolerant(head, pa.date32())
    rest = pc.and_(pc.is_valid(text), pc.is_null(days))
    if pc.any(rest).as_py():
        fixed = per_distinct(pc.filter(text, rest), _day, pa.date32())
        days = pc.replace_with_mask(days, rest, fixed)
    return days, _invalid(text, days)


# --- phones --------------------------------------------------------------------------------

LINE_TYPES: Mapping[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
# The types phonenumbers tests before fixed line and mobile, in its order.
_SPECIAL_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail",
)  # fmt: skip
# What the vectorized path reads: digits and the punctuation of written numbers, at most
# a leading +, within phonenumbers' 250 characters. Letters, extensions and the rest go to
# phonenumbers.
_PLAIN_PHONE = r"^\+?[0-9 ()./-]{1,249}$"
_MIN_NSN, _MAX_NSN = 2, 17
_CALLING_CODES = pa.array(sorted(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE), pa.string())
_SEPARATOR = "\x1f"


class PhoneNumbers(NamedTuple):
    """What `parse_phones` finds: null where the number is missing or not valid."""

    e164: pa.StringArray
    country: pa.StringArray  # ISO-3166 alpha-2 region of the number
    line_type: pa.StringArray  # a value of LINE_TYPES


@dataclass(frozen=True, slots=True)
class _Desc:
    pattern: str  # anchored RE2
    lengths: pa.Array | None  # possible national lengths; None: any


@dataclass(frozen=True, slots=True)
class _Prefix:
    """A prefix pattern at the start of a number (national or international)."""

    pattern: str  # anchored RE2, then (?P<rest>.*)$
    literal: str | None  # the same when the pattern is plain digits: no regex needed

    @classmethod
    def of(cls, pattern: str | None) -> _Prefix | None:
        if not pattern:
            return None
        literal = pattern if pattern.isdigit() else None
        return cls(f"^(?:{_no_captures(pattern)})(?P<rest>.*)$", literal)

    def rest(self, text: pa.Array) -> pa.StringArray:
        """What follows the prefix, null where the text does not start with it."""
        if self.literal is not None:
            rest = pc.utf8_slice_codeunits(text, len(self.literal))
            return pc.if_else(pc.starts_with(text, self.literal), rest, _NULL_STRING)
        return pc.struct_field(pc.extract_regex(text, self.pattern), "rest")


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's numbering plan from phonenumbers' metadata, as RE2 patterns."""

    cc: str
    transform: bool  # a national-prefix transform rule: parsed by phonenumbers only
    idd: _Prefix | None  # international prefix
    prefix: _Prefix | None  # national prefix for parsing
    viable: str  # the general pattern, without the length check
    lengths: pa.Array
    longest: int
    local: pa.Array
    leading: str | None
    general: _Desc
    specials: tuple[tuple[str, _Desc], ...]
    any_special: str | None
    fixed: _Desc | None
    mobile: _Desc | None
    same_fixed_mobile: bool


def _no_captures(pattern: str) -> str:
    # pyarrow's extract_regex allows only named groups.
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _desc(desc: PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = desc.possible_length
    return _Desc(
        f"^(?:{desc.national_number_pattern})$",
        pa.array(lengths, pa.int32()) if lengths else None,
    )


@cache
def _plan(region: str) -> _Plan | None:
    """The plan of a region phonenumbers knows (built once per process), else None."""
    meta = PhoneMetadata.metadata_for_region(region, None)
    if meta is None or meta.country_code is None:
        return None
    general = _desc(meta.general_desc)
    assert general is not None
    assert meta.general_desc is not None
    specials = tuple(
        (name, d) for name in _SPECIAL_TYPES if (d := _desc(getattr(meta, name))) is not None
    )
    lengths = [n for n in meta.general_desc.possible_length if n > 0]
    return _Plan(
        cc=str(meta.country_code),
        transform=bool(meta.national_prefix_transform_rule),
        idd=_Prefix.of(meta.international_prefix),
        prefix=_Prefix.of(meta.national_prefix_for_parsing),
        viable=f"^(?:{meta.general_desc.national_number_pattern})$",
        lengths=pa.array(lengths, pa.int32()),
        longest=max(lengths),
        local=pa.array(meta.general_desc.possible_length_local_only, pa.int32()),
        leading=f"^(?:{meta.leading_digits})" if meta.leading_digits else None,
        general=general,
        specials=specials,
        any_special="^(?:" + "|".join(f"(?:{d.pattern[4:-2]})" for _, d in specials) + ")$"
        if specials
        else None,
        fixed=_desc(meta.fixed_line),
        mobile=_desc(meta.mobile),
        same_fixed_mobile=bool(meta.same_mobile_and_fixed_line_pattern),
    )


def _main_region(cc: str) -> str:
    return COUNTRY_CODE_TO_REGION_CODE[int(cc)][0]


def _matches(text: pa.Array, desc: _Desc | None) -> pa.BooleanArray:
    if desc is None:
        return pc.fill_null(pa.nulls(len(text), pa.bool_()), False)
    hit = pc.match_substring_regex(text, desc.pattern)
    if desc.lengths is not None:
        hit = pc.and_(hit, pc.is_in(pc.utf8_length(text), value_set=desc.lengths))
    return pc.fill_null(hit, False)


def _viable(text: pa.Array, plan: _Plan) -> pa.BooleanArray:
    return pc.fill_null(pc.match_substring_regex(text, plan.viable), False)


def _strip_national_prefix(text: pa.Array, plan: _Plan) -> pa.StringArray:
    """phonenumbers' _maybe_strip_national_prefix_carrier_code without a transform rule:
    the prefix goes unless the number fits the plan with it and not without it."""
    if plan.prefix is None:
        return text
    rest = plan.prefix.rest(text)
    keep = pc.and_(_viable(text, plan), pc.invert(_viable(rest, plan)))
    return pc.if_else(pc.fill_null(pc.and_(pc.is_valid(rest), pc.invert(keep)), False), rest, text)


def _possible_length(text: pa.Array, plan: _Plan) -> pa.BooleanArray:
    """_test_number_length is IS_POSSIBLE or TOO_LONG."""
    length = pc.utf8_length(text)
    fits = pc.or_(pc.is_in(length, value_set=plan.lengths), pc.greater(length, plan.longest))
    return pc.and_(pc.invert(pc.is_in(length, value_set=plan.local)), fits)


def _too_long(text: pa.Array, plan: _Plan) -> pa.BooleanArray:
    length = pc.utf8_length(text)
    return pc.and_(
        pc.invert(pc.is_in(length, value_set=plan.local)), pc.greater(length, plan.longest)
    )


def _line_types(nsn: pa.Array, plan: _Plan) -> pa.StringArray:
    """phonenumbers' _number_type_helper: the line type, null for UNKNOWN."""
    result = pa.nulls(len(nsn), pa.string())
    open_ = _matches(nsn, plan.general)
    if not pc.any(open_).as_py():
        return result
    if (
        plan.any_special is not None
        and pc.any(
            pc.and_(open_, pc.fill_null(pc.match_substring_regex(nsn, plan.any_special), False))
        ).as_py()
    ):
        for name, desc in plan.specials:
            hit = pc.and_(open_, _matches(nsn, desc))
            result = pc.if_else(hit, name, result)
            open_ = pc.and_(open_, pc.invert(hit))
    fixed = pc.and_(open_, _matches(nsn, plan.fixed))
    if plan.same_fixed_mobile:
        return pc.if_else(fixed, "fixed_line_or_mobile", result)
    mobile = pc.and_(open_, _matches(nsn, plan.mobile))
    return pc.if_else(
        fixed,
        pc.if_else(mobile, "fixed_line_or_mobile", "fixed_line"),
        pc.if_else(mobile, "mobile", result),
    )


def _classify(nsn: pa.Array, cc: str) -> tuple[pa.StringArray, pa.StringArray]:
    """Region and line type of national numbers of one country code (null if invalid), as
    phonenumbers' region_code_for_number and number_type find them."""
    regions = COUNTRY_CODE_TO_REGION_CODE[int(cc)]
    pending = _range(len(nsn))
    positions: list[pa.Array] = []
    countries: list[pa.Array] = []
    kinds: list[pa.Array] = []
    for region in regions:
        plan = _plan(region)
        if plan is None or len(pending) == 0:
            continue
        numbers = nsn.take(pending)
        if plan.leading is not None and len(regions) > 1:
            hit = pc.fill_null(pc.match_substring_regex(numbers, plan.leading), False)
            found = _line_types(numbers.filter(hit), plan)
        else:
            every = _line_types(numbers, plan)
            hit = pc.is_valid(every)
            found = every.filter(hit)
        country = pc.if_else(pc.is_valid(found), region, _NULL_STRING)
        if not positions and pc.all(hit).as_py():  # the first region has them all
            return country, found
        positions.append(pending.filter(hit))
        kinds.append(found)
        countries.append(country)
        pending = pending.filter(pc.invert(hit))
    country, kind = _reorder(positions, [countries, kinds], len(nsn))
    return country, kind


class _Candidates:
    """National numbers waiting for their plan: positions and digits, per region."""

    def __init__(self) -> None:
        self.by_region: dict[str, tuple[list[pa.Array], list[pa.Array]]] = {}

    def add(self, region: str, positions: pa.Array, digits: pa.Array) -> None:
        if len(positions):
            entry = self.by_region.setdefault(region, ([], []))
            entry[0].append(positions)
            entry[1].append(digits)


class _Settled:
    """Rows the vectorized parse has settled, valid or not, collected in pieces."""

    def __init__(self) -> None:
        self.positions: list[pa.Array] = []
        self.columns: list[list[pa.Array]] = [[], [], [], []]  # e164, country, kind, settled

    def add(self, positions: pa.Array, e164: pa.Array, country: pa.Array, kind: pa.Array) -> None:
        self.positions.append(positions)
        for column, values in zip(
            self.columns,
            (e164, country, kind, pc.fill_null(pa.nulls(len(positions), pa.bool_()), True)),
            strict=True,
        ):
            column.append(values)

    def invalid(self, positions: pa.Array) -> None:
        none = pa.nulls(len(positions), pa.string())
        self.add(positions, none, none, none)


def _groups(keys: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """Each distinct non-null key with the positions where it occurs."""
    encoded = pc.dictionary_encode(keys)
    order = pc.sort_indices(encoded.indices)
    runs = pc.run_end_encode(encoded.indices.take(order))
    start = 0
    for end, code in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        if code is not None:
            yield encoded.dictionary[code].as_py(), order.slice(start, end - start)
        start = end


def _calling_codes(digits: pa.Array) -> pa.StringArray:
    """The country calling code each digit string starts with (the codes are prefix-free:
    at most one matches), null if none."""
    codes = pa.nulls(len(digits), pa.string())
    for length in (1, 2, 3):
        head = pc.utf8_slice_codeunits(digits, 0, length)
        codes = pc.if_else(pc.is_in(head, value_set=_CALLING_CODES), head, codes)
    return codes


def _digits(texts: pa.Array, plus: pa.Array) -> pa.StringArray:
    """The digits of each text."""
    bare = pc.fill_null(pc.match_substring_regex(texts, r"^\+?\d+$"), False)
    digits = pc.if_else(plus, pc.utf8_slice_codeunits(texts, 1), texts)
    if pc.all(bare).as_py() is False:  # a regex only where there is punctuation
        other = pc.invert(bare)
        spaced = pc.replace_substring_regex(texts.filter(other), r"\D+", "")
        digits = pc.replace_with_mask(digits, other, spaced)
    return digits


def _fast_phones(texts: pa.Array, regions: pa.Array) -> tuple[pa.Array, ...]:
    """The vectorized parse, step for step as phonenumbers.parse and is_valid_number: E.164,
    region and line type of the valid numbers, and which rows it settled (null: not
    settled, left to phonenumbers)."""
    plain = pc.fill_null(pc.match_substring_regex(texts, _PLAIN_PHONE), False)
    plus = pc.fill_null(pc.starts_with(texts, "+"), False)
    digits = _digits(texts, plus)
    settled = _Settled()
    candidates = _Candidates()
    # International: after a + or the region's international prefix (00, 011, ...).
    international = pc.indices_nonzero(pc.and_(plain, plus)).cast(pa.int64())
    intl = [(international, digits.take(international), True)]
    national = pc.indices_nonzero(pc.and_(plain, pc.invert(plus))).cast(pa.int64())
    no_region = pc.is_null(regions.take(national))
    settled.invalid(national.filter(no_region))  # a national number needs a region
    for region, where in _groups(regions.take(national)):
        plan = _plan(region)
        positions = national.take(where)
        if plan is None:  # not a region phonenumbers knows
            settled.invalid(positions)
            continue
        if plan.transform:
            continue
        number = digits.take(positions)
        if plan.idd is not None:
            rest = plan.idd.rest(number)
            idd = pc.fill_null(
                pc.and_(pc.is_valid(rest), pc.invert(pc.starts_with(rest, "0"))), False
            )
            intl.append((positions.filter(idd), rest.filter(idd), False))
            positions, number = positions.filter(pc.invert(idd)), number.filter(pc.invert(idd))
        # The region's country code written without + (4917232801617 in DE).
        without = _strip_national_prefix(pc.utf8_slice_codeunits(number, len(plan.cc)), plan)
        has_code = pc.and_(
            pc.starts_with(number, plan.cc),
            pc.or_(
                pc.and_(pc.invert(_viable(number, plan)), _viable(without, plan)),
                _too_long(number, plan),
            ),
        )
        candidates.add(_main_region(plan.cc), positions.filter(has_code), without.filter(has_code))
        own = pc.invert(has_code)
        candidates.add(region, positions.filter(own), number.filter(own))

    for rows, full, with_plus in intl:
        codes = _calling_codes(full)
        long_enough = pc.greater(pc.utf8_length(full), 2)
        has_code = pc.fill_null(pc.and_(pc.is_valid(codes), long_enough), False)
        # Too short, or (after an IDD) no country code: invalid. After a +, phonenumbers
        # retries without it: left to phonenumbers.
        fails = pc.invert(long_enough) if with_plus else pc.invert(has_code)
        settled.invalid(rows.filter(fails))
        positions, number = rows.filter(has_code), full.filter(has_code)
        for cc, where in _groups(codes.filter(has_code)):
            rest = pc.utf8_slice_codeunits(number.take(where), len(cc))
            candidates.add(_main_region(cc), positions.take(where), rest)

    for region, (position_parts, digit_parts) in candidates.by_region.items():
        plan = _plan(region)
        if plan is None or plan.transform:  # non-geographic codes (+800, ...), AR, BR, ...
            continue
        positions, number = pa.concat_arrays(position_parts), pa.concat_arrays(digit_parts)
        stripped = _strip_national_prefix(number, plan)
        nsn = pc.if_else(_possible_length(stripped, plan), stripped, number)
        length = pc.utf8_length(nsn)
        ok = pc.and_(pc.greater_equal(length, _MIN_NSN), pc.less_equal(length, _MAX_NSN))
        settled.invalid(positions.filter(pc.invert(ok)))
        positions, nsn = positions.filter(ok), nsn.filter(ok)
        country, kind = _classify(nsn, plan.cc)
        e164 = pc.if_else(
            pc.is_valid(kind), pc.binary_join_element_wise(f"+{plan.cc}", nsn, ""), _NULL_STRING
        )
        settled.add(positions, e164, country, kind)
    return tuple(_reorder(settled.positions, settled.columns, len(texts)))


@lru_cache(maxsize=1 << 16)
def parse_phone(text: str, region: str | None) -> tuple[str, str | None, str] | None:
    """phonenumbers itself, for what the vectorized path does not settle."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return (
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        phonenumbers.region_code_for_number(number),
        LINE_TYPES[phonenumbers.number_type(number)],
    )


def parse_phones(
    values: pa.Array, countries: str | pa.Array | None = None, *, fallback: str | None = None
) -> PhoneNumbers:
    """Valid numbers in E.164 with their region and line type, parsed as phonenumbers does
    with the row's country (an ISO alpha-2 code for every row, or an array aligned with
    `values`; a null takes `fallback`); numbers written with + or an international prefix
    need no country. Work is done once per distinct (text, country)."""
    text = _text(values)
    if isinstance(countries, pa.Array):
        regions = pc.utf8_upper(pc.cast(countries, pa.string()))
        if fallback is not None:
            regions = pc.fill_null(regions, fallback.upper())
        # Distinct (region, text) pairs, joined for hashing and split again.
        keys = pc.binary_join_element_wise(pc.fill_null(regions, ""), text, _SEPARATOR)
        encoded = pc.dictionary_encode(keys)
        split = pc.extract_regex(
            encoded.dictionary, rf"(?s)^(?P<region>[^{_SEPARATOR}]*){_SEPARATOR}(?P<text>.*)$"
        )
        texts = pc.struct_field(split, "text")
        distinct_regions = pc.struct_field(split, "region")
        distinct_regions = pc.if_else(
            pc.equal(distinct_regions, ""), _NULL_STRING, distinct_regions
        )
    else:
        encoded = pc.dictionary_encode(text)
        texts = encoded.dictionary
        region = countries.upper() if countries else None
        distinct_regions = pa.array([region] * len(texts), pa.string())
    indices = encoded.indices
    e164, country, kind, settled = _fast_phones(texts, distinct_regions)
    rest = pc.and_(pc.is_valid(texts), pc.is_null(settled))
    if pc.any(rest).as_py():
        parsed = [
            parse_phone(t, r)
            for t, r in zip(
                texts.filter(rest).to_pylist(),
                distinct_regions.filter(rest).to_pylist(),
                strict=True,
            )
        ]
        e164 = pc.replace_with_mask(e164, rest, pa.array([p and p[0] for p in parsed], pa.string()))
        country = pc.replace_with_mask(
            country, rest, pa.array([p and p[1] for p in parsed], pa.string())
        )
        kind = pc.replace_with_mask(kind, rest, pa.array([p and p[2] for p in parsed], pa.string()))
    return PhoneNumbers(e164.take(indices), country.take(indices), kind.take(indices))


def normalize_phones(
    values: pa.Array, default_country: str | pa.Array, *, fallback: str | None = None
) -> tuple[pa.StringArray, pa.BooleanArray]:
    """E.164 numbers (+33655999949), parsed with the row's country: `default_country` is
    one ISO alpha-2 code for every row or an array aligned with `values` whose nulls take
    `fallback` (the tenant's default). Extensions are dropped; numbers phonenumbers does
    not find valid are invalid."""
    text = _text(values)
    e164 = parse_phones(text, default_country, fallback=fallback).e164
    return e164, _invalid(text, e164)
