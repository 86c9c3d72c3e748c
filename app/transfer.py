"""Files: offers, flow-controlled chunks, resume points, hashing and safe names. No I/O here.

How this works
--------------
A file travels on the same connection as the chat, through the host: every frame is a JSON line,
and a chunk (``file_data``) is a JSON header line naming its size followed by exactly that many raw
bytes (no base64, no JSON around them: `app/protocol.py` reads them in its counted mode).

1. The sender hashes the file (SHA-256) and sends ``file_offer`` with a reference of its own. The
   host (`Relay`) checks the size against its limit, gives the offer a number (``file``), tells the
   sender (``file_offered``) and every recipient (``file_offer``: one member, or the whole room).
   Text peers get one readable line instead. Nothing is written anywhere yet.
2. A recipient that accepts sends ``file_accept`` with the offset it already holds (0, or what it
   had verified before its connection dropped). The host opens a *stream* (one per recipient) and
   asks the sender for the bytes: ``file_get`` with the stream's number, the offset and a window.
3. Flow control is h2's (`Window`), hop by hop, as an h2 proxy does it: the receiver grants the
   host a window (`WINDOW` bytes) and, once it has written what came, grants more with
   ``file_window`` (at half a window, or when it is empty); the host grants the sender a window
   of its own (`HOP_WINDOW`) and grants more as it relays chunks on into the receiver's window.
   A chunk the receiver has no room for yet waits in the host (`held`), where chat overtakes it:
   so the bytes in the pipes ahead of a chat line stay within the receiver's window, while the
   sender's window keeps the receiver fed without waiting for a grant's trip back through the
   host. The host checks every chunk against the window it granted, so it never holds more than
   the two windows per stream, whatever the sender does.
4. The receiver (`Incoming`) checks that chunks come in order, hashes as it goes and, at the last
   byte, compares the hash with the offer's. It then sends ``file_done`` (ok or not); the host
   tells the sender (``file_end``, with who received it).
5. Either side may stop: ``file_decline`` (before accepting), ``file_cancel`` (a sender cancels
   the offer for everyone; a recipient its own stream). A sender that leaves cancels its offers;
   a recipient whose connection drops loses its stream, and asks again with ``file_accept`` from
   where it got to once it is back.

Every function returns frames (or raises `FileProblem` with words for people); the network layer
writes them, and the joiner's side does the disk work.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# File bytes a sender puts in one file_data frame. Measured with benchmarks/files.py (200 MB):
# 256 KiB, 512 KiB and 1 MiB gave 163-295, 291 and 220 MB/s; larger chunks save per-chunk work
# but chat waits behind up to one chunk already handed to a connection.
CHUNK = 512 * 1024
MAX_CHUNK = 1 << 20  # the most any file_data header may announce; more is a protocol error
WINDOW = 4 << 20  # bytes a receiver lets be in flight per stream (the host holds at most this)
HOP_WINDOW = 4 << 20  # bytes the host lets a sender have in flight per stream, held or sent on
MAX_FILE_SIZE = 4 << 30  # the host's default limit (4 GiB); 0 means no files at all
MAX_FILE_NAME = 120  # characters of a saved name (bytes of UTF-8 stay well under 255)
MAX_REF = 64
MAX_OFFERS = 32  # open offers per member: each holds a little of the host's memory
_HEX64 = re.compile(r"[0-9a-f]{64}")


class FileProblem(Exception):
    """Something about a file or a frame that people should read; `code` is stable."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# --- sizes and names ---------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2}
