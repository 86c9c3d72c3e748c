"""Files in the terminal: the /send, /accept, /decline and /cancel commands, and progress.

Commands are read here, before a line goes to the room (they are the person's own, not the
host's). Progress on a terminal redraws one status line in place (with the prompt after it); when
output is not a terminal (a script, a log) it prints at most one line per transfer every
`PLAIN_EVERY` seconds, and always the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app import events as ev
from app.transfer import describe_progress, format_size

PLAIN_EVERY = 5.0
USAGE = {
    "/send": 'Usage: /send PATH, or /send @NAME PATH (a name with spaces in quotes: @"Ann Lee")',
    "/accept": "Usage: /accept N (the number shown with the offer)",
    "/decline": "Usage: /decline N (the number shown with the offer)",
    "/cancel": "Usage: /cancel N (the number of a file on its way)",
}


@dataclass(frozen=True)
class SendCommand:
    path: str
    to: str | None = None


@dataclass(frozen=True)
class NumberCommand:
    verb: str  # accept, decline or cancel
    number: int


def parse_command(line: str) -> SendCommand | NumberCommand | str | None:
    """A file command, a usage line (str) for one typed wrongly, or None: not ours."""
    word, _, rest = line.strip().partition(" ")
    word = word.lower()
    if word not in USAGE:
        return None
    rest = rest.strip()
    if word != "/send":
        return NumberCommand(word[1:], int(rest)) if rest.isdigit() else USAGE[word]
    to: str | None = None
    if rest.startswith("@"):
        if rest.startswith('@"'):
            to, quote, rest = rest[2:].partition('"')
            if not quote:
                return USAGE[word]
        else:
            to, _, rest = rest[1:].partition(" ")
        rest = rest.strip()
        if not to:
            return USAGE[word]
    if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
        rest = rest[1:-1]
    if not rest:
        return USAGE[word]
    return SendCommand(str(Path(rest).expanduser()), to)


def describe_file(event: ev.Event) -> list[str]:
    """Lines for file events other than progress."""
    if isinstance(event, ev.FileOffered):
        you = " you" if event.private else ""
        n = event.number
        return [
            f"{event.sender} offers{you} {event.name} ({format_size(event.size)}): "
            f"/accept {n} or /decline {n}"
        ]
    if isinstance(event, ev.FileSending):
        to = ", ".join(event.to) if event.to else "nobody yet"
        return [
            f"Offering {event.name} ({format_size(event.size)}) to {to} as file "
            f"{event.number} (/cancel {event.number} withdraws it)."
        ]
    if isinstance(event, ev.FileEnded):
        if event.status == "received" and event.incoming:
            return [f"{event.text} (file {event.number})"]
        return [f"* {event.text}"]
    return []


class Progress:
    """Turns `FileProgress` events into one redrawn status line, or occasional plain lines."""

    def __init__(
        self, interactive: bool, redraw: Callable[[str], None], clock: Callable[[], float]
    ) -> None:
        self.interactive = interactive
        self._redraw = redraw
        self._clock = clock
        self._names: dict[int, str] = {}
        self._moving: dict[tuple[int, str], tuple[str, str]] = {}  # (line, short form)
        self._printed: dict[tuple[int, str], float] = {}

    def seen(self, event: ev.Event) -> list[str]:
        """Remember names; forget finished transfers. Returns plain lines to print."""
        if isinstance(event, ev.FileOffered | ev.FileSending):
            self._names[event.number] = event.name
        elif isinstance(event, ev.FileEnded):
            for key in [k for k in self._moving if k[0] == event.number]:
                if event.peer is None or key[1] == event.peer:
                    del self._moving[key]
            self._status()
        elif isinstance(event, ev.FileProgress):
            return self._progress(event)
        return []

    def _progress(self, event: ev.FileProgress) -> list[str]:
        key = (event.number, event.peer)
        name = self._names.get(event.number, f"file {event.number}")
        way = "from" if event.incoming else "to"
        text = f"[{event.number}] {name} {way} {event.peer}: " + describe_progress(
            event.done, event.size, event.rate, event.eta
        )
        percent = 100 if event.size == 0 else event.done * 100 // event.size
        self._moving[key] = (text, f"[{event.number}] {percent}%")
        if self.interactive:
            self._status()
            return []
        now = self._clock()
        last = self._printed.get(key)
        if last is None or now - last >= PLAIN_EVERY or event.done >= event.size:
            self._printed[key] = now
            return [text]
        return []

    def _status(self) -> None:
        if self.interactive:
            moving = list(self._moving.values())
            line = moving[0][0] if len(moving) == 1 else " | ".join(s for _, s in moving)
            self._redraw(line + "  " if moving else "")


def clock() -> float:
    return time.monotonic()
