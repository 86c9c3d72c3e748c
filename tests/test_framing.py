"""The counted-bytes framing of file chunks (app/protocol.py's LineSplitter and both parsers):
a stream cut anywhere reads as the same frames, and a header is judged before its payload."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.messages import Chat, Hello, Ping, ProtocolError, Say
from app.protocol import (
    VERSION,
    BufferPool,
    HostSideParser,
    JoinerSideParser,
    LineSplitter,
    Payload,
    encode_client,
    encode_json,
)
from app.transfer import FileCancel, FileData, FileWindow, encode_frame


def _frames_by_splitter(pieces: list[bytes], max_line: int = 64) -> list[bytes | Payload | None]:
    """Run a splitter the way the parsers do: a line "N" means N payload bytes follow."""
    splitter = LineSplitter(max_line)
    out: list[bytes | Payload | None] = []
    for piece in pieces:
        for item in splitter.items(piece):
            out.append(item)
            if isinstance(item, bytes) and item.isdigit():
                splitter.expect(int(item))
    return out


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


_item = st.one_of(
    st.binary(max_size=80).map(lambda b: ("line", b"L" + b.replace(b"\n", b"."))),
    st.binary(max_size=300).map(lambda b: ("payload", b)),
)


def _stream(items: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for kind, body in items:
        out += body + b"\n" if kind == "line" else str(len(body)).encode() + b"\n" + body
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_item, max_size=12), st.lists(st.integers(0, 10_000), max_size=20))
def test_a_stream_cut_at_random_points_gives_the_same_frames(
    items: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    data = _stream(items)
    whole = _frames_by_splitter([data])
    assert _frames_by_splitter(_cut(data, cuts)) == whole
    assert _frames_by_splitter([data[i : i + 1] for i in range(len(data))]) == whole


@settings(max_examples=200, deadline=None)
@given(st.lists(_item, max_size=12))
def test_payloads_come_out_whole_and_lines_around_them_untouched(
    items: list[tuple[str, bytes]],
) -> None:
    got = _frames_by_splitter([_stream(items)])
    expected: list[bytes | Payload | None] = []
    for kind, body in items:
        if kind == "payload":
            expected += [str(len(body)).encode(), Payload(body)]
        elif len(body) > 64:
            expected.append(None)  # over the cap: reported, not kept
        else:
            expected.append(body.removesuffix(b"\r"))
    assert got == expected


def test_a_payload_may_hold_newlines_and_what_looks_like_a_header() -> None:
    body = b'\n{"type":"file_data","offset":0,"stream":1,"size":3}\nabc\n'
    assert _frames_by_splitter([b"%d\n" % len(body) + body + b"after\n"]) == [
        b"%d" % len(body),
        Payload(body),
        b"after",
    ]


def test_pending_counts_a_payload_under_way() -> None:
    splitter = LineSplitter()
    assert list(splitter.items(b"5\n")) == [b"5"]
    splitter.expect(5)
    assert splitter.pending > 0  # a header came, its payload not yet: a peer leaving now left
    assert list(splitter.items(b"ab")) == []
    assert list(splitter.items(b"cde")) == [Payload(b"abcde")]
    assert splitter.pending == 0


def _host_session() -> bytes:
    """An app peer's bytes: hello, chat, chunks with chat between them, a window, a cancel."""
    parts = [encode_client(Hello("Ann", VERSION)), encode_client(Say("before", "m1"))]
    for i in range(4):
        parts.append(encode_frame(FileData(i * 700, bytes([i]) * 700 + b"\n" * 5, stream=3)))
        parts.append(encode_client(Say(f"between {i}", f"m{i + 2}")))
    parts += [encode_frame(FileWindow(9, file=1)), encode_frame(FileCancel(4))]
    return b"".join(parts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 100_000), max_size=30))
def test_the_host_parser_reads_chunks_and_chat_alike_however_the_stream_is_cut(
    cuts: list[int],
) -> None:
    data = _host_session()
    whole = HostSideParser().feed(data)
    assert [type(m).__name__ for m in whole] == [
        "Hello",
        "Say",
        *["FileData", "Say"] * 4,
        "FileWindow",
        "FileCancel",
    ]
    assert whole[2] == FileData(0, b"\x00" * 700 + b"\n" * 5, stream=3)
    parser = HostSideParser()
    got = [m for piece in _cut(data, cuts) for m in parser.feed(piece)]
    assert got == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 100_000), max_size=30))
