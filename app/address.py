"""Parsing what people type as an address: "host", "host:port", "[::1]:5151"."""

from __future__ import annotations

DEFAULT_PORT = 5151


def parse_port(text: str) -> int:
    """A TCP port from text, or ValueError in plain words (0 means "let the system choose")."""
    text = text.strip()
    # isdecimal, not isdigit: int() refuses digits such as "²"; and the length is checked before
    # int() sees the text, so a pasted run of digits gets these words, not int()'s.
    if not text.isdecimal():
        raise ValueError(f"Port must be a number from 0 to 65535, not {text!r}.")
    digits = text.lstrip("0") or "0"
    if len(digits) > 5 or int(digits) > 65535:
        shown = digits if len(digits) <= 12 else digits[:12] + "…"
        raise ValueError(f"Port must be a number from 0 to 65535, not {shown}.")
    return int(digits)


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """Split "host[:port]" (IPv6 in brackets when a port follows) into host and port."""
    text = text.strip()
    if not text:
        raise ValueError("Enter the host's address, e.g. 192.168.1.5 or 192.168.1.5:5151.")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"{text!r} is not an address: it has a space in it.")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r} is missing its closing ']'.")
        if not host:
            raise ValueError(f"{text!r} has no address between '[' and ']'.")
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"Unexpected {rest!r} after the address.")
        return host, parse_port(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not host:
            raise ValueError("Enter the host's address before the ':'.")
        return host, parse_port(port)
    return text, default_port  # a name, an IPv4 address, or a bare IPv6 address
