"""Invite links: exact examples, damaged invites in plain words, and a round-trip property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.invite import Invite, check_host, is_invite, make_invite, parse_invite
from app.security import compact_fingerprint, format_fingerprint

DIGEST = bytes(range(32))
FP = format_fingerprint(DIGEST)
COMPACT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def test_compact_form_is_base64url_of_the_digest() -> None:
    assert compact_fingerprint(FP) == COMPACT


def test_make_invite_exact_text() -> None:
    assert make_invite("192.168.1.5", 5151, FP) == f"parley://192.168.1.5:5151/#fp={COMPACT}"
    assert (
        make_invite("192.168.1.5", 5151, FP, "p w&=#/ü")
        == f"parley://192.168.1.5:5151/#fp={COMPACT}&pw=p%20w%26%3D%23%2F%C3%BC"
    )
    assert make_invite("::1", 80, FP).startswith("parley://[::1]:80/#fp=")
    assert make_invite("fe80::1%eth0", 80, FP).startswith("parley://[fe80::1%25eth0]:80/#")
    assert make_invite("MyLaptop.Local", 5151, FP).startswith("parley://mylaptop.local:5151/#")


def test_parse_invite_gives_the_parts() -> None:
    invite = parse_invite(f"parley://192.168.1.5:5151/#fp={COMPACT}&pw=p%20w%26%3D%23%2F%C3%BC")
    assert invite == Invite("192.168.1.5", 5151, FP, "p w&=#/ü")
    assert invite.address == "192.168.1.5:5151"
    no_pw = parse_invite(f"parley://[::1]:5151/#fp={COMPACT}")
    assert no_pw.host == "::1"
    assert no_pw.password is None
    assert no_pw.address == "[::1]:5151"
    zoned = parse_invite(f"parley://[fe80::1%25eth0]:7/#fp={COMPACT}")
    assert zoned.host == "fe80::1%eth0"


def test_parse_is_forgiving_where_it_is_safe() -> None:
    base = f"parley://10.0.0.1:5151/#fp={COMPACT}&pw=x"
    expected = Invite("10.0.0.1", 5151, FP, "x")
    assert parse_invite(f"  {base}\n") == expected
    assert parse_invite(f"<{base}>") == expected
    assert parse_invite(base.replace("parley", "PARLEY", 1)) == expected
    assert parse_invite(base.replace("/#", "#")) == expected
    assert parse_invite(f"{base}&future=1&") == expected  # unknown fields are for later versions
    assert parse_invite(base.replace(COMPACT, FP)) == expected  # the long hex form works too
    assert parse_invite(base.replace("&pw=x", "&pw=")).password is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a Parley invite"),
        ("192.168.1.5:5151", "not a Parley invite"),
        (f"https://10.0.0.1:5151/#fp={COMPACT}", "not a Parley invite"),
        (f"parley://:5151/#fp={COMPACT}", "no host"),
        (f"parley:///#fp={COMPACT}", "no host"),
        (f"parley://10.0.0.1/#fp={COMPACT}", "no port"),
        (f"parley://[::1]/#fp={COMPACT}", "no port"),
        (f"parley://[::1/#fp={COMPACT}", "closing"),
        (f"parley://::1:5151/#fp={COMPACT}", "brackets"),
        (f"parley://10.0.0.1:http/#fp={COMPACT}", "port must be a number"),
        (f"parley://10.0.0.1:99999/#fp={COMPACT}", "from 1 to 65535"),
        (f"parley://10.0.0.1:0/#fp={COMPACT}", "from 1 to 65535"),
        (f"parley://10.0.0.1:5151/path/#fp={COMPACT}", "not HOST:PORT"),
        (f"parley://user@10.0.0.1:5151/#fp={COMPACT}", "not HOST:PORT"),
        (f"parley://bad_host!:5151/#fp={COMPACT}", "not a host name"),
        (f"parley://[nonsense]:5151/#fp={COMPACT}", "not a valid IPv6"),
        ("parley://10.0.0.1:5151/", "no fingerprint"),
        ("parley://10.0.0.1:5151/#pw=x", "no fingerprint"),
        (f"parley://10.0.0.1:5151/#fp={COMPACT[:-5]}", "damaged"),
        (f"parley://10.0.0.1:5151/#fp={COMPACT}&fp={COMPACT}", "twice"),
        (f"parley://10.0.0.1:5151/#fp={COMPACT}&pw", "name=value"),
        (f"parley://10.0.0.1:5151/#fp={COMPACT}&pw=%FF", "percent-encoded"),
    ],
)
def test_damaged_invites_are_explained(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_invite(text)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("", 5151, FP, None), "not a host name"),
        (("a b", 5151, FP, None), "not a host name"),
        (("x" * 254, 5151, FP, None), "not a host name"),
        (("10.0.0.1", 0, FP, None), "from 1 to 65535"),
        (("10.0.0.1", True, FP, None), "whole number"),
        (("10.0.0.1", 5151, "AB:CD", None), "fingerprint"),
        (("10.0.0.1", 5151, FP, ""), "empty password"),
        (("10.0.0.1", 5151, FP, "\udc80"), "surrogates"),
    ],
)
def test_invalid_invites_cannot_be_made(args: tuple[str, int, str, str | None], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        make_invite(*args)


def test_is_invite_recognises_the_scheme_even_when_damaged() -> None:
    assert is_invite(f"parley://10.0.0.1:5151/#fp={COMPACT}")
    assert is_invite(" PARLEY://broken")
    assert is_invite("<parley://x>")
    assert not is_invite("10.0.0.1:5151")
    assert not is_invite("parley")
    assert not is_invite("https://example.org")


def test_check_host_canonical_forms() -> None:
    assert check_host("[::FFFF:1]") == "::ffff:1"
    assert check_host("0:0:0:0:0:0:0:1") == "::1"
    assert check_host(" Example.ORG ") == "example.org"
    assert check_host("my_pc") == "my_pc"  # Windows machine names may have underscores
    with pytest.raises(ValueError, match="not a host name"):
        check_host("-leading-dash")
    with pytest.raises(ValueError, match="not a valid IPv6"):
        check_host("[10.0.0.1]")


# --- round trip ---------------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.builds(
        lambda addr, zone: f"{addr}%{zone}",
        st.ip_addresses(v=6).map(str),
        st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True),
    ),
    st.lists(_label, min_size=1, max_size=4).map(".".join),
)
passwords = st.none() | st.text(st.characters(codec="utf-8"), min_size=1)
fingerprints = st.binary(min_size=32, max_size=32).map(format_fingerprint)


@given(hosts, st.integers(1, 65535), fingerprints, passwords)
def test_invites_round_trip(host: str, port: int, fp: str, password: str | None) -> None:
    invite = Invite(host, port, fp, password)
    text = make_invite(host, port, fp, password)
    assert is_invite(text)
    assert text.isascii()
    assert " " not in text
    parsed = parse_invite(text)
    assert parsed == invite
    assert parsed.password == password
    assert parsed.port == port
    assert parsed.fingerprint == fp
    assert parse_invite(parsed.to_text()) == parsed
