"""Floor 1 of files (app/transfer.py): names, sizes, windows, frames and the host's relay."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.messages import Hello, ProtocolError
from app.protocol import MAX_LINE, VERSION, HostSideParser, JoinerSideParser, encode_client
from app.transfer import (
    CHUNK,
    MAX_CHUNK,
    MAX_OFFERS,
    WINDOW,
    FileAccept,
    FileCancel,
    FileData,
    FileDecline,
    FileDone,
    FileEnd,
    FileGet,
    FileOffer,
    FileOffered,
    FileProblem,
    FileRefused,
    FileWindow,
    Incoming,
    Outgoing,
    Relay,
    Window,
    decode_frame,
    encode_data,
    encode_frame,
    free_name,
    numbered,
    parse_size,
    safe_name,
)

SHA = hashlib.sha256(b"").hexdigest()


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("report.pdf", "report.pdf"),
        ("../../evil", "_._evil"),
        ("..", "file"),
        ("a/b\\c", "a_b_c"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("com1.tar.gz", "_com1.tar.gz"),
        ("lpt9", "_lpt9"),
        ("console.txt", "console.txt"),
        ("notes. . .", "notes"),
        (".bashrc", "bashrc"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("tab\there\x00\x1b[31m.txt", "tabhere[31m.txt"),
        ('what?<>:"|*.txt', "what_______.txt"),
        ("", "file"),
    ],
)
def test_safe_name(given: str, saved: str) -> None:
    assert safe_name(given) == saved


def test_a_long_name_is_cut_and_keeps_its_extension() -> None:
    name = safe_name("x" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name) <= 120
    assert len(name.encode()) < 255


def test_numbered_and_free_names() -> None:
    assert numbered("report.pdf", 1) == "report (1).pdf"
    assert numbered("README", 2) == "README (2)"
    taken = {"report.pdf", "report (1).pdf.part"}
    assert free_name("report.pdf", taken.__contains__) == "report (2).pdf"


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("1024", 1024), ("4GiB", 4 << 30), ("500 MB", 500_000_000), ("1.5k", 1500)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["-1", "lots", "4 parsecs", ""])
def test_parse_size_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


# --- windows -----------------------------------------------------------------------------------


def test_window_grants_at_half_and_refuses_overflow() -> None:
    window = Window(100)
    window.consume(40)
    assert window.processed(40) == 0  # under half: no update yet
    window.consume(20)
    assert window.processed(20) == 60  # half reached: grant all processed
    assert window.available == 100
    with pytest.raises(FileProblem):
        window.consume(101)


def test_window_grants_when_empty_even_under_half() -> None:
    window = Window(100)
    window.consume(100)
    assert window.processed(10) == 10


# --- frames ------------------------------------------------------------------------------------


def test_every_frame_round_trips() -> None:
    frames = [
        FileOffer("a.txt", 3, SHA, ref="f1", to="Bob"),
        FileOffer("a.txt", 3, SHA, file=4, sender="Ann"),
        FileOffered("f1", 4, ("Bob", "Cat")),
        FileRefused("f1", "too_large", "too big"),
        FileAccept(4, 10),
        FileAccept(4, 10, SHA),
        FileDecline(4),
        FileCancel(4),
        FileGet(4, 2, "Bob", 0, WINDOW),
        FileData(0, b"\x00\xffabc", stream=2),
        FileData(0, b"abc", file=4),
        FileWindow(512, file=4),
        FileWindow(512, stream=2),
        FileDone(4, True),
        FileEnd(4, "received", "Bob received a.txt.", 2, "Bob"),
        FileEnd(4, "cancelled", "Ann left; a.txt is no longer offered.", resumable=True),
    ]
    host, joiner = _app_host_parser(), _joiner_parser()
    for frame in frames:
        line = encode_frame(frame)
        if isinstance(frame, FileData):  # a header line, then the bytes
            parser = host if frame.stream is not None else joiner
            assert parser.feed(line) == [frame]
            continue
        assert line.endswith(b"\n")
        assert decode_frame(json.loads(line)) == frame


def _app_host_parser() -> HostSideParser:
    host = HostSideParser()
    host.feed(encode_client(Hello("Ann", VERSION)))
    return host


def _joiner_parser() -> JoinerSideParser:
    joiner = JoinerSideParser()
    joiner.feed(b"PARLEY/2 hi\n")
    return joiner


def test_the_largest_chunk_header_fits_a_line() -> None:
    head, data = encode_data(FileData(1 << 40, b"\xff" * MAX_CHUNK, stream=1 << 40, file=1 << 40))
    assert len(head) < 200 < MAX_LINE
    assert head.endswith(b"\n")
    assert len(data) == MAX_CHUNK
    assert CHUNK <= MAX_CHUNK


def test_file_frames_come_out_of_both_parsers() -> None:
    host = HostSideParser()
    host.feed(encode_client(Hello("Ann", VERSION)))
    assert host.feed(encode_frame(FileAccept(3, 0))) == [FileAccept(3, 0)]
    joiner = JoinerSideParser()
    joiner.feed(b"PARLEY/1 hi\n")
    assert joiner.feed(encode_frame(FileData(0, b"x", file=3))) == [FileData(0, b"x", file=3)]


@pytest.mark.parametrize(
    "header",
    [
        {"offset": 0, "size": MAX_CHUNK + 1},  # more than any chunk may hold
        {"offset": 0, "size": 0},
        {"offset": 0, "size": -5},
        {"offset": -1, "size": 3},
        {"offset": 0},  # no size: where would the next line start?
        {"offset": 0, "size": 3, "data": "QUJD"},  # version 1's base64 chunk
        {"offset": 0, "size": "3"},
    ],
)
def test_a_chunk_header_that_cannot_be_read_is_fatal_and_nothing_after_it_is_parsed(
    header: dict[str, object],
) -> None:
    for parser, side in ((_app_host_parser(), "stream"), (_joiner_parser(), "file")):
        line = json.dumps({"type": "file_data", side: 1, **header}).encode() + b"\n"
        after = encode_frame(FileCancel(1)) if side == "stream" else b'{"type":"ping"}\n'
        (out,) = parser.feed(line + b"abc" + after)
        assert isinstance(out, ProtocolError)
        assert out.fatal
        assert out.code == "bad_chunk"
        assert parser.feed(after) == []  # the connection is over: nothing more is read


def test_the_host_checks_a_header_before_it_takes_a_byte_of_its_payload() -> None:
    host = _app_host_parser()
    seen: list[FileData] = []

    def check(frame: FileData) -> ProtocolError | None:
        seen.append(frame)
        return ProtocolError("no_stream", "nobody accepted that", fatal=True)

    host.check_chunk = check
    head, _ = encode_data(FileData(0, b"x" * 10, stream=5))
    (out,) = host.feed(head)  # the header alone: refused before any payload came
    assert seen == [FileData(0, stream=5, length=10)]
    assert isinstance(out, ProtocolError)
    assert out.fatal
    assert host.feed(b"x" * 10 + encode_frame(FileCancel(1))) == []


def test_the_host_passes_the_payload_on_as_raw_bytes() -> None:
    host = _app_host_parser()
    body = bytes(range(256)) * 3 + b"\n\n{not a line}\n"
    (out,) = host.feed(encode_frame(FileData(7, body, stream=2)))
    assert out == FileData(7, body, stream=2)
    assert isinstance(out, FileData)
    assert (out.size, out.length) == (len(body), None)
    head, data = encode_data(FileData(7, out.data, file=3))
    assert data is out.data  # framed again without a copy
    joiner = _joiner_parser()
    assert joiner.feed(head + data) == [FileData(7, body, file=3)]


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"file_accept","file":true,"offset":0}',
        '{"type":"file_offer","name":"a","size":1,"sha256":"xyz"}',
        '{"type":"file_offer","name":"a","size":"1","sha256":"' + SHA + '"}',
        '{"type":"file_done","file":1,"ok":1}',
    ],
)
def test_bad_file_frames_are_malformed(line: str) -> None:
    host = HostSideParser()
    host.feed(encode_client(Hello("Ann", VERSION)))
    (out,) = host.feed(line.encode() + b"\n")
    assert isinstance(out, ProtocolError)
    assert out.code == "malformed"


# --- the relay ---------------------------------------------------------------------------------

ROOM = {0: ("Hal", "#0", "local"), 1: ("Ann", "ta", "app"), 2: ("Bob", "tb", "app")}


def _room_with_text() -> dict[int, tuple[str, str, str]]:
    return {**ROOM, 3: ("guest1", "#3", "text")}


def _offer(relay: Relay, size: int = 100, to: str | None = None) -> int:
    out = relay.offer(1, "Ann", FileOffer("a.bin", size, SHA, ref="f1", to=to), _room_with_text())
    offered = out[0][1]
    assert isinstance(offered, FileOffered)
    return offered.file


def test_an_offer_goes_to_every_app_member_and_a_line_to_text_peers() -> None:
    relay = Relay()
    out = relay.offer(1, "Ann", FileOffer("../x.bin", 5, SHA, ref="f1"), _room_with_text())
    assert out[0] == (1, FileOffered("f1", 1, ("Hal", "Bob")))
    announced = FileOffer("_x.bin", 5, SHA, file=1, sender="Ann")
    assert (0, announced) in out
    assert (2, announced) in out
    (line,) = [item for to, item in out if to == 3]
    assert isinstance(line, str)
    assert "Parley app" in line


def test_a_private_offer_goes_to_one_member_only() -> None:
    relay = Relay()
    out = relay.offer(1, "Ann", FileOffer("x", 5, SHA, ref="f1", to="Bob"), ROOM)
    assert [to for to, _ in out] == [1, 2]
    assert out[1][1] == FileOffer("x", 5, SHA, to="you", file=1, sender="Ann")
    assert relay.accept(0, "Hal", "#0", FileAccept(1))[0][1] == FileEnd(
        1, "gone", "That file is no longer offered."
    )


@pytest.mark.parametrize(
    ("limit", "size", "to", "code"),
    [(0, 1, None, "no_files"), (10, 11, None, "too_large"), (10, 1, "Zed", "no_member")],
)
def test_offers_refused_up_front(limit: int, size: int, to: str | None, code: str) -> None:
    relay = Relay(max_size=limit)
    out = relay.offer(1, "Ann", FileOffer("x", size, SHA, ref="f1", to=to), ROOM)
    assert len(out) == 1
    refused = out[0][1]
    assert isinstance(refused, FileRefused)
    assert refused.code == code


def test_a_member_may_hold_only_so_many_offers_open() -> None:
    relay = Relay()
    for i in range(MAX_OFFERS):
        out = relay.offer(1, "Ann", FileOffer("x", 1, SHA, ref=f"f{i}"), ROOM)
        assert isinstance(out[0][1], FileOffered)
    out = relay.offer(1, "Ann", FileOffer("x", 1, SHA, ref="one more"), ROOM)
    assert out == [(1, FileRefused("one more", "too_many", out[0][1].text))]  # type: ignore[union-attr]
    relay.cancel(1, "Ann", FileCancel(1))
    assert isinstance(
        relay.offer(1, "Ann", FileOffer("x", 1, SHA, ref="r"), ROOM)[0][1], FileOffered
    )


def test_a_text_peer_cannot_be_sent_a_file() -> None:
    relay = Relay()
    out = relay.offer(1, "Ann", FileOffer("x", 1, SHA, ref="f1", to="guest1"), _room_with_text())
    refused = out[0][1]
    assert isinstance(refused, FileRefused)
    assert refused.code == "text_peer"


def test_the_host_holds_no_more_than_its_two_windows() -> None:
    """Hop by hop: a chunk goes on at once into the receiver's window and the host grants the
    sender that much again; a chunk the receiver has no room for is held, and the sender can
    add only what the host granted. The receiver's grant lets the held chunk go on."""
    relay = Relay(window=4, receiver_window=4)
    file_id = _offer(relay)
    ((to, get),) = relay.accept(2, "Bob", "tb", FileAccept(file_id))
    assert to == 1
    assert isinstance(get, FileGet)
    assert get.window == 4
    assert relay.data(1, FileData(0, b"abcd", stream=get.stream)) == [
        (2, FileData(0, b"abcd", file=file_id)),
        (1, FileWindow(4, stream=get.stream)),  # the host's own grant: Bob has granted nothing
    ]
    assert relay.data(1, FileData(4, b"efgh", stream=get.stream)) == []  # held: Bob is full
    with pytest.raises(FileProblem, match="window"):
        relay.data(1, FileData(8, b"i", stream=get.stream))  # over what the host granted
    assert relay.granted(2, FileWindow(4, file=file_id)) == [
        (2, FileData(4, b"efgh", file=file_id)),
        (1, FileWindow(4, stream=get.stream)),
    ]
    with pytest.raises(FileProblem, match="window"):
        relay.granted(2, FileWindow(5, file=file_id))  # over the receiver's window
    with pytest.raises(FileProblem, match="not 8"):
        relay.data(1, FileData(0, b"a", stream=get.stream))  # out of order
    with pytest.raises(FileProblem, match="not yours"):
        relay.data(2, FileData(8, b"a", stream=get.stream))


