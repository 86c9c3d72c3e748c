"""The wire rules of app/protocol.py, tested by feeding bytes (one at a time where it matters)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.messages import (
    AuthChallenge,
    AuthProof,
    Chat,
    ClientMessage,
    Ended,
    Error,
    Greeting,
    Hello,
    Joined,
    Left,
    Members,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    RawLine,
    Renamed,
    Say,
    SendRates,
    ServerMessage,
    Welcome,
)
from app.protocol import (
    _ESCAPES,
    GREETING,
    MAX_ID,
    MAX_LINE,
    MAX_NAME,
    VERSION,
    HostSideParser,
    JoinerSideParser,
    LineSplitter,
    check_name,
    clean_text,
    encode_client,
    encode_json,
    encode_text,
    is_bye,
    name_key,
    refusal_line,
    text_lines,
)

HELLO = encode_client(Hello("Ann", VERSION))
GREETING_LINE = (GREETING + "\n").encode()


def feed_pieces(feed: Callable[[bytes], list[Any]], data: bytes, cuts: Sequence[int]) -> list[Any]:
    """Feed `data` cut at the given offsets, collecting every result in order."""
    out: list[Any] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += feed(data[start:cut])
        start = cut
    return out


def bytewise(feed: Callable[[bytes], list[Any]], data: bytes) -> list[Any]:
    return feed_pieces(feed, data, range(len(data)))


def app_host() -> HostSideParser:
    """A host-side parser that has already read an app peer's hello."""
    parser = HostSideParser()
    assert parser.feed(HELLO) == [Hello("Ann", VERSION)]
    return parser


def parley_joiner() -> JoinerSideParser:
    """A joiner-side parser that has already read a Parley greeting."""
    parser = JoinerSideParser()
    assert parser.feed(GREETING_LINE) == [Greeting(GREETING, VERSION)]
    return parser


# --- is_bye ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["bye", "Bye!", "  bye. ", "BYE?!", "bye…", "bYe", "bye\n", "bye !!"]
)
def test_is_bye_accepts_a_plain_bye(text: str) -> None:
    assert is_bye(text)


@pytest.mark.parametrize(
    "text",
    [
        "goodbye",
        "I'm fine. Bye!",
        "bye bye",
        "byebye",
        "",
        "   ",
        "by",
        "bye, all",
        "/bye",
        "bye:)",
    ],
)
def test_is_bye_refuses_anything_more(text: str) -> None:
    assert not is_bye(text)


# --- clean_text -----------------------------------------------------------------------------------


def test_clean_text_removes_whole_escape_sequences() -> None:
    cleaned = clean_text("\x1b[31mred\x1b[0m \x1b]0;title\x07 \x9b2J done \x1bPq#0\x1b\\ok\x1bc")
    assert cleaned == "red   done ok"


def test_clean_text_leaves_no_remains_of_an_unfinished_sequence() -> None:
    assert clean_text("before \x1b[31") == "before "
    assert clean_text("before \x1b]0;never ends") == "before "


@pytest.mark.parametrize("ch", ["\x00", "\x08", "\x0b", "\x0c", "\r", "\x7f", "\x85", "\x9c"])
def test_clean_text_removes_c0_and_c1_controls(ch: str) -> None:
    assert clean_text(f"a{ch}b") == "ab"


@pytest.mark.parametrize(
    "ch", ["\u202e", "\u202d", "\u2066", "\u2067", "\u2069", "\u200e", "\ufeff"]
)
def test_clean_text_removes_bidi_overrides_and_invisible_formatting(ch: str) -> None:
    assert clean_text(f"abc{ch}def") == "abcdef"


def test_clean_text_keeps_newline_tab_and_ordinary_text() -> None:
    text = "line one\n\tindented — Zoë, 日本語, ①, café"
    assert clean_text(text) == text


def test_clean_text_drops_leading_and_trailing_newlines_only() -> None:
    assert clean_text("\n\n  hi  \n\n") == "  hi  "


@pytest.mark.parametrize(
    "emoji",
    [
        "😀",
        "👍🏽",  # skin tone modifier
        "❤️",  # variation selector
        "🇫🇷",  # regional indicators
        "1️⃣",  # keycap
        "👨\u200d👩\u200d👧",  # zero-width-joiner family
        "🏳️\u200d🌈",
    ],
)
def test_clean_text_keeps_emoji_whole(emoji: str) -> None:
    assert clean_text(f"look {emoji}!") == f"look {emoji}!"


def _clean_text_one_char_at_a_time(text: str) -> str:
    """What clean_text did before it became one pass in C (about 11 ms per 64 KB): the
    reference the fast version must agree with."""
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n")
    text = _ESCAPES.sub("", text)
    keep = "\n\t\u200c\u200d"
    return "".join(
        ch for ch in text if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf")
    ).strip("\n")


