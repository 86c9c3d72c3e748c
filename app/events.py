"""What the network worker tells a front end. Frozen dataclasses, posted to a queue.

A session (hosting or joining) posts events in order and always ends with exactly one of
`ChatEnded` or `Failed`; front ends may rely on that to re-enable their controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only named in a hint: a front end imports no protocol code for it
    from app.messages import Chat


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
    safety_code: str | None = None  # None: not encrypted. The host's identity code: the same
    # code the host shows (`Hosting.safety_code`), for comparing with it
    resumed: bool = False  # back after a dropped connection, as the same member
    epoch: str | None = None  # the room's numbering (a new one: the host started afresh)
    plain: tuple[str, ...] = ()  # members whose connection is not encrypted: others can read
    # what is said in the room
    session_code: str | None = None  # password rooms: the code of this session, which the
    # host sees next to this member's name (`MemberJoined.safety_code`)


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
    private: str | None = None  # a private message: the other person of the conversation
    mention: bool = False  # it names you (@Ann, or Ann as a word)
    key: str | None = None  # host identity / room epoch / seq: the same message, the same key


@dataclass(frozen=True)
class ChatsReceived:
    """Several chat lines from others, for everyone, in order: what a `MessageReceived` each
    (sender, text, time, seq; not mine, not earlier, not private) would say, as one event.
    Posted only to a front end that asked for them so (`HostOptions.view_batches`: the
    terminal), so a busy room costs the host one event per loop turn instead of one per
    line. The terminal shows no mentions, so none are looked for."""

    chats: tuple[Chat, ...]


@dataclass(frozen=True)
class MessagePending:
    """The user sent `text`; it shows as pending until a `MessageReceived` with the same id."""

    id: str
    text: str
    private: str | None = None  # sent privately to this member


@dataclass(frozen=True)
class MemberJoined:
    """`address` and `safety_code` are known to the host only (the code is the session code of
    a password room, which the member sees as its `Connected.session_code`). `encrypted` is
    False for a member whose connection is not encrypted (everyone is told); the host also
    sees True for the others. `members` is the member list after the arrival; at the host,
    arrivals announced together (`announce_wait`) share one list, the one after the last of
    them, posted one after another."""

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
class EarlierShown:
    """Lines this person kept from earlier visits to this room (the transcript on disk), shown
    below an "earlier" divider when they join. Each has a `key`, so none is shown twice."""

    messages: tuple[MessageReceived, ...]
    text: str = "earlier"


@dataclass(frozen=True)
class ErrorShown:
    text: str


@dataclass(frozen=True)
class ChatEnded:
    """The session is over; `reason` says why in plain words."""

    reason: str = ""


# What `Failed.kind` may be, so a front end can word the failure its own way.
FAILURE_KINDS = (
    "",  # something else (`text` says what)
    "refused",  # the host turned us away and said why in `text` (too many connections, wrong
    # password, room full, ...); `code` is its error code when it gave one
    "timeout",  # the host is not answering (TCP connect or encrypted handshake timed out)
    "unreachable",  # no connection at all: refused, unknown host name, network unreachable
    "not_tls",  # it answers in plain text and is not a Parley host: --plain would reach it
    "tls",  # a Parley host, but the encrypted handshake failed
    "closed",  # it closed the connection before letting us in, without saying why
    "identity",  # the host's identity does not match the invite, or changed
)


@dataclass(frozen=True)
class Failed:
    """The session could not start (or broke); `text` says what happened and what to try.
    `kind` (one of `FAILURE_KINDS`) says what sort of failure it was; `code` the host's own
    error code for a refusal that carried one."""

    text: str
    kind: str = ""
    code: str = ""


@dataclass(frozen=True)
class FileOffered:
    """Someone offers us a file: an offer card (`number` is what /accept N takes). Nothing is
    written until the user accepts."""

    number: int
    sender: str
    name: str  # already made safe to save under
    size: int
    private: bool = False  # offered to us alone


@dataclass(frozen=True)
class FileSending:
    """Our own offer is out: `to` lists who was told of it (one person, or the room)."""

    number: int
    name: str
    size: int
    to: tuple[str, ...] = ()
    private: bool = False


@dataclass(frozen=True)
class FileProgress:
    """Bytes moving: to or from `peer`. `rate` in bytes per second; `eta` in seconds or None."""

    number: int
    peer: str
    incoming: bool
    done: int
    size: int
    rate: float = 0.0
    eta: float | None = None


@dataclass(frozen=True)
class FileEnded:
    """One transfer is over (for the sender, one recipient's: `peer`). `status`: received,
    declined, cancelled, failed, refused or paused (the recipient's connection dropped and it
    may resume). `path` is where an incoming file was saved."""

    number: int
    status: str
    text: str
    peer: str | None = None
    incoming: bool = False
    path: str | None = None


@dataclass(frozen=True)
class RoomFound:
    """A room announced on the local network (new, or its details changed). `key` is its
    unique name on the network; `name` is the room's own (cleaned) name; `host` is the best of
    `addresses` to connect to. Unauthenticated: joining it is first contact on trust."""

    key: str
    name: str
    host: str
    port: int
    members: int = 0
    password: bool = False
    allow_plain: bool = False
    fingerprint: str = ""
    version: str = ""
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoomGone:
    """The room announced as `key` left the network (its goodbye, or its records ran out)."""

    key: str


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
    | EarlierShown
    | ErrorShown
    | ChatEnded
    | Failed
    | FileOffered
    | FileSending
    | FileProgress
    | FileEnded
    | RoomFound
    | RoomGone
    | ChatsReceived
)
