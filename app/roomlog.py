"""The room's log: the messages a newcomer's history and a returning member's resume come from.

How this works
--------------
The `Room` appends every chat message it numbers and asks the log two questions: which messages
come after sequence number N (a page at a time, so a resume is read lazily, never copied whole),
and which is message N (to acknowledge a message sent again). `MessageLog` is that interface, small
on purpose so the log can live elsewhere (a SQLite file that survives restarts) without the room
or the host changing.

`MemoryLog` keeps the log in memory, bounded twice: by count and by **bytes** (the memory its
texts and names take), dropping the oldest first. A room of 64 KB messages therefore holds a few
hundred of them, not a thousand copies of 64 KB per member.
"""

from __future__ import annotations

import bisect
import sys
from collections import deque
from typing import Protocol

from app.messages import Chat

LOG_COUNT = 1000  # messages kept for members coming back ...
LOG_BYTES = 16 << 20  # ... and at most this much memory for them
_ENTRY = 120  # what a Chat and its slot cost besides its strings


class MessageLog(Protocol):
    """What the room needs from its log. Sequence numbers are appended in increasing order."""

    def append(self, chat: Chat) -> None:
        """Keep `chat` (its `seq` is higher than any kept before)."""

    def extend(self, chats: list[Chat]) -> None:
        """`append` each of `chats`, in order."""

    def after(self, seq: int, limit: int) -> list[Chat]:
        """Up to `limit` messages numbered after `seq`, oldest first."""

    def before(self, seq: int, limit: int) -> list[Chat]:
        """Up to `limit` messages numbered before `seq`, oldest first (the newest such)."""

    def get(self, seq: int) -> Chat | None:
        """Message number `seq`, if it is still kept."""

    def clear(self) -> None:
        """Forget every message kept (the numbering goes on)."""

    @property
    def first_seq(self) -> int:
        """The oldest number still kept (`last_seq + 1` when nothing is)."""

    @property
    def last_seq(self) -> int:
        """The newest number ever appended (0 for a new log)."""


def chat_cost(chat: Chat) -> int:
    """The memory one logged message holds (its strings and its slot), in bytes."""
    return sys.getsizeof(chat.text) + sys.getsizeof(chat.sender) + _ENTRY


class MemoryLog:
    """A `MessageLog` in memory, bounded by `max_count` messages and `max_bytes` of memory."""

    def __init__(self, max_count: int = LOG_COUNT, max_bytes: int = LOG_BYTES) -> None:
        self.max_count = max(0, max_count)
        self.max_bytes = max(0, max_bytes)
        self._items: deque[Chat] = deque()
        self._costs: deque[int] = deque()  # each kept message's chat_cost, worked out once
        self._bytes = 0
        self._last = 0

    def append(self, chat: Chat) -> None:
        self._last = max(self._last, chat.seq)
        cost = chat_cost(chat)
        if self.max_count == 0 or cost > self.max_bytes:
            self.clear()
            return
        items, costs = self._items, self._costs
        items.append(chat)
        costs.append(cost)
        self._bytes += cost
        while len(items) > self.max_count or self._bytes > self.max_bytes:
            items.popleft()
            self._bytes -= costs.popleft()

    def extend(self, chats: list[Chat]) -> None:
        """`append` each of `chats` (in increasing order), trimming once at the end."""
        if not chats:
            return
        self._last = max(self._last, chats[-1].seq)
        costs = [chat_cost(chat) for chat in chats]
        if self.max_count == 0 or max(costs) > self.max_bytes:
            for chat in chats:  # the rare case: one too big for the log, as append does it
                self.append(chat)
            return
        self._items.extend(chats)
        self._costs.extend(costs)
        self._bytes += sum(costs)
        items, kept = self._items, self._costs
        while len(items) > self.max_count or self._bytes > self.max_bytes:
            items.popleft()
            self._bytes -= kept.popleft()

    def after(self, seq: int, limit: int) -> list[Chat]:
        start = bisect.bisect_right(self._items, seq, key=lambda c: c.seq)
        end = min(len(self._items), start + max(0, limit))
        return [self._items[i] for i in range(start, end)]

    def before(self, seq: int, limit: int) -> list[Chat]:
        end = bisect.bisect_left(self._items, seq, key=lambda c: c.seq)
        start = max(0, end - max(0, limit))
        return [self._items[i] for i in range(start, end)]

    def clear(self) -> None:
        self._items.clear()
        self._costs.clear()
        self._bytes = 0

    def get(self, seq: int) -> Chat | None:
        i = bisect.bisect_left(self._items, seq, key=lambda c: c.seq)
        if i < len(self._items) and self._items[i].seq == seq:
            return self._items[i]
        return None

    @property
    def first_seq(self) -> int:
        return self._items[0].seq if self._items else self._last + 1

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def bytes(self) -> int:
        """Memory the kept messages take (what `max_bytes` bounds)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