# Unicode 15 (newer than this Python's tables) made U+13439..U+1343F format characters: the
# fast version, with the newer data, removes them; the reference would not.
_SAME_DATA = st.characters(blacklist_categories=("Cs",)).filter(
    lambda ch: not 0x13430 <= ord(ch) <= 0x1345F
)


@given(
    st.text(st.one_of(_SAME_DATA, st.sampled_from("\x1b[]\x07\x9b\x9d\x9c\\P0;m\n\t\u2028\u2029")))
)
@settings(max_examples=500)
def test_clean_text_agrees_with_the_one_character_at_a_time_reference(text: str) -> None:
    assert clean_text(text) == _clean_text_one_char_at_a_time(text)


def test_clean_text_keeps_the_zero_width_non_joiner_some_scripts_need() -> None:
    persian = "می\u200cخواهم"
    assert clean_text(persian) == persian


def test_clean_text_joins_surrogate_pairs_and_drops_lone_halves() -> None:
    # Tk can hand over an emoji as two UTF-16 halves; a peer's JSON can hold a lone half,
    # which cannot be encoded as UTF-8 and would break every later write.
    cleaned = clean_text("a\ud83d\ude00b\ud800c\udfffd")
    assert cleaned == "a😀bcd"
    cleaned.encode("utf-8")


# --- check_name / name_key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * (MAX_NAME + 1), f"at most {MAX_NAME}"),
        ("Ann\x1b[31m", "U+001B"),
        ("Ann\tLee", "U+0009"),
        ("Ann\nLee", "U+000A"),
        ("An\x85n", "U+0085"),
        ("\u202eevil", "U+202E"),
        ("Ann\u200b", "U+200B"),
        ("An\u200dn", "U+200D"),
        ("Ann\u2028Lee", "U+2028"),
        ("Ann\ue000", "U+E000"),
        ("Ann\ud800", "U+D800"),
        ("/nick", "'/'"),
        ("  /who", "'/'"),
    ],
)
def test_check_name_refuses_in_plain_words(name: str, words: str) -> None:
    with pytest.raises(ValueError, match="name") as info:
        check_name(name)
    assert words in str(info.value)


def test_check_name_accepts_and_trims() -> None:
    assert check_name("  Ann  ") == "Ann"
    assert check_name("Zoë 🦊") == "Zoë 🦊"
    assert check_name("x" * MAX_NAME) == "x" * MAX_NAME
    assert check_name("a/b") == "a/b"


def test_check_name_collapses_runs_of_spaces() -> None:
    # Otherwise "Ann  Lee" could pass for "Ann Lee" in a member list.
    assert check_name("Ann   Lee") == "Ann Lee"


def test_name_key_is_equal_for_case_and_compatibility_variants() -> None:
    assert name_key("Ann") == name_key("ANN") == name_key("ａｎｎ") == name_key("ＡＮＮ")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("ﬁsh") == name_key("fish")
    assert name_key("Ann") != name_key("Anne")


# --- LineSplitter ---------------------------------------------------------------------------------


def test_splitter_gives_lines_without_their_endings() -> None:
    lines = LineSplitter(16)
    assert lines.feed(b"one\ntwo\r\n\nthr") == [b"one", b"two", b""]
    assert lines.pending == 3
    assert lines.feed(b"ee\n") == [b"three"]
    assert lines.pending == 0


def test_splitter_keeps_a_carriage_return_inside_a_line() -> None:
    assert LineSplitter(16).feed(b"a\rb\r\r\n") == [b"a\rb\r"]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_splitter_same_lines_byte_by_byte(ending: bytes) -> None:
    data = ending.join([b"alpha", b"", b"beta gamma", b"d"]) + ending
    assert bytewise(LineSplitter(16).feed, data) == LineSplitter(16).feed(data)
    assert LineSplitter(16).feed(data) == [b"alpha", b"", b"beta gamma", b"d"]


@pytest.mark.parametrize("split", [False, True])
def test_splitter_line_exactly_at_the_limit_passes(split: bool) -> None:
    lines = LineSplitter(8)
    data = b"x" * 8 + b"\nok\n"
    got = bytewise(lines.feed, data) if split else lines.feed(data)
    assert got == [b"x" * 8, b"ok"]


@pytest.mark.parametrize("split", [False, True])
def test_splitter_one_byte_over_the_limit_is_one_error_then_recovers(split: bool) -> None:
    lines = LineSplitter(8)
    data = b"x" * 9 + b"\nok\n"
    got = bytewise(lines.feed, data) if split else lines.feed(data)
    assert got == [LineSplitter.TOO_LONG, b"ok"]


def test_splitter_counts_a_carriage_return_toward_the_limit() -> None:
    # The limit is on every byte before "\n"; documented in docs/protocol.md.
    assert LineSplitter(8).feed(b"x" * 7 + b"\r\n") == [b"x" * 7]
    assert LineSplitter(8).feed(b"x" * 8 + b"\r\n") == [LineSplitter.TOO_LONG]


