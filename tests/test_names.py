"""Name rules (app/names.py): invisible and blank characters refused, look-alike names equal.

Pure tests; `tests/test_net.py` has the same promises over real sockets.
"""

from __future__ import annotations

import unicodedata

import pytest

from app import protocol
from app.names import check_name, confusables_version, name_key, skeleton
from app.room import Room
from tests.test_room import welcome_of

# Characters that draw as nothing, or as a blank, found in real impersonation attempts.
INVISIBLE = [
    "\u034f",  # COMBINING GRAPHEME JOINER (default ignorable, a combining mark)
    "\ufe0f",  # VARIATION SELECTOR-16
    "\ufe00",  # VARIATION SELECTOR-1
    "\U000e0100",  # VARIATION SELECTOR-17
    "\u2800",  # BRAILLE PATTERN BLANK
    "\u3164",  # HANGUL FILLER
    "\u115f",  # HANGUL CHOSEONG FILLER
    "\u1160",  # HANGUL JUNGSEONG FILLER
    "\uffa0",  # HALFWIDTH HANGUL FILLER
    "\u17b4",  # KHMER VOWEL INHERENT AQ
    "\u17b5",  # KHMER VOWEL INHERENT AA
    "\u180b",  # MONGOLIAN FREE VARIATION SELECTOR ONE
    "\u200b",  # ZERO WIDTH SPACE
    "\u2060",  # WORD JOINER
    "\u00ad",  # SOFT HYPHEN
    "\U000e0041",  # TAG LATIN CAPITAL LETTER A
    "\u00a0",  # NO-BREAK SPACE
    "\u2007",  # FIGURE SPACE
    "\u3000",  # IDEOGRAPHIC SPACE
    "\u1680",  # OGHAM SPACE MARK
    "\u2028",  # LINE SEPARATOR
    "\u2029",  # PARAGRAPH SEPARATOR
    "\U0001d159",  # MUSICAL SYMBOL NULL NOTEHEAD
]


@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["end", "middle", "alone"])
def test_invisible_and_blank_characters_are_refused(ch: str, where: str) -> None:
    name = {"end": f"Hal{ch}", "middle": f"H{ch}al", "alone": ch}[where]
    with pytest.raises(ValueError, match="name") as info:
        check_name(name)
    if where != "alone" or ch not in "\u00a0\u2007\u3000\u1680":  # a lone space: "empty"
        assert f"U+{ord(ch):04X}" in str(info.value) or "visible" in str(info.value)


def test_the_refusal_names_the_character_in_plain_words() -> None:
    with pytest.raises(ValueError, match="invisible or blank") as info:
        check_name("Hal\u034f")
    assert "U+034F COMBINING GRAPHEME JOINER" in str(info.value)


def test_a_name_of_combining_marks_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="visible"):
        check_name("\u0301\u0301")


@pytest.mark.parametrize("name", ["Zoë 🦊", "Анна", "李雷", "José", "Ann-Lee", "O'Neil", "Ann (2)"])
def test_ordinary_names_in_any_script_are_kept(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hal", "H\u0430l"),  # Cyrillic а
        ("Hal", "HaI"),  # capital i for small L
        ("Hal", "Ha1"),  # digit one
        ("Ann", "\u0410nn"),  # Cyrillic А
        ("paypal", "\u0440\u0430\u0443\u0440\u0430l"),  # Cyrillic р а у
        ("Bob", "B0b"),  # digit zero
        ("modem", "rnodern"),  # rn for m
        ("Ann", "ＡＮＮ"),  # fullwidth
        ("Ann", "ann"),  # case
        ("Straße", "STRASSE"),  # case folding that grows
        ("ﬁsh", "fish"),  # compatibility ligature
        ("Οmega", "Omega"),  # Greek capital omicron
    ],
)
def test_names_that_look_the_same_have_one_key(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(("a", "b"), [("Ann", "Anne"), ("Zoë", "Zoe"), ("Hal", "Hall")])
def test_names_that_look_different_keep_different_keys(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_the_skeleton_follows_tr39_nfd_map_nfd() -> None:
    # TR39 example data: U+0430 CYRILLIC SMALL LETTER A -> U+0061; the result is in NFD.
    assert skeleton("\u0430") == "a"
    assert skeleton("é") == unicodedata.normalize("NFD", "é")
    assert skeleton("m") == "rn"


def test_the_table_is_unicodes_own_and_says_its_version() -> None:
    assert confusables_version() == "13.0.0"


def test_protocol_still_offers_the_name_rules() -> None:
    assert protocol.check_name is check_name
    assert protocol.name_key is name_key


def test_a_look_alike_of_the_hosts_name_gets_a_suffix_in_the_room() -> None:
    room = Room()
    room.join(0, "Hal", "local")
    for member, fake in enumerate(["H\u0430l", "HaI", "ＨＡＬ"], start=1):
        welcome = welcome_of(room.join(member, fake, "app"), member)
        assert welcome.name.endswith(f"({member + 1})")
        assert "taken" in (welcome.note or "")


def test_an_invisible_character_makes_a_guest_name_with_a_note() -> None:
    room = Room()
    room.join(0, "Hal", "local")
    welcome = welcome_of(room.join(1, "Hal\u034f", "app"), 1)
    assert welcome.name == "guest1"
    assert "U+034F" in (welcome.note or "")


def test_renaming_to_a_look_alike_is_refused() -> None:
    room = Room()
    room.join(0, "Hal", "local")
    room.join(1, "Ann", "app")
    sends = room.say(1, "/nick H\u0430l")
    assert "taken" in repr(sends)
    assert room.names() == ("Hal", "Ann")
