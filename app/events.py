"""What the network worker tells a front end. Frozen dataclasses, posted to a queue.

A session (hosting or joining) posts events in order and always ends with exactly one of
`ChatEnded` or `Failed`; front ends may rely on that to re-enable their controls.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hosting:
    """The room is open. `addresses` are "host:port" strings others can use to reach it;
    `invite` carries the best address, the identity's fingerprint and any password."""

    name: str
    port: int
    addresses: tuple[str, ...]
    safety_code: str = ""
    fingerprint: str = ""
    invite: str = ""
    password: bool = False
    allow_plain: bool = False


@dataclass(frozen=True)
class Connecting:
    host: str
    port: int


@dataclass(frozen=True)
class Connected:
    """In the room as `name`. `foreign` means the server is not Parley (plain lines both ways)."""

    name: str
    host: str
    port: int
    members: tuple[str, ...]
    note: str | None = None
    foreign: bool = False
    safety_code: str | None = None  # None: not encrypted
    resumed: bool = False  # back after a dropped connection, as the same member


@dataclass(frozen=True)
class Reconnecting:
    """The connection dropped; the next try is in `delay` seconds. The transcript stays; what
    the user sends meanwhile waits (pending) and goes out once back."""

    delay: float
    reason: str
    attempt: int = 1


@dataclass(frozen=True)
class MessageReceived:
    """A chat line. `mine` marks the user's own message as the host accepted it."""

    sender: str | None
    text: str
    time: float | None = None
    seq: int | None = None
    mine: bool = False
    earlier: bool = False
    id: str | None = None


@dataclass(frozen=True)
class MessagePending:
    """The user sent `text`; it shows as pending until a `MessageReceived` with the same id."""

    id: str
    text: str


@dataclass(frozen=True)
class MemberJoined:
    """`address`, `encrypted` and `safety_code` are known to the host only (the code in
    password rooms)."""

    name: str
    members: tuple[str, ...]
    address: str | None = None
    safety_code: str | None = None
    encrypted: bool | None = None


@dataclass(frozen=True)
class IdentityChanged:
    """The host at `address` shows another identity than the one remembered: refused.

    Joining again with `trust_new` accepts the new identity; people should compare
    `safety_code` with the host's first.
    """

    address: str
    safety_code: str


@dataclass(frozen=True)
class MemberLeft:
    name: str
    reason: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class MemberRenamed:
    old: str
    new: str
    members: tuple[str, ...]
    you: bool = False


@dataclass(frozen=True)
class NoticeShown:
    text: str


@dataclass(frozen=True)
class ErrorShown:
    text: str


@dataclass(frozen=True)
class ChatEnded:
    """The session is over; `reason` says why in plain words."""

    reason: str = ""


@dataclass(frozen=True)
class Failed:
    """The session could not start (or broke); `text` says what happened and what to try."""

    text: str


Event = (
    Hosting
    | Connecting
    | Connected
    | Reconnecting
    | MessageReceived
    | MessagePending
    | MemberJoined
    | IdentityChanged
    | MemberLeft
    | MemberRenamed
    | NoticeShown
    | ErrorShown
    | ChatEnded
    | Failed
)