def test_a_held_chunk_is_cut_to_the_room_the_receiver_granted() -> None:
    """A receiver grants again only when its window is empty or half processed, so the host
    fills it to the end: a chunk larger than the room left goes on in two pieces."""
    relay = Relay(window=8, receiver_window=6)
    file_id = _offer(relay)
    ((_, get),) = relay.accept(2, "Bob", "tb", FileAccept(file_id))
    assert isinstance(get, FileGet)
    assert relay.data(1, FileData(0, b"abcd", stream=get.stream)) == [
        (2, FileData(0, b"abcd", file=file_id)),
        (1, FileWindow(4, stream=get.stream)),
    ]
    assert relay.data(1, FileData(4, b"efgh", stream=get.stream)) == [
        (2, FileData(4, b"ef", file=file_id)),
        (1, FileWindow(2, stream=get.stream)),
    ]
    assert relay.granted(2, FileWindow(6, file=file_id)) == [
        (2, FileData(6, b"gh", file=file_id)),
        (1, FileWindow(2, stream=get.stream)),
    ]
    relay.decline(2, "Bob", "tb", FileDecline(file_id))  # the stream ends, and what it held
    assert relay.data(1, FileData(8, b"ij", stream=get.stream)) == []


def test_decline_cancel_and_done_reach_the_sender() -> None:
    relay = Relay()
    file_id = _offer(relay)
    assert relay.decline(2, "Bob", "tb", FileDecline(file_id)) == [
        (1, FileEnd(file_id, "declined", "Bob declined a.bin.", by="Bob"))
    ]
    ((_, get),) = relay.accept(0, "Hal", "#0", FileAccept(file_id))
    assert isinstance(get, FileGet)
    (end,) = relay.cancel(0, "Hal", FileCancel(file_id))
    assert end == (1, FileEnd(file_id, "cancelled", "Hal cancelled receiving a.bin.", 1, "Hal"))
    ((_, get),) = relay.accept(0, "Hal", "#0", FileAccept(file_id, 50))
    assert isinstance(get, FileGet)
    assert get.offset == 50
    done, heard = relay.done(0, "Hal", "#0", FileDone(file_id, True))
    assert done == (1, FileEnd(file_id, "received", "Hal received a.bin.", get.stream, "Hal"))
    assert heard == (0, FileEnd(file_id, "received", ""))  # the receiver may stop saying it


