"""What people type as an address or port (app/address.py), and the words they get back."""

from __future__ import annotations

import re

import pytest

from app.address import parse_address, parse_port

DEFAULT = 5151


@pytest.mark.parametrize(
    ("text", "port"),
    [("5151", 5151), (" 80 ", 80), ("0", 0), ("65535", 65535), ("00080", 80), ("１２３", 123)],
)
def test_parse_port_accepts_numbers_in_range(text: str, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize(
    "text",
    ["", " ", "65536", "99999", "-1", "+80", "80a", "eighty", "8 0", "1e3", "²", "9" * 5000],
    ids=lambda text: text[:10],
)
def test_parse_port_refuses_in_plain_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"^Port must be a number from 0 to 65535, not ") as info:
        parse_port(text)
    assert str(info.value).endswith(".")
    assert len(str(info.value)) < 120  # a 5000-digit answer is not plain words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.5", ("192.168.1.5", DEFAULT)),
        ("192.168.1.5:6000", ("192.168.1.5", 6000)),
        ("  example.lan:80  ", ("example.lan", 80)),
        ("localhost", ("localhost", DEFAULT)),
        ("host:0", ("host", 0)),
        ("[::1]:5151", ("::1", 5151)),
        ("[::1]", ("::1", DEFAULT)),
        ("[2001:db8::7]:9000", ("2001:db8::7", 9000)),
        ("[fe80::1%eth0]:7", ("fe80::1%eth0", 7)),
        ("::1", ("::1", DEFAULT)),
        ("2001:db8::7", ("2001:db8::7", DEFAULT)),
        ("fe80::1%eth0", ("fe80::1%eth0", DEFAULT)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, DEFAULT) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "Enter the host's address"),
        ("   ", "Enter the host's address"),
        ("[::1", "missing its closing ']'"),
        ("[::1:80", "missing its closing ']'"),
        ("[]", "no address between"),
        ("[]:80", "no address between"),
        ("[::1]80", "Unexpected '80' after the address"),
        ("[::1]:", "Port must be a number"),
        ("[::1]:http", "Port must be a number"),
        ("[::1]:70000", "Port must be a number"),
        (":80", "before the ':'"),
        ("host:", "Port must be a number"),
        ("host:port", "Port must be a number"),
        ("host:99999", "Port must be a number"),
        ("my host", "has a space in it"),
        ("my host:80", "has a space in it"),
        ("[my host]:80", "has a space in it"),
        ("host\t:80", "has a space in it"),
    ],
)
def test_parse_address_refuses_in_plain_words(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        parse_address(text, DEFAULT)
    message = str(info.value)
    assert message.endswith(".")
    assert "invalid literal" not in message