def test_splitter_huge_line_without_newline_uses_bounded_memory() -> None:
    lines = LineSplitter()
    errors = 0
    for _ in range(256):  # 1 MiB in 4 KiB reads
        errors += lines.feed(b"y" * 4096).count(LineSplitter.TOO_LONG)
        assert lines.pending <= MAX_LINE
    assert errors == 1
    assert lines.feed(b"tail of the long line\nafter\n") == [b"after"]
    assert lines.pending == 0


def test_splitter_huge_single_read_is_dropped_at_once() -> None:
    lines = LineSplitter(1024)
    assert lines.feed(b"z" * 100_000) == [LineSplitter.TOO_LONG]
    assert lines.pending == 0
    assert lines.feed(b"\nnext\n") == [b"next"]


def test_splitter_real_limit_is_64_kib() -> None:
    assert MAX_LINE == 64 * 1024
    lines = LineSplitter()
    assert lines.feed(b"a" * MAX_LINE + b"\n") == [b"a" * MAX_LINE]
    assert lines.feed(b"a" * (MAX_LINE + 1) + b"\n") == [LineSplitter.TOO_LONG]


# --- HostSideParser: deciding the kind of peer ----------------------------------------------------


def test_host_parser_waits_for_a_whole_first_line() -> None:
    parser = HostSideParser()
    assert parser.feed(HELLO[:-1]) == []
    assert parser.kind is None
    assert parser.feed(b"\n") == [Hello("Ann", VERSION)]
    assert parser.kind == "app"


def test_host_parser_hello_byte_by_byte() -> None:
    parser = HostSideParser()
    assert bytewise(parser.feed, HELLO + encode_client(Say("hi", "m1"))) == [
        Hello("Ann", VERSION),
        Say("hi", "m1"),
    ]
    assert parser.kind == "app"


def test_host_parser_hello_with_crlf() -> None:
    parser = HostSideParser()
    assert parser.feed(HELLO[:-1] + b"\r\n") == [Hello("Ann", VERSION)]


def test_host_parser_hello_of_another_version_is_still_a_hello() -> None:
    # The network layer answers it with a "version" error; the parser only reads it.
    line = json.dumps({"type": "hello", "version": 99, "name": "Ann"}).encode() + b"\n"
    assert HostSideParser().feed(line) == [Hello("Ann", 99)]


@pytest.mark.parametrize(
    "first",
    [
        "hello everyone",
        "",
        "{not json",
        '{"type": "msg", "text": "hi"}',
        ' {"type": "hello", "version": 1, "name": "Ann"}',
    ],
)
def test_host_parser_any_other_first_line_makes_a_text_peer(first: str) -> None:
    parser = HostSideParser()
    assert parser.feed(first.encode() + b"\nsecond\n") == [Say(first), Say("second")]
    assert parser.kind == "text"


def test_host_parser_text_peer_lines_are_said_as_they_are() -> None:
    parser = HostSideParser()
    parser.decide_text()
    lines = ["hi", "/who", '{"type":"hello","version":1,"name":"x"}', "  spaced  ", "bye"]
    data = b"".join(line.encode() + b"\r\n" for line in lines)
    # The first line after the silence may still be a hello, so start with chat.
    assert parser.feed(data) == [Say(line) for line in lines]
    assert parser.kind == "text"


def test_host_parser_hello_after_silence_upgrades_to_app() -> None:
    parser = HostSideParser()
    parser.decide_text()
    assert parser.kind == "text"
    assert parser.feed(HELLO) == [Hello("Ann", VERSION)]
    assert parser.kind == "app"


def test_host_parser_decide_text_does_not_change_an_app_peer() -> None:
    parser = app_host()
    parser.decide_text()
    assert parser.kind == "app"


def test_host_parser_bad_utf8_is_an_error_then_recovers() -> None:
    parser = app_host()
    got = parser.feed(b"\xff\xfe oops\n" + encode_client(Say("fine")))
    assert [type(m) for m in got] == [ProtocolError, Say]
    assert got[0].code == "bad_utf8"
    assert got[1] == Say("fine")


def test_host_parser_bad_utf8_first_line_makes_a_text_peer() -> None:
    parser = HostSideParser()
    got = parser.feed(b"caf\xe9\nnext\n")
    assert [m.code for m in got if isinstance(m, ProtocolError)] == ["bad_utf8"]
    assert got[1:] == [Say("next")]
    assert parser.kind == "text"


def test_host_parser_overlong_utf8_and_encoded_surrogates_are_bad() -> None:
    parser = app_host()
    got = parser.feed(b"\xc0\xaf\n\xed\xa0\x80\n")
    assert [m.code for m in got if isinstance(m, ProtocolError)] == ["bad_utf8", "bad_utf8"]