def test_a_file_done_said_again_after_a_drop_reaches_the_sender_once() -> None:
    """Bob's connection dropped with his file_done on its way: his stream ended (Ann heard
    "paused"). Back, he says it again: Ann hears "received" once; saying it once more, or a
    member who never had a stream of the file saying it, tells Ann nothing."""
    relay = Relay()
    file_id = _offer(relay)
    relay.accept(2, "Bob", "tb", FileAccept(file_id))
    ((_, paused),) = relay.member_left(2, "Bob", held=True)
    assert isinstance(paused, FileEnd)
    assert paused.status == "paused"
    out = relay.done(5, "Bob", "tb", FileDone(file_id, True))  # back, with a new id
    assert out == [
        (1, FileEnd(file_id, "received", "Bob received a.bin.", None, "Bob")),
        (5, FileEnd(file_id, "received", "")),
    ]
    assert relay.done(5, "Bob", "tb", FileDone(file_id, True)) == [
        (5, FileEnd(file_id, "received", ""))
    ]
    assert relay.done(0, "Hal", "#0", FileDone(file_id, True)) == [
        (0, FileEnd(file_id, "gone", ""))
    ]
    assert relay.done(5, "Bob", "tb", FileDone(99, True))[0][1].status == "gone"  # type: ignore[union-attr]


