"""A file chunk's framing over real sockets: a header line, then raw bytes (docs/protocol.md §16).

Hostile or broken senders are played by a raw app peer (Mallory) speaking the wire by hand; the
room is Hal hosting, Ann and Bob joined with the app (tests/test_files.py's fixtures). Each bad
header must cost Mallory her connection and nothing else: the others keep chatting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

from app import events as ev
from app.messages import Hello, Say
from app.protocol import VERSION, encode_client
from app.transfer import CHUNK, MAX_CHUNK, FileData, FileOffer, encode_data, encode_frame
from tests import test_files
from tests.helpers import LoopServer, RawPeer
from tests.test_files import ended, files_in, make_file, offered, sha

room = test_files.room  # the same room and proxy fixtures as the other file tests
links = test_files.links
linked_room = test_files.linked_room


def _mallory(port: int) -> RawPeer:
    peer = RawPeer(port)
    peer.read_until("^PARLEY/")
    peer.send(encode_client(Hello("Mallory", VERSION)))
    peer.read_until('"welcome"')
    return peer


def _room_still_works(ann, brec, text: str) -> None:
    ann.send(text)
    brec.wait_for(ev.MessageReceived, lambda e: e.text == text)


def test_a_header_claiming_more_than_the_largest_chunk_drops_only_that_connection(room) -> None:
    (hal, hrec, port), (ann, arec), (bob, brec), tmp = room(allow_plain=True)
    mallory = _mallory(port)
    head = {"type": "file_data", "offset": 0, "stream": 1, "size": MAX_CHUNK + 1}
    mallory.send(json.dumps(head).encode() + b"\n")
    error = json.loads(mallory.read_until('"error"'))
    assert error["code"] == "bad_chunk"
    assert str(MAX_CHUNK) in error["text"]
    mallory.wait_closed()  # no payload is waited for: the connection is over
    hrec.wait_for(ev.MemberLeft, lambda e: e.name == "Mallory")
    _room_still_works(ann, brec, "still here after a huge header")


def test_bytes_for_a_transfer_nobody_accepted_drop_only_that_connection(room) -> None:
    (hal, hrec, port), (ann, arec), (bob, brec), tmp = room(allow_plain=True)
    mallory = _mallory(port)
    digest = hashlib.sha256(b"z" * 10).hexdigest()
    mallory.send(encode_frame(FileOffer("z.bin", 10, digest, ref="r", to="Bob")))
    mallory.read_until('"file_offered"')
    offered(brec, "z.bin")  # offered, never accepted: no stream is open
    head, body = encode_data(FileData(0, b"z" * 10, stream=1))
    mallory.send(head)  # the header alone: it is refused before any payload is sent
    error = json.loads(mallory.read_until('"error"'))
    assert error["code"] == "no_stream"
    mallory.wait_closed()
    assert not [e for e in brec.of(ev.FileProgress) if e.incoming]
    _room_still_works(ann, brec, "still here after stray bytes")


def test_a_malformed_header_loses_nothing_of_a_transfer_under_way(room, tmp_path: Path) -> None:
    """Ann's file to Bob and the chat go on while Mallory's broken header ends Mallory."""
    (hal, hrec, port), (ann, arec), (bob, brec), tmp = room(allow_plain=True)
    src = make_file(tmp / "src", "big.bin", 6_000_000)
    ann.send_file(str(src))
    offer = offered(brec, "big.bin")
    bob.accept_file(offer.number)
    mallory = _mallory(port)
    mallory.send(b'{"type":"file_data","offset":0,"stream":1,"size":"lots"}\n')
    assert json.loads(mallory.read_until('"error"'))["code"] == "bad_chunk"
    mallory.wait_closed()
    _room_still_works(ann, brec, "chat during the transfer")
    done = ended(brec, offer.number)
    assert done.status == "received", done
    assert sha(Path(done.path or "")) == sha(src)


def test_a_chat_line_between_two_chunks_arrives_before_the_next_payload_is_complete(
    room,
) -> None:
    """The sender's chat between chunks is relayed at once: the line splitter is back in line
    mode after each payload, and a chunk still arriving holds nothing else up."""
    (hal, hrec, port), (ann, arec), (bob, brec), tmp = room(allow_plain=True)
    mallory = _mallory(port)
    body = bytes(range(256)) * 2048  # 512 KiB, newlines and all
    digest = hashlib.sha256(body).hexdigest()
    mallory.send(encode_frame(FileOffer("mix.bin", len(body), digest, ref="r", to="Bob")))
    offer = offered(brec, "mix.bin")
    bob.accept_file(offer.number)
    get = json.loads(mallory.read_until('"file_get"'))
    half = len(body) // 2
    first = encode_frame(FileData(0, body[:half], stream=get["stream"]))
    head, second = encode_data(FileData(half, body[half:], stream=get["stream"]))
    mallory.send(first + encode_client(Say("between the chunks", "m1")) + head + second[:1000])
    got = brec.wait_for(ev.MessageReceived, lambda e: e.text == "between the chunks")
    assert got.sender == "Mallory"
    assert not brec.of(ev.FileEnded)  # the second chunk is not complete yet
    mallory.send(second[1000:])
    done = ended(brec, offer.number)
    assert done.status == "received", done
    assert Path(done.path or "").read_bytes() == body


def test_a_receiver_cut_mid_payload_resumes_from_its_last_written_byte(linked_room) -> None:
    ((hal, hrec, _), (ann, arec), (bob, brec), tmp), link = linked_room(allow_plain=True)
    src = make_file(tmp / "src", "cut.bin", 3_000_000)
    ann.send_file(str(src))
    offer = offered(brec, "cut.bin")
    link.hold(CHUNK + CHUNK // 2)  # mid-way through the second chunk's payload
    bob.accept_file(offer.number)
    brec.wait_for(ev.FileProgress, lambda e: e.incoming and e.done > 0)
    deadline = time.monotonic() + 10
    while link.passed < CHUNK and time.monotonic() < deadline:
        time.sleep(0.01)  # the proxy has passed what it will pass before it holds
    link.cut()
    brec.wait_for(ev.Connected, lambda e: e.resumed)
    done = ended(brec, offer.number, timeout=30)
    assert done.status == "received", done
    assert sha(Path(done.path or "")) == sha(src)
    assert files_in(tmp / "bob") == ["cut.bin"]


def test_a_byte_flipped_inside_a_payload_fails_and_leaves_no_file(linked_room) -> None:
    ((hal, hrec, _), (ann, arec), (bob, brec), tmp), link = linked_room(allow_plain=True)
    body = (b"line of the file\n" * 80_000)[:1_300_000]
    src = tmp / "src" / "lines.txt"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(body)
    link.flip = (b"line of", b"lime of", 700_000)  # inside a chunk's payload, not a header
    ann.send_file(str(src))
    offer = offered(brec, "lines.txt")
    bob.accept_file(offer.number)
    failed = ended(brec, offer.number)
    assert failed.status == "failed"
    assert "did not match" in failed.text
    assert link.flipped
    assert files_in(tmp / "bob") == []


def test_an_app_of_protocol_version_1_chats_but_is_never_sent_file_frames(room) -> None:
    """Version 1 put chunks in base64 JSON lines: it is told of an offer in one line, never
    sent an offer frame (so never a raw chunk), and its own offer is refused with a reason."""
    (hal, hrec, port), (ann, arec), (bob, brec), tmp = room(allow_plain=True)
    old = RawPeer(port)
    old.read_until("^PARLEY/2 ")
    old.send(encode_client(Hello("Olga", 1)))
    old.read_until('"welcome"')
    arec.wait_for(ev.MemberJoined, lambda e: e.name == "Olga")
    ann.send_file(str(make_file(tmp / "src", "new.bin", 2000)))
    offer = offered(brec, "new.bin")
    notice = json.loads(old.read_until(r'"file_offer"|"notice"'))  # whichever comes first
    assert notice["type"] == "notice"
    assert "new.bin" in notice["text"]
    assert "update Parley" in notice["text"]
    bob.accept_file(offer.number)
    assert ended(brec, offer.number).status == "received"
    digest = hashlib.sha256(b"x").hexdigest()
    old.send(encode_frame(FileOffer("old.bin", 1, digest, ref="o1")))
    refused = json.loads(old.read_until('"file_refused"'))
    assert refused["code"] == "old_version"
    assert "Update Parley" in refused["text"]
    ann.send("chat with everyone")
    assert "chat with everyone" in old.read_until(r'"file_|"msg"')  # no file frame came first
    assert not [e for e in brec.of(ev.FileOffered) if e.name == "old.bin"]


class VersionOneHost(LoopServer):
    """A host of protocol version 1 as it greets and welcomes, which then offers a file (its
    chunks would be base64 inside JSON lines). It records the hello it got."""

    def __init__(self) -> None:
        self.hello: dict[str, object] = {}
        super().__init__()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.append((writer, writer))
        writer.write(b"PARLEY/1 Welcome to Parley.\n")
        self.hello = json.loads(await reader.readline())
        welcome = {"type": "welcome", "name": "Ann", "members": ["Hal", "Ann"], "history": []}
        offer = {"type": "file_offer", "file": 1, "from": "Hal", "name": "old.bin", "size": 3}
        offer["sha256"] = hashlib.sha256(b"abc").hexdigest()
        writer.write(json.dumps(welcome).encode() + b"\n" + json.dumps(offer).encode() + b"\n")
        await writer.drain()
        await reader.read()


def test_a_joiner_greeted_by_a_version_1_host_speaks_version_1_and_takes_no_files(
    join, tmp_path: Path
) -> None:
    server = VersionOneHost()
    try:
        ann, arec = join(server.port, "Ann", plain=True)
        arec.wait_for(ev.Connected)
        note = arec.wait_for(ev.NoticeShown, lambda e: "old.bin" in e.text)
        assert "older Parley" in note.text
        assert server.hello["version"] == 1
        assert not arec.of(ev.FileOffered)
        ann.send_file(str(make_file(tmp_path, "mine.txt", 10)))
        refused = arec.wait_for(ev.FileEnded)
        assert refused.status == "refused"
        assert "older Parley" in refused.text
    finally:
        server.close()