@pytest.mark.parametrize("kind", ["app", "text"])
def test_host_parser_too_long_line_is_one_error_then_recovers(kind: str) -> None:
    parser = HostSideParser(max_line=64)
    if kind == "app":
        parser.feed(HELLO)
        after, expected = encode_client(Say("after")), Say("after")
    else:
        parser.feed(b"hi\n")
        after, expected = b"after\n", Say("after")
    got = bytewise(parser.feed, b"q" * 500 + b"\n" + after)
    assert len(got) == 2
    assert isinstance(got[0], ProtocolError)
    assert got[0].code == "line_too_long"
    assert "64 bytes" in got[0].text
    assert got[1] == expected
    assert parser.kind == kind


# --- HostSideParser: JSON frames from an app peer -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("not json at all", "malformed"),
        ('{"type": "msg", "text": "hi"', "malformed"),
        ("[1, 2, 3]", "malformed"),
        ('"just a string"', "malformed"),
        ("42", "malformed"),
        ("null", "malformed"),
        ('{"text": "no type"}', "malformed"),
        ('{"type": 5, "text": "hi"}', "malformed"),
        ('{"type": null}', "malformed"),
        ('{"type": "msg"}', "malformed"),
        ('{"type": "msg", "text": 5}', "malformed"),
        ('{"type": "msg", "text": null}', "malformed"),
        ('{"type": "msg", "text": ["hi"]}', "malformed"),
        ('{"type": "msg", "text": true}', "malformed"),
        ('{"type": "msg", "text": "hi", "id": 7}', "malformed"),
        ('{"type": "msg", "text": "hi", "id": false}', "malformed"),
        ('{"type": "msg", "text": "hi", "id": "' + "i" * (MAX_ID + 1) + '"}', "malformed"),
        ('{"type": "msg", "text": "\\ud800"}', "malformed"),
        ('{"type": "msg", "text": "hi", "id": "\\udc00"}', "malformed"),
        ("[" * 50_000, "malformed"),
        ('{"type": "shout", "text": "hi"}', "unknown_type"),
        ('{"type": "", "text": "hi"}', "unknown_type"),
        ('{"type": "hello", "version": 1, "name": "Bob"}', "unexpected"),
    ],
)
def test_host_parser_bad_frames_are_errors_with_a_code(line: str, code: str) -> None:
    parser = app_host()
    got = parser.feed(line.encode() + b"\n" + encode_client(Say("still here")))
    assert len(got) == 2
    assert isinstance(got[0], ProtocolError)
    assert got[0].code == code
    assert not got[0].fatal
    assert got[0].text.endswith(".")
    assert got[1] == Say("still here")


def test_host_parser_unknown_type_names_it_briefly() -> None:
    (err,) = app_host().feed(b'{"type": "' + b"t" * 500 + b'"}\n')
    assert isinstance(err, ProtocolError)
    assert "t" * 40 in err.text
    assert "t" * 41 not in err.text


def test_host_parser_id_at_the_limit_is_accepted() -> None:
    msg_id = "i" * MAX_ID
    assert app_host().feed(encode_client(Say("hi", msg_id))) == [Say("hi", msg_id)]


def test_host_parser_ignores_unknown_fields_and_a_claimed_sender() -> None:
    line = b'{"type": "msg", "text": "hi", "from": "Host", "seq": 99, "extra": [1]}\n'
    assert app_host().feed(line) == [Say("hi")]


@pytest.mark.parametrize(
    "msg",
    [
        Say("hi"),
        Say("two\nlines", "m1"),
        Say('quotes " and \\ backslash \t tab', "id with spaces"),
        Say("emoji 🎉 Zoë 日本語"),
        Say(""),
        Ping(),
        Pong(),
        AuthProof("Y29uZmlybQ=="),
    ],
)
def test_client_messages_round_trip(msg: ClientMessage) -> None:
    data = encode_client(msg)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1  # JSON escapes newlines inside text
    assert bytewise(app_host().feed, data) == [msg]