_UNITS |= {"mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4}
_UNITS |= {"tb": 1000**4, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """ "4GiB", "500 MB", "0", "1024" -> bytes; ValueError with a readable reason otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 4GiB, 500MB or 0)")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: int) -> str:
    """2_100_000 -> "2.1 MB" (decimal units, as file managers show them)."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def describe_progress(done: int, size: int, rate: float, eta: float | None) -> str:
    """ "45% · 1.2 MB of 2.6 MB · 3.4 MB/s · 1 s left"; once every byte is there, "100% · 2.6 MB
    of 2.6 MB" (a speed and a time left would only say "0 B/s · 0 s left" then)."""
    percent = 100 if size == 0 else min(100, done * 100 // size)
    if done >= size:
        return f"100% · {format_size(done)} of {format_size(size)}"
    return (
        f"{percent}% · {format_size(done)} of {format_size(size)} · "
        f"{format_size(int(rate))}/s · {format_eta(eta)} left"
    )


_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
_RESERVED |= {f"COM{i}" for i in "123456789¹²³"} | {f"LPT{i}" for i in "123456789¹²³"}
# Characters Windows forbids in names, plus both separators everywhere.
_FORBIDDEN = set('<>:"/\\|?*')


def safe_name(name: str) -> str:
    """A file name that is safe to create in the downloads folder, on any system.

    No separators (so no folder can be named, ``..`` included), no control, format (bidi
    overrides, zero-width) or unassigned characters, no Windows reserved name (``CON.txt``),
    no trailing dots or spaces, no leading dot (a hidden file), at most `MAX_FILE_NAME`
    characters with the extension kept. Never empty.
    """
    name = unicodedata.normalize("NFC", name)
    cleaned = []
    for ch in name:
        category = unicodedata.category(ch)
        if ch in _FORBIDDEN or (category[0] in "CZ" and ch != " "):
            cleaned.append("_" if category[0] != "C" or ch in _FORBIDDEN else "")
        else:
            cleaned.append(ch)
    name = "".join(cleaned).strip(" .")
    name = re.sub(r"\.{2,}", ".", name)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].upper().rstrip(" ") in _RESERVED or name.upper() in _RESERVED:
        stem = f"_{stem}"
    ext = ext[:16]
    room = MAX_FILE_NAME - (len(ext) + 1 if dot else 0)
    stem = stem[:room].rstrip(" .")
    name = f"{stem}.{ext}" if dot and ext else stem
    return name or "file"


def numbered(name: str, n: int) -> str:
    """ "report.pdf", 1 -> "report (1).pdf": the name of the n-th other file of that name."""
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    return f"{stem} ({n}){dot}{ext}"


def free_name(name: str, taken: Callable[[str], bool], limit: int = 10_000) -> str:
    """The first of "name", "name (1)", "name (2)"… for which `taken` is False."""
    for n in range(limit):
        candidate = numbered(name, n)
        if not taken(candidate) and not taken(candidate + PART):
            return candidate
    raise FileProblem("no_name", f"There are already {limit} files called {name}.")


PART = ".part"


# --- flow control ------------------------------------------------------------------------------


class Window:
    """A receiver's flow-control window, after h2's `WindowManager`.

    `consume(n)` when bytes arrive (more than the window is the sender's fault); `processed(n)`
    once they are written. It answers how much to grant back, or 0 for nothing yet: a grant
    goes out when half the window has been processed, or when the window is empty, so updates
    are few and the sender is never starved.
    """

    def __init__(self, size: int = WINDOW) -> None:
        self.size = size
        self.available = size
        self._processed = 0

    def consume(self, n: int) -> None:
        if n > self.available:
            raise FileProblem("flow", f"{n} bytes sent into a window of {self.available}.")
        self.available -= n

    def processed(self, n: int) -> int:
        self._processed += n
        if self._processed >= self.size // 2 or self.available == 0:
            grant, self._processed = self._processed, 0
            self.available += grant
            return grant
        return 0


# --- frames ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileOffer:
    """Sender -> host: "I offer this file" (`to`: one member's name, or None for the room).
    Host -> recipients: the same, numbered (`file`) and stamped with the sender (`sender`)."""

    name: str
    size: int
    sha256: str
    ref: str | None = None  # the sender's own reference (sender -> host only)
    to: str | None = None
    file: int | None = None  # the host's number (host -> recipients)
    sender: str | None = None


@dataclass(frozen=True)
class FileOffered:
    """Host -> sender: the offer `ref` is out as number `file`, to `to` (names)."""

    ref: str
    file: int
    to: tuple[str, ...]


@dataclass(frozen=True)
class FileRefused:
    """Host -> sender: the offer `ref` was refused up front (too large, no such member…)."""

    ref: str
    code: str
    text: str


@dataclass(frozen=True)
class FileAccept:
    """Recipient -> host: send me file `file` from `offset` (0, or where I got to before).
    A resume names the file's `sha256` too: a host that restarted and numbers its offers
    afresh must not continue one file with another's bytes."""

    file: int
    offset: int = 0
    sha256: str | None = None


@dataclass(frozen=True)
class FileDecline:
    """Recipient -> host: no thanks."""

    file: int


@dataclass(frozen=True)
class FileCancel:
    """Sender -> host: withdraw the offer for everyone. Recipient -> host: stop my stream."""

    file: int


@dataclass(frozen=True)
class FileGet:
    """Host -> sender: `by` accepted; send stream `stream` from `offset`, `window` bytes for now."""

    file: int
    stream: int
    by: str
    offset: int
    window: int


@dataclass(frozen=True)
class FileData:
    """File bytes. Sender -> host names the `stream`; host -> recipient names the `file`.

    On the wire it is a header line ``{"type":"file_data","offset":…,"stream":…,"size":N}`` and
    then N raw bytes. A parser first returns the header alone (`length` set, `data` empty), so
    the size and the stream can be checked before any payload is taken; the frame it hands on
    holds the bytes (`length` None).
    """

    offset: int
    data: bytes = b""
    stream: int | None = None
    file: int | None = None
    length: int | None = field(default=None, compare=False)  # a header's announced size

    @property
    def size(self) -> int:
        return len(self.data) if self.length is None else self.length


@dataclass(frozen=True)
class FileWindow:
    """More window: recipient -> host names the `file`; host -> sender names the `stream`."""

    bytes: int
    stream: int | None = None
    file: int | None = None


@dataclass(frozen=True)
class FileDone:
    """Recipient -> host: every byte came; `ok` says whether the hash matched."""

    file: int
    ok: bool


@dataclass(frozen=True)
class FileEnd:
    """Host -> a side: the transfer is over. `stream` and `by` are set for the sender.
    `status`: received, declined, cancelled, failed, gone (the offer no longer exists) or
    paused (the recipient's connection dropped; it may ask again once back)."""

    file: int
    status: str
    text: str
    stream: int | None = None
    by: str | None = None
    # True: the offer went with its sender (it left), so a receiver may keep its partial file
    # and carry on if the same file is offered again; an older receiver ignores it
    resumable: bool | None = None


FileFrame = (
    FileOffer
    | FileOffered
    | FileRefused
    | FileAccept
    | FileDecline
    | FileCancel
    | FileGet
    | FileData
    | FileWindow
    | FileDone
    | FileEnd
)
STATUSES = frozenset({"received", "declined", "cancelled", "failed", "gone", "paused"})


class BadFrame(Exception):
    pass


def _get(obj: dict[str, Any], key: str, kind: type, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise BadFrame(f"field '{key}' is missing or of the wrong type")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadFrame(f"field '{key}' holds a lone surrogate") from exc
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 1 << 62:
        raise BadFrame(f"field '{key}' is out of range")
    return value


def _text(obj: dict[str, Any], key: str, limit: int, optional: bool = False) -> Any:
    value = _get(obj, key, str, optional)
    if value is not None and len(value) > limit:
        raise BadFrame(f"field '{key}' can be at most {limit} characters")
    return value


def _file_data(obj: dict[str, Any]) -> FileData:
    """A chunk's header: where its bytes go and how many follow (1 to `MAX_CHUNK`)."""
    size = _get(obj, "size", int)
    if not 0 < size <= MAX_CHUNK:
        raise BadFrame(f"a chunk holds 1 to {MAX_CHUNK} bytes, not {size}")
    if "data" in obj:
        raise BadFrame("a chunk's bytes follow its header line; 'data' is not read")
    return FileData(
        _get(obj, "offset", int),
        stream=_get(obj, "stream", int, optional=True),
        file=_get(obj, "file", int, optional=True),
        length=size,
    )


def _offer(obj: dict[str, Any]) -> FileOffer:
    sha = _get(obj, "sha256", str)
    if not _HEX64.fullmatch(sha):
        raise BadFrame("field 'sha256' must be 64 lower-case hex digits")
    return FileOffer(
        name=_text(obj, "name", 1024),
        size=_get(obj, "size", int),
        sha256=sha,
        ref=_text(obj, "ref", MAX_REF, optional=True),
        to=_text(obj, "to", 64, optional=True),
        file=_get(obj, "file", int, optional=True),
        sender=_text(obj, "from", 64, optional=True),
    )


def _end(obj: dict[str, Any]) -> FileEnd:
    status = _get(obj, "status", str)
    if status not in STATUSES:
        raise BadFrame(f"unknown status {status[:20]!r}")
    return FileEnd(
        file=_get(obj, "file", int),
        status=status,
        text=_text(obj, "text", 1024),
        stream=_get(obj, "stream", int, optional=True),
        by=_text(obj, "by", 64, optional=True),
        resumable=True if obj.get("resumable") is True else None,
    )


def _names(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    names = _get(obj, key, list)
    if not all(isinstance(n, str) and len(n) <= 64 for n in names) or len(names) > 1024:
        raise BadFrame(f"field '{key}' must be a list of names")
    return tuple(names)


_DECODERS: dict[str, Callable[[dict[str, Any]], FileFrame]] = {
    "file_offer": _offer,
    "file_offered": lambda o: FileOffered(
        _text(o, "ref", MAX_REF), _get(o, "file", int), _names(o, "to")
    ),
    "file_refused": lambda o: FileRefused(
        _text(o, "ref", MAX_REF), _text(o, "code", 64), _text(o, "text", 1024)
    ),
    "file_accept": lambda o: FileAccept(
        _get(o, "file", int), _get(o, "offset", int), _text(o, "sha256", 64, optional=True)
    ),
    "file_decline": lambda o: FileDecline(_get(o, "file", int)),
    "file_cancel": lambda o: FileCancel(_get(o, "file", int)),
    "file_get": lambda o: FileGet(
        _get(o, "file", int),
        _get(o, "stream", int),
        _text(o, "by", 64),
        _get(o, "offset", int),
        _get(o, "window", int),
    ),
    "file_data": _file_data,
    "file_window": lambda o: FileWindow(
        _get(o, "bytes", int),
        _get(o, "stream", int, optional=True),
        _get(o, "file", int, optional=True),
    ),
    "file_done": lambda o: FileDone(_get(o, "file", int), _get(o, "ok", bool)),
    "file_end": _end,
}
FRAME_TYPES = frozenset(_DECODERS)


def decode_frame(obj: dict[str, Any], relaying: bool = False) -> FileFrame:
    """A parsed JSON object whose type starts with ``file_`` -> its frame; BadFrame otherwise.
    (`relaying` is kept for callers: the host and a receiver read every frame alike now.)"""
    decoder = _DECODERS.get(obj.get("type", ""))
    if decoder is None:
        raise BadFrame(f"unknown file frame {str(obj.get('type'))[:40]!r}")
    return decoder(obj)


_TYPES: dict[type, str] = {
    FileOffer: "file_offer",
    FileOffered: "file_offered",
    FileRefused: "file_refused",
    FileAccept: "file_accept",
    FileDecline: "file_decline",
    FileCancel: "file_cancel",
    FileGet: "file_get",
    FileData: "file_data",
    FileWindow: "file_window",
    FileDone: "file_done",
    FileEnd: "file_end",
}
FRAME_CLASSES = tuple(_TYPES)  # for isinstance: is this a file frame?
_WIRE_NAMES = {"sender": "from"}


def encode_frame(frame: FileFrame) -> bytes:
    """One JSON line (a chunk: its header line and its bytes); None fields are left out."""
    if isinstance(frame, FileData):
        head, data = encode_data(frame)
        return head + bytes(data)
    obj: dict[str, Any] = {"type": _TYPES[type(frame)]}
    for key, value in frame.__dict__.items():
        if value is None:
            continue
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        elif isinstance(value, tuple):
            value = list(value)
        obj[_WIRE_NAMES.get(key, key)] = value
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def encode_data(frame: FileData) -> tuple[bytes, bytes]:
    """A chunk as (header line, payload), for a writer that sends both without joining them
    (`transport.writelines`): the payload is never copied to be framed."""
    head = f'{{"type":"file_data","offset":{frame.offset}'
    if frame.stream is not None:
        head += f',"stream":{frame.stream}'
    if frame.file is not None:
        head += f',"file":{frame.file}'
    return f'{head},"size":{len(frame.data)}}}\n'.encode("ascii"), frame.data


# --- the host's relay --------------------------------------------------------------------------


@dataclass
class _Offer:
    file: int
    sender: int  # member id
    sender_name: str
    name: str
    size: int
    sha256: str
    to: str | None  # the one recipient's member key, or None: the whole room
    told: set[int] = field(default_factory=set)  # member ids told of the offer
    done: set[str] = field(default_factory=set)  # member keys that received it or declined
    began: set[str] = field(default_factory=set)  # member keys that had a stream of it


@dataclass
class _Stream:
    stream: int
    file: int
    receiver: int
    receiver_name: str
    next_offset: int
    credit: int  # bytes the host has granted the sender and not yet seen
    sender: int = 0
    room: int = 0  # bytes the receiver has granted the host and the host has not yet relayed
    held: deque[FileData] = field(default_factory=deque)  # read, waiting for `room`


ENDED_KEPT = 1024  # streams remembered after they end, so their last chunks are let through


Out = tuple[int, FileFrame | str]  # (member id, frame) or (member id, a line for people)


class Relay:
    """The host's side of every transfer: who offered what, to whom, which streams run, and
    the two windows of each (the one it granted the sender, the room the receiver granted it).
    Returns `(member id, frame)` to send; a `str` in place of a frame is a line for people (a
    notice).

    Members are named by id for delivery and by a *key* (their reconnect token) for
    permission, so that a recipient who comes back with a new id may take up its offer.
    """

    def __init__(
        self,
        max_size: int = MAX_FILE_SIZE,
        window: int = HOP_WINDOW,
        receiver_window: int = WINDOW,
    ) -> None:
        """`window`: what the host grants a sender per stream; `receiver_window`: what a
        receiver grants the host at first (`Incoming`'s window). `members` passed to `offer`
        name each member's kind: "local", "app", "text", or "old" (an app whose protocol version
        predates raw chunks: told in a line, like a text peer)."""
        self.max_size = max_size
        self.window = window
        self.receiver_window = receiver_window
        self._offers: dict[int, _Offer] = {}
        self._streams: dict[int, _Stream] = {}
        self._by_receiver: dict[tuple[int, int], int] = {}  # (file, receiver id) -> stream
        self._files = itertools.count(1)
        self._stream_ids = itertools.count(1)
        self._ended: dict[int, int] = {}  # stream -> its sender, for streams that just ended

    def streams_to(self, member_id: int) -> int:
        return sum(1 for s in self._streams.values() if s.receiver == member_id)

    def offer(
        self,
        sender: int,
        sender_name: str,
        frame: FileOffer,
        members: dict[int, tuple[str, str, str]],
    ) -> list[Out]:
        """`members`: id -> (name, key, kind) of everyone in the room, sender included."""
        ref = frame.ref or ""
        if self.max_size == 0:
            return [(sender, FileRefused(ref, "no_files", "This host does not allow files."))]
        if frame.size > self.max_size:
            text = (
                f"{safe_name(frame.name)} is {format_size(frame.size)}; this host allows files "
                f"of up to {format_size(self.max_size)}."
            )
            return [(sender, FileRefused(ref, "too_large", text))]
        if sum(1 for o in self._offers.values() if o.sender == sender) >= MAX_OFFERS:
            text = f"You have {MAX_OFFERS} files on offer already; cancel some first."
            return [(sender, FileRefused(ref, "too_many", text))]
        others = {i: m for i, m in members.items() if i != sender}
        to_key: str | None = None
        if frame.to is not None:
            target = [i for i, (name, _, _) in others.items() if name == frame.to]
            if not target:
                text = f"There is no {frame.to} in the room (yourself excepted)."
                return [(sender, FileRefused(ref, "no_member", text))]
            name, to_key, kind = others[target[0]]
            if kind == "text":
                text = f"{name} uses a plain text client and cannot receive files."
                return [(sender, FileRefused(ref, "text_peer", text))]
            if kind == "old":
                text = f"{name} uses an older Parley that cannot receive files from this host."
                return [(sender, FileRefused(ref, "old_version", text))]
            others = {target[0]: others[target[0]]}
        file_id = next(self._files)
        name = safe_name(frame.name)
        offer = _Offer(file_id, sender, sender_name, name, frame.size, frame.sha256, to_key)
        self._offers[file_id] = offer
        out: list[Out] = []
        receivers: list[str] = []
        for member_id, (member_name, _, kind) in others.items():
            if kind in ("text", "old"):  # a text peer, or an older app: one line, no bytes
                how = "join with the Parley app" if kind == "text" else "update Parley"
                out.append(
                    (
                        member_id,
                        f"{sender_name} offers the file {name} ({format_size(frame.size)}); "
                        f"to receive files, {how}.",
                    )
                )
                continue
            offer.told.add(member_id)
            receivers.append(member_name)
            out.append((member_id, self._announce(offer, private=to_key is not None)))
        out.insert(0, (sender, FileOffered(ref, file_id, tuple(receivers))))
        return out

    def _announce(self, offer: _Offer, private: bool) -> FileOffer:
        return FileOffer(
            offer.name,
            offer.size,
            offer.sha256,
            to="you" if private else None,
            file=offer.file,
            sender=offer.sender_name,
        )

    def newcomer(self, member_id: int, key: str, kind: str) -> list[Out]:
        """A member came in (or back): tell it of the offers it may still take up."""
        if kind in ("text", "old"):
            return []
        out: list[Out] = []
        for offer in self._offers.values():
            if offer.sender == member_id or key in offer.done:
                continue
            if offer.to is None or offer.to == key:
                offer.told.add(member_id)
                out.append((member_id, self._announce(offer, offer.to is not None)))
        return out

    def accept(self, member_id: int, name: str, key: str, frame: FileAccept) -> list[Out]:
        offer = self._offers.get(frame.file)
        if (
            offer is None
            or (offer.to is not None and offer.to != key)
            or (frame.sha256 is not None and frame.sha256 != offer.sha256)
        ):
            return [(member_id, FileEnd(frame.file, "gone", "That file is no longer offered."))]
        if offer.sender == member_id:
            return [(member_id, FileEnd(frame.file, "gone", "You cannot accept your own file."))]
        if not 0 <= frame.offset <= offer.size:
            return [(member_id, FileEnd(frame.file, "failed", "Bad resume point."))]
        out = self._stop(frame.file, member_id, None)  # an older stream of this member goes
        offer.began.add(key)
        stream = _Stream(
            next(self._stream_ids), frame.file, member_id, name, frame.offset, 0, offer.sender
        )
        stream.credit = self.window
        stream.room = self.receiver_window
        self._streams[stream.stream] = stream
        self._by_receiver[(frame.file, member_id)] = stream.stream
        get = FileGet(frame.file, stream.stream, name, frame.offset, self.window)
        return [*out, (offer.sender, get)]

    def decline(self, member_id: int, name: str, key: str, frame: FileDecline) -> list[Out]:
        offer = self._offers.get(frame.file)
        if offer is None or member_id not in offer.told:
            return []
        offer.done.add(key)
        out = self._stop(frame.file, member_id, None)
        out.append(
            (
                offer.sender,
                FileEnd(offer.file, "declined", f"{name} declined {offer.name}.", by=name),
            )
        )
        return out

    def cancel(self, member_id: int, name: str, frame: FileCancel) -> list[Out]:
        """The sender withdraws the offer; a recipient stops its own stream."""
        offer = self._offers.get(frame.file)
        if offer is None:
            return []
        if offer.sender == member_id:
            return self.withdraw(frame.file, f"{name} cancelled {offer.name}.")
        stream_id = self._by_receiver.get((frame.file, member_id))
        if stream_id is None:
            return []
        text = f"{name} cancelled receiving {offer.name}."
        return self._stop(frame.file, member_id, FileEnd(offer.file, "cancelled", text, by=name))

    def withdraw(self, file_id: int, text: str, resumable: bool = False) -> list[Out]:
        """End an offer for everyone who was told of it (`resumable`: its sender left, so a
        receiver may keep what it has, see `FileEnd`)."""
        offer = self._offers.pop(file_id, None)
        if offer is None:
            return []
        out: list[Out] = []
        for stream in [s for s in self._streams.values() if s.file == file_id]:
            self._drop(stream)
        for member_id in sorted(offer.told):
            out.append(
                (member_id, FileEnd(file_id, "cancelled", text, resumable=resumable or None))
            )
        return out

    def check_data(self, member_id: int, frame: FileData) -> bool:
        """Take a chunk on its header alone, before its payload is read: True, and the stream
        moves on by its size (offset and window); False for a stream that ended a moment ago
        (its last chunks are dropped); `FileProblem` for a stream never opened for this
        member, a chunk out of order, or one over the receiver's window."""
        stream = self._streams.get(frame.stream or 0)
        if stream is None:
            if self._ended.get(frame.stream or 0) == member_id:
                return False
            raise FileProblem("no_stream", "File bytes for a transfer nobody accepted.")
        if stream.sender != member_id:
            raise FileProblem("not_yours", "That stream is not yours to send on.")
        offer = self._offers[stream.file]
        size = frame.size
        if frame.offset != stream.next_offset:
            raise FileProblem("bad_offset", f"Chunk at {frame.offset}, not {stream.next_offset}.")
        if frame.offset + size > offer.size:
            raise FileProblem("too_long", f"A chunk past the end of {offer.name}.")
        if size > stream.credit:
            raise FileProblem("flow", "A chunk went over the window the host granted.")
        stream.credit -= size
        stream.next_offset += size
        return True

    def relay_data(self, member_id: int, frame: FileData) -> list[Out]:
        """A chunk whose header `check_data` took, now with its bytes: on to the receiver
        (nowhere, if the stream ended while the payload was on its way)."""
        stream = self._streams.get(frame.stream or 0)
        if stream is None or stream.sender != member_id:
            return []
        stream.held.append(frame)
        return self._release(stream)

    def _release(self, stream: _Stream) -> list[Out]:
        """Relay held chunks into the receiver's window, in order, and grant the sender what
        went on. A chunk larger than the room left is cut at it (only a sender whose chunks do
        not follow the grants makes one), so the receiver's window is filled to its end: a
        receiver grants again only once its window is empty or half processed."""
        out: list[Out] = []
        relayed = 0
        held = stream.held
        while held and stream.room > 0:
            frame = held[0]
            n = len(frame.data)
            if n > stream.room:
                n = stream.room
                held[0] = FileData(frame.offset + n, frame.data[n:], stream=frame.stream)
                data = frame.data[:n]
            else:
                held.popleft()
                data = frame.data
            stream.room -= n
            relayed += n
            out.append((stream.receiver, FileData(frame.offset, data, file=stream.file)))
        if relayed:
            stream.credit += relayed
            out.append((stream.sender, FileWindow(relayed, stream=stream.stream)))
        return out

    def data(self, member_id: int, frame: FileData) -> list[Out]:
        """A whole chunk from the sender (header and bytes at once: the host's own person);
        the host holds at most the window it granted."""
        if not self.check_data(member_id, frame):
            return []
        return self.relay_data(member_id, frame)

    def granted(self, member_id: int, frame: FileWindow) -> list[Out]:
        """The receiver's grant: room in its window, for the chunks the host holds."""
        stream_id = self._by_receiver.get((frame.file or 0, member_id))
        if stream_id is None:
            return []
        stream = self._streams[stream_id]
        if frame.bytes <= 0 or stream.room + frame.bytes > self.receiver_window:
            raise FileProblem("flow", "A window update over the window.")
        stream.room += frame.bytes
        return self._release(stream)

    def done(self, member_id: int, name: str, key: str, frame: FileDone) -> list[Out]:
        """A receiver has every byte. The sender is told, and the receiver too (a `file_end`
        without `stream`: its ``file_done`` arrived, it need not say it again). A receiver
        whose connection dropped while its ``file_done`` was on the way says it again once
        back: its stream has ended by then, so a member that had a stream of this file is
        believed without one (once: the sender hears it a single time)."""
        stream_id = self._by_receiver.get((frame.file, member_id))
        offer = self._offers.get(frame.file)
        if offer is None:
            return [(member_id, FileEnd(frame.file, "gone", "That file is no longer offered."))]
        if stream_id is not None:
            self._drop(self._streams[stream_id])
        elif key in offer.done or key not in offer.began:
            status = "received" if key in offer.done else "gone"
            return [(member_id, FileEnd(frame.file, status, ""))]
        if frame.ok:
            offer.done.add(key)
            end = FileEnd(offer.file, "received", f"{name} received {offer.name}.", stream_id, name)
        else:
            text = f"{offer.name} arrived damaged at {name} (its hash did not match)."
            end = FileEnd(offer.file, "failed", text, stream_id, name)
        return [(offer.sender, end), (member_id, FileEnd(offer.file, end.status, ""))]

    def member_left(self, member_id: int, name: str, held: bool) -> list[Out]:
        """A member went: its offers are withdrawn; its streams end (a held member, whose
        connection dropped, may ask again from where it got to once it is back)."""
        out: list[Out] = []
        for offer in [o for o in self._offers.values() if o.sender == member_id]:
            text = f"{name} left; {offer.name} is no longer offered."
            out += self.withdraw(offer.file, text, resumable=True)
        for stream in [s for s in self._streams.values() if s.receiver == member_id]:
            offer = self._offers[stream.file]
            status, why = ("paused", "lost the connection") if held else ("cancelled", "left")
            text = f"{name} {why}."
            self._drop(stream)
            out.append((offer.sender, FileEnd(offer.file, status, text, stream.stream, name)))
        for offer in self._offers.values():
            offer.told.discard(member_id)
        return out

    def _stop(self, file_id: int, member_id: int, end: FileEnd | None) -> list[Out]:
        stream_id = self._by_receiver.get((file_id, member_id))
        if stream_id is None:
            return []
        stream = self._streams[stream_id]
        self._drop(stream)
        offer = self._offers[file_id]
        end = end or FileEnd(file_id, "cancelled", "", stream=stream_id, by=stream.receiver_name)
        return [(offer.sender, FileEnd(file_id, end.status, end.text, stream_id, end.by))]

    def _drop(self, stream: _Stream) -> None:
        self._streams.pop(stream.stream, None)
        self._by_receiver.pop((stream.file, stream.receiver), None)
        self._ended[stream.stream] = stream.sender
        if len(self._ended) > ENDED_KEPT:
            del self._ended[next(iter(self._ended))]


# --- the two ends ------------------------------------------------------------------------------


class Incoming:
    """A receiver's file as it arrives: in order, within the window, hashed as it goes.

    `chunk()` takes a chunk (in order, within the window) and returns the bytes to write at the
    end of the partial file; `absorb()` hashes them (the disk thread may call it, in the order
    the chunks came); once they are written, `stored()` returns the frames to send (a window
    grant; at the end `file_done`). `written()` is both, for a caller that writes in line.
    """

    def __init__(self, offer: FileOffer, window: int = WINDOW) -> None:
        assert offer.file is not None
        self.offer = offer
        self.file = offer.file
        self.size = offer.size
        self.received = 0  # bytes written and hashed: where a resume starts
        self.queued = 0  # bytes taken by chunk(): written, or on their way to the disk
        self._hash = hashlib.sha256()
        self._window = Window(window)

    def restart(self) -> FileAccept:
        """Ask again from what we hold (after a reconnect): a fresh window on a fresh stream.
        Call it once nothing is on its way to the disk (`queued == received`)."""
        self._window = Window(self._window.size)
        self.queued = self.received
        return FileAccept(self.file, self.received, self.offer.sha256)

    def resume(self, held: int) -> FileAccept:
        """Ask from byte `held`: a partial file kept from an earlier session holds that much,
        already hashed (`absorb`). The whole file's hash is checked at the end as ever."""
        if not 0 <= held <= self.size:
            raise FileProblem("bad_resume", "The partial file is longer than the file.")
        self.received = self.queued = held
        return FileAccept(self.file, held, self.offer.sha256)

    def chunk(self, frame: FileData) -> bytes:
        if frame.offset != self.queued:
            raise FileProblem("bad_offset", "A piece of the file came out of order.")
        data = frame.data
        if self.queued + len(data) > self.size:
            raise FileProblem("too_long", "More bytes came than the file holds.")
        self._window.consume(len(data))
        self.queued += len(data)
        return data

    def absorb(self, data: bytes) -> None:
        """Hash the next bytes of the file (any thread; one at a time, in order)."""
        self._hash.update(data)

    def stored(self, n: int) -> list[FileFrame]:
        """`n` more bytes are written and hashed: the frames to send."""
        self.received += n
        if self.complete:
            return [FileDone(self.file, self.verified)]
        grant = self._window.processed(n)
        return [FileWindow(grant, file=self.file)] if grant else []

    def written(self, data: bytes) -> list[FileFrame]:
        self.absorb(data)
        return self.stored(len(data))

    @property
    def complete(self) -> bool:
        return self.received == self.size

    @property
    def verified(self) -> bool:
        return self.complete and self._hash.hexdigest() == self.offer.sha256


class Outgoing:
    """A sender's stream to one recipient: where it is and how much the window allows."""

    def __init__(self, get: FileGet, size: int) -> None:
        self.stream = get.stream
        self.by = get.by
        self.offset = get.offset
        self.credit = get.window
        self.size = size

    def next_chunk(self) -> tuple[int, int] | None:
        """(offset, length) of the next chunk the window allows, or None (wait for a grant,
        or everything is sent)."""
        length = min(CHUNK, self.credit, self.size - self.offset)
        if length <= 0:
            return None
        return self.offset, length

    def sent(self, data: bytes) -> FileData:
        frame = FileData(self.offset, data, stream=self.stream)
        self.offset += len(data)
        self.credit -= len(data)
        return frame

    def grant(self, n: int) -> None:
        self.credit += n

    @property
    def finished_sending(self) -> bool:
        return self.offset >= self.size


def check_offer(name: str, size: int, sha256: str, max_size: int | None = None) -> None:
    """What a sender checks before offering (the host checks again)."""
    if max_size is not None and size > max_size:
        raise FileProblem("too_large", f"{name} is larger than {format_size(max_size)}.")
    if not _HEX64.fullmatch(sha256):
        raise FileProblem("bad_hash", "Not a SHA-256.")
