"""The host's room: members, their names, the recent history and message numbering. No I/O.

Every method returns the deliveries it causes, as `Send(to=member ids, message=...)`, in the
order they must go out; the network layer encodes each message once per kind of peer and writes
it. Member 0, when present, is the host's own person, whose deliveries become UI events.

The room is the one place that stamps a message: sequence number, the sender's name as the room
knows it, and the time. A member never chooses its own "from".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

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
HELP = "Commands: /who lists members, /nick NEW renames you. Start a line with // to send a '/'."


@dataclass
class Member:
    id: int
    name: str
    kind: str  # "local", "app" or "text"


class Room:
    def __init__(self, *, history: int = HISTORY, clock: Callable[[], float] = time.time) -> None:
        self._members: dict[int, Member] = {}
        self._by_key: dict[str, int] = {}
        self._history: deque[Chat] = deque(maxlen=history)
        self._clock = clock
        self._seq = 0
        self._guests = 0
        self.ended = False

    # --- questions -----------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self._members.values())

    def name_of(self, member_id: int) -> str:
        return self._members[member_id].name

    def id_of(self, name: str) -> int | None:
        return self._by_key.get(name_key(name))

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def last_seq(self) -> int:
        return self._seq

    # --- changes -------------------------------------------------------------------------------

    def join(self, member_id: int, requested: str | None, kind: str) -> list[Send]:
        """Admit a member under `requested` (or a guest name), made valid and unique."""
        if self.ended:
            return [Send((member_id,), Ended())]
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
        self._members[member_id] = Member(member_id, name, kind)
        self._by_key[name_key(name)] = member_id
        welcome = Welcome(name, self.names(), tuple(self._history), note)
        return [Send((member_id,), welcome), Send(others, Joined(name))]

    def upgrade(self, member_id: int, requested: str) -> list[Send]:
        """A guest admitted for its silence sent a hello after all: give it its name and a
        proper welcome (the others see a rename)."""
        member = self._members.get(member_id)
        if member is None:
            return []
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
        welcome = Welcome(member.name, self.names(), tuple(self._history), note)
        return [*sends, Send((member_id,), welcome)]

    def leave(self, member_id: int, reason: str = "left") -> list[Send]:
        """Remove a member (no-op if already gone) and tell the others why."""
        member = self._members.pop(member_id, None)
        if member is None:
            return []
        del self._by_key[name_key(member.name)]
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
            return self._command(member, text)
        self._seq += 1
        chat = Chat(self._seq, member.name, text, self._clock())
        self._history.append(chat)
        sends = [Send(self._ids(exclude=member_id), chat)]
        if msg_id is not None:  # an id asks for an echo: the sender's acknowledgement
            sends.append(Send((member_id,), Chat(chat.seq, chat.sender, text, chat.time, msg_id)))
        if is_bye(text):
            if member.kind == "local":
                return sends + self.end()
            sends.append(Send((member_id,), Ended("You left the chat.")))
            sends += self.leave(member_id)
        return sends

    def end(self, reason: str = "The host ended the chat.") -> list[Send]:
        """End the room for everyone; later calls do nothing."""
        if self.ended:
            return []
        self.ended = True
        everyone = self._ids()
        self._members.clear()
        self._by_key.clear()
        return [Send(everyone, Ended(reason))]

    # --- helpers -------------------------------------------------------------------------------

    def _command(self, member: Member, text: str) -> list[Send]:
        word, _, arg = text.partition(" ")
        me = (member.id,)
        if word == "/who":
            return [Send(me, Members(self.names()))]
        if word == "/nick":
            return self._rename(member, arg)
        if word == "/help":
            return [Send(me, Notice(HELP))]
        return [Send(me, Notice(f"Unknown command {word[:40]}. {HELP}"))]

    def _rename(self, member: Member, requested: str) -> list[Send]:
        me = (member.id,)
        try:
            name = check_name(requested)
        except ValueError as exc:
            return [Send(me, Error("bad_name", f"{exc} Usage: /nick NEW"))]
        holder = self._by_key.get(name_key(name))
        if holder is not None and holder != member.id:
            return [Send(me, Error("name_taken", f"The name {name} is taken."))]
        if name == member.name:
            return []
        old = member.name
        del self._by_key[name_key(old)]
        member.name = name
        self._by_key[name_key(name)] = member.id
        return [Send(self._ids(), Renamed(old, name))]

    def _unique(self, name: str) -> str:
        candidate, n = name, 1
        while name_key(candidate) in self._by_key:
            n += 1
            suffix = f" ({n})"
            candidate = name[: MAX_NAME - len(suffix)] + suffix
        return candidate

    def _guest_name(self) -> str:
        while True:
            self._guests += 1
            name = f"guest{self._guests}"
            if name_key(name) not in self._by_key:
                return name

    def _ids(self, exclude: int | None = None) -> tuple[int, ...]:
        return tuple(i for i in self._members if i != exclude)