@pytest.mark.parametrize(
    "hello",
    [
        Hello("Ann", VERSION, "cGFrZQ=="),
        Hello("Ann", VERSION, None, "tok-123", 41),
        Hello("Ann", VERSION, "cGFrZQ==", "tok-123", 0),
    ],
)
def test_hello_with_password_and_token_round_trips(hello: Hello) -> None:
    assert bytewise(HostSideParser().feed, encode_client(hello)) == [hello]


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"hello","version":1,"name":"Ann","pake":"' + "p" * (MAX_ID + 1) + '"}',
        '{"type":"hello","version":1,"name":"Ann","token":"' + "t" * (MAX_ID + 1) + '"}',
        '{"type":"hello","version":1,"name":"Ann","token":"t","last_seq":true}',
        '{"type":"hello","version":1,"name":"Ann","pake":7}',
        '{"type": "hello", "name": "Ann"}',
        '{"type": "hello", "version": 1}',
        '{"type": "hello", "version": true, "name": "Ann"}',
        '{"type": "hello", "version": "1", "name": "Ann"}',
        '{"type": "hello", "version": 1, "name": 5}',
    ],
)
def test_a_broken_hello_is_a_fatal_error_never_a_chat_line(line: str) -> None:
    """It may carry a token or a password exchange: relaying it as text would leak them."""
    parser = HostSideParser()
    (err,) = parser.feed(line.encode() + b"\n")
    assert isinstance(err, ProtocolError)
    assert (err.code, err.fatal) == ("malformed", True)
    assert err.text.startswith("Malformed hello: ")


def test_auth_proof_over_the_limit_is_malformed() -> None:
    (err,) = app_host().feed(encode_client(AuthProof("c" * (MAX_ID + 1))))
    assert isinstance(err, ProtocolError)
    assert err.code == "malformed"


def test_hello_round_trips() -> None:
    data = encode_client(Hello("Zoë 🦊", VERSION))
    assert json.loads(data) == {"type": "hello", "version": VERSION, "name": "Zoë 🦊"}
    assert HostSideParser().feed(data) == [Hello("Zoë 🦊", VERSION)]


def test_client_encoding_is_compact_utf8_json() -> None:
    assert encode_client(Say("é", "m1")) == '{"type":"msg","text":"é","id":"m1"}\n'.encode()
    assert encode_client(Say("x")) == b'{"type":"msg","text":"x"}\n'
    assert encode_client(Ping()) == b'{"type":"ping"}\n'
    assert encode_client(Pong()) == b'{"type":"pong"}\n'


# --- JoinerSideParser -----------------------------------------------------------------------------


def test_joiner_reads_the_parley_greeting() -> None:
    parser = JoinerSideParser()
    assert bytewise(parser.feed, GREETING_LINE) == [Greeting(GREETING, VERSION)]
    assert parser.mode == "parley"
    assert GREETING.startswith(f"PARLEY/{VERSION} ")


def test_joiner_reads_a_refusal_in_place_of_the_greeting() -> None:
    parser = JoinerSideParser()
    data = refusal_line("This Parley room is encrypted.")
    (greeting,) = bytewise(parser.feed, data)
    assert greeting == Greeting(
        data.decode().rstrip("\n"), VERSION, "This Parley room is encrypted."
    )
    (plain,) = JoinerSideParser().feed(GREETING_LINE)
    assert plain == Greeting(GREETING, VERSION, None)


@pytest.mark.parametrize(
    ("line", "version"),
    [("PARLEY/1", 1), ("PARLEY/2 future", 2), ("PARLEY/1\r", 1), ("PARLEY/123456 x", 123456)],
)
def test_joiner_greeting_versions(line: str, version: int) -> None:
    parser = JoinerSideParser()
    assert parser.feed(line.encode() + b"\n") == [Greeting(line.rstrip("\r"), version)]
    assert parser.mode == "parley"


@pytest.mark.parametrize(
    "line", ["hello from nc", "", "parley/1", "PARLEY/", "PARLEY/x", "PARLEY/1234567", " PARLEY/1"]
)
def test_joiner_other_first_line_means_raw_mode(line: str) -> None:
    parser = JoinerSideParser()
    got = parser.feed(line.encode() + b'\n{"type":"end","reason":"r"}\n')
    assert got == [Greeting(line, None), RawLine(line), RawLine('{"type":"end","reason":"r"}')]
    assert parser.mode == "raw"


def test_joiner_decide_raw_after_silence() -> None:
    parser = JoinerSideParser()
    parser.decide_raw()
    assert parser.mode == "raw"
    assert parser.feed(GREETING_LINE) == [RawLine(GREETING)]


def test_joiner_decide_raw_does_not_change_a_parley_session() -> None:
    parser = parley_joiner()
    parser.decide_raw()
    assert parser.mode == "parley"
    assert parser.feed(encode_json(Joined("Bob"))) == [Joined("Bob")]


def test_joiner_bad_utf8_before_the_greeting_keeps_waiting() -> None:
    parser = JoinerSideParser()
    got = parser.feed(b"\xff\n" + GREETING_LINE)
    assert isinstance(got[0], ProtocolError)
    assert got[0].code == "bad_utf8"
    assert got[1:] == [Greeting(GREETING, VERSION)]


def test_joiner_raw_mode_too_long_and_bad_lines_are_errors() -> None:
    parser = JoinerSideParser(max_line=32)
    parser.decide_raw()
    got = bytewise(parser.feed, b"r" * 100 + b"\n\xc3\x28\nok\n")
    assert [getattr(m, "code", None) for m in got] == ["line_too_long", "bad_utf8", None]
    assert got[2] == RawLine("ok")