def test_the_joiner_parser_reads_chunks_and_chat_alike_however_the_stream_is_cut(
    cuts: list[int],
) -> None:
    chat = encode_json(Chat(1, "Ann", "hi\nthere", 1.0))
    data = b"PARLEY/2 hi\n" + b"".join(
        encode_frame(FileData(i * 1000, bytes(range(250)) * 4, file=2)) + chat for i in range(3)
    )
    whole = JoinerSideParser().feed(data)
    assert [type(m).__name__ for m in whole] == ["Greeting", *["FileData", "Chat"] * 3]
    parser = JoinerSideParser()
    assert [m for piece in _cut(data, cuts) for m in parser.feed(piece)] == whole


def test_a_header_over_the_largest_chunk_is_refused_before_its_payload() -> None:
    parser = HostSideParser()
    parser.feed(encode_client(Hello("Ann", VERSION)))
    head = json.dumps({"type": "file_data", "offset": 0, "stream": 1, "size": 1 << 40})
    (out,) = parser.feed(head.encode() + b"\n")
    assert isinstance(out, ProtocolError)
    assert out.fatal
    assert parser.feed(encode_client(Ping())) == []


def test_a_text_peer_never_enters_counted_mode() -> None:
    parser = HostSideParser()
    parser.feed(b"hi, I am nc\n")
    head = b'{"type":"file_data","offset":0,"stream":1,"size":5}\n'
    assert parser.feed(head + b"hello\n") == [Say(head[:-1].decode()), Say("hello")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 70_000), min_size=1, max_size=40))
def test_reading_payloads_straight_into_their_buffer_gives_the_same_frames(
    reads: list[int],
) -> None:
    """The joiner's BufferedProtocol path: lines fed from its own buffer, the rest of a payload
    read straight into the payload's buffer, reads of any size."""
    chat = encode_json(Chat(1, "Ann", "hi", 1.0))
    data = b"PARLEY/2 hi\n" + b"".join(
        encode_frame(FileData(i * 3000, bytes(range(250)) * 12, file=2)) + chat for i in range(4)
    )
    whole = JoinerSideParser().feed(data)
    parser = JoinerSideParser()
    got: list[object] = []
    pos, turn = 0, 0
    while pos < len(data):
        size = reads[turn % len(reads)]
        turn += 1
        target = parser.read_buffer()
        if target is None:
            got += parser.feed(data[pos : pos + size])
            pos += min(size, len(data) - pos)
        else:
            n = min(size, len(target), len(data) - pos)
            target[:n] = data[pos : pos + n]
            got += parser.read_into(n)
            pos += n
    assert got == whole


def test_a_pooled_buffer_is_read_into_again_and_holds_only_the_new_chunk() -> None:
    """A receiver gives a chunk's buffer back once it is on disk; the next chunk of that size
    is read into the same buffer (no new memory to touch), and nothing of the old one shows
    through, however the bytes arrive; a chunk still in use is never handed out."""
    pool = BufferPool()
    parser = JoinerSideParser()
    parser.use_pool(pool)
    first = encode_frame(FileData(0, b"a" * 3000, file=2))
    second = encode_frame(FileData(3000, b"b" * 2999 + b"c", file=2))
    (_, chunk) = parser.feed(b"PARLEY/2 hi\n" + first)
    assert isinstance(chunk, FileData)
    assert chunk.data == b"a" * 3000
    held = chunk.data
    pool.give(held)
    got = parser.feed(second[:-1000])
    target = parser.read_buffer()
    assert target is not None
    assert target.obj is held  # the same buffer, being filled again
    target[:1000] = second[-1000:]
    (again,) = got + parser.read_into(1000)
    assert isinstance(again, FileData)
    assert again.data is held
    assert again.data == b"b" * 2999 + b"c"
    third = encode_frame(FileData(6000, b"d" * 3000, file=2))
    (other,) = parser.feed(third)  # the second is still in use: a new buffer
    assert isinstance(other, FileData)
    assert other.data is not held
    assert other.data == b"d" * 3000
