"""Invite links: everything a joiner needs in one line of text a host can paste into any chat.

    parley://192.168.1.5:5151/#fp=<43 chars of base64url>&pw=<percent-encoded password>

The fingerprint pins the host's certificate, so whoever joins through an invite is safe from
someone in the middle even on first contact. Fingerprint and password live after ``#`` (the
fragment): if the link is ever opened in a browser, that part is not sent to any server.
IPv6 hosts go in brackets, with a zone's ``%`` written ``%25`` as RFC 6874 says.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

SCHEME = "parley"
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def check_host(host: str) -> str:
    """A host name or IP address in one canonical spelling, or ValueError in plain words."""
    bare = host.strip()
    bracketed = bare.startswith("[") and bare.endswith("]")
    if bracketed:
        bare = bare[1:-1]
    if ":" in bare or bracketed:
        try:
            return str(ipaddress.IPv6Address(bare))
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv6 address.") from None
    try:
        return str(ipaddress.IPv4Address(bare))
    except ValueError:
        pass
    name = bare.lower()
    if not _HOST_NAME.fullmatch(name):
        raise ValueError(f"{host!r} is not a host name or IP address.")
    return name


@dataclass(frozen=True)
class Invite:
    """Where to connect, which certificate to expect, and the room's password if it has one."""

    host: str
    port: int
    fingerprint: str
    password: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", check_host(self.host))
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValueError("The port must be a whole number.")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"The port must be a number from 1 to 65535, not {self.port}.")
        from app.security import normalize_fingerprint  # with ssl: only when an invite is made

        object.__setattr__(self, "fingerprint", normalize_fingerprint(self.fingerprint))
        if self.password is not None:
            if not self.password:
                raise ValueError("An empty password means no password: use None.")
            try:
                self.password.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("A password cannot contain unpaired surrogates.") from None

    @property
    def address(self) -> str:
        """The address as people type it: host:port, with an IPv6 host in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_text(self) -> str:
        host = f"[{quote(self.host, safe=':.')}]" if ":" in self.host else self.host
        from app.security import compact_fingerprint

        text = f"{SCHEME}://{host}:{self.port}/#fp={compact_fingerprint(self.fingerprint)}"
        if self.password is not None:
            text += f"&pw={quote(self.password, safe='')}"
        return text

    def __str__(self) -> str:
        return self.to_text()


def make_invite(host: str, port: int, fingerprint: str, password: str | None = None) -> str:
    """The invite text for a room (ValueError if any part is not valid)."""
    return Invite(host, port, fingerprint, password).to_text()


def is_invite(text: str) -> bool:
    """True when `text` is meant as an invite (it starts with parley://), valid or not.

    The address box uses this to choose: an invite that is damaged should be reported as a
    damaged invite by `parse_invite`, not tried as a host name.
    """
    return text.strip().lstrip("<").lower().startswith(f"{SCHEME}://")


def _split_host_port(where: str) -> tuple[str, int]:
    if where.startswith("["):
        inside, sep, rest = where[1:].partition("]")
        if not sep:
            raise ValueError("The invite's IPv6 address is missing its closing ']'.")
        host = f"[{unquote(inside)}]" if inside else ""
        if not rest:
            raise ValueError("The invite has no port after the address.")
        if not rest.startswith(":"):
            raise ValueError(f"The invite has {rest!r} where the port should be.")
        port_text = rest[1:]
    else:
        host, sep, port_text = where.rpartition(":")
        if not sep:
            raise ValueError("The invite has no port after the address.")
        if ":" in host:
            raise ValueError("An IPv6 address in an invite must be written in [brackets].")
    if not host:
        raise ValueError("The invite has no host address.")
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"The invite's port must be a number, not {port_text!r}.")
    return host, int(port_text)


def _fields(fragment: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in fragment.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"The invite has {part!r} where 'name=value' was expected.")
        if key in fields:
            raise ValueError(f"The invite gives {key!r} twice.")
        fields[key] = value
    return fields


def parse_invite(text: str) -> Invite:
    """The invite in `text`, or ValueError saying in plain words what is wrong with it."""
    link = text.strip()
    if link.startswith("<") and link.endswith(">"):  # as some mail programs wrap links
        link = link[1:-1].strip()
    scheme, sep, rest = link.partition("://")
    if not sep or scheme.lower() != SCHEME:
        raise ValueError(f"This is not a Parley invite: an invite starts with {SCHEME}://.")
    where, _, fragment = rest.partition("#")
    if where.endswith("/"):
        where = where[:-1]
    if not where:
        raise ValueError("The invite has no host address.")
    if any(ch in where for ch in "/?@ "):
        raise ValueError(f"The invite's address part {where!r} is not HOST:PORT.")
    host, port = _split_host_port(where)
    fields = _fields(fragment)
    if "fp" not in fields:
        raise ValueError("The invite has no fingerprint (fp=...); ask the host for a new one.")
    try:
        from app.security import normalize_fingerprint

        fingerprint = normalize_fingerprint(fields["fp"])
    except ValueError:
        raise ValueError(
            "The invite's fingerprint is damaged (it may have been cut off when it was copied)."
        ) from None
    password: str | None = None
    if fields.get("pw"):
        try:
            password = unquote(fields["pw"], errors="strict")
        except UnicodeDecodeError:
            raise ValueError("The invite's password is not valid percent-encoded text.") from None
    return Invite(host, port, fingerprint, password)


__all__ = ["Invite", "check_host", "is_invite", "make_invite", "parse_invite"]