SERVER_MESSAGES: list[ServerMessage] = [
    Chat(1, "Ann", "hello", 1_700_000_000.25),
    Chat(2, "Bob", "two\nlines", 1_700_000_001.0, "m7"),
    Chat(3, "Zoë 🦊", 'quotes " \\ and tab\t, 日本語 🎉', 0.0),
    Chat(4, "Ann", "/literal slash", 5.0),
    Welcome("Ann", ("Host", "Ann")),
    Welcome(
        "Ann (2)",
        ("Host", "Ann", "Ann (2)"),
        (Chat(1, "Host", "hi", 1.0), Chat(2, "Ann", "a\nb", 2.5, "m1")),
        "The name Ann is taken; you are Ann (2).",
    ),
    Joined("Bob"),
    Left("Bob"),
    Left("Bob", "connection lost"),
    Renamed("Bob", "Robert"),
    Members(("Host", "Ann")),
    Members(()),
    Notice("Commands: /who"),
    Error("name_taken", "The name Bob is taken."),
    Ended(),
    Ended("You left the chat."),
    Ping(),
    Pong(),
    AuthChallenge("cGFrZQ==", "Y29uZmlybQ=="),
    Welcome("Ann", ("Ann",), (), None, "tok-1"),
    Welcome("Ann", ("Ann",), (Chat(9, "Bob", "missed", 3.0),), "n", "tok-1", resumed=True),
]


@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=repr)
def test_server_messages_round_trip(msg: ServerMessage) -> None:
    data = encode_json(msg)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert bytewise(parley_joiner().feed, data) == [msg]


def test_server_encoding_field_names() -> None:
    chat = json.loads(encode_json(Chat(5, "Ann", "hi", 12.5, "m1")))
    assert chat == {"type": "msg", "seq": 5, "from": "Ann", "text": "hi", "time": 12.5, "id": "m1"}
    welcome = json.loads(encode_json(Welcome("Ann", ("Ann",))))
    assert welcome == {"type": "welcome", "name": "Ann", "members": ["Ann"], "history": []}
    assert json.loads(encode_json(Ended("r"))) == {"type": "end", "reason": "r"}
    assert json.loads(encode_json(Members(("a",)))) == {"type": "members", "names": ["a"]}


def test_all_server_messages_in_one_stream_any_split() -> None:
    data = GREETING_LINE + b"".join(encode_json(m) for m in SERVER_MESSAGES)
    expected = [Greeting(GREETING, VERSION), *SERVER_MESSAGES]
    assert JoinerSideParser().feed(data) == expected
    assert bytewise(JoinerSideParser().feed, data) == expected


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("plain words", "malformed"),
        ("[]", "malformed"),
        ('{"type": "msg", "seq": 1, "from": "A", "text": "t"}', "malformed"),
        ('{"type": "msg", "seq": true, "from": "A", "text": "t", "time": 1}', "malformed"),
        ('{"type": "msg", "seq": 1.5, "from": "A", "text": "t", "time": 1}', "malformed"),
        ('{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": true}', "malformed"),
        ('{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": "noon"}', "malformed"),
        ('{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": NaN}', "malformed"),
        ('{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": Infinity}', "malformed"),
        (
            '{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": 1' + "0" * 400 + "}",
            "malformed",
        ),
        ('{"type": "msg", "seq": 1, "from": "\\ud800", "text": "t", "time": 1}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": ["A", 2], "history": []}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": "A", "history": []}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": ["A"], "history": [1]}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": ["A"], "history": [{}]}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": ["A"]}', "malformed"),
        ('{"type": "welcome", "name": "A", "members": ["\\udfff"], "history": []}', "malformed"),
        ('{"type": "joined"}', "malformed"),
        ('{"type": "left", "name": "A"}', "malformed"),
        ('{"type": "renamed", "old": "A", "new": 1}', "malformed"),
        ('{"type": "error", "code": "x"}', "malformed"),
        ('{"type": "end", "reason": false}', "malformed"),
        ('{"type": "party"}', "unknown_type"),
        ('{"type": "hello", "version": 1, "name": "A"}', "unknown_type"),
    ],
)
def test_joiner_bad_frames_are_errors_with_a_code(line: str, code: str) -> None:
    parser = parley_joiner()
    got = parser.feed(line.encode() + b"\n" + encode_json(Joined("Bob")))
    assert len(got) == 2
    assert isinstance(got[0], ProtocolError)
    assert got[0].code == code
    assert got[0].text.endswith(".")
    assert "__name__" not in got[0].text
    assert got[1] == Joined("Bob")


def test_joiner_time_must_be_a_number_in_plain_words() -> None:
    line = b'{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": "noon"}\n'
    (err,) = parley_joiner().feed(line)
    assert isinstance(err, ProtocolError)
    assert "'time' must be a number" in err.text


