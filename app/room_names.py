"""A room's name on the network: what fits a DNS-SD instance name. Pure functions, no zeroconf
(the window and the argument parser use them without loading the network stack)."""

from __future__ import annotations

MAX_INSTANCE = 63  # bytes: the DNS-SD limit for an instance name


def default_room_name(person: str) -> str:
    return trim_room_name(f"{person}'s room")


def trim_room_name(name: str) -> str:
    """`name` cut to what fits a DNS-SD instance name (63 bytes of UTF-8), without dots at its
    ends (some resolvers trip over them) and without control characters."""
    if not name.isprintable():  # the window's hint, drawn before its first paint, never is
        # `clean_text` would return printable text as it is; importing it loads the protocol
        # (its dataclasses and `regex`), which the first screen has no other use for.
        from app.protocol import clean_text

        name = clean_text(name)
    name = " ".join(name.split())
    data = name.encode("utf-8")[:MAX_INSTANCE]
    return data.decode("utf-8", "ignore").strip(" .")


def check_room_name(name: str) -> str | None:
    """Why `name` cannot be a room's name, or None when it can."""
    if not trim_room_name(name):
        return "A room name needs at least one letter or digit."
    if len(" ".join(name.split()).encode("utf-8")) > MAX_INSTANCE:
        return f"A room name is at most {MAX_INSTANCE} bytes (about 60 letters)."
    return None
