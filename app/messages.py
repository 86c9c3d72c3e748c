"""The messages Parley peers exchange, as small frozen dataclasses.

These are the vocabulary of floor 1: `protocol` turns them into bytes and back, `room` decides who
gets which. They validate nothing about the network; names and text are checked where they enter
(`protocol` for shape, `room` for policy), so a message that exists is one the code can trust.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- joiner -> host ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """An app peer's first line: who it wants to be, the protocol version it speaks, and (for a
    password room) its half of the password exchange, base64."""

    name: str
    version: int
    pake: str | None = None
    token: str | None = None  # from an earlier welcome: "I am back", within the grace period
    last_seq: int = 0  # the last message seen, so the host sends only what was missed


@dataclass(frozen=True)
class AuthProof:
    """The joiner's proof that it knows the room's password (base64), after `AuthChallenge`."""

    confirm: str


@dataclass(frozen=True)
class Say:
    """A line of chat (or a /command) from a member. `id` lets the sender match the host's echo."""

    text: str
    id: str | None = None
    to: str | None = None  # a private message: the one member to give it to


@dataclass(frozen=True)
class PlainLines:
    """A text member's read of whole lines, every one a chat line for everyone that
    `Room.plain_line` passes as it is (`protocol.plain_lines`): what `Say(text)` each would
    be, checked in one pass over the read instead of line by line. Never sent or parsed
    from the wire: the host's parser makes it for an admitted text member."""

    texts: list[str]


@dataclass(frozen=True)
class Ping:
    """Keepalive probe; the other side answers with `Pong`."""


@dataclass(frozen=True)
class Pong:
    """Answer to `Ping`."""


# --- host -> members --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chat:
    """A message as the host stamped it: the host's sequence number, sender name and time.
    `to` names the recipient of a private message (only it and the sender get it)."""

    seq: int
    sender: str
    text: str
    time: float
    id: str | None = None
    to: str | None = None


def new_chat(seq: int, sender: str, text: str, time: float) -> Chat:
    """`Chat(seq, sender, text, time)`, the same object, made without the frozen dataclass's
    `__init__` (an `object.__setattr__` per field: two thirds of a chat's making, and a
    flood makes one per line). Every field is set, `id` and `to` to None."""
    chat: Chat = object.__new__(Chat)
    fields = chat.__dict__
    fields["seq"] = seq
    fields["sender"] = sender
    fields["text"] = text
    fields["time"] = time
    fields["id"] = None
    fields["to"] = None
    return chat


class ChatRun(list[Chat]):
    """Chats one member said in one read, stamped together (`Room.stamp_plain`): numbers one
    after another, one `sender`, one time, public, no ids; `texts` are their texts, in order.
    A list of chats like any other, and what knows it skips a look at each chat: the memory
    log's costs, a text member's encoding (one join for the lot)."""

    __slots__ = ("sender", "texts")
    sender: str
    texts: list[str]


@dataclass(frozen=True)
class AuthChallenge:
    """The host's half of the password exchange and its proof (base64), answering a hello."""

    pake: str
    confirm: str


@dataclass(frozen=True)
class SendRates:
    """The host's limits on what one member sends, told in the welcome so that a joiner can
    pace itself instead of being refused: messages and bytes of text per second on average,
    and the bursts allowed. A rate of 0 means no limit."""

    rate: float = 0.0
    burst: float = 0.0
    byte_rate: float = 0.0
    byte_burst: float = 0.0


@dataclass(frozen=True)
class Welcome:
    """Sent once on admission: the member's final name, who is present, and recent history."""

    name: str
    members: tuple[str, ...]
    history: tuple[Chat, ...] = ()
    note: str | None = None
    token: str | None = None  # present this in a later hello to come back as the same member
    resumed: bool = False  # the host recognised the token: `history` is what was missed
    epoch: str | None = None  # the room's numbering: a new epoch means new sequence numbers
    plain: tuple[str, ...] = ()  # members whose connection is not encrypted (nc, --plain)
    limits: SendRates | None = None  # how fast this member may send (None: not said)


@dataclass(frozen=True)
class History:
    """Earlier messages for a newcomer, after its `Welcome`: as many as fit in one line, so a
    long history is several of these (the size contract: every frame fits `MAX_LINE`)."""

    messages: tuple[Chat, ...]


@dataclass(frozen=True)
class Joined:
    name: str
    plain: bool = False  # this member's connection is not encrypted


@dataclass(frozen=True)
class Left:
    name: str
    reason: str = "left"


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str


@dataclass(frozen=True)
class Members:
    """The answer to /who."""

    names: tuple[str, ...]
    plain: tuple[str, ...] = ()  # those of them not encrypted


@dataclass(frozen=True)
class Notice:
    """A line from the host meant for people to read (hints, command help)."""

    text: str


@dataclass(frozen=True)
class Error:
    """Something the receiver sent was refused; `code` is stable, `text` is for people."""

    code: str
    text: str
    id: str | None = None  # the refused message's id, so its sender stops waiting for it


@dataclass(frozen=True)
class Ended:
    """The chat is over for the receiver: the host ended the room, or the receiver said bye."""

    reason: str = "The host ended the chat."


@dataclass(frozen=True)
class ProtocolError:
    """Parsed from bad input; never sent as such (the host answers with `Error`)."""

    code: str
    text: str
    fatal: bool = False


@dataclass(frozen=True)
class Greeting:
    """The host's first line, as a joiner read it. `version` is None when it is not Parley."""

    line: str
    version: int | None = None
    refusal: str | None = None  # the host will not serve us, and says why


@dataclass(frozen=True)
class RawLine:
    """A line from a server that is not Parley (nc -l, ncat --chat), shown as it came."""

    text: str


ServerMessage = (
    Chat
    | Welcome
    | History
    | Joined
    | Left
    | Renamed
    | Members
    | Notice
    | Error
    | Ended
    | Ping
    | Pong
    | AuthChallenge
)
ClientMessage = Hello | Say | Ping | Pong | AuthProof


@dataclass(frozen=True)
class Replay:
    """An instruction from the room, never a frame: send the members in `to` the room log's
    messages numbered after `after` up to `until`, oldest first, paced by their connections.
    `earlier` marks a newcomer's history (sent as `History` frames); otherwise it is what a
    member coming back missed (sent as `Chat` frames, its own with their ids)."""

    after: int
    until: int
    earlier: bool


@dataclass(frozen=True)
class Send:
    """One instruction from the room: deliver `message` to each member id in `to`."""

    to: tuple[int, ...]
    message: ServerMessage | Replay