def test_joiner_accepts_an_integer_time() -> None:
    line = b'{"type": "msg", "seq": 1, "from": "A", "text": "t", "time": 17}\n'
    assert parley_joiner().feed(line) == [Chat(1, "A", "t", 17.0)]


def test_joiner_null_note_and_id_mean_none() -> None:
    parser = parley_joiner()
    welcome = b'{"type":"welcome","name":"A","members":["A"],"history":[],"note":null}\n'
    chat = b'{"type":"msg","seq":1,"from":"A","text":"t","time":1,"id":null}\n'
    assert parser.feed(welcome + chat) == [Welcome("A", ("A",)), Chat(1, "A", "t", 1.0)]


# --- text encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "text"),
    [
        (Chat(1, "Ann", "hello", 1.0), "Ann: hello\n"),
        (Chat(1, "Ann", "one\ntwo\n\nfour", 1.0, "m1"), "Ann: one\nAnn: two\nAnn: \nAnn: four\n"),
        (Welcome("Ann", ("Host", "Ann")), "* You are Ann. In the room: Host, Ann.\n"),
        (
            Welcome(
                "Ann (2)",
                ("Ann", "Ann (2)"),
                (Chat(1, "Ann", "hi\nthere", 1.0),),
                "The name Ann is taken; you are Ann (2).",
            ),
            "* You are Ann (2). In the room: Ann, Ann (2).\n"
            "* The name Ann is taken; you are Ann (2).\n"
            "(earlier) Ann: hi\n"
            "(earlier) Ann: there\n",
        ),
        (Joined("Bob"), "* Bob joined.\n"),
        (Left("Bob"), "* Bob left.\n"),
        (Left("Bob", "connection lost"), "* Bob left (connection lost).\n"),
        (Renamed("Bob", "Robert"), "* Bob is now Robert.\n"),
        (Members(("Host", "Bob")), "* In the room: Host, Bob.\n"),
        (Notice("Commands: /who"), "* Commands: /who\n"),
        (Error("name_taken", "The name Bob is taken."), "! The name Bob is taken.\n"),
        (Ended(), "* The host ended the chat.\nChat ended.\n"),
        (Ended("You left the chat."), "* You left the chat.\nChat ended.\n"),
        (Chat(2, "Zoë", "日本語 🎉", 1.0), "Zoë: 日本語 🎉\n"),
    ],
    ids=repr,
)
def test_encode_text(msg: ServerMessage, text: str) -> None:
    assert encode_text(msg) == text.encode("utf-8")
    assert text_lines(msg) == text.splitlines()


@pytest.mark.parametrize("msg", [Ping(), Pong(), AuthChallenge("p", "c")])
def test_keepalives_encode_to_nothing_for_text_peers(msg: ServerMessage) -> None:
    assert encode_text(msg) == b""


# --- any chunking gives the same result as one read -----------------------------------------------

SMALL = 48  # a small limit, so that generated lines often pass it

_line_bodies = st.one_of(
    st.text(max_size=20).map(lambda s: s.replace("\n", " ").encode("utf-8", "surrogatepass")),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b),
    st.sampled_from(
        [
            HELLO[:-1],
            encode_client(Say("hi", "m1"))[:-1],
            encode_client(Ping())[:-1],
            encode_json(Joined("Bob"))[:-1],
            encode_json(Chat(1, "A", "x", 1.0))[:-1],
            GREETING_LINE[:-1],
            b"PARLEY/1",
            b"{",
            b"",
        ]
    ),
    st.integers(SMALL - 2, SMALL + 3).map(lambda n: b"L" * n),
    st.integers(SMALL + 1, 4 * SMALL).map(lambda n: b"M" * n),
)
_streams = st.lists(st.tuples(_line_bodies, st.sampled_from([b"\n", b"\r\n"])), max_size=12).map(
    lambda parts: b"".join(body + end for body, end in parts)
)


@st.composite
def _stream_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    data = draw(_streams) + draw(st.binary(max_size=8))  # maybe an unfinished last line
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=len(data) + 1))
    return data, cuts


def _host_after_silence(max_line: int) -> HostSideParser:
    parser = HostSideParser(max_line)
    parser.decide_text()
    return parser


def _joiner_raw(max_line: int) -> JoinerSideParser:
    parser = JoinerSideParser(max_line)
    parser.decide_raw()
    return parser


PARSERS: list[Callable[[int], Any]] = [
    LineSplitter,
    HostSideParser,
    _host_after_silence,
    JoinerSideParser,
    _joiner_raw,
]


