"""Export a transcript to a file people can keep: plain text or HTML, chosen by the extension.

Each line carries its date, time, sender and text, private messages marked. In HTML every piece
of text that came from someone else is escaped (`html.escape`), so nothing in a message becomes
markup, a script or a link: the page shows exactly the characters that were sent. The front ends
keep what they showed in an `ExportLog` (bounded) and hand it here.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app import events as ev  # only named in hints: the window builds an ExportLog at once
    from app.messages import Chat

KEEP = 20_000  # lines an ExportLog holds (the oldest go first)
TEXT_SUFFIXES = (".txt", ".text", ".log")
HTML_SUFFIXES = (".html", ".htm")


@dataclass(frozen=True)
class Entry:
    time: float | None
    sender: str | None
    text: str
    private: str | None = None  # the other person of a private message
    mine: bool = False
    earlier: bool = False


class ExportLog:
    """The chat lines a front end showed, in order, each once (by id and sequence number)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.entries: deque[Entry] = deque(maxlen=keep)

    def add(self, event: ev.MessageReceived) -> None:
        stamp = event.time if event.time is not None else time.time()
        self.entries.append(
            Entry(stamp, event.sender, event.text, event.private, event.mine, event.earlier)
        )

    def clear(self) -> None:
        self.entries.clear()


class ChatExportLog:
    """An `ExportLog` for the terminal, which is given a busy room's chats in batches
    (`ChatsReceived`): it keeps the chats themselves and makes their entries only when asked
    (an entry each cost the terminal as much as showing the line)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._items: deque[Entry | Chat] = deque(maxlen=keep)

    def add(self, event: ev.MessageReceived) -> None:
        stamp = event.time if event.time is not None else time.time()
        self._items.append(
            Entry(stamp, event.sender, event.text, event.private, event.mine, event.earlier)
        )

    def add_chats(self, chats: Iterable[Chat]) -> None:
        """Keep chats from others, for everyone (what `add` keeps for their events)."""
        self._items.extend(chats)

    @property
    def entries(self) -> list[Entry]:
        return [
            item if isinstance(item, Entry) else Entry(item.time, item.sender, item.text)
            for item in self._items
        ]

    def clear(self) -> None:
        self._items.clear()


def _when(stamp: float | None) -> tuple[str, str]:
    if stamp is None:
        return "", ""
    local = time.localtime(stamp)
    return time.strftime("%Y-%m-%d", local), time.strftime("%H:%M:%S", local)


def _mark(entry: Entry) -> str:
    if entry.private is None:
        return ""
    return f"(private {'to' if entry.mine else 'from'} {entry.private}) "


def render_text(room: str, entries: Iterable[Entry]) -> str:
    out = [f"Parley transcript: {room}", f"Exported {time.strftime('%Y-%m-%d %H:%M:%S')}", ""]
    for entry in entries:
        day, clock = _when(entry.time)
        sender = entry.sender if entry.sender is not None else "(server)"
        first, *rest = entry.text.split("\n")
        out.append(f"{day} {clock}  {_mark(entry)}{sender}: {first}")
        out += [f"{'':19}    {part}" for part in rest]
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1d2939}"
    "table{border-collapse:collapse}td{padding:.2em .6em;vertical-align:top}"
    ".when{color:#667085;white-space:nowrap}.who{font-weight:600}"
    ".private td{background:#fff7e6}.text{white-space:pre-wrap}"
)


def render_html(room: str, entries: Iterable[Entry]) -> str:
    import html  # here: the window builds an ExportLog before its first paint

    e = html.escape
    rows = []
    for entry in entries:
        day, clock = _when(entry.time)
        sender = entry.sender if entry.sender is not None else "(server)"
        css = ' class="private"' if entry.private is not None else ""
        mark = f"<em>{e(_mark(entry).strip())}</em> " if entry.private is not None else ""
        rows.append(
            f"<tr{css}><td class=when>{e(day)} {e(clock)}</td>"
            f"<td class=who>{mark}{e(sender)}</td><td class=text>{e(entry.text)}</td></tr>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # No script, no remote anything, even if escaping were ever to fail.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>Parley transcript: {e(room)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>Parley transcript: {e(room)}</h1>\n<table>\n" + "\n".join(rows) + "\n</table>\n"
        "</body></html>\n"
    )


def export(path: str | os.PathLike[str], room: str, entries: Iterable[Entry]) -> Path:
    """Write the transcript to `path` (.txt or .html); raises ValueError for another kind of
    file and OSError if it cannot be written. Written whole or not at all."""
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix in HTML_SUFFIXES:
        body = render_html(room, entries)
    elif suffix in TEXT_SUFFIXES:
        body = render_text(room, entries)
    else:
        raise ValueError(f"Export to a .txt or .html file (not {target.name!r}).")
    fd, tmp = tempfile.mkstemp(prefix=".parley-export-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
