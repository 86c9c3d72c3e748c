"""The host under uvloop's event loop: TLS app members and a plain text member chat.

Parley ships asyncio's loop (uvloop measured no clear win: README, Performance), but the host
must stay correct on uvloop too, which the benchmark swaps in (`--parley-loop uvloop`). Over
TLS uvloop's `connect_accepted_socket` returns its own SSL protocol rather than ours; a host
that kept that object as the member never answered a TLS member's hello.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from pathlib import Path

import pytest

from app import events as ev
from app.net.host import Host, HostOptions
from app.protocol import VERSION

uvloop = pytest.importorskip("uvloop")  # measured, not shipped: present where it is measured

WAIT = 10.0


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _app_member(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_tls())
    assert (await asyncio.wait_for(reader.readline(), WAIT)).startswith(b"PARLEY/")
    hello = {"type": "hello", "version": VERSION, "name": name}
    writer.write(json.dumps(hello).encode() + b"\n")
    welcome = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
    assert (welcome["type"], welcome["name"]) == ("welcome", name)
    return reader, writer


async def _msg(reader: asyncio.StreamReader, sender: str) -> dict[str, object]:
    """The next message from `sender` (others' come and go meanwhile)."""
    while True:
        frame: dict[str, object] = json.loads(await asyncio.wait_for(reader.readline(), WAIT))
        if frame["type"] == "msg" and frame["from"] == sender:
            return frame


async def _line(reader: asyncio.StreamReader, start: bytes) -> bytes:
    while True:
        line = await asyncio.wait_for(reader.readline(), WAIT)
        assert line, "closed"
        if line.startswith(start):
            return line


async def _chat(data: Path) -> list[ev.Event]:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    events: list[ev.Event] = []
    options = HostOptions(
        port=0, bind="127.0.0.1", name="Hal", data_dir=data, announce=False, allow_plain=True
    )
    host = Host(options, events.append)
    assert await host.start()
    try:
        ann_r, ann_w = await _app_member(host.port, "Ann")
        bob_r, bob_w = await _app_member(host.port, "Bob")
        text_r, text_w = await asyncio.open_connection("127.0.0.1", host.port)
        text_w.write(b"hello from a text peer\n")  # speaks first: a text peer at once
        guest = (await _line(text_r, b"* You are ")).split()[3].rstrip(b".").decode()

        ann_w.write(b'{"type":"msg","text":"hi from Ann","id":"a1"}\n')
        assert (await _msg(bob_r, "Ann"))["text"] == "hi from Ann"
        assert await _line(text_r, b"Ann: ") == b"Ann: hi from Ann\n"
        text_w.write(b"and one back\n")
        assert (await _msg(ann_r, guest))["text"] == "hello from a text peer"
        assert (await _msg(ann_r, guest))["text"] == "and one back"
        for writer in (ann_w, bob_w, text_w):
            writer.close()
        await asyncio.wait_for(host.end(), WAIT)
    finally:
        if not host.closed.is_set():
            with contextlib.suppress(Exception):  # a failed test: close what is open
                host.abort()
    return events


def test_tls_and_text_members_chat_on_a_host_running_under_uvloop(tmp_path: Path) -> None:
    loop = uvloop.new_event_loop()
    try:
        events = loop.run_until_complete(asyncio.wait_for(_chat(tmp_path), 4 * WAIT))
    finally:
        loop.close()
    texts = [e.text for e in events if isinstance(e, ev.MessageReceived)]
    assert "hi from Ann" in texts
    assert any(isinstance(e, ev.ChatEnded) for e in events)
