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
import itertools
import sys
from collections.abc import Iterable
from typing import Protocol

from app.messages import Chat, ChatRun

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


_ASCII_STR = sys.getsizeof("")  # what an ASCII string takes besides its characters
_COMPACT = 4096  # dropped slots a MemoryLog lets pile up before it deletes them at once
_GONE = Chat(0, "", "", 0.0)  # what a dropped slot holds until then (not its message)


class MemoryLog:
    """A `MessageLog` in memory, bounded by `max_count` messages and `max_bytes` of memory.

    The messages sit in a list from `_head` on (the slots before it are dropped: they hold
    `_GONE`, and are deleted in one go once there are `_COMPACT` of them and they are half
    the list); `_sums[i]` is the
    cost of every message before slot i (one more entry: the total), so what is kept costs
    `_sums[-1] - _sums[_head]` and trimming is a bisection, not a step per message dropped.
    A flood's read of 50 lines is kept in a few C calls (`extend`)."""

    def __init__(self, max_count: int = LOG_COUNT, max_bytes: int = LOG_BYTES) -> None:
        self.max_count = max(0, max_count)
        self.max_bytes = max(0, max_bytes)
        self._items: list[Chat] = []
        self._sums: list[int] = [0]
        self._head = 0
        self._last = 0

    def append(self, chat: Chat) -> None:
        self.extend([chat])

    def extend(self, chats: list[Chat]) -> None:
        """`append` each of `chats` (in increasing order), trimming once at the end: the
        same messages stay as when they are appended one by one."""
        if not chats:
            return
        self._last = max(self._last, chats[-1].seq)
        costs: Iterable[int]
        if type(chats) is ChatRun:  # a read's lines: one sender
            extra = sys.getsizeof(chats.sender) + _ENTRY
            texts = chats.texts
            if "".join(texts).isascii():  # an ASCII string's size is its length and a header
                costs = map((extra + _ASCII_STR).__add__, map(len, texts))
            else:
                costs = map(extra.__add__, map(sys.getsizeof, texts))
        else:
            costs = map(chat_cost, chats)
        sums = self._sums
        sums += itertools.islice(itertools.accumulate(costs, initial=sums[-1]), 1, None)
        items = self._items
        items += chats
        # The newest that fit both bounds (a message bigger than max_bytes fits nowhere, so
        # nothing before it stays either, as appending it alone would leave it).
        head = max(self._head, len(items) - self.max_count)
        head = max(head, bisect.bisect_left(sums, sums[-1] - self.max_bytes, lo=head))
        if head > self._head:  # let go of the texts dropped now (the slots stay a while)
            items[self._head : head] = itertools.repeat(_GONE, head - self._head)
        if head >= _COMPACT and head * 2 >= len(items):
            del items[:head]
            del sums[:head]
            head = 0
        self._head = head

    def after(self, seq: int, limit: int) -> list[Chat]:
        items = self._items
        start = bisect.bisect_right(items, seq, lo=self._head, key=_seq)
        return items[start : start + max(0, limit)]

    def before(self, seq: int, limit: int) -> list[Chat]:
        items = self._items
        end = bisect.bisect_left(items, seq, lo=self._head, key=_seq)
        return items[max(self._head, end - max(0, limit)) : end]

    def clear(self) -> None:
        self._items = []
        self._sums = [0]
        self._head = 0

    def get(self, seq: int) -> Chat | None:
        items = self._items
        i = bisect.bisect_left(items, seq, lo=self._head, key=_seq)
        if i < len(items) and items[i].seq == seq:
            return items[i]
        return None

    @property
    def first_seq(self) -> int:
        return self._items[self._head].seq if len(self) else self._last + 1

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def bytes(self) -> int:
        """Memory the kept messages take (what `max_bytes` bounds)."""
        return self._sums[-1] - self._sums[self._head]

    def __len__(self) -> int:
        return len(self._items) - self._head


def _seq(chat: Chat) -> int:
    return chat.seq