def test_a_sender_that_leaves_withdraws_its_offers_for_everyone_told() -> None:
    relay = Relay()
    file_id = _offer(relay)
    relay.accept(2, "Bob", "tb", FileAccept(file_id))
    out = relay.member_left(1, "Ann", held=False)
    assert sorted(to for to, _ in out) == [0, 2]
    assert all(isinstance(f, FileEnd) and f.status == "cancelled" for _, f in out)
    assert relay.accept(2, "Bob", "tb", FileAccept(file_id))[0][1].status == "gone"  # type: ignore[union-attr]


def test_a_recipient_who_comes_back_with_a_new_id_may_resume() -> None:
    relay = Relay()
    file_id = _offer(relay, to="Bob")
    relay.accept(2, "Bob", "tb", FileAccept(file_id))
    (paused,) = relay.member_left(2, "Bob", held=True)
    assert paused[1].status == "paused"  # type: ignore[union-attr]
    assert relay.newcomer(7, "tb", "app") == [
        (7, FileOffer("a.bin", 100, SHA, to="you", file=file_id, sender="Ann"))
    ]
    other = FileAccept(file_id, 60, "0" * 64)  # a resume of another file under that number
    assert relay.accept(7, "Bob", "tb", other)[0][1].status == "gone"  # type: ignore[union-attr]
    ((to, get),) = relay.accept(7, "Bob", "tb", FileAccept(file_id, 60, SHA))
    assert to == 1
    assert isinstance(get, FileGet)
    assert get.offset == 60


