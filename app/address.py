"""Parsing what people type as an address: "host", "host:port", "[::1]:5151"."""

from __future__ import annotations

from typing import Any

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


def format_address(addr: tuple[Any, ...]) -> str:
    """host:port as people type it, IPv6 in brackets, IPv4-mapped IPv6 as plain IPv4."""
    host, port = str(addr[0]), addr[1]
    if host.startswith("::ffff:"):
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_addresses(bind: str | None, port: int) -> list[str]:
    """The "address:port" strings others may use to reach this machine, best first (here, not
    in the engine, so that the window can show them before the network stack is imported)."""
    if bind not in (None, "", "0.0.0.0", "::"):
        return [format_address((bind, port))]
    v4, v6 = _machine_ips()
    return [f"{ip}:{port}" for ip in v4] + [f"[{ip}]:{port}" for ip in v6] or [f"127.0.0.1:{port}"]


def _machine_ips() -> tuple[list[str], list[str]]:
    """This machine's IPv4 and IPv6 addresses, without loopback and link-local ones."""
    ifaddr = _ifaddr()
    v4: list[str] = []
    v6: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ip.ip.startswith("127."):
                    v4.append(ip.ip)
            else:
                addr = ip.ip[0]
                if addr != "::1" and not addr.lower().startswith("fe80"):
                    v6.append(addr)
    return v4, v6


def _ifaddr() -> Any:
    """The `ifaddr` module, imported without running `ldconfig -p` on Linux.

    On import, ifaddr opens libc by `ctypes.util.find_library("c")`, which on Linux runs
    `ldconfig -p` in a process of its own: about 15 ms of the 20 its first listing took, while
    the window is being built. On Linux the program's own symbols (`ctypes.CDLL(None)`) include
    libc's getifaddrs and freeifaddrs, all it calls, so find_library answers None for "c" during
    that one import (and only then)."""
    import sys

    if "ifaddr" in sys.modules or not sys.platform.startswith("linux"):
        import ifaddr

        return ifaddr
    import ctypes.util

    find_library = ctypes.util.find_library

    def no_ldconfig_for_libc(name: str) -> str | None:
        return None if name == "c" else find_library(name)

    ctypes.util.find_library = no_ldconfig_for_libc
    try:
        import ifaddr
    finally:
        ctypes.util.find_library = find_library
    return ifaddr
