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

History and resumes are never one frame: the room answers a newcomer (or a member coming back)
with its `Welcome` and a `Replay` instruction naming a range of its log. The network layer reads
that range a page at a time (`replay_page`), as fast as the member's connection takes it, so
what a member missed costs the host at most its write cap in flight, however much it missed.
Each message's text is kept once, in the log (`app/roomlog.py`, bounded in count and bytes); a
member's echo store keeps only the ids it sent and the numbers they got.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Protocol

from app.messages import (
    Chat,
    ChatRun,
    Ended,
    Error,
    Joined,
    Left,
    Members,
    Notice,
    Renamed,
    Replay,
    Send,
    Welcome,
    new_chat,
)
from app.protocol import MAX_NAME, check_name, clean_text, is_bye, name_key, text_too_long
from app.roomlog import LOG_BYTES, LOG_COUNT, MemoryLog, MessageLog

HISTORY = 20
HELP = (
    "Commands: /who lists members, /nick NEW renames you, /msg NAME text says something to NAME "
    "only (a name with spaces in quotes: /msg \"Ann B\" hi). Start a line with // to send a '/'."
)
MSG_USAGE = 'Usage: /msg NAME text (a name with spaces in quotes: /msg "Ann B" hello).'


class Journal(Protocol):
    """Where the room writes down what must outlive the process (the host's room log)."""

    def record(self, chat: Chat, token: str | None) -> None: ...
    def record_many(self, chats: list[Chat], token: str | None) -> None: ...
    def record_texts(
        self, first: int, sender: str, texts: list[str], stamp: float, token: str | None
    ) -> None: ...
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
    # Ids of messages it sent -> (seq, time, to) the room gave them: enough to acknowledge one
    # sent again without keeping its text a second time; `echo_ids` is seq -> id.
    accepted: OrderedDict[str, tuple[int, float, str | None]] = field(default_factory=OrderedDict)
    echo_ids: dict[int, str] = field(default_factory=dict)
    away_until: float = 0.0
    # A replay that started after this seq was cut short because the member did not read it:
    # coming back with no progress past it gets no second replay (no replay loops).
    stalled_after: int | None = None
    encrypted: bool = True  # its connection is TLS (the host's own person: always)


