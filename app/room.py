"""The host's room: members, their names, the recent history and message numbering. No I/O.

Every method returns the deliveries it causes, as `Send(to=member ids, message=...)`, in the
order they must go out; the network layer encodes each message once per kind of peer and writes
it. Member 0, when present, is the host's own person, whose deliveries become UI events.

The room is the one place that stamps a message: sequence number, the sender's name as the room
knows it, and the time. A member never chooses its own "from".

Private messages (`tell`, `/msg NAME text`) are numbered like the others but go to their
recipient and their sender only; `recipient` is the small "to one member" routing that anything
addressed to one person (a private message, a file offer) goes through. They are kept in the log
so that a member coming back gets those it missed, but never given to newcomers.

A `Journal` (the host's `store.RoomLog`), when given, is told every message stamped and which
members may come back, so a restarted host can `restore` the room: its numbering, its log and
the members it was holding.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from app.messages import (
    Chat,
    Ended,
    Error,
    Joined,
    Left,
    Members,
    Notice,
    Renamed,
    Send,
    Welcome,
)
from app.protocol import MAX_NAME, check_name, clean_text, is_bye, name_key

HISTORY = 20
HELP = (
    "Commands: /who lists members, /nick NEW renames you, /msg NAME text says something to NAME "
    "only (a name with spaces in quotes: /msg \"Ann B\" hi). Start a line with // to send a '/'."
)
MSG_USAGE = 'Usage: /msg NAME text (a name with spaces in quotes: /msg "Ann B" hello).'


class Journal(Protocol):
    """Where the room writes down what must outlive the process (the host's room log)."""

    def record(self, chat: Chat, token: str | None) -> None: ...
    def member_in(self, token: str, name: str) -> None: ...
    def member_out(self, token: str) -> None: ...
    def members_out(self) -> None: ...


def split_target(arg: str, names: Iterable[str]) -> tuple[str, str] | None:
    """Split "/msg" arguments into (name, text): a quoted name, else the longest run of leading
    words that is a member's name, else the first word. None if there is no text."""
    arg = arg.strip()
    if arg.startswith('"'):
        name, quote, rest = arg[1:].partition('"')
        return (name.strip(), rest.strip()) if quote and rest.strip() else None
    words = arg.split(" ")
    keys = {name_key(n) for n in names}
    for n in range(len(words) - 1, 0, -1):
        if name_key(" ".join(words[:n])) in keys:
            return " ".join(words[:n]), " ".join(words[n:]).strip()
    first, _, rest = arg.partition(" ")
    return (first, rest.strip()) if rest.strip() else None


ACCEPTED = 1024  # message ids remembered per member, to recognise a message sent again


@dataclass
class Member:
    id: int
    name: str
    kind: str  # "local", "app" or "text"
    token: str | None = None  # lets an app member come back after its connection drops
    accepted: OrderedDict[str, Chat] = field(default_factory=OrderedDict)
    away_until: float = 0.0
    encrypted: bool = True  # its connection is TLS (the host's own person: always)


class Room:
    """`history` messages go to newcomers; `resume_log` (more) to members coming back, who
    may have missed more. A member whose connection dropped is held for `grace` seconds:
    its name stays reserved and its token brings it back as the same member."""

    def __init__(
        self,
        *,
        history: int = HISTORY,
        resume_log: int = 1000,
        grace: float = 60.0,
        clock: Callable[[], float] = time.time,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        journal: Journal | None = None,
        epoch: str | None = None,
    ) -> None:
        self._members: dict[int, Member] = {}
        self._by_key: dict[str, int] = {}
        self._away: dict[str, Member] = {}  # token -> member whose connection dropped
        self._reserved: dict[str, str] = {}  # name key -> token of the member away
        self._history = history
        self._log: deque[Chat] = deque(maxlen=max(history, resume_log))
        self._grace = grace
        self._clock = clock
        self._new_token = new_token
        self._seq = 0
        self._guests = 0
        self.ended = False
        self.journal = journal
        self.epoch = epoch  # the numbering's name, sent in welcomes (the host sets it)

    def restore(
        self, last_seq: int, log: Iterable[tuple[Chat, str | None]], away: Iterable[tuple[str, str]]
    ) -> None:
        """Carry on a room from its journal: number after `last_seq`, keep the `log` of
        (message, sender's token), and hold the members `away` (token, name) for the grace
        period as if their connections had just dropped."""
        self._seq = max(self._seq, last_seq)
        until = self._clock() + self._grace
        held: dict[str, Member] = {}
        for token, name in away:
            if name_key(name) in self._by_key or name_key(name) in self._reserved:
                continue
            held[token] = Member(-1, name, "app", token, away_until=until)
            self._away[token] = held[token]
            self._reserved[name_key(name)] = token
        for chat, sender_token in log:
            self._log.append(Chat(chat.seq, chat.sender, chat.text, chat.time, to=chat.to))
            sender = held.get(sender_token or "")
            if sender is not None and chat.id is not None:  # its acknowledgement, if sent again
                sender.accepted[chat.id] = chat
                if len(sender.accepted) > ACCEPTED:
                    sender.accepted.popitem(last=False)

    # --- questions -----------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self._members.values())

    def plain_names(self) -> tuple[str, ...]:
        """The members whose connection is not encrypted, in the order of `names()`."""
        return tuple(m.name for m in self._members.values() if not m.encrypted)

    def name_of(self, member_id: int) -> str:
        return self._members[member_id].name

    def id_of(self, name: str) -> int | None:
        return self._by_key.get(name_key(name))

    def member_key(self, member_id: int) -> str:
        """Who a member is across reconnects (its token; a text peer its id): files use it to
        let a member who came back take up an offer made to it."""
        member = self._members[member_id]
        return member.token or f"#{member.id}"

    def kind_of(self, member_id: int) -> str:
        return self._members[member_id].kind

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def last_seq(self) -> int:
        return self._seq

    # --- changes -------------------------------------------------------------------------------

    def join(
        self,
        member_id: int,
        requested: str | None,
        kind: str,
        token: str | None = None,
        last_seq: int = 0,
        encrypted: bool = True,
    ) -> list[Send]:
        """Admit a member under `requested` (or a guest name), made valid and unique; or, with
        the token of a member held after a dropped connection, bring that member back.
        `encrypted` False (a plain connection) is told to everyone, in the welcome and on
        arrival."""
        if self.ended:
            return [Send((member_id,), Ended())]
        self.expire()
        if token is not None and token in self._away:
            back = self._away.pop(token)
            back.encrypted = encrypted
            return self._resume(member_id, back, last_seq)
        note: str | None = None
        if requested is None:
            name = self._guest_name()
        else:
            try:
                name = check_name(requested)
            except ValueError as exc:
                name = self._guest_name()
                note = f"Name refused: {exc} You are {name}."
            else:
                unique = self._unique(name)
                if unique != name:
                    note = f"The name {name} is taken; you are {unique}."
                name = unique
        others = self._ids()
        member = Member(member_id, name, kind, self._new_token() if kind == "app" else None)
        member.encrypted = encrypted
        self._members[member_id] = member
        self._by_key[name_key(name)] = member_id
        if self.journal is not None and member.token is not None:
            self.journal.member_in(member.token, name)
        welcome = Welcome(
            name,
            self.names(),
            self._recent(),
            note,
            member.token,
            epoch=self.epoch,
            plain=self.plain_names(),
        )
        return [Send((member_id,), welcome), Send(others, Joined(name, not encrypted))]

    def _resume(self, member_id: int, member: Member, last_seq: int) -> list[Send]:
        del self._reserved[name_key(member.name)]
        others = self._ids()
        member.id = member_id
        self._members[member_id] = member
        self._by_key[name_key(member.name)] = member_id
        # The member's own messages go back with their ids: they acknowledge what it sent
        # before the drop, so it does not show them twice or send them again.
        own = {echo.seq: echo for echo in member.accepted.values()}
        missed = tuple(
            own.get(chat.seq, chat)
            for chat in self._log
            if chat.seq > last_seq and self._may_see(member, chat)
        )
        note = None
        if self._log and last_seq < self._log[0].seq - 1:
            note = "Some messages sent while you were away are too old to send again."
        welcome = Welcome(
            member.name,
            self.names(),
            missed,
            note,
            member.token,
            resumed=True,
            epoch=self.epoch,
            plain=self.plain_names(),
        )
        return [
            Send((member_id,), welcome),
            Send(others, Joined(member.name, not member.encrypted)),
        ]

    def forget_log(self) -> None:
        """Forget the messages kept for newcomers and returning members (numbering goes on)."""
        self._log.clear()

    def expire(self) -> None:
        """Free the names of members away for longer than the grace period."""
        now = self._clock()
        for token, member in list(self._away.items()):
            if member.away_until <= now:
                del self._away[token]
                del self._reserved[name_key(member.name)]
                if self.journal is not None:
                    self.journal.member_out(token)

    def said_after(self, seq: int) -> tuple[Chat, ...]:
        """The public messages numbered after `seq` that the log still holds, oldest first: the
        same record newcomers' history is taken from (a peer greeted at `seq` hears these)."""
        return tuple(chat for chat in self._log if chat.seq > seq and chat.to is None)

    def _recent(self) -> tuple[Chat, ...]:
        if self._history <= 0:
            return ()
        public = [chat for chat in self._log if chat.to is None]  # never others' private ones
        return tuple(public[-self._history :])

    @staticmethod
    def _may_see(member: Member, chat: Chat) -> bool:
        key = name_key(member.name)
        return chat.to is None or key in (name_key(chat.to), name_key(chat.sender))

    def upgrade(self, member_id: int, requested: str) -> list[Send]:
        """A guest admitted for its silence sent a hello after all: give it its name and a
        proper welcome (the others see a rename)."""
        member = self._members.get(member_id)
        if member is None:
            return []
        self.expire()  # a name held for a member who never came back is free again
        member.kind = "app"
        note: str | None = None
        sends: list[Send] = []
        try:
            name = check_name(requested)
        except ValueError as exc:
            name, note = member.name, f"Name refused: {exc} You are {member.name}."
        else:
            del self._by_key[name_key(member.name)]
            unique = self._unique(name)
            self._by_key[name_key(member.name)] = member_id
            if unique != name:
                note = f"The name {name} is taken; you are {unique}."
            if unique != member.name:
                sends = self._rename(member, unique)
                sends = [Send(tuple(i for i in s.to if i != member_id), s.message) for s in sends]
        member.token = member.token or self._new_token()
        if self.journal is not None:
            self.journal.member_in(member.token, member.name)
        welcome = Welcome(
            member.name,
            self.names(),
            self._recent(),
            note,
            member.token,
            epoch=self.epoch,
            plain=self.plain_names(),
        )
        return [*sends, Send((member_id,), welcome)]

    def leave(self, member_id: int, reason: str = "left", hold: bool = False) -> list[Send]:
        """Remove a member (no-op if already gone) and tell the others why. With `hold`
        (its connection dropped), keep its name and token for the grace period."""
        member = self._members.pop(member_id, None)
        if member is None:
            return []
        del self._by_key[name_key(member.name)]
        if hold and member.token is not None and self._grace > 0:
            member.away_until = self._clock() + self._grace
            self._away[member.token] = member
            self._reserved[name_key(member.name)] = member.token
        elif self.journal is not None and member.token is not None:
            self.journal.member_out(member.token)
        return [Send(self._ids(), Left(member.name, reason))]

    def say(self, member_id: int, text: str, msg_id: str | None = None) -> list[Send]:
        """A member's line: a /command, a chat message, or a bye that ends their chat."""
        member = self._members.get(member_id)
        if member is None or self.ended:
            return []
        text = clean_text(text)
        if not text.strip():
            return []
        if text.startswith("//"):
            text = text[1:]
        elif text.startswith("/"):
            return self._command(member, text, msg_id)
        if msg_id is not None and msg_id in member.accepted:
            # Sent again after a reconnect: acknowledge it again, deliver it only once.
            return [Send((member_id,), member.accepted[msg_id])]
        chat, echo = self._stamp(member, text, msg_id)
        sends = [Send(self._ids(exclude=member_id), chat)]
        if echo is not None:  # an id asks for an echo: the sender's acknowledgement
            sends.append(Send((member_id,), echo))
        if is_bye(text):
            if member.kind == "local":
                return sends + self.end()
            sends.append(Send((member_id,), Ended("You left the chat.")))
            sends += self.leave(member_id)
        return sends

    def _stamp(
        self, member: Member, text: str, msg_id: str | None, to: str | None = None
    ) -> tuple[Chat, Chat | None]:
        """Number, log and journal a message; with an id, also the sender's echo."""
        self._seq += 1
        chat = Chat(self._seq, member.name, text, self._clock(), to=to)
        self._log.append(chat)
        echo = None
        if msg_id is not None:
            echo = Chat(chat.seq, chat.sender, text, chat.time, msg_id, to)
            member.accepted[msg_id] = echo
            if len(member.accepted) > ACCEPTED:
                member.accepted.popitem(last=False)
        if self.journal is not None:
            self.journal.record(echo or chat, member.token)
        return chat, echo

    def recipient(self, member_id: int, name: str) -> int | Error:
        """The member `name` names, for anything meant for one member only (a private
        message, a file offer): its id, or the error to give the sender."""
        target = self._by_key.get(name_key(name.strip()))
        shown = clean_text(name)[:MAX_NAME]
        if target is None:
            away = name_key(name.strip()) in self._reserved
            why = "is away (connection lost)" if away else "is not in the room"
            return Error("no_such_member", f"{shown} {why}: nothing was sent.")
        if target == member_id:
            return Error("no_such_member", "That is you: nothing was sent.")
        return target

    def tell(self, member_id: int, name: str, text: str, msg_id: str | None = None) -> list[Send]:
        """A private message from a member to the member called `name`, and to nobody else."""
        member = self._members.get(member_id)
        if member is None or self.ended:
            return []
        text = clean_text(text)
        if msg_id is not None and msg_id in member.accepted:
            return [Send((member_id,), member.accepted[msg_id])]  # sent again: once only
        if not text.strip():
            return [Send((member_id,), Error("bad_msg", MSG_USAGE))]
        target = self.recipient(member_id, name)
        if isinstance(target, Error):
            return [Send((member_id,), target)]
        chat, echo = self._stamp(member, text, msg_id, self._members[target].name)
        # The sender sees its own line too (a text peer has no echo, but must see it went).
        return [Send((target,), chat), Send((member_id,), echo or chat)]

    def end(self, reason: str = "The host ended the chat.") -> list[Send]:
        """End the room for everyone; later calls do nothing."""
        if self.ended:
            return []
        self.ended = True
        everyone = self._ids()
        self._members.clear()
        self._by_key.clear()
        self._away.clear()
        self._reserved.clear()
        if self.journal is not None:
            self.journal.members_out()
        return [Send(everyone, Ended(reason))]

    # --- helpers -------------------------------------------------------------------------------

    def _command(self, member: Member, text: str, msg_id: str | None = None) -> list[Send]:
        word, _, arg = text.partition(" ")
        if "\t" in word:  # "/nick<TAB>Bob"
            word, _, rest = word.partition("\t")
            arg = f"{rest} {arg}" if arg else rest
        word = word.lower()
        me = (member.id,)
        if word == "/who":
            return [Send(me, Members(self.names(), self.plain_names()))]
        if word == "/nick":
            return self._rename(member, arg)
        if word == "/help":
            return [Send(me, Notice(HELP))]
        if word == "/msg":
            target = split_target(arg, self.names())
            if target is None:
                return [Send(me, Error("bad_msg", MSG_USAGE))]
            return self.tell(member.id, target[0], target[1], msg_id)
        return [Send(me, Notice(f"Unknown command {word[:40]}. {HELP}"))]

    def _rename(self, member: Member, requested: str) -> list[Send]:
        me = (member.id,)
        try:
            name = check_name(requested)
        except ValueError as exc:
            return [Send(me, Error("bad_name", f"{exc} Usage: /nick NEW"))]
        self.expire()
        holder = self._by_key.get(name_key(name))
        reserved = self._reserved.get(name_key(name))
        if (holder is not None and holder != member.id) or reserved is not None:
            return [Send(me, Error("name_taken", f"The name {name} is taken."))]
        if name == member.name:
            return []
        old = member.name
        del self._by_key[name_key(old)]
        member.name = name
        self._by_key[name_key(name)] = member.id
        if self.journal is not None and member.token is not None:
            self.journal.member_in(member.token, name)
        return [Send(self._ids(), Renamed(old, name))]

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while name_key(candidate) in self._by_key or name_key(candidate) in self._reserved:
            n += 1
            suffix = f" ({n})"
            candidate = name[: MAX_NAME - len(suffix)].rstrip() + suffix  # no "Ann  (2)"
        return candidate

    def _guest_name(self) -> str:
        while True:
            self._guests += 1
            name = f"guest{self._guests}"
            if name_key(name) not in self._by_key and name_key(name) not in self._reserved:
                return name

    def _ids(self, exclude: int | None = None) -> tuple[int, ...]:
        return tuple(i for i in self._members if i != exclude)
