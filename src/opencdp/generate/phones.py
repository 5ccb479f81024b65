"""Mobile numbers per country, unique per person, and the ways people write them.

A number is its national significant number (NSN, no trunk 0, no country code). The digits
after a prefix are a bijection of the person's index, so two people never share a number
(up to `PhoneSpec.space` people per country, far beyond a test tenant), yet they look random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Odd and not a multiple of 5: coprime with every 2^a * 5^b, so index -> index * A + B is a
# bijection modulo the size of each subscriber space below.
_MULTIPLIER = 6_700_417


@dataclass(frozen=True, slots=True)
class PhoneSpec:
    calling_code: str
    prefixes: tuple[str, ...]
    digits: int  # subscriber digits after the prefix
    # If set, the first subscriber digit comes from this alphabet (US exchanges start 2-9).
    lead: str = ""
    # '#' takes the next NSN digit; national formats carry their trunk prefix literally.
    national: tuple[str, ...] = ()
    international: tuple[str, ...] = ()
    trunk: str = ""

    @property
    def space(self) -> int:
        return (len(self.lead) or 1) * int(10**self.digits)

    def nsn(self, rng: random.Random, index: int, offset: int) -> str:
        value = (index * _MULTIPLIER + offset) % self.space
        prefix = self.prefixes[int(rng.random() * len(self.prefixes))]
        if self.lead:
            head, rest = divmod(value, 10**self.digits)
            return f"{prefix}{self.lead[head]}{rest:0{self.digits}d}"
        return f"{prefix}{value:0{self.digits}d}"


def e164(spec: PhoneSpec, nsn: str) -> str:
    return f"+{spec.calling_code}{nsn}"


def fill(template: str, nsn: str) -> str:
    digits = iter(nsn)
    return "".join(next(digits) if ch == "#" else ch for ch in template)


def written(spec: PhoneSpec, nsn: str, rng: random.Random) -> str:
    """The number as a person or a form writes it when not in E.164: national, national
    digits only, or one of the international forms."""
    roll = rng.random()
    if roll < 0.45:
        return fill(spec.national[int(rng.random() * len(spec.national))], nsn)
    if roll < 0.6:
        return spec.trunk + nsn
    return fill(spec.international[int(rng.random() * len(spec.international))], nsn)


# Prefixes are real mobile (or, for the US, geographic) ranges, so that a phone library
# accepts every number as valid for its country.
# fmt: off
_US_AREA_CODES = (
    "201", "206", "212", "213", "214", "215", "216", "303", "305", "310", "312", "313",
    "404", "408", "415", "503", "512", "602", "614", "617", "646", "702", "704", "713",
    "718", "720", "805", "813", "816", "832", "858", "904", "916", "917", "919", "949",
)
_GB_MOBILE = (
    "7400", "7412", "7432", "7469", "7481", "7503", "7510", "7534", "7552", "7575", "7702",
    "7711", "7723", "7734", "7751", "7766", "7801", "7812", "7846", "7867", "7884", "7903",
    "7921", "7946", "7960", "7973", "7985",
)
_DE_MOBILE = (
    "151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173", "174",
    "175", "176", "177", "178", "179",
)
# fmt: on
US = PhoneSpec(
    calling_code="1",
    prefixes=_US_AREA_CODES,
    digits=6,
    lead="23456789",
    national=("(###) ###-####", "###-###-####", "###.###.####", "### ### ####"),
    international=("+1 ###-###-####", "+1 (###) ###-####", "1-###-###-####", "+1.###.###.####"),
)
GB = PhoneSpec(
    calling_code="44",
    prefixes=_GB_MOBILE,
    digits=6,
    national=("0#### ######", "0#### ### ###"),
    international=("+44 #### ######", "+44 (0)#### ######", "0044 #### ######"),
    trunk="0",
)
DE = PhoneSpec(
    calling_code="49",
    prefixes=_DE_MOBILE,
    digits=8,
    national=("0### ########", "0###/########", "0### - ########"),
    international=("+49 ### ########", "+49 (0)### ########", "0049 ### ########"),
    trunk="0",
)
FR = PhoneSpec(
    calling_code="33",
    prefixes=("60", "61", "62", "64", "65", "66", "67", "68"),  # 063x, 069x: overseas
    digits=7,
    national=("0# ## ## ## ##", "0#.##.##.##.##", "0#-##-##-##-##"),
    international=("+33 # ## ## ## ##", "+33 (0)# ## ## ## ##", "0033 # ## ## ## ##"),
    trunk="0",
)
ES = PhoneSpec(
    calling_code="34",
    prefixes=("6",),
    digits=8,
    national=("### ## ## ##", "### ### ###"),
    international=("+34 ### ## ## ##", "+34 ### ### ###", "0034 ### ### ###"),
)
NL = PhoneSpec(
    calling_code="31",
    prefixes=("61", "62", "63", "64", "65"),
    digits=7,
    national=("0# ########", "0#-########", "0# ## ## ## ##"),
    international=("+31 # ########", "+31 (0)# ########", "0031 # ########"),
    trunk="0",
)