class Room:
    """`history` messages go to newcomers; `resume_log` (more) to members coming back, who
    may have missed more. A member whose connection dropped is held for `grace` seconds:
    its name stays reserved and its token brings it back as the same member."""

    def __init__(
        self,
        *,
        history: int = HISTORY,
        resume_log: int = LOG_COUNT,
        log_bytes: int = LOG_BYTES,
        log: MessageLog | None = None,
        grace: float = 60.0,
        clock: Callable[[], float] = time.time,
        new_token: Callable[[], str] = lambda: secrets.token_urlsafe(18),
        journal: Journal | None = None,
        epoch: str | None = None,
    ) -> None:
        self._members: dict[int, Member] = {}
        self._all_ids: tuple[int, ...] | None = None  # see _ids
        self._positions: dict[int, int] | None = None
        self._by_key: dict[str, int] = {}
        self._away: dict[str, Member] = {}  # token -> member whose connection dropped
        self._reserved: dict[str, str] = {}  # name key -> token of the member away
        self._history = history
        self.log: MessageLog = log or MemoryLog(max(history, resume_log), log_bytes)
        self._grace = grace
        self._clock = clock
        self._new_token = new_token
        self._seq = self.log.last_seq
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
            self.log.append(Chat(chat.seq, chat.sender, chat.text, chat.time, to=chat.to))
            sender = held.get(sender_token or "")
            if sender is not None and chat.id is not None:  # its acknowledgement, if sent again
                _remember(sender, chat.id, chat)

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

    def holder_of(self, token: str | None) -> int | None:
        """The member id still connected with `token` (its old connection half-open), if any."""
        if token is None:
            return None
        for member in self._members.values():
            if member.token == token and member.kind == "app":
                return member.id
        return None

    def replay_page(
        self, member_id: int, replay: Replay, after: int, limit: int
    ) -> tuple[list[Chat], int]:
        """The next page of `replay` for a member, read from up to `limit` logged messages
        numbered after `after` (and at most `replay.until`): what it may see of them, and the
        `after` of the next page; the replay is done when that reaches `replay.until`.

        A newcomer's history holds public messages only; a resume gives the member's own
        messages their ids back: they acknowledge what it sent before the drop."""
        page = [c for c in self.log.after(after, limit) if c.seq <= replay.until]
        following = page[-1].seq if page else replay.until
        member = self._members.get(member_id)
        if member is None:
            return [], replay.until
        if replay.earlier:
            return [c for c in page if c.to is None], following
        ids = member.echo_ids
        chats = [
            replace(c, id=ids[c.seq]) if c.seq in ids else c
            for c in page
            if self._may_see(member, c)
        ]
        return chats, following

    def replay_stalled(self, member_id: int, replay: Replay) -> None:
        """The member's connection stopped taking `replay` (it is being dropped for not
        reading): if it comes back claiming no more than before, it is not replayed again."""
        member = self._members.get(member_id)
        if member is not None and not replay.earlier:
            member.stalled_after = replay.after

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
        holder = self.holder_of(token)
        if holder is not None and holder != member_id:
            return self._take_over(member_id, self._members[holder], last_seq, encrypted)
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
        self._changed()
        self._by_key[name_key(name)] = member_id
        if self.journal is not None and member.token is not None:
            self.journal.member_in(member.token, name)
        welcome = Welcome(
            name, self.names(), (), note, member.token, epoch=self.epoch, plain=self.plain_names()
        )
        return [
            Send((member_id,), welcome),
            *self._recent(member_id),
            Send(others, Joined(name, not encrypted)),
        ]

    def _resume(self, member_id: int, member: Member, last_seq: int) -> list[Send]:
        del self._reserved[name_key(member.name)]
        others = self._ids()
        member.id = member_id
        self._members[member_id] = member
        self._changed()
        self._by_key[name_key(member.name)] = member_id
        return [
            *self._welcome_back(member, last_seq),
            Send(others, Joined(member.name, not member.encrypted)),
        ]

    def _take_over(
        self, member_id: int, member: Member, last_seq: int, encrypted: bool
    ) -> list[Send]:
        """A member came back while the host still held its old connection (half-open): the
        new connection takes its place in the member list, and nobody else sees it leave or
        join (unless its encryption changed, which everyone must be told)."""
        old = member.id
        self._members = {(member_id if k == old else k): m for k, m in self._members.items()}
        self._changed()
        member.id = member_id
        self._by_key[name_key(member.name)] = member_id
        sends = self._welcome_back(member, last_seq)
        if member.encrypted != encrypted:
            member.encrypted = encrypted
            sends.append(
                Send(self._ids(exclude=member_id), Members(self.names(), self.plain_names()))
            )
        return sends

    def _welcome_back(self, member: Member, last_seq: int) -> list[Send]:
        """A resumed welcome, then a replay of what the member missed (its own messages with
        their ids, so it neither shows them twice nor sends them again)."""
        last_seq = max(0, min(last_seq, self._seq))
        notes: list[str] = []
        first = self.log.first_seq
        if last_seq < first - 1:
            notes.append(
                f"{first - 1 - last_seq} earlier messages not shown: too old to send again."
            )
            last_seq = first - 1
        if member.stalled_after is not None and last_seq <= member.stalled_after:
            if self._seq > last_seq:
                notes.append(
                    f"{self._seq - last_seq} messages sent while you were away were not sent "
                    "again: your connection did not take them last time."
                )
            last_seq = self._seq
        else:
            member.stalled_after = None
        me = (member.id,)
        welcome = Welcome(
            member.name,
            self.names(),
            (),
            " ".join(notes) or None,
            member.token,
            resumed=True,
            epoch=self.epoch,
            plain=self.plain_names(),
        )
        sends = [Send(me, welcome)]
        if last_seq < self._seq:
            sends.append(Send(me, Replay(last_seq, self._seq, earlier=False)))
        return sends

    def forget_log(self) -> None:
        """Forget the messages kept for newcomers and returning members (numbering goes on)."""
        self.log.clear()

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
        out: list[Chat] = []
        while page := self.log.after(seq, 256):
            out += [chat for chat in page if chat.to is None]
            seq = page[-1].seq
        return tuple(out)

    def _recent(self, member_id: int) -> list[Send]:
        return self.history(member_id, self._seq)

    def history(self, member_id: int, until: int) -> list[Send]:
        """A newcomer's history, as a replay: the last `history` public messages numbered up
        to `until` (never others' private ones); nothing if there are none."""
        if self._history <= 0:
            return []
        found, start, before = 0, 0, until + 1
        while found < self._history and (page := self.log.before(before, 64)):
            for chat in reversed(page):
                if chat.to is None:
                    found += 1
                    start = chat.seq
                    if found == self._history:
                        break
            before = page[0].seq
        if found == 0:
            return []
        return [Send((member_id,), Replay(start - 1, until, earlier=True))]

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
            (),
            note,
            member.token,
            epoch=self.epoch,
            plain=self.plain_names(),
        )
        return [*sends, Send((member_id,), welcome), *self._recent(member_id)]

    def leave(self, member_id: int, reason: str = "left", hold: bool = False) -> list[Send]:
        """Remove a member (no-op if already gone) and tell the others why. With `hold`
        (its connection dropped), keep its name and token for the grace period."""
        member = self._members.pop(member_id, None)
        if member is None:
            return []
        self._changed()
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
            return [Send((member_id,), self._echo(member, msg_id))]
        refusal = text_too_long(text)
        if refusal is not None:  # the size contract: nobody gets any of it
            return [Send((member_id,), Error("too_long", refusal, msg_id))]
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

    def plain_line(self, text: str) -> str | None:
        """`text` as `say` would relay it, if `say` would relay it as it is: a chat line for
        everyone (not empty, not a command, not a bye, within the size contract). None for
        anything else, which `say` itself must see."""
        if not text.isprintable():  # printable text holds nothing that clean_text removes
            text = clean_text(text)
        if not text or text.isspace() or text[0] == "/" or is_bye(text):
            return None
        if text_too_long(text) is not None:
            return None
        return text

    def say_plain(self, member_id: int, texts: list[str]) -> list[Send]:
        """Lines from one member that `plain_line` passed (and gave), in order, as `say`
        gives them without a message id: numbered, logged and sent to everyone else, in one
        pass (a flood's lines, stamped together at one time)."""
        chats = self.stamp_plain(member_id, texts)
        if not chats:
            return []
        others = self._ids(exclude=member_id)
        return [Send(others, chat) for chat in chats]

    def stamp_plain(self, member_id: int, texts: list[str]) -> list[Chat]:
        """What `say_plain` sends, without the sends: the chats, numbered and logged, for
        everyone in the room (`everyone()`) but `member_id`. The host joins a loop turn's
        such chats into one piece per kind of member (`Host._cast_chats`)."""
        member = self._members.get(member_id)
        if member is None or self.ended or not texts:
            return []
        now = self._clock()
        name, token = member.name, member.token
        first = self._seq + 1
        self._seq += len(texts)
        chats = ChatRun(
            map(new_chat, range(first, self._seq + 1), repeat(name), texts, repeat(now))
        )
        chats.sender, chats.texts = name, texts
        self.log.extend(chats)
        if self.journal is not None:
            self.journal.record_texts(first, name, texts, now, token)
        return chats

    def everyone(self) -> tuple[int, ...]:
        """The members' ids in the room's order. The same tuple object until the member list
        changes, so `is` tells a caller that it did not."""
        return self._ids()

    def _stamp(
        self, member: Member, text: str, msg_id: str | None, to: str | None = None
    ) -> tuple[Chat, Chat | None]:
        """Number, log and journal a message; with an id, also the sender's echo."""
        self._seq += 1
        chat = Chat(self._seq, member.name, text, self._clock(), to=to)
        self.log.append(chat)
        echo = None
        if msg_id is not None:
            echo = replace(chat, id=msg_id)
            _remember(member, msg_id, chat)
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
            return [Send((member_id,), self._echo(member, msg_id))]  # sent again: once only
        if not text.strip():
            return [Send((member_id,), Error("bad_msg", MSG_USAGE))]
        refusal = text_too_long(text)
        if refusal is not None:
            return [Send((member_id,), Error("too_long", refusal, msg_id))]
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
        self._changed()
        self._by_key.clear()
        self._away.clear()
        self._reserved.clear()
        if self.journal is not None:
            self.journal.members_out()
        return [Send(everyone, Ended(reason))]

    # --- helpers -------------------------------------------------------------------------------

    def _echo(self, member: Member, msg_id: str) -> Chat:
        """The acknowledgement of a message sent again. Its text comes from the log; once the
        log no longer holds it, the echo's text is empty (the sender has its own copy)."""
        seq, stamp, to = member.accepted[msg_id]
        logged = self.log.get(seq)
        if logged is not None:
            return replace(logged, id=msg_id)
        return Chat(seq, member.name, "", stamp, msg_id, to)

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
        """The members' ids in the room's order, without `exclude`. Kept between changes of
        the member list (`_changed`): every message needs its recipients, and building
        them member by member was a tenth of the host's time in a flood."""
        ids = self._all_ids
        if ids is None:
            ids = self._all_ids = tuple(self._members)
            self._positions = None
        if exclude is None:
            return ids
        positions = self._positions
        if positions is None:
            positions = self._positions = {i: n for n, i in enumerate(ids)}
        n = positions.get(exclude)
        return ids if n is None else ids[:n] + ids[n + 1 :]

    def _changed(self) -> None:
        """The member list changed: the ids kept by `_ids` are stale."""
        self._all_ids = None


def _remember(member: Member, msg_id: str, chat: Chat) -> None:
    """Keep the id of a message a member sent (not its text: the log has that), up to ACCEPTED."""
    member.accepted[msg_id] = (chat.seq, chat.time, chat.to)
    member.echo_ids[chat.seq] = msg_id
    if len(member.accepted) > ACCEPTED:
        seq = member.accepted.popitem(last=False)[1][0]
        member.echo_ids.pop(seq, None)
