"""Parley's wire protocol: bytes in, messages out; messages in, bytes out. No sockets here.

Theory of operation
-------------------
Everything on the wire is lines of UTF-8 text ending in ``\\n`` (a ``\\r`` before it is dropped),
each at most `MAX_LINE` bytes. Once the transport is up (TLS or plain TCP) the host speaks first,
with one human-readable line, `GREETING`, which starts ``PARLEY/<version>``.

The first line the host receives decides what the peer is:

* ``{"type": "hello", "version": 1, "name": "Ann"}`` -> an **app peer**. From then on both sides
  exchange one JSON object per line (JSON escapes any newline inside a message).
* anything else, or nothing within the host's wait -> a **text peer** (nc, telnet, a terminal):
  each line it sends is a message, and it receives ``Name: text`` lines.

A joiner reads the first line too: a ``PARLEY/`` greeting means it answers with its hello; any other
line, or silence, means the server is not Parley (``nc -l``, ``ncat --chat``) and the joiner falls
back to plain lines both ways.

`HostSideParser` and `JoinerSideParser` hold the per-connection state. Feed them bytes in pieces of
any size (one byte at a time works the same as one large read); each call returns the messages
completed so far. Bad input becomes a `ProtocolError` in that list and never raises, so one peer's
junk cannot take the host down. The encoders turn messages back into bytes for each kind of peer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from json.encoder import encode_basestring as _json_str  # what json.dumps uses for a str
from typing import Any, cast

import regex

from app.messages import (
    AuthChallenge,
    AuthProof,
    Chat,
    ChatRun,
    ClientMessage,
    Ended,
    Error,
    Greeting,
    Hello,
    History,
    Joined,
    Left,
    Members,
    Notice,
    Ping,
    PlainLines,
    Pong,
    ProtocolError,
    RawLine,
    Renamed,
    Say,
    SendRates,
    ServerMessage,
    Welcome,
)

# Name rules live in app.names; re-exported here for the callers that knew them here.
from app.names import MAX_NAME as MAX_NAME
from app.names import check_name as check_name
from app.names import name_key as name_key
from app.transfer import FRAME_TYPES, BadFrame, FileData, FileFrame, decode_frame

VERSION = 2  # 2: a file chunk is a header line and raw bytes (1: base64 inside a JSON line)
SPOKEN = frozenset({1, 2})  # versions a host admits; version 1 peers chat but get no files
MAX_LINE = 64 * 1024
MAX_ID = 64

# --- the size contract ----------------------------------------------------------------------
# Every frame the host sends must fit in MAX_LINE, the most a joiner reads as one line. The only
# large field of any frame is a message's text, so the contract is about that text, measured
# as it travels: UTF-8, inside a JSON string, escapes included ('"' and '\\' take two bytes, a
# newline or tab two). `text_size` is that measure and MAX_TEXT its limit. FRAME_ROOM is what
# every frame may spend around one text: a frame holding one text of MAX_TEXT bytes and fields
# whose own worst case (every character escaped or four bytes long) is within FRAME_ROOM fits
# MAX_LINE. Frames added later (private messages, files) carry at most one text each and check
# their other fields with `fits_frame`; tests/test_size.py builds the worst case of each.
FRAME_ROOM = 4 * 1024
MAX_TEXT = MAX_LINE - FRAME_ROOM  # 61,440 bytes of encoded text in one message
GREETING = f"PARLEY/{VERSION} Welcome to Parley. Type a message and press Enter; type bye to leave."

REFUSAL = f"PARLEY/{VERSION} ! "  # a greeting that says why the host will not serve us


def refusal_line(text: str) -> bytes:
    """What a host says instead of its greeting when it turns a connection away."""
    return f"{REFUSAL}{text}\n".encode()


_REFUSED = re.compile(r"PARLEY/\d{1,6} ! ")  # a refusal from a host of any version
_BYE = re.compile(r"\s*bye[\s.!?…]*", re.IGNORECASE)
_GREETING = re.compile(r"PARLEY/(\d{1,6})(?:\s.*)?")
# What clean_text removes: every control (Cc) and format (Cf) character except newline, tab, and
# the zero-width (non-)joiner that emoji sequences (👨‍👩‍👧) and scripts such as Persian need.
# `regex` knows the Unicode properties, so this is one pass over the text.
_UNWANTED = regex.compile(r"[[\p{Cc}\p{Cf}]--[\n\t\u200c\u200d]]", regex.V1)


def text_size(text: str) -> int:
    """The bytes `text` takes inside a frame: UTF-8 in a JSON string, escapes counted, quotes not.

    Linear and done in C (json's encoder), so checking a 64 KiB line costs microseconds.
    """
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def text_too_long(text: str) -> str | None:
    """The refusal for a message over the size contract, or None if it fits."""
    if len(text) * 6 <= MAX_TEXT:  # no character takes more than 6 bytes ("\u001f")
        return None
    size = text_size(text)
    if size <= MAX_TEXT:
        return None
    return (
        f"That message is too long ({size:,} bytes as sent; at most {MAX_TEXT:,}). It was not sent."
    )


def fits_frame(data: bytes) -> bool:
    """True if an encoded frame (with its newline) is one a joiner can read."""
    return len(data) <= MAX_LINE + 1


def is_command(text: str) -> bool:
    """A line the room answers as a command (/who, /nick, /msg ...) rather than numbering it
    as a chat message; "//text" is the message "/text"."""
    return text.startswith("/") and not text.startswith("//")


def is_bye(text: str) -> bool:
    """True for a message that is just "bye" (any case, trailing punctuation allowed)."""
    return _BYE.fullmatch(text) is not None


# Whole terminal escape sequences (CSI, OSC and the like, 7- and 8-bit), so that not even their
# printable remains ("[31m") reach the screen.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*(?:[@-~]|$)"  # CSI ... final byte (or the end)
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... terminator
    r"|\x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, PM, APC, SOS ... terminator
    r"|\x1b[ -/]*[0-~]"  # two-character escapes
)


# The line and paragraph separators (U+2028, U+2029: the only Zl and Zp characters) become real
# newlines: a message shows as several lines, each with its sender's name before it, and no
# separator ever reaches a screen to start an unlabelled line of its own. (NEL, U+0085, is a
# control and is removed with the others.)
_SEPARATORS = {0x2028: "\n", 0x2029: "\n"}


def clean_text(text: str) -> str:
    """Remove control characters (escape sequences among them) except newline and tab.

    Applied to every message before it is relayed or shown, so a peer cannot move another
    person's cursor, recolour their terminal or hide text. Surrogate pairs (Tk may hand over an
    emoji as two halves) are joined and lone halves dropped: they cannot be encoded as UTF-8.
    """
    try:
        text.encode("utf-8")  # fails only on surrogates, which are rare: then join them
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    # Each step is one pass in C (a scan, or one regular expression over the whole text), so
    # cleaning costs time in proportion to the text, never a Python step per character.
    if "\u2028" in text or "\u2029" in text:
        text = text.translate(_SEPARATORS)
    if "\x1b" in text or "\x9b" in text or "\x9d" in text:
        text = _ESCAPES.sub("", text)
    if not text.isprintable():  # ordinary text (no newline, no control) needs nothing more
        text = _UNWANTED.sub("", text)
    return text.strip("\n")


# A line that `Room.plain_line` would not pass as it is, at the start of a line: a command
# ("/"), a blank line, or one that may be a bye (the same case rule as `_BYE`; "bye now" is
# caught too, and then simply goes line by line).
# Searched in the block with a newline before it (an alternation with ^ costs 8x as much).
_NOT_PLAIN = re.compile(r"\n(?:/| *(?:\n|\Z)| *bye)", re.IGNORECASE)
_PLAIN_CHARS = MAX_TEXT // 6  # a line of at most this many characters fits the size contract
_ASCII_PLAIN = b"\n" + bytes(range(0x20, 0x7F))  # printable ASCII and the newline


def plain_lines(block: str) -> list[str] | None:
    """The lines of `block` (whole lines, each ending in a newline) if every one is a chat
    line for everyone that `Room.plain_line` passes as it is, else None (then each line must
    go its own way). One pass or so over the whole block, in C, instead of checks per line:

    * printable once the newlines are out (for ASCII: every byte a printable one or a newline,
      by one `bytes.translate`): nothing `clean_text` would remove or change (no
      control, escape, separator, lone surrogate or carriage return), and no whitespace but
      the space (every other kind is unprintable), so `_NOT_PLAIN`'s spaces stand for all of
      `_BYE`'s whitespace;
    * no line that is blank, starts with "/", or starts with "bye" after spaces;
    * no line over a sixth of the size contract in characters (`text_too_long`'s quick test).
    """
    body = block[:-1]
    if body.isascii():  # (a flag of the string: free) printable ASCII, newlines aside
        if body.encode().translate(None, _ASCII_PLAIN):
            return None
    elif not body.replace("\n", "").isprintable():
        return None
    if _NOT_PLAIN.search("\n" + body) is not None:
        return None
    lines = body.split("\n")
    if max(map(len, lines)) > _PLAIN_CHARS:
        return None
    return lines


@dataclass(frozen=True)
class Payload:
    """The counted bytes that followed a header line (`LineSplitter.expect`)."""

    data: bytes


class BufferPool:
    """Payload buffers to use again: a receiver gives a chunk's buffer back once the chunk is
    on disk, and the next chunk of that size is read into it. A fresh 512 KiB buffer for
    every chunk meant ~47,000 first touches of memory per GB received (the allocator hands
    large blocks back to the system and takes new ones), each a page fault, and on a VM a
    costly one. Holds at most `limit` bytes."""

    def __init__(self, limit: int = 8 << 20) -> None:
        self.limit = limit
        self._free: dict[int, list[bytearray]] = {}
        self._held = 0

    def take(self, n: int) -> bytearray:
        """A buffer of exactly `n` bytes (what it holds is stale: the payload overwrites it)."""
        free = self._free.get(n)
        if free:
            self._held -= n
            return free.pop()
        return bytearray(n)

    def give(self, buffer: bytes | bytearray) -> None:
        """`buffer` (a payload this pool made) is no longer used by anyone."""
        n = len(buffer)
        if isinstance(buffer, bytearray) and self._held + n <= self.limit:
            self._free.setdefault(n, []).append(buffer)
            self._held += n


class LineSplitter:
    """Splits a byte stream into lines with a hard cap, using memory bounded by the cap.

    It also has a *counted* mode, for a file chunk: after a header line saying "N bytes follow",
    the reader calls `expect(N)` before asking for the next item, and the next item is those N
    bytes as one `Payload`, whatever they hold (newlines included), then lines again. The
    payload is gathered into one buffer of its size: what was fed is copied in once, and a
    reader with a `BufferedProtocol` can have the rest of it read straight into that buffer
    (`read_buffer` / `read_into`), so a chunk costs no copy at all after the socket's.
    """

    TOO_LONG = None

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()  # an unfinished line (never holds a newline)
        self._discarding = False
        self._want = 0  # payload bytes still to come
        self._counting = False
        self._target = bytearray()  # the payload under way
        self._filled = 0  # bytes of it already there
        self.counted = 0  # payload bytes taken by the last `items` or `read_into` call
        self.pool: BufferPool | None = None  # where payload buffers come from, if anywhere

    def expect(self, n: int) -> None:
        """The `n` bytes after the line just returned are a payload, not lines."""
        if self._counting or n < 0:
            raise ValueError("already expecting a payload" if self._counting else "n < 0")
        self._counting, self._want = True, n
        self._target = bytearray(n) if self.pool is None else self.pool.take(n)
        self._filled = 0

    def feed(self, data: bytes) -> list[bytes | None]:
        """Return the complete lines in order; None stands for a line that was too long.
        (With no `expect`, every item is a line.)"""
        return list(self.items(data))  # type: ignore[arg-type]

    def items(self, data: bytes) -> Iterator[bytes | Payload | None]:
        """Lines (None: one too long) and payloads in order. The reader may call `expect`
        between items; it must take every item before feeding more."""
        view = memoryview(data)
        pos, end = 0, len(data)
        self.counted = 0
        while True:
            if self._counting:
                take = min(self._want, end - pos)
                if take:
                    # Through a memoryview: a bytearray's own slice assignment copies a
                    # memoryview's bytes once more first (half a copy's time per chunk).
                    into = memoryview(self._target)
                    into[self._filled : self._filled + take] = view[pos : pos + take]
                    into.release()
                    self._filled += take
                    pos += take
                    self._want -= take
                    self.counted += take
                if self._want:
                    return
                yield self._complete()
                continue
            if pos >= end:
                return
            newline = data.find(b"\n", pos)
            if newline < 0:  # an unfinished line: keep it, within the cap
                if not self._discarding:
                    if len(self._buf) + end - pos > self.max_line:
                        self._buf.clear()
                        self._discarding = True
                        yield self.TOO_LONG
                    else:
                        self._buf += view[pos:]
                return
            start, pos = pos, newline + 1
            if self._discarding:  # the end of a line already reported as too long
                self._discarding = False
                continue
            if len(self._buf) + newline - start > self.max_line:
                self._buf.clear()
                yield self.TOO_LONG
                continue
            if self._buf:
                self._buf += view[start:newline]
                line = bytes(self._buf)
                self._buf.clear()
            else:
                line = data[start:newline]
            yield line[:-1] if line.endswith(b"\r") else line

    def whole_lines(self, data: bytes) -> tuple[bytes, bytes] | None:
        """`data`'s whole lines as one block (what an unfinished line held before begins it)
        and the unfinished rest, when `items` would give those lines and nothing else: not
        in a payload or a line too long, at least one newline, no line over the cap. None
        otherwise. Nothing is taken: `take_lines` does, once the caller wants the block.

        A read of a flood is larger than the cap (a plain socket's reads are 256 KiB), so
        each line is checked, a cap's worth at a time: from the end of a line, the last
        newline within the cap ends every line in between within it, and if there is none
        the next line is too long. Two looks at most per cap's worth of the read."""
        if self._counting or self._discarding:
            return None
        cap = self.max_line
        end = data.rfind(b"\n") + 1
        if end == 0 or len(data) - end > cap:
            return None
        at = data.find(b"\n")  # the first line's end (what waited begins that line)
        if len(self._buf) + at > cap:
            return None
        last = end - 1
        while at < last:
            at = data.rfind(b"\n", at + 1, at + 2 + cap)
            if at < 0:
                return None
        block = data[:end] if end < len(data) else data
        if self._buf:
            block = bytes(self._buf) + block
        return block, data[end:]

    def take_lines(self, rest: bytes) -> None:
        """`whole_lines`' block was taken: keep its `rest` as the unfinished line."""
        self._buf.clear()
        self._buf += rest
        self.counted = 0

    def _complete(self) -> Payload:
        payload, self._target, self._counting = self._target, bytearray(), False
        self._filled = 0
        # A bytearray nobody writes to again: bytes in all but name (and no second copy).
        return Payload(cast("bytes", payload))

    def read_buffer(self) -> memoryview | None:
        """Where the rest of the payload under way may be read to directly (a
        `BufferedProtocol`'s `get_buffer`); None when lines are being read."""
        if self._counting and self._want:
            return memoryview(self._target)[self._filled :]
        return None

    def read_into(self, n: int) -> list[Payload]:
        """`n` bytes were read into `read_buffer()`: the payload, once it is whole."""
        n = min(n, self._want)
        self._filled += n
        self._want -= n
        self.counted = n
        return [] if self._want else [self._complete()]

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished line or payload (lost if the peer goes away now)."""
        return len(self._buf) + self._filled + (1 if self._counting else 0)


def _too_long(max_line: int) -> ProtocolError:
    return ProtocolError(
        "line_too_long", f"That line was longer than {max_line} bytes; it was not sent."
    )


def _too_long_from_host(max_line: int) -> ProtocolError:
    """What a joiner says about a line it could not read: the host sent it, not the user."""
    return ProtocolError(
        "line_too_long",
        f"The host sent a line longer than {max_line} bytes; it was skipped. "
        "(The host may be a different version.)",
    )


_BAD_UTF8 = ProtocolError("bad_utf8", "That line was not valid UTF-8 text; it was not sent.")


def _decode(raw: bytes | None, max_line: int, from_host: bool = False) -> str | ProtocolError:
    if raw is None:
        return _too_long_from_host(max_line) if from_host else _too_long(max_line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _BAD_UTF8


class HostSideParser:
    """Parses what one peer sends to the host. `kind` is None until the first line decides.

    A ``file_data`` header line is followed by its bytes (`LineSplitter.expect`): its size is
    checked when the header is read, and `check_chunk` (the host's: is this stream the peer's,
    in order and within its window?) is asked then too, before a byte of the payload is taken.
    A header that fails either is fatal: the bytes after it cannot be told apart from lines, so
    the parser reads nothing more and the host drops that connection alone.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineSplitter(max_line)
        self.kind: str | None = None  # "app" or "text"
        self._first_line = True
        self.check_chunk: Callable[[FileData], ProtocolError | None] | None = None
        self._head: FileData | None = None  # the header whose payload is coming
        self._broken = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line: a peer that leaves now left mid-message."""
        return self._lines.pending

    @property
    def counted(self) -> int:
        """File payload bytes in the last `feed` (they go to a transfer, not to the room)."""
        return self._lines.counted

    def decide_text(self) -> None:
        """The peer stayed silent after the greeting: treat it as a text peer for now.

        Its first line may still turn out to be a hello (an app peer on a slow link); then
        `kind` becomes "app" and the host upgrades the guest it admitted.
        """
        if self.kind is None:
            self.kind = "text"

    def feed(
        self, data: bytes, plain: bool = False
    ) -> list[ClientMessage | PlainLines | FileFrame | ProtocolError]:
        """What `data` holds, in order. With `plain` (the host, for an admitted member), a
        text member's read of chat lines that need no line-by-line look comes back as one
        `PlainLines` (`plain_lines`); any other read as ever, a message per line."""
        if self._broken or not plain or self.kind != "text":
            return self._feed(data)
        out: list[ClientMessage | PlainLines | FileFrame | ProtocolError] = []
        if self._first_line:  # it may still be a hello: on its own, then the rest
            newline = data.find(b"\n") + 1
            if newline == 0:
                return self._feed(data)
            out, data = self._feed(data[:newline]), data[newline:]
            if self._broken or self.kind != "text" or not data:
                return out + self._feed(data) if data else out
        whole = self._lines.whole_lines(data)
        if whole is not None:
            try:
                texts = plain_lines(whole[0].decode("utf-8"))
            except UnicodeDecodeError:  # each line its own way: the bad one is named
                texts = None
            if texts is not None:
                self._lines.take_lines(whole[1])
                out.append(PlainLines(texts))
                return out
        return out + self._feed(data)

    def _feed(self, data: bytes) -> list[ClientMessage | PlainLines | FileFrame | ProtocolError]:
        """`feed`, a message per line."""
        out: list[ClientMessage | PlainLines | FileFrame | ProtocolError] = []
        if self._broken:
            return out
        for raw in self._lines.items(data):
            if isinstance(raw, Payload):
                assert self._head is not None
                out.append(replace(self._head, data=raw.data, length=None))
                self._head = None
                continue
            line = _decode(raw, self._lines.max_line)
            first, self._first_line = self._first_line, False
            if isinstance(line, ProtocolError):
                if self.kind is None:
                    self.kind = "text"
                out.append(line)
            elif self.kind is None or (self.kind == "text" and first):
                hello = _parse_hello(line)
                self.kind = "text" if hello is None else "app"
                out.append(Say(line) if hello is None else hello)
            elif self.kind == "text":
                out.append(Say(line))
            else:
                frame = _parse_client_frame(line)
                if isinstance(frame, FileData) and frame.length is not None:
                    problem = self.check_chunk(frame) if self.check_chunk else None
                    if problem is None:
                        self._head = frame
                        self._lines.expect(frame.length)
                        continue
                    frame = problem
                out.append(frame)
                if isinstance(frame, ProtocolError) and frame.fatal:
                    self._broken = True
                    break
        return out


class JoinerSideParser:
    """Parses what the host (or a server that is not Parley) sends to a joiner.

    A ``file_data`` header from the host is followed by its bytes, as at the host; a header
    that cannot be read is fatal (`ProtocolError.fatal`): nothing after it is parsed, and the
    joiner closes the connection (and reconnects, resuming any file from its last good byte).
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = LineSplitter(max_line)
        self.mode: str | None = None  # "parley" or "raw"
        self._head: FileData | None = None
        self._broken = False

    def decide_raw(self) -> None:
        """The server said nothing: it is not Parley (e.g. ``nc -l``); use plain lines."""
        if self.mode is None:
            self.mode = "raw"

    def read_buffer(self) -> memoryview | None:
        """Where the next bytes may be read to directly: the rest of a chunk's payload under
        way (None otherwise: read into a buffer of your own and `feed` what came)."""
        return None if self._broken else self._lines.read_buffer()

    def use_pool(self, pool: BufferPool) -> None:
        """Read chunk payloads into buffers from `pool` (whoever consumes a chunk gives its
        buffer back)."""
        self._lines.pool = pool

    def read_into(self, n: int) -> list[FileFrame]:
        """`n` bytes were read into `read_buffer()`: the chunk, once its payload is whole."""
        out: list[FileFrame] = []
        for payload in self._lines.read_into(n):
            assert self._head is not None
            out.append(replace(self._head, data=payload.data, length=None))
            self._head = None
        return out

    def feed(
        self, data: bytes
    ) -> list[Greeting | ServerMessage | FileFrame | RawLine | ProtocolError]:
        out: list[Greeting | ServerMessage | FileFrame | RawLine | ProtocolError] = []
        if self._broken:
            return out
        for raw in self._lines.items(data):
            if isinstance(raw, Payload):
                assert self._head is not None
                out.append(replace(self._head, data=raw.data, length=None))
                self._head = None
                continue
            line = _decode(raw, self._lines.max_line, from_host=True)
            if isinstance(line, ProtocolError):
                out.append(line)
            elif self.mode is None:
                match = _GREETING.fullmatch(line)
                if match:
                    self.mode = "parley"
                    refused = _REFUSED.match(line)
                    refusal = line[refused.end() :] if refused else None
                    out.append(Greeting(line, int(match.group(1)), refusal))
                else:
                    self.mode = "raw"
                    out += [Greeting(line, None), RawLine(line)]
            elif self.mode == "raw":
                out.append(RawLine(line))
            else:
                frame = _parse_server_frame(line)
                if isinstance(frame, FileData) and frame.length is not None:
                    self._head = frame
                    self._lines.expect(frame.length)
                    continue
                out.append(frame)
                if isinstance(frame, ProtocolError) and frame.fatal:
                    self._broken = True
                    break
        return out


# --- decoding JSON frames ---------------------------------------------------------------------


class _Bad(Exception):
    pass


def _field(
    obj: dict[str, Any], key: str, kind: type | tuple[type, ...], optional: bool = False
) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python; a frame saying "seq": true is still malformed.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Bad(f"field '{key}' must be {_KIND_WORDS.get(kind, 'something else')}")
    if isinstance(value, str) and not _is_text(value):
        raise _Bad(f"field '{key}' holds a lone surrogate")
    return value


_KIND_WORDS: dict[type | tuple[type, ...], str] = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "an object",
    (int, float): "a number",
}


def _is_text(value: str) -> bool:
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"); such a string is not text and
    could not be written back out as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _load(line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise _Bad("not valid JSON") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise _Bad("a frame must be a JSON object with a 'type'")
    return obj


def _parse_hello(line: str) -> Hello | ProtocolError | None:
    """A hello; None for a line that is not one; a fatal error for a hello that is broken
    (never relayed as chat: it may hold a token or a password exchange)."""
    if not line.startswith("{"):
        return None
    try:
        obj = _load(line)
    except _Bad:
        return None
    if obj["type"] != "hello":
        return None
    try:
        pake = _field(obj, "pake", str, optional=True)
        token = _field(obj, "token", str, optional=True)
        if any(v is not None and len(v) > MAX_ID for v in (pake, token)):
            raise _Bad(f"'pake' and 'token' can be at most {MAX_ID} characters")
        last_seq = _field(obj, "last_seq", int, optional=True) or 0
        return Hello(_field(obj, "name", str), _field(obj, "version", int), pake, token, last_seq)
    except _Bad as exc:
        return ProtocolError("malformed", f"Malformed hello: {exc}.", fatal=True)


class _BadHeader(Exception):
    """A ``file_data`` header that cannot be read: its payload cannot be skipped either."""


def _file_frame(obj: dict[str, Any], relaying: bool = False) -> FileFrame:
    """Files have their own frames (app/transfer.py), checked there."""
    try:
        return decode_frame(obj, relaying)
    except BadFrame as exc:
        if obj.get("type") == "file_data":
            raise _BadHeader(str(exc)) from exc
        raise _Bad(str(exc)) from exc


def _bad_header(exc: _BadHeader, from_host: bool = False) -> ProtocolError:
    who = "from the host " if from_host else ""
    return ProtocolError(
        "bad_chunk",
        f"Malformed file chunk header {who}({exc}); the connection cannot go on.",
        fatal=True,
    )


def _parse_client_frame(line: str) -> ClientMessage | FileFrame | ProtocolError:
    try:
        obj = _load(line)
        kind = obj["type"]
        if kind in FRAME_TYPES:
            return _file_frame(obj, relaying=True)
        if kind == "msg":
            msg_id = _field(obj, "id", str, optional=True)
            if msg_id is not None and len(msg_id) > MAX_ID:
                raise _Bad(f"'id' can be at most {MAX_ID} characters")
            to = _field(obj, "to", str, optional=True)
            if to is not None and len(to) > 4 * MAX_NAME:
                raise _Bad("'to' is too long for a name")
            return Say(_field(obj, "text", str), msg_id, to)
        if kind == "ping":
            return Ping()
        if kind == "pong":
            return Pong()
        if kind == "auth":
            return AuthProof(_short(obj, "confirm"))
        if kind == "hello":
            return ProtocolError("unexpected", "Hello was already received.")
        return ProtocolError("unknown_type", f"Unknown message type {kind[:40]!r}.")
    except _Bad as exc:
        return ProtocolError("malformed", f"Malformed frame: {exc}.")
    except _BadHeader as exc:
        return _bad_header(exc)


def _short(obj: dict[str, Any], key: str) -> str:
    value: str = _field(obj, key, str)
    if len(value) > MAX_ID:
        raise _Bad(f"'{key}' can be at most {MAX_ID} characters")
    return value


def _chat_from(obj: dict[str, Any]) -> Chat:
    return Chat(
        seq=_field(obj, "seq", int),
        sender=_field(obj, "from", str),
        text=_field(obj, "text", str),
        time=_time(obj),
        id=_field(obj, "id", str, optional=True),
        to=_field(obj, "to", str, optional=True),
    )


def _time(obj: dict[str, Any]) -> float:
    value = _field(obj, "time", (int, float))
    try:
        stamp = float(value)
    except OverflowError:  # an integer too large for a float
        stamp = math.inf
    if not math.isfinite(stamp):
        raise _Bad("field 'time' must be a finite number")
    return stamp


def _names(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    names = _field(obj, key, list)
    if not all(isinstance(n, str) and _is_text(n) for n in names):
        raise _Bad(f"field '{key}' must be a list of names")
    return tuple(names)


def _history(obj: dict[str, Any], key: str = "history") -> tuple[Chat, ...]:
    items = _field(obj, key, list)
    if not all(isinstance(item, dict) for item in items):
        raise _Bad(f"field '{key}' must be a list of messages")
    return tuple(_chat_from(item) for item in items)


def _limits(obj: dict[str, Any]) -> SendRates | None:
    """A welcome's `limits`: four numbers, each finite and at least 0 (0: no limit)."""
    if obj.get("limits") is None:
        return None
    limits = _field(obj, "limits", dict)
    values = []
    for key in ("rate", "burst", "bytes", "byte_burst"):
        try:
            value = float(_field(limits, key, (int, float), optional=True) or 0)
        except OverflowError:  # an integer too large for a float
            value = math.inf
        if not math.isfinite(value) or value < 0:
            raise _Bad(f"limit '{key}' must be a finite number of at least 0")
        values.append(value)
    return SendRates(*values)


_SERVER_DECODERS: dict[str, Callable[[dict[str, Any]], ServerMessage]] = {
    "msg": _chat_from,
    "welcome": lambda o: Welcome(
        name=_field(o, "name", str),
        members=_names(o, "members"),
        history=_history(o),
        note=_field(o, "note", str, optional=True),
        token=_field(o, "token", str, optional=True),
        resumed=o.get("resumed") is True,
        epoch=_short(o, "epoch") if o.get("epoch") is not None else None,
        plain=_names(o, "plain") if o.get("plain") is not None else (),
        limits=_limits(o),
    ),
    "history": lambda o: History(_history(o, "messages")),
    "joined": lambda o: Joined(_field(o, "name", str), o.get("plain") is True),
    "left": lambda o: Left(_field(o, "name", str), _field(o, "reason", str)),
    "renamed": lambda o: Renamed(_field(o, "old", str), _field(o, "new", str)),
    "members": lambda o: Members(
        _names(o, "names"), _names(o, "plain") if o.get("plain") is not None else ()
    ),
    "notice": lambda o: Notice(_field(o, "text", str)),
    "error": lambda o: Error(
        _field(o, "code", str), _field(o, "text", str), _field(o, "id", str, optional=True)
    ),
    "end": lambda o: Ended(_field(o, "reason", str)),
    "ping": lambda o: Ping(),
    "pong": lambda o: Pong(),
    "auth": lambda o: AuthChallenge(_short(o, "pake"), _short(o, "confirm")),
}


def _parse_server_frame(line: str) -> ServerMessage | FileFrame | ProtocolError:
    try:
        obj = _load(line)
        if obj["type"] in FRAME_TYPES:
            return _file_frame(obj)
        decoder = _SERVER_DECODERS.get(obj["type"])
        if decoder is None:
            return ProtocolError("unknown_type", f"Unknown message type {obj['type'][:40]!r}.")
        return decoder(obj)
    except (_Bad, TypeError, AttributeError) as exc:
        return ProtocolError("malformed", f"Malformed frame from the host: {exc}.")
    except _BadHeader as exc:
        return _bad_header(exc, from_host=True)


# --- encoding -----------------------------------------------------------------------------------


def _dump(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def encode_client(msg: ClientMessage) -> bytes:
    """A joiner's message as one JSON line."""
    if isinstance(msg, Hello):
        hello: dict[str, Any] = {"type": "hello", "version": msg.version, "name": msg.name}
        if msg.pake is not None:
            hello["pake"] = msg.pake
        if msg.token is not None:
            hello["token"] = msg.token
            hello["last_seq"] = msg.last_seq
        return _dump(hello)
    if isinstance(msg, AuthProof):
        return _dump({"type": "auth", "confirm": msg.confirm})
    if isinstance(msg, Say):
        obj: dict[str, Any] = {"type": "msg", "text": msg.text}
        if msg.id is not None:
            obj["id"] = msg.id
        if msg.to is not None:
            obj["to"] = msg.to
        return _dump(obj)
    return _dump({"type": "ping" if isinstance(msg, Ping) else "pong"})


def _chat_obj(msg: Chat) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "msg",
        "seq": msg.seq,
        "from": msg.sender,
        "text": msg.text,
        "time": msg.time,
    }
    if msg.id is not None:
        obj["id"] = msg.id
    if msg.to is not None:
        obj["to"] = msg.to
    return obj


def _chat_json(msg: Chat) -> str:
    """`_chat_obj(msg)` exactly as `json.dumps` writes it (compact, `ensure_ascii=False`),
    without building the dict: the host encodes every message once per kind of member, and
    for app members over TLS that encoding was a tenth of a flood's host time. The strings go
    through `json.dumps`' own string encoder, so the bytes are the same (a property test in
    tests/test_protocol.py keeps them so)."""
    if not math.isfinite(msg.time):  # json's NaN / Infinity spelling: never a real time
        return json.dumps(_chat_obj(msg), ensure_ascii=False, separators=(",", ":"))
    head = (
        f'{{"type":"msg","seq":{msg.seq!r},"from":{_json_str(msg.sender)},'
        f'"text":{_json_str(msg.text)},"time":{msg.time!r}'
    )
    if msg.id is not None:
        head += f',"id":{_json_str(msg.id)}'
    if msg.to is not None:
        head += f',"to":{_json_str(msg.to)}'
    return head + "}"


_HISTORY_HEAD = b'{"type":"history","messages":['
_HISTORY_TAIL = b"]}\n"


def encode_history(
    chats: Iterable[Chat], max_line: int = MAX_LINE
) -> tuple[list[tuple[bytes, int]], int]:
    """`chats` as `history` frames, as many messages in each as fit in `max_line`, in order.

    Returns each frame with the number of the last message in it (so a sender that stops
    between frames knows where to go on), and how many messages could not be sent at all (one
    that alone is over the line: only a log written under another size contract holds one).
    """
    frames: list[tuple[bytes, int]] = []
    parts: list[bytes] = []
    last = 0
    empty = len(_HISTORY_HEAD) + len(_HISTORY_TAIL) - 1  # the newline is not part of the line
    size, skipped = empty, 0
    for chat in chats:
        item = _chat_json(chat).encode()
        if parts and size + 1 + len(item) > max_line:
            frames.append((_HISTORY_HEAD + b",".join(parts) + _HISTORY_TAIL, last))
            parts, size = [], empty
        if size + len(item) > max_line:
            skipped += 1
            continue
        size += len(item) + (1 if parts else 0)
        parts.append(item)
        last = chat.seq
    if parts:
        frames.append((_HISTORY_HEAD + b",".join(parts) + _HISTORY_TAIL, last))
    return frames, skipped


def _fit_names(obj: dict[str, Any], key: str, keep: str | None = None) -> bytes:
    """`obj` as a frame that fits the size contract however many members the room has: a list
    of names too long for one line is cut to the first that fit (`keep`, the receiver's own
    name, always stays), and `more` says how many were left out. Rooms under the default
    256 members never need it; a room of thousands does."""
    data = _dump(obj)
    if fits_frame(data):
        return data
    names: list[str] = obj[key]

    def cut(count: int) -> bytes:
        kept = names[:count]
        if keep is not None and keep not in kept:
            kept = [*kept, keep]
        shown = set(kept)
        trimmed = {**obj, key: kept, "more": len(names) - len(kept)}
        if "plain" in obj:
            trimmed["plain"] = [n for n in obj["plain"] if n in shown]
        return _dump(trimmed)

    low, high = 0, len(names)
    while low < high:
        mid = (low + high + 1) // 2
        if fits_frame(cut(mid)):
            low = mid
        else:
            high = mid - 1
    return cut(low)


def encode_json(msg: ServerMessage) -> bytes:
    """A host's message to an app peer, as one JSON line."""
    if isinstance(msg, Chat):
        return (_chat_json(msg) + "\n").encode()
    if isinstance(msg, Welcome):
        obj: dict[str, Any] = {
            "type": "welcome",
            "name": msg.name,
            "members": list(msg.members),
            "history": [_chat_obj(c) for c in msg.history],
        }
        if msg.note is not None:
            obj["note"] = msg.note
        if msg.token is not None:
            obj["token"] = msg.token
        if msg.resumed:
            obj["resumed"] = True
        if msg.epoch is not None:
            obj["epoch"] = msg.epoch
        if msg.plain:
            obj["plain"] = list(msg.plain)
        if msg.limits is not None:
            rates = msg.limits
            obj["limits"] = {
                "rate": rates.rate,
                "burst": rates.burst,
                "bytes": rates.byte_rate,
                "byte_burst": rates.byte_burst,
            }
        return _fit_names(obj, "members", msg.name)
    if isinstance(msg, Joined):
        if msg.plain:
            return _dump({"type": "joined", "name": msg.name, "plain": True})
        return _dump({"type": "joined", "name": msg.name})
    if isinstance(msg, Left):
        return _dump({"type": "left", "name": msg.name, "reason": msg.reason})
    if isinstance(msg, Renamed):
        return _dump({"type": "renamed", "old": msg.old, "new": msg.new})
    if isinstance(msg, Members):
        if msg.plain:
            members = {"type": "members", "names": list(msg.names), "plain": list(msg.plain)}
            return _fit_names(members, "names")
        return _fit_names({"type": "members", "names": list(msg.names)}, "names")
    if isinstance(msg, Notice):
        return _dump({"type": "notice", "text": msg.text})
    if isinstance(msg, History):
        return _dump({"type": "history", "messages": [_chat_obj(c) for c in msg.messages]})
    if isinstance(msg, Error):
        error: dict[str, Any] = {"type": "error", "code": msg.code, "text": msg.text}
        if msg.id is not None:
            error["id"] = msg.id
        return _dump(error)
    if isinstance(msg, Ended):
        return _dump({"type": "end", "reason": msg.reason})
    if isinstance(msg, AuthChallenge):
        return _dump({"type": "auth", "pake": msg.pake, "confirm": msg.confirm})
    return _dump({"type": "ping" if isinstance(msg, Ping) else "pong"})


def not_encrypted_warning(plain: tuple[str, ...]) -> str:
    """What everyone is told while unencrypted members are in the room."""
    who = ", ".join(plain)
    verb = "is" if len(plain) == 1 else "are"
    return (
        f"Not encrypted: {who} {verb} connected without encryption, so anyone on the network "
        "can read what is said in this room."
    )


def describe_left(msg: Left) -> str:
    """How a departure reads to people: "Ann left." or "Ann left (connection lost)."."""
    return f"{msg.name} left." if msg.reason == "left" else f"{msg.name} left ({msg.reason})."


def text_lines(msg: ServerMessage) -> list[str]:
    """How a message reads as plain lines, for text peers and terminals."""
    if isinstance(msg, Chat):
        who = msg.sender if msg.to is None else f"(private to {msg.to}) {msg.sender}"
        return [f"{who}: {part}" for part in msg.text.split("\n")]
    if isinstance(msg, Welcome):
        lines = [f"* You are {msg.name}. In the room: {_members_text(msg.members)}."]
        if msg.note:
            lines.append(f"* {msg.note}")
        if msg.plain:
            lines.append(f"* {_plain_warning(msg.plain)}")
        for chat in msg.history:
            lines += [f"(earlier) {line}" for line in text_lines(chat)]
        return lines
    if isinstance(msg, History):
        return [f"(earlier) {line}" for chat in msg.messages for line in text_lines(chat)]
    if isinstance(msg, Joined):
        return [f"* {msg.name} joined (not encrypted)." if msg.plain else f"* {msg.name} joined."]
    if isinstance(msg, Left):
        return [f"* {describe_left(msg)}"]
    if isinstance(msg, Renamed):
        return [f"* {msg.old} is now {msg.new}."]
    if isinstance(msg, Members):
        return [f"* In the room: {', '.join(msg.names)}."] + (
            [f"* {not_encrypted_warning(msg.plain)}"] if msg.plain else []
        )
    if isinstance(msg, Notice):
        return [f"* {msg.text}"]
    if isinstance(msg, Error):
        return [f"! {msg.text}"]
    if isinstance(msg, Ended):
        return [f"* {msg.reason}", "Chat ended."]
    return []


WELCOME_NAMES = 50  # a text peer's welcome lists this many names at most


def _members_text(members: tuple[str, ...] | list[str]) -> str:
    """Who is in the room, for a text peer's welcome: the names, or in a big room the count
    (`/who` lists them). Listing thousands of names to every newcomer would make filling a
    room cost the host a square of its size."""
    if len(members) <= WELCOME_NAMES:
        return ", ".join(members)
    return f"{len(members):,} members (/who lists them)"


def _plain_warning(plain: tuple[str, ...]) -> str:
    """`not_encrypted_warning` for a text peer's welcome: in a big room the count, not the
    names (each newcomer told thousands of names made filling a room cost a square)."""
    if len(plain) <= WELCOME_NAMES:
        return not_encrypted_warning(plain)
    return (
        f"Not encrypted: {len(plain):,} members (/who lists them) are connected without "
        "encryption, so anyone on the network can read what is said in this room."
    )


ARRIVALS_LISTED = 3  # a text peer hears more arrivals than this at once as one line


def arrivals_line(names: list[str], count: int, plain: int) -> bytes:
    """What a text peer is told, in place of one `* X joined.` line each, of `count` (more
    than `ARRIVALS_LISTED`) arrivals announced together: the first names, and how many
    more; `plain` of them are not encrypted. A person on `nc` in a room that fills up wants
    a few lines, not thousands (and the host would write a square of the room's size)."""
    shown = ", ".join(names[:ARRIVALS_LISTED])
    more = count - min(count, ARRIVALS_LISTED)
    note = "" if not plain else f" ({plain:,} not encrypted)"
    return f"* {count:,} people joined: {shown} and {more:,} more{note}.\n".encode()


def departures_line(names: list[str], count: int) -> bytes:
    """What a text peer is told, in place of one `* X left.` line each, of `count` (more than
    `ARRIVALS_LISTED`) departures announced together, as `arrivals_line` tells arrivals."""
    shown = ", ".join(names[:ARRIVALS_LISTED])
    more = count - min(count, ARRIVALS_LISTED)
    return f"* {count:,} people left: {shown} and {more:,} more.\n".encode()


def encode_text_chats(chats: Iterable[Chat]) -> bytes:
    """Chat messages for a text peer, as `encode_text` each would give, in one piece: the
    common line (public, one line of text) by one format, without a list of lines each; a
    `ChatRun` of one-line texts by one join."""
    if type(chats) is ChatRun:
        prefix = f"{chats.sender}: "
        body = f"\n{prefix}".join(chats.texts)
        if body.count("\n") == len(chats.texts) - 1:  # no text of several lines
            return f"{prefix}{body}\n".encode()
    parts = [
        f"{c.sender}: {c.text}\n"
        if c.to is None and "\n" not in c.text
        else encode_text(c).decode()
        for c in chats
    ]
    return "".join(parts).encode()


def encode_text(msg: ServerMessage) -> bytes:
    """A host's message to a text peer: readable lines, nothing for keepalives."""
    lines = text_lines(msg)
    return "".join(line + "\n" for line in lines).encode()