@pytest.mark.parametrize("make", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=150, deadline=None)
@given(case=_stream_and_cuts())
def test_any_chunking_gives_the_same_messages(
    make: Callable[[int], Any], case: tuple[bytes, list[int]]
) -> None:
    data, cuts = case
    whole, pieces, single = make(SMALL), make(SMALL), make(SMALL)
    expected = whole.feed(data)
    assert feed_pieces(pieces.feed, data, cuts) == expected
    assert bytewise(single.feed, data) == expected
    for state in ("kind", "mode"):
        assert getattr(pieces, state, None) == getattr(whole, state, None)
        assert getattr(single, state, None) == getattr(whole, state, None)


# --- docs/protocol.md stays true ------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def _doc_frames() -> list[str]:
    """Every one-line JSON example in the document's json blocks."""
    frames, in_json = [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_json = line == "```json"
        elif in_json and line.startswith("{") and line.endswith("}"):
            frames.append(line)
    return frames


def test_doc_greeting_is_the_real_one() -> None:
    assert f"\n{GREETING}\n" in DOC.read_text(encoding="utf-8")


def test_doc_session_parses_in_its_direction() -> None:
    host, joiner = HostSideParser(), parley_joiner()
    lines = 0
    for line in DOC.read_text(encoding="utf-8").splitlines():
        side, _, frame = line.partition(": ")
        if side in ("host", "joiner") and frame.lstrip().startswith("{"):
            parser: Any = host if side == "joiner" else joiner
            got = parser.feed(frame.strip().encode() + b"\n")
            assert got
            assert not any(isinstance(m, ProtocolError) for m in got), (line, got)
            lines += 1
    assert lines >= 8
    assert host.kind == "app"


def test_doc_json_examples_are_valid_frames() -> None:
    frames = _doc_frames()
    assert len(frames) >= 12  # the extractor found the examples
    for frame in frames:
        data = frame.encode() + b"\n"
        as_host = [m for m in app_host().feed(data) if not isinstance(m, ProtocolError)]
        as_joiner = [m for m in parley_joiner().feed(data) if not isinstance(m, ProtocolError)]
        first = HostSideParser().feed(data)
        assert as_host or as_joiner or isinstance(first[0], Hello), frame


# --- the welcome's limits -------------------------------------------------------------------------


def test_a_welcome_carries_the_members_limits_both_ways() -> None:
    rates = SendRates(rate=20.0, burst=40.0, byte_rate=32768.0, byte_burst=262144.0)
    welcome = Welcome("Ann", ("Hal", "Ann"), limits=rates)
    assert json.loads(encode_json(welcome))["limits"] == {
        "rate": 20.0,
        "burst": 40.0,
        "bytes": 32768.0,
        "byte_burst": 262144.0,
    }
    assert parley_joiner().feed(encode_json(welcome)) == [welcome]
    no_limits = Welcome("Ann", ("Hal", "Ann"))
    assert "limits" not in json.loads(encode_json(no_limits))
    assert parley_joiner().feed(encode_json(no_limits)) == [no_limits]


@pytest.mark.parametrize(
    "limits", ['"fast"', '{"rate":-1}', '{"rate":"20"}', '{"bytes":1e999}', '{"burst":true}']
)
def test_a_welcome_with_broken_limits_is_malformed(limits: str) -> None:
    line = f'{{"type":"welcome","name":"Ann","members":[],"history":[],"limits":{limits}}}\n'
    (got,) = parley_joiner().feed(line.encode())
    assert isinstance(got, ProtocolError)
    assert got.code == "malformed"


def test_a_text_welcome_lists_names_in_a_small_room_and_counts_them_in_a_big_one() -> None:
    small = encode_text(Welcome("guest2", ("Host", "Ann", "guest2"))).decode()
    assert small.startswith("* You are guest2. In the room: Host, Ann, guest2.\n")
    names = tuple(f"guest{i}" for i in range(5000))
    big = encode_text(Welcome("guest4999", names)).decode()
    assert big.startswith("* You are guest4999. In the room: 5,000 members (/who lists them).\n")
    assert len(big) < 200


_json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=2**53),
    sender=_json_text,
    text=_json_text,
    time=st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 2**40),
    msg_id=st.none() | _json_text,
    to=st.none() | _json_text,
)
def test_a_chat_frame_is_byte_for_byte_what_json_dumps_writes(
    seq: int, sender: str, text: str, time: float, msg_id: str | None, to: str | None
) -> None:
    """The host's hand-made `msg` frame (no dict, json's own string encoder) must equal the
    frame json.dumps made before it, for every text: quotes, backslashes, control and
    non-ASCII characters, line separators, any number."""
    chat = Chat(seq, sender, text, time, msg_id, to)
    obj: dict[str, Any] = {"type": "msg", "seq": seq, "from": sender, "text": text, "time": time}
    if msg_id is not None:
        obj["id"] = msg_id
    if to is not None:
        obj["to"] = to
    expected = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    assert encode_json(chat) == expected
