"""Private messages over real sockets: /msg reaches its target only, both ways, between app
members, the host's own person and a text peer; exactly once across a reconnect."""

from __future__ import annotations

from app import events as ev
from tests.helpers import Proc, RawPeer, Recorder, wait_until
from tests.test_faults import relay  # noqa: F401  (the fixture)


def _private(rec: Recorder, text: str) -> list[ev.MessageReceived]:
    return [e for e in rec.of(ev.MessageReceived) if e.text == text]


def test_msg_reaches_only_its_target_both_ways_with_a_text_peer(start_host, join) -> None:
    host, hrec, port = start_host(allow_plain=True, keep_history=False)
    ann, arec = join(port, "Ann")
    bob, brec = join(port, "Bob")
    tex = RawPeer(port)
    tex.read_until(r"^\* You are guest1")
    tex.line("/nick Tex Mex")
    arec.wait_for(ev.MemberRenamed, lambda e: e.new == "Tex Mex")

    ann.send("/msg Bob for Bob only")
    got = brec.wait_for(ev.MessageReceived, lambda e: e.text == "for Bob only")
    assert (got.sender, got.private, got.mine) == ("Ann", "Ann", False)
    mine = arec.wait_for(ev.MessageReceived, lambda e: e.text == "for Bob only")
    assert (mine.private, mine.mine) == ("Bob", True)
    bob.send("and back to Ann", to="Ann")  # the window's private tab sends this way
    back = arec.wait_for(ev.MessageReceived, lambda e: e.text == "and back to Ann")
    assert back.private == "Bob"
    host.send("from the host", to="Bob")
    assert brec.wait_for(ev.MessageReceived, lambda e: e.text == "from the host").private == "Hal"
    # A name with spaces, in quotes, to a text peer; and a text peer's /msg back.
    ann.send('/msg "Tex Mex" hello Tex')
    assert tex.read_until("hello Tex") == "(private to Tex Mex) Ann: hello Tex"
    tex.line("/msg Ann hi Ann, from Tex")
    assert tex.read_until("from Tex") == "(private to Ann) Tex Mex: hi Ann, from Tex"
    assert arec.wait_for(ev.MessageReceived, lambda e: "from Tex" in e.text).private == "Tex Mex"
    # Everyone's marker, then: nobody saw what was not meant for them.
    host.send("marker")
    for rec in (arec, brec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    everything = tex.read_until("^Hal: marker$")
    assert everything
    assert not _private(hrec, "for Bob only")
    assert not _private(hrec, "and back to Ann")
    assert not _private(brec, "hello Tex")
    assert not _private(hrec, "hi Ann, from Tex")
    assert not [e for e in brec.of(ev.MessageReceived) if "from Tex" in e.text]
    assert not _private(arec, "from the host")
    assert len(_private(brec, "for Bob only")) == 1


def test_an_unknown_or_absent_name_is_one_line_and_nothing_is_sent(start_host, join) -> None:
    host, hrec, port = start_host(allow_plain=True, keep_history=False)
    ann, arec = join(port, "Ann")
    ann.send("/msg Zed are you there")
    error = arec.wait_for(ev.ErrorShown)
    assert error.text == "Zed is not in the room: nothing was sent."
    assert not arec.of(ev.MessagePending)  # nothing waits to be sent again later
    tex = RawPeer(port)
    tex.read_until(r"^\* You are guest1")
    tex.line("/msg Nobody hello")
    assert tex.read_until("^! ") == "! Nobody is not in the room: nothing was sent."
    host.send("/msg Ghost boo")
    hrec.wait_for(ev.ErrorShown, lambda e: e.text.startswith("Ghost is not in the room"))
    ann.send("marker")
    hrec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    assert not [e for e in hrec.of(ev.MessageReceived) if "are you there" in e.text]


def test_a_private_message_arrives_exactly_once_across_reconnects(
    start_host,
    join,
    relay,  # noqa: F811
) -> None:
    host, hrec, port = start_host(keep_history=False)
    link = relay(port)
    ann, arec = join(link.port, "Ann")
    bob, brec = join(port, "Bob")
    carl, crec = join(port, "Carl")
    arec.wait_for(ev.MemberJoined, lambda e: e.name == "Carl")  # arrivals may come a bit later
    # Sent while the link is dead one way: pending, then sent again once back.
    link.set(up=False, down=True)
    ann.send("/msg Bob while the link was down")
    arec.wait_for(ev.MessagePending, lambda e: e.private == "Bob")
    link.cut()
    arec.wait_for(ev.Reconnecting)
    link.set(up=True, down=True)
    arec.wait_for(ev.Connected, lambda e: e.resumed)
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "while the link was down")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "while the link was down" and e.mine)
    # Accepted, but the acknowledgement is lost: sent again, delivered once.
    link.set(up=True, down=False)
    ann.send("/msg Bob ack lost")
    brec.wait_for(ev.MessageReceived, lambda e: e.text == "ack lost")
    link.cut()
    link.set(up=True, down=True)
    arec.wait_for(ev.Connected, lambda e: e.resumed and len(arec.of(ev.Connected)) == 3)
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "ack lost" and e.mine)
    # Bob must know Ann is back before writing to her. If the host still held Ann's old
    # connection when she came back, she replaced it and Bob never saw her leave at all.
    wait_until(lambda: "Ann" in _members_seen(brec), lambda: str(_members_seen(brec)))
    bob.send("/msg Ann after all that")
    arec.wait_for(ev.MessageReceived, lambda e: e.text == "after all that")
    host.send("marker")
    for rec in (arec, brec, crec):
        rec.wait_for(ev.MessageReceived, lambda e: e.text == "marker")
    for text in ("while the link was down", "ack lost"):
        assert len(_private(brec, text)) == 1, text
        assert len(_private(arec, text)) == 1, text
        assert not _private(crec, text)
        assert not _private(hrec, text)
    assert len(_private(arec, "after all that")) == 1


def test_a_terminal_exports_what_it_showed(start_host, join, tmp_path) -> None:
    host, hrec, port = start_host(keep_history=False)
    ann = Proc("join", f"127.0.0.1:{port}", "--name", "Ann")
    try:
        ann.expect("You are Ann")
        host.send("<script>alert('hi')</script>")
        ann.expect("alert")
        host.send("/msg Ann just for you")
        ann.expect(r"^\(private\) Hal: just for you$")
        ann.say("/msg Hal and back")
        ann.expect(r"^\(private to Hal\) Ann: and back$")
        target = tmp_path / "room.html"
        ann.say(f"/export {target}")
        ann.expect(r"^\* Exported 3 lines to ")
        page = target.read_text(encoding="utf-8")
        assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in page
        assert "<script>" not in page
        assert "(private from Hal)" in page
        assert "(private to Hal)" in page
        ann.say(f"/export {tmp_path / 'room.doc'}")
        ann.expect(r"^! Could not export: Export to a \.txt or \.html file")
        ann.say("/export")
        ann.expect(r"^! Usage: /export PATH")
        assert len(hrec.texts()) == 3  # none of the /export lines went to the room
    finally:
        ann.kill()


def _members_seen(rec: Recorder) -> tuple[str, ...]:
    """The member list as of the last arrival or departure this joiner was told about."""
    changes = [e for e in rec.events if isinstance(e, ev.MemberJoined | ev.MemberLeft)]
    return changes[-1].members if changes else ()