# --- the two ends ------------------------------------------------------------------------------


def test_incoming_and_outgoing_move_a_file_and_verify_it() -> None:
    data = bytes(range(256)) * 700  # several chunks, not a multiple of the chunk
    offer = FileOffer("d", len(data), hashlib.sha256(data).hexdigest(), file=1)
    incoming = Incoming(offer, window=3 * CHUNK)
    outgoing = Outgoing(FileGet(1, 9, "Bob", 0, 3 * CHUNK), len(data))
    got = bytearray()
    frames_back: list[object] = []
    while not incoming.complete:
        want = outgoing.next_chunk()
        assert want is not None, "the sender stalled: no window left"
        offset, n = want
        frame = outgoing.sent(data[offset : offset + n])
        chunk = incoming.chunk(FileData(frame.offset, frame.data, file=1))
        got += chunk
        for reply in incoming.written(chunk):
            frames_back.append(reply)
            if isinstance(reply, FileWindow):
                outgoing.grant(reply.bytes)
    assert bytes(got) == data
    assert incoming.verified
    assert frames_back[-1] == FileDone(1, True)


def test_incoming_refuses_out_of_order_and_sees_a_bad_hash() -> None:
    offer = FileOffer("d", 2, hashlib.sha256(b"ab").hexdigest(), file=1)
    incoming = Incoming(offer)
    with pytest.raises(FileProblem):
        incoming.chunk(FileData(1, b"b", file=1))
    incoming.written(incoming.chunk(FileData(0, b"a", file=1)))
    assert incoming.restart() == FileAccept(1, 1, offer.sha256)
    assert incoming.written(incoming.chunk(FileData(1, b"X", file=1))) == [FileDone(1, False)]
    assert not incoming.verified


def test_only_app_peers_and_parley_hosts_switch_to_counted_bytes() -> None:
    """A text peer (or a server that is not Parley) that types a chunk header is typing text:
    the lines after it stay lines."""
    line = encode_frame(FileData(0, b"abc", stream=1)) + b"\n"
    text_peer = HostSideParser()
    text_peer.feed(b"hello\n")
    assert [type(m).__name__ for m in text_peer.feed(line)] == ["Say", "Say"]
    joiner = JoinerSideParser()
    joiner.feed(b"not parley\n")
    assert [type(m).__name__ for m in joiner.feed(line)] == ["RawLine", "RawLine"]


def test_progress_reads_as_a_person_would_say_it() -> None:
    from app.transfer import describe_progress

    assert describe_progress(1_200_000, 2_600_000, 3_400_000, 1.0) == (
        "46% · 1.2 MB of 2.6 MB · 3.4 MB/s · 1 s left"
    )
    # Done: no "0 B/s · 0 s left" (a resumed file may finish before any speed is measured).
    assert describe_progress(2_600_000, 2_600_000, 0.0, 0.0) == "100% · 2.6 MB of 2.6 MB"
    assert describe_progress(0, 0, 0.0, None) == "100% · 0 B of 0 B"
