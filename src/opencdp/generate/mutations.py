"""Small string changes that real data is full of: typos, case, spaces, lost accents, and the
placeholder values people type into forms. Each function returns a changed string (never the
input unchanged) when the input allows it."""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache

# QWERTY neighbours: most real typos hit a key next to the right one.
_NEIGHBOURS = {
    "a": "qswz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}  # fmt: skip

_DOMAIN_TYPOS = {
    "gmail.com": ("gmial.com", "gmai.com", "gmail.co", "gnail.com", "gmail.con"),
    "hotmail.com": ("hotmial.com", "hotmal.com", "hotmail.co"),
    "yahoo.com": ("yaho.com", "yahooo.com", "yahoo.co"),
    "outlook.com": ("outlok.com", "outlook.co"),
    "icloud.com": ("iclod.com", "icloud.co"),
    "web.de": ("web.com", "wep.de"),
    "gmx.de": ("gmx.com", "gmx.d"),
    "orange.fr": ("ornage.fr", "orange.com"),
}

_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})

PLACEHOLDER_EMAILS = (
    "test@test.com",
    "noemail@noemail.com",
    "none@none.com",
    "a@a.com",
    "test@example.com",
    "no@email.com",
)
PLACEHOLDER_NAMES = ("Test", "N/A", "Unknown", "Customer", "xxx", "-")
PLACEHOLDER_STREETS = ("N/A", "unknown", "123 Test St", "-", "none")
PLACEHOLDER_PHONES = ("0000000000", "1234567890", "N/A", "000-000-0000", "9999999999", "0")


def typo(rng: random.Random, text: str) -> str:
    """One keyboard slip in a letter: dropped, doubled, swapped with the next, or a neighbour."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if not letters:
        return text
    for _ in range(4):
        i = letters[int(rng.random() * len(letters))]
        roll = rng.random()
        if roll < 0.3 and len(letters) > 2:
            out = text[:i] + text[i + 1 :]
        elif roll < 0.55 and i + 1 < len(text) and text[i + 1].isalpha():
            out = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif roll < 0.75:
            out = text[:i] + text[i] + text[i:]
        else:
            keys = _NEIGHBOURS.get(text[i].lower(), "e")
            key = keys[int(rng.random() * len(keys))]
            out = text[:i] + (key.upper() if text[i].isupper() else key) + text[i + 1 :]
        if out != text:
            return out
    return text[:i] + text[i] + text[i:]  # doubling always changes the text


def email_typo(rng: random.Random, email: str) -> str:
    """A mistyped common domain, or a typo in the letters of the local part (never in its
    digits, which would make it another person's address)."""
    local, _, domain = email.rpartition("@")
    options = _DOMAIN_TYPOS.get(domain)
    if options and rng.random() < 0.4:
        return f"{local}@{options[int(rng.random() * len(options))]}"
    return f"{typo(rng, local)}@{domain}"


def change_case(rng: random.Random, text: str) -> str:
    """UPPER, lower or Title case, whichever of those differs from the text."""
    forms = [f for f in (text.upper(), text.lower(), _title(text)) if f != text]
    return forms[int(rng.random() * len(forms))] if forms else text


def _title(text: str) -> str:
    # str.title() would also capitalise after digits and apostrophes ("O'Neil" -> "O'Neil" ok,
    # "smith2" -> "Smith2"); capitalising each word's first letter is what forms do.
    return " ".join(w[:1].upper() + w[1:].lower() for w in text.split(" "))


def email_case(rng: random.Random, email: str) -> str:
    """An email as people type it: John.Smith@Gmail.com or all capitals."""
    if rng.random() < 0.3:
        return email.upper()
    local, _, domain = email.rpartition("@")
    parts = ".".join(p[:1].upper() + p[1:] for p in local.split("."))
    return f"{parts}@{domain[:1].upper()}{domain[1:]}"


def add_whitespace(rng: random.Random, text: str) -> str:
    """Leading, trailing or doubled inner spaces, or a trailing tab."""
    roll = rng.random()
    if roll < 0.3:
        return f" {text}"
    if roll < 0.6:
        return f"{text} "
    if roll < 0.8 and " " in text:
        return text.replace(" ", "  ", 1)
    if roll < 0.9:
        return f"  {text}  "
    return f"{text}\t"


@lru_cache(maxsize=65_536)
def ascii_only(text: str) -> str:
    """Accents stripped, as systems that only take ASCII store names (Müller -> Muller)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return (
        "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        .encode("ascii", "ignore")
        .decode()
    )


def fold_accents(rng: random.Random, text: str) -> str:
    """Accents dropped (Müller -> Muller) or, half the time, German-style (Müller -> Mueller)."""
    if rng.random() < 0.5:
        return ascii_only(text.translate(_GERMAN))
    return ascii_only(text)
