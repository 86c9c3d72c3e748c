"""The window's decisions, without a window: fields, event lines, colours, unread, the poller."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from app import events as ev
from app.gui.logic import (
    IDLE_STATUS,
    NO_SECURITY,
    NOT_ENCRYPTED,
    PALETTE,
    PLAIN_WITH_INVITE,
    PLAIN_WITH_PASSWORD,
    InputHistory,
    Line,
    Request,
    Security,
    SessionView,
    Unread,
    address_to_remember,
    check_fields,
    clock_text,
    colour_for,
    end_status,
    invite_in,
    invite_note,
    invite_shown,
    member_label,
    message_to_send,
    split_join_target,
    title_for,
)
from app.gui.poller import QueuePoller
from app.invite import make_invite
from app.security import format_fingerprint
from tests.helpers import ROOT

FP = format_fingerprint(bytes(range(32)))
COMPACT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
INVITE = make_invite("192.168.1.5", 6000, FP)
INVITE_PW = make_invite("192.168.1.5", 6000, FP, "s3cret pw")

# --- fields ------------------------------------------------------------------------------------


def test_hosting_needs_a_port_and_a_name_only() -> None:
    checked = check_fields("host", "ignored", "0", "  Hal ")
    assert checked.errors == {}
    assert checked.request == Request("host", "", 0, "Hal")


def test_joining_splits_a_typed_port_from_the_address() -> None:
    assert check_fields("join", "10.0.0.2:6000", "5151", "Ann").request == Request(
        "join", "10.0.0.2", 6000, "Ann"
    )
    assert check_fields("join", "[::1]:7000", "x", "Ann").request == Request(
        "join", "::1", 7000, "Ann"
    )
    assert check_fields("join", "::1", "5151", "Ann").request == Request("join", "::1", 5151, "Ann")
    assert check_fields("join", " host.lan ", "6001", "Ann").request == Request(
        "join", "host.lan", 6001, "Ann"
    )


@pytest.mark.parametrize(
    ("mode", "address", "port", "name", "errors"),
    [
        ("host", "", "65536", "Hal", {"port": "Port must be a number from 0 to 65535, not 65536."}),
        ("host", "", "-1", "Hal", {"port": "Port must be a number from 0 to 65535, not '-1'."}),
        ("join", "h", "0", "Ann", {"port": "Port must be a number from 1 to 65535 when joining."}),
        (
            "join",
            "h:0",
            "5151",
            "Ann",
            {"address": "Port must be a number from 1 to 65535 when joining."},
        ),
        (
            "join",
            "",
            "5151",
            "Ann",
            {"address": "Enter the host's address, e.g. 192.168.1.5 or 192.168.1.5:5151."},
        ),
        (
            "join",
            "a b",
            "5151",
            "Ann",
            {"address": "'a b' is not an address: it has a space in it."},
        ),
        ("join", "h", "5151", "", {"name": "A name cannot be empty."}),
        ("host", "", "5151", "/me", {"name": "A name cannot start with '/'."}),
        ("host", "", "5151", "x" * 40, {"name": "A name can be at most 32 characters long."}),
    ],
)
def test_bad_fields_get_plain_hints(
    mode: str, address: str, port: str, name: str, errors: dict[str, str]
) -> None:
    checked = check_fields(mode, address, port, name)  # type: ignore[arg-type]
    assert checked.request is None
    assert checked.errors == errors


def test_every_bad_field_is_reported_at_once() -> None:
    assert set(check_fields("join", "", "abc", "").errors) == {"address", "port", "name"}


def test_security_choices_ride_on_the_request() -> None:
    hosting = check_fields("host", "", "0", "Hal", password="pw", plain=True, allow_plain=True)
    assert hosting.request == Request("host", "", 0, "Hal", password="pw", allow_plain=True)
    joining = check_fields("join", "h", "1", "Ann", password="pw", allow_plain=True)
    assert joining.request == Request("join", "h", 1, "Ann", password="pw")
    plain = check_fields("join", "h", "1", "Ann", plain=True)
    assert plain.request == Request("join", "h", 1, "Ann", plain=True)
    # An empty field means no password (None), never an empty one.
    assert check_fields("host", "", "0", "Hal", password="").request == Request(
        "host", "", 0, "Hal"
    )


def test_an_invite_gives_host_port_identity_and_password() -> None:
    checked = check_fields("join", f"  {INVITE_PW}  ", "junk", "Ann", password="typed earlier")
    assert checked.errors == {}
    assert checked.request == Request(
        "join", "192.168.1.5", 6000, "Ann", password="s3cret pw", fingerprint=FP
    )
    # Without a password in the invite, the typed one is used.
    checked = check_fields("join", INVITE, "", "Ann", password="typed")
    assert checked.request == Request(
        "join", "192.168.1.5", 6000, "Ann", password="typed", fingerprint=FP
    )
    # In host mode the address field is not used at all.
    assert check_fields("host", INVITE, "0", "Hal").request == Request("host", "", 0, "Hal")


@pytest.mark.parametrize(
    ("address", "error"),
    [
        (
            INVITE[:-5],
            "The invite's fingerprint is damaged (it may have been cut off when it was copied).",
        ),
        (f"parley://192.168.1.5/#fp={COMPACT}", "The invite has no port after the address."),
        (
            "parley://192.168.1.5:6000/",
            "The invite has no fingerprint (fp=...); ask the host for a new one.",
        ),
        ("PARLEY://", "The invite has no host address."),
    ],
)
def test_a_damaged_invite_is_refused_in_its_own_words(address: str, error: str) -> None:
    checked = check_fields("join", address, "5151", "Ann")
    assert checked.request is None
    assert checked.errors == {"address": error}


def test_plain_does_not_mix_with_an_invite_or_a_password() -> None:
    assert check_fields("join", INVITE, "", "Ann", plain=True).errors == {
        "plain": PLAIN_WITH_INVITE
    }
    assert check_fields("join", "h", "1", "Ann", plain=True, password="pw").errors == {
        "password": PLAIN_WITH_PASSWORD
    }
    assert check_fields("join", INVITE_PW, "", "Ann", plain=True).errors == {
        "plain": PLAIN_WITH_INVITE
    }
    # A host may allow plain peers and have a password (plain peers then cannot get in).
    assert check_fields("host", "", "0", "Hal", allow_plain=True, password="pw").errors == {}


def test_what_the_bar_says_about_an_invite() -> None:
    assert invite_note(INVITE) == "Invite: 192.168.1.5:6000 — identity verified on connect."
    assert invite_note(INVITE_PW) == (
        "Invite: 192.168.1.5:6000, with its password — identity verified on connect."
    )
    assert invite_note(make_invite("::1", 7, FP)) == (
        "Invite: [::1]:7 — identity verified on connect."
    )
    assert invite_note("192.168.1.5:6000") == ""
    assert invite_note(INVITE[:-5]) == ""  # damaged: refused at Connect, with the reason
    assert invite_in(INVITE_PW) is not None
    assert invite_in("parley://x") is None


def test_only_the_address_of_an_invite_is_remembered() -> None:
    assert address_to_remember(INVITE_PW) == ("192.168.1.5", 6000)
    assert address_to_remember(INVITE[:-5]) == ("", None)
    assert address_to_remember("  host.lan ") == ("host.lan", None)


def test_the_shown_invite_hides_the_password_and_shortens_the_fingerprint() -> None:
    shown = invite_shown(INVITE_PW)
    assert shown == f"parley://192.168.1.5:6000/#fp={COMPACT[:8]}…&pw=••••••"
    assert "s3cret" not in shown
    assert invite_shown(INVITE) == f"parley://192.168.1.5:6000/#fp={COMPACT[:8]}…"
    assert invite_shown("") == ""


def test_an_invite_argument_stays_whole() -> None:
    assert split_join_target(f" {INVITE_PW} ") == (INVITE_PW, None)


def test_join_arguments_split_into_fields() -> None:
    assert split_join_target("10.0.0.2:6000") == ("10.0.0.2", 6000)
    assert split_join_target("10.0.0.2") == ("10.0.0.2", None)
    assert split_join_target("[fe80::1]:7000") == ("fe80::1", 7000)
    assert split_join_target("h:bad") == ("h:bad", None)  # left for the field check to refuse


def test_message_to_send_drops_blank_lines_around_but_keeps_the_inside() -> None:
    assert message_to_send("hello") == "hello"
    assert message_to_send("\n\n  indented\n\nmore\n\n") == "  indented\n\nmore"
    assert message_to_send("") is None
    assert message_to_send("  \n \t\n") is None


# --- appearance --------------------------------------------------------------------------------


def test_a_name_keeps_its_colour_across_spellings_and_runs() -> None:
    assert colour_for("Ann") in PALETTE
    assert colour_for("Ann") == colour_for("ann") == colour_for("ＡＮＮ")
    # Not Python's salted hash(): another process with another seed agrees.
    code = "from app.gui.logic import colour_for; print(colour_for('Ann'), colour_for('Bob'))"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [colour_for("Ann"), colour_for("Bob")]


def test_names_spread_over_the_palette() -> None:
    names = [f"person{i}" for i in range(60)]
    assert len({colour_for(n) for n in names}) >= len(PALETTE) - 2


def test_clock_text_is_right_across_minutes_asked_in_any_order() -> None:
    """The last minute's text is kept: asking for another minute, or going back, still gives
    that minute's own time."""
    base = 1_700_000_000.0
    for when in (base, base + 59, base + 60, base - 1, base + 3_600.5, base, base + 86_400):
        assert clock_text(when) == time.strftime("%H:%M", time.localtime(when)), when


def test_clock_text_is_local_hours_and_minutes() -> None:
    when = 1_700_000_000.0
    assert clock_text(when) == time.strftime("%H:%M", time.localtime(when))
    assert re.fullmatch(r"\d\d:\d\d", clock_text(None, now=lambda: when))
    assert clock_text(None, now=lambda: when) == clock_text(when)


def test_title_and_end_status() -> None:
    assert title_for(0) == "Parley"
    assert title_for(3) == "(3) Parley"
    assert end_status("The host ended the chat.") == "Chat ended: the host ended the chat."
    assert end_status("Connection lost.") == "Connection lost. Chat ended."
    assert end_status("") == "Chat ended."


# --- what events show --------------------------------------------------------------------------


def test_hosting_then_people_coming_and_going() -> None:
    view = SessionView()
    assert (view.state, view.status) == ("idle", IDLE_STATUS)
    view.starting(Request("host", "", 0, "Hal"))
    assert view.state == "starting"
    lines = view.apply(ev.Hosting("Hal", 40000, ("192.168.1.5:40000", "[fd00::5]:40000")))
    assert view.state == "in_room"
    assert view.members == ("Hal",)
    assert view.me == "Hal"
    assert view.status == "Hosting on port 40000 as Hal"
    assert lines[-1] == Line("notice", "Tell others to join: 192.168.1.5:40000, [fd00::5]:40000")

    assert view.apply(ev.MemberJoined("Ann", ("Hal", "Ann"), "192.168.1.9:5000")) == [
        Line("notice", "Ann joined from 192.168.1.9:5000.")
    ]
    assert view.apply(ev.MemberRenamed("Ann", "Zed", ("Hal", "Zed"))) == [
        Line("notice", "Ann is now Zed.")
    ]
    assert view.apply(ev.MemberLeft("Zed", "not reading", ("Hal",))) == [
        Line("notice", "Zed left (not reading).")
    ]
    assert view.apply(ev.MemberLeft("Bob", "left", ("Hal",))) == [Line("notice", "Bob left.")]
    assert view.members == ("Hal",)

    lines = view.apply(ev.ChatEnded("You ended the chat."))
    assert lines == [Line("notice", "You ended the chat."), Line("ended", "Chat ended.")]
    assert view.state == "idle"
    assert view.members == ()
    assert view.status == "Chat ended: you ended the chat."


def test_joining_pending_and_confirmed_messages() -> None:
    view = SessionView()
    view.starting(Request("join", "10.0.0.2", 5151, "Ann"))
    assert view.status == "Connecting to 10.0.0.2:5151…"
    view.apply(ev.Connecting("10.0.0.2", 5151))
    lines = view.apply(
        ev.Connected(
            "Ann (2)",
            "10.0.0.2",
            5151,
            ("Hal", "Ann", "Ann (2)"),
            "Name taken.",
            safety_code="1111 2222 3333 4444",
        )
    )
    assert lines == [
        Line("notice", "Connected as Ann (2). In the room: Hal, Ann."),
        Line("notice", "Name taken."),
        Line("notice", "Encrypted. Safety code 1111 2222 3333 4444 — compare it with the host's."),
    ]
    assert view.security == Security("Encrypted · safety code 1111 2222 3333 4444")
    assert view.status == "Connected as Ann (2) to 10.0.0.2:5151"

    earlier = view.apply(ev.MessageReceived("Hal", "old", 1.0, 1, earlier=True))
    assert earlier == [
        Line("divider", "Earlier in the room", earlier=True),
        Line("chat", "old", "Hal", 1.0, earlier=True, seq=1),
    ]
    assert not earlier[1].unread

    assert view.apply(ev.MessagePending("m1", "hi all")) == [
        Line("pending", "hi all", "Ann (2)", None, id="m1")
    ]
    assert view.apply(ev.MessageReceived("Ann (2)", "hi all", 2.0, 2, mine=True, id="m1")) == [
        Line("confirm", "hi all", "Ann (2)", 2.0, id="m1")
    ]
    # A second echo with the same id (or an own message with no pending) is simply shown.
    assert view.apply(ev.MessageReceived("Ann (2)", "x", 3.0, 3, mine=True, id="m1"))[0].kind == (
        "mine"
    )
    new = view.apply(ev.MessageReceived("Hal", "welcome", 4.0, 4))[0]
    assert new.kind == "chat"
    assert new.unread

    assert view.apply(ev.MemberRenamed("Ann (2)", "Zed", ("Hal", "Ann", "Zed"), you=True)) == [
        Line("notice", "You are now Zed.")
    ]
    assert view.me == "Zed"
    assert view.status == "Connected as Zed to 10.0.0.2:5151"

    assert view.apply(ev.ErrorShown("The connection to the host was lost.")) == [
        Line("error", "The connection to the host was lost.")
    ]
    view.apply(ev.ChatEnded("Connection lost."))
    assert view.status == "Connection lost. Chat ended."


def test_a_dropped_connection_reconnects_without_leaving_the_room() -> None:
    now = [100.0]
    view = SessionView(clock=lambda: now[0])
    view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann")))
    lines = view.apply(ev.Reconnecting(0.5, "The connection to the host was lost."))
    assert lines == [
        Line("error", "The connection to the host was lost."),
        Line("notice", "Reconnecting… what you send now goes out once back."),
    ]
    assert view.state == "in_room"
    assert view.status == "Connection lost. Reconnecting: next try in 1\u00a0s (attempt\u00a01)."
    now[0] += 0.6
    assert (
        view.reconnect_status()
        == "Connection lost. Reconnecting: trying again now (attempt\u00a01)."
    )
    # Later attempts only update the status line: no transcript line per attempt.
    assert view.apply(ev.Reconnecting(2.0, "Could not connect.", 3)) == []
    assert view.status == "Connection lost. Reconnecting: next try in 2\u00a0s (attempt\u00a03)."
    assert view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann"), resumed=True)) == [
        Line("notice", "Back in the room.")
    ]
    assert view.status == "Connected as Ann to h:1"
    assert not view.reconnecting

    view.apply(ev.Reconnecting(0.5, "Lost."))
    lines = view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann"), "The host forgot you."))
    assert lines == [
        Line("notice", "Connected again as Ann. In the room: Hal."),
        Line("notice", "The host forgot you."),
        Line("error", NOT_ENCRYPTED),
    ]


def test_a_failure_ends_the_attempt_with_its_words() -> None:
    view = SessionView()
    view.starting(Request("join", "::1", 9, "Ann"))
    assert view.status == "Connecting to [::1]:9…"
    text = "Could not connect to [::1]:9: connection refused — is the host running?"
    assert view.apply(ev.Failed(text)) == [Line("error", text)]
    assert (view.state, view.status) == ("idle", text)


def test_a_foreign_server_and_unknown_events() -> None:
    view = SessionView()
    lines = view.apply(ev.Connected("Ann", "h", 1, (), "Not Parley.", foreign=True))
    assert view.status == "Connected to h:1 (not a Parley server)"
    assert lines == [
        Line("notice", "Connected to h:1."),
        Line("notice", "Not Parley."),
        Line("error", "Not encrypted: anyone on the network can read this chat."),
    ]
    assert view.security == Security("Not encrypted", warn=True)
    assert view.apply(ev.MessageReceived(None, "raw line"))[0] == Line("chat", "raw line")
    assert view.apply(object()) == []


def test_hosting_a_password_room_says_so_with_the_safety_code() -> None:
    view = SessionView()
    view.starting(Request("host", "", 0, "Hal", password="pw"))
    code = "1111 2222 3333 4444"
    lines = view.apply(
        ev.Hosting("Hal", 5151, ("10.0.0.5:5151",), code, "fp", "parley://x", password=True)
    )
    assert view.status == "Hosting a password room on port 5151 as Hal"
    assert (view.invite, view.password_room) == ("parley://x", True)
    assert view.security == Security(f"Encrypted · safety code {code}")
    assert [line.text for line in lines] == [
        "You are hosting a password room on port 5151 as Hal.",
        "Tell others to join: 10.0.0.5:5151",
        "Password room: joiners need the password or the invite (share it privately).",
        f"Safety code {code} — read it to joiners to compare.",
    ]
    # A member's session code (mixed from the password exchange) is on their arrival line,
    # named as the session code: the one to compare is the safety code above.
    assert view.apply(ev.MemberJoined("Ann", ("Hal", "Ann"), "10.0.0.9:4000", "9999 8888")) == [
        Line("notice", "Ann joined from 10.0.0.9:4000 (session code 9999 8888).")
    ]
    view.apply(ev.ChatEnded("You ended the chat."))
    assert (view.invite, view.password_room, view.security) == ("", False, NO_SECURITY)


def test_hosting_with_plain_peers_warns() -> None:
    view = SessionView()
    lines = view.apply(ev.Hosting("Hal", 1, ("a:1",), "1111", "fp", "i", allow_plain=True))
    assert view.security == Security("Unencrypted peers admitted · safety code 1111", warn=True)
    assert lines[-1] == Line(
        "error",
        "Unencrypted peers (nc, telnet) are admitted too: what they send and receive can be read "
        "by anyone on the network.",
    )
    view = SessionView()
    lines = view.apply(
        ev.Hosting("Hal", 1, ("a:1",), "1111", "fp", "i", password=True, allow_plain=True)
    )
    assert view.security == Security("Encrypted · safety code 1111")
    assert lines[-1] == Line(
        "notice", "Unencrypted peers cannot prove the password: they are refused."
    )


def test_a_resumed_connection_does_not_repeat_the_safety_line() -> None:
    view = SessionView()
    view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann"), safety_code="1234"))
    view.apply(ev.Reconnecting(0.5, "Lost."))
    assert view.apply(
        ev.Connected("Ann", "h", 1, ("Hal", "Ann"), safety_code="1234", resumed=True)
    ) == [Line("notice", "Back in the room.")]
    assert view.security == Security("Encrypted · safety code 1234")


def test_a_changed_identity_is_a_loud_refusal_that_offers_trust() -> None:
    view = SessionView()
    request = Request("join", "10.0.0.2", 5151, "Ann")
    view.starting(request)
    assert not view.can_trust
    assert view.apply(ev.IdentityChanged("10.0.0.2:5151", "1111 2222 3333 4444")) == []
    text = "WARNING: the identity of 10.0.0.2:5151 has CHANGED since your last visit. …"
    assert view.apply(ev.Failed(text)) == [Line("alarm", text)]
    assert view.state == "idle"
    assert view.warning == text
    assert view.status == "Not connected: the identity of 10.0.0.2:5151 has changed."
    assert view.can_trust
    assert view.request == request
    # Starting again (trusting, or anything else) clears the warning until it comes again.
    view.starting(request)
    assert (view.warning, view.changed, view.can_trust) == ("", None, False)
    view.apply(ev.IdentityChanged("10.0.0.2:5151", "1111 2222 3333 4444"))
    view.apply(ev.Failed(text))
    view.forget_warning()
    assert (view.warning, view.can_trust) == ("", False)


def test_other_failures_offer_no_trust() -> None:
    view = SessionView()
    view.starting(Request("join", "h", 1, "Ann", password="x"))
    assert view.apply(ev.Failed("Not connected: Wrong password.")) == [
        Line("error", "Not connected: Wrong password.")
    ]
    assert (view.warning, view.can_trust) == ("", False)
    # Hosting never offers it either.
    view.starting(Request("host", "", 0, "Hal"))
    view.apply(ev.IdentityChanged("a", "b"))  # (a host is never told this; if it were:)
    view.apply(ev.Failed("x"))
    assert view.state == "idle"
    assert not view.can_trust


# --- unread and history ------------------------------------------------------------------------


def test_unread_counts_only_while_unfocused_and_rings_once_per_burst() -> None:
    unread = Unread(quiet=2.0)
    assert not unread.arrived(0.0)
    assert unread.count == 0
    unread.set_focused(False)
    rings = [unread.arrived(t) for t in (10.0, 10.1, 10.2, 11.9, 13.0)]
    assert rings == [True, False, False, False, False]  # a burst: one bell
    assert unread.arrived(15.5)  # after a quiet spell, the bell again
    assert unread.count == 6
    unread.set_focused(True)
    assert unread.count == 0


def test_input_history_goes_back_and_forth_and_keeps_the_draft() -> None:
    history = InputHistory(limit=3)
    assert history.older("draft") is None
    for text in ("one", "two", "two", "three", "four"):
        history.add(text)
    assert history.older("my draft") == "four"
    assert history.older("four") == "three"
    assert history.older("three") == "two"
    assert history.older("two") is None  # only 3 kept, and "two" once
    assert history.newer() == "three"
    assert history.newer() == "four"
    assert history.newer() == "my draft"
    assert history.newer() is None
    assert not history.browsing


# --- the poller, with a fake scheduler ---------------------------------------------------------


class FakeTk:
    """Records `after` calls instead of running a clock; `run_next()` fires the pending one."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[int, Callable[[], None]]] = {}
        self._n = 0

    def after(self, ms: int, fn: Callable[[], None]) -> str:
        self._n += 1
        key = f"after#{self._n}"
        self.pending[key] = (ms, fn)
        return key

    def after_cancel(self, key: str) -> None:
        del self.pending[key]

    def run_next(self) -> int:
        assert len(self.pending) == 1, self.pending
        key, (ms, fn) = self.pending.popitem()
        fn()
        return ms


def make_poller(
    items: int, batch: int, **kwargs: object
) -> tuple[QueuePoller[int], FakeTk, list[int], list[tuple[int, int]]]:
    fake = FakeTk()
    source: queue.Queue[int] = queue.Queue()
    for i in range(items):
        source.put(i)
    seen: list[int] = []
    poller: QueuePoller[int] = QueuePoller(
        fake.after,
        fake.after_cancel,
        source,
        seen.append,
        batch=batch,
        **kwargs,  # type: ignore[arg-type]
    )
    ticks: list[tuple[int, int]] = []
    poller.on_tick = lambda handled, delay: ticks.append((handled, delay))
    return poller, fake, seen, ticks


def test_a_backlog_drains_one_bounded_batch_per_tick_and_comes_back_at_once() -> None:
    poller, fake, seen, ticks = make_poller(1_000, batch=300, budget=60.0)
    poller.start()
    assert fake.run_next() == 0  # the first tick is immediate
    for _ in range(4):
        fake.run_next()
    assert ticks == [(300, 1), (300, 1), (300, 1), (100, 25), (0, 25)]
    assert seen == list(range(1_000))


def test_the_time_budget_cuts_a_batch_short_and_the_timer_comes_back_at_once() -> None:
    clock = iter(float(i) for i in range(10_000))  # each reading is one "second" later
    poller, fake, seen, ticks = make_poller(50, batch=100, budget=10.0, clock=lambda: next(clock))
    poller.start()
    fake.run_next()
    assert ticks[0][0] < 50
    assert ticks[0][1] == poller.busy_ms
    while len(seen) < 50:
        fake.run_next()
    assert seen == list(range(50))


def test_stop_cancels_the_timer_and_a_failing_event_does_not_stop_polling() -> None:
    fake = FakeTk()
    source: queue.Queue[int] = queue.Queue()
    seen: list[int] = []

    def handle(item: int) -> None:
        if item == 1:
            raise ValueError("a bug")
        seen.append(item)

    poller: QueuePoller[int] = QueuePoller(fake.after, fake.after_cancel, source, handle)
    for i in range(3):
        source.put(i)
    poller.start()
    poller.start()  # idempotent: still one timer
    fake.run_next()
    assert seen == [0, 2]
    assert len(fake.pending) == 1
    poller.stop()
    assert fake.pending == {}
    assert not poller.running


def test_the_badge_says_who_is_not_encrypted_and_recovers_when_they_go() -> None:
    view = SessionView()
    view.apply(
        ev.Connected("Ann", "h", 1, ("Hal", "Ann", "guest1"), safety_code="1234", plain=("guest1",))
    )
    assert view.security == Security("Not all encrypted: guest1 · safety code 1234", warn=True)
    lines = view.apply(
        ev.MemberJoined("guest2", ("Hal", "Ann", "guest1", "guest2"), encrypted=False)
    )
    assert view.plain == ("guest1", "guest2")
    assert lines[-1].kind == "error"
    assert "guest2 is connected without encryption" in lines[-1].text
    view.apply(ev.MemberRenamed("guest1", "Dan", ("Hal", "Ann", "Dan", "guest2")))
    view.apply(ev.MemberLeft("guest2", "left", ("Hal", "Ann", "Dan")))
    assert view.security == Security("Not all encrypted: Dan · safety code 1234", warn=True)
    view.apply(ev.MemberLeft("Dan", "left", ("Hal", "Ann")))
    assert view.security == Security("Encrypted · safety code 1234")
    assert view.plain == ()


def test_a_plain_joiner_keeps_its_own_not_encrypted_badge() -> None:
    view = SessionView()
    view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann"), plain=("Ann",)))
    assert view.security == Security("Not encrypted", warn=True)


def test_the_host_badge_names_an_unencrypted_member_that_is_present() -> None:
    view = SessionView()
    view.apply(ev.Hosting("Hal", 1, ("a:1",), "1111", "fp", "i", allow_plain=True))
    view.apply(ev.MemberJoined("guest1", ("Hal", "guest1"), "127.0.0.1:9", encrypted=False))
    assert view.security == Security("Not all encrypted: guest1 · safety code 1111", warn=True)
    view.apply(ev.MemberLeft("guest1", "left", ("Hal",)))
    assert view.security == Security("Unencrypted peers admitted · safety code 1111", warn=True)


def test_member_labels_mark_you_and_the_unencrypted() -> None:
    assert member_label("Ann", "Ann", ()) == "Ann (you)"
    assert member_label("guest1", "Ann", ("guest1",)) == "guest1 (not encrypted)"
    assert member_label("Ann", "Ann", ("Ann",)) == "Ann (you, not encrypted)"
    assert member_label("Hal", "Ann", ("guest1",)) == "Hal"


def test_a_password_rooms_session_code_is_shown_as_such() -> None:
    view = SessionView()
    lines = view.apply(
        ev.Connected("Ann", "h", 1, ("Hal", "Ann"), safety_code="1111", session_code="2222")
    )
    assert view.security == Security("Encrypted · safety code 1111")
    texts = [line.text for line in lines]
    assert "Encrypted. Safety code 1111 — compare it with the host's." in texts
    assert (
        "Password checked. Session code 2222 — the host sees the same next to your name." in texts
    )


# --- issue 12: pure pieces of the window's comfort -------------------------------------------


def test_engine_advice_is_put_in_the_windows_words() -> None:
    from app.gui.logic import in_window_words

    assert (
        in_window_words(
            "Compare the codes; if they match, join again with --trust-new (window: Trust new "
            "identity)."
        )
        == "Compare the codes; if they match, press “Trust new identity”."
    )
    assert in_window_words("It did not speak TLS. If it is a plain server, join with --plain.") == (
        "It did not speak TLS. If it is a plain server, tick “No encryption” and connect again."
    )
    assert in_window_words("A password needs encryption: join without --plain.") == (
        "A password needs encryption: untick “No encryption”."
    )
    assert "--" not in in_window_words("use --allow-plain, --plain or --trust-new")


def test_an_invites_password_is_masked_for_the_address_field() -> None:
    from app.gui.logic import masked_invite

    invite = "parley://10.0.0.2:5151/#fp=abcdefgh12345678&pw=open%20sesame"
    assert masked_invite(invite) == "parley://10.0.0.2:5151/#fp=abcdefgh12345678&pw=••••••"
    assert masked_invite(masked_invite(invite)) == masked_invite(invite)
    assert masked_invite("10.0.0.2:5151") == "10.0.0.2:5151"


def test_only_http_and_https_links_are_found() -> None:
    from app.gui.logic import link_spans

    assert link_spans("see https://x.org/a). or javascript:alert(1) ftp://y") == [
        ("see ", ""),
        ("https://x.org/a", "https://x.org/a"),
        ("). or javascript:alert(1) ftp://y", ""),
    ]
    assert link_spans("(http://w.org/wiki/A_(b))") == [
        ("(", ""),
        ("http://w.org/wiki/A_(b)", "http://w.org/wiki/A_(b)"),
        (")", ""),
    ]
    assert link_spans("plain") == [("plain", "")]


def test_people_present_never_share_a_colour_while_the_palette_has_room() -> None:
    from app.gui.logic import NameColours

    colours = NameColours(4)
    names = ["a", "b", "c", "d"]
    colours.update(names)
    assert sorted(colours.slot(n) for n in names) == [0, 1, 2, 3]
    kept = colours.slot("a")
    colours.update(["a", "e"])  # b, c, d left; a keeps its colour
    assert colours.slot("a") == kept
    assert colours.slot("e") != kept


def test_right_to_left_text_is_reordered_for_display_only() -> None:
    from app.gui.logic import for_display

    assert for_display("hello") == "hello"
    assert for_display("שלום") == "םולש"
    assert for_display("שלום world") == "world םולש"
    shaped = for_display("مرحبا")
    assert shaped != "مرحبا"
    assert shaped == "ﺎﺒﺣﺮﻣ"  # joined forms, in reading order


def test_too_long_counts_bytes_not_characters() -> None:
    from app.gui.logic import too_long

    assert too_long("é" * 5, 10) is None
    problem = too_long("é" * 6, 10)
    assert problem is not None
    assert "12 bytes" in problem
    assert "at most 10" in problem


def test_the_window_counts_size_as_the_protocol_does() -> None:
    from app.gui.logic import text_limit, too_long
    from app.protocol import MAX_TEXT

    assert text_limit() == MAX_TEXT
    assert too_long('"' * (MAX_TEXT // 2), MAX_TEXT) is None  # each '"' travels as two bytes
    assert too_long('"' * (MAX_TEXT // 2 + 1), MAX_TEXT) is not None


def test_a_private_bye_is_a_message_not_a_departure() -> None:
    view = SessionView()
    view.apply(ev.Connected("Ann", "h", 1, ("Hal", "Ann", "Bob")))
    assert view.apply(ev.MessagePending("m1", "bye")) == []  # leaving: said by the end line
    assert view.apply(ev.MessageReceived("Bob", "bye", 1.0, 5)) == []  # Bob's "left" follows
    private = view.apply(ev.MessagePending("m2", "bye", private="Bob"))
    assert [line.kind for line in private] == ["pending"]
    shown = view.apply(ev.MessageReceived("Bob", "bye", 1.0, 6, private="Ann"))
    assert [line.text for line in shown] == ["bye"]


def test_people_present_get_colours_that_do_not_look_alike_while_there_are_some() -> None:
    from app.gui.logic import NameColours
    from app.gui.theme import LIGHT, NAME_FAMILIES

    colours = NameColours(len(LIGHT.names), NAME_FAMILIES)
    people = [f"person {i}" for i in range(len(set(NAME_FAMILIES)))]
    colours.update(people)
    families = [NAME_FAMILIES[colours.slot(p)] for p in people]
    assert len(set(families)) == len(people)  # six people, six families
    everyone = [*people, "x", "y", "z", "w"]
    colours.update(everyone)
    assert len({colours.slot(p) for p in everyone}) == len(everyone)  # still all distinct


def test_a_rename_keeps_the_colour() -> None:
    from app.gui.logic import NameColours

    colours = NameColours(5)
    colours.update(["Ben", "Ann"])
    before = colours.slot("Ben")
    colours.rename("Ben", "Benji")
    colours.update(["Benji", "Ann", "Omar"])
    assert colours.slot("Benji") == before
    assert colours.slot("Omar") != before


def test_the_budget_counts_drawing_the_batch_too() -> None:
    """Drawing costs per event as well: after a tick whose flush took long, the next tick
    handles fewer events, so handling plus drawing stays near the budget."""
    now = [0.0]
    source: queue.Queue[int] = queue.Queue()
    for i in range(1_000):
        source.put(i)
    fake = FakeTk()
    seen: list[int] = []

    def handle(item: int) -> None:
        seen.append(item)
        now[0] += 0.001  # handling one event: 1 ms

    def flush() -> None:
        now[0] += 0.003 * len(seen[flushed[0] :])  # drawing one event: 3 ms
        flushed[0] = len(seen)

    flushed = [0]
    poller: QueuePoller[int] = QueuePoller(
        fake.after,
        fake.after_cancel,
        source,
        handle,
        flush,
        batch=500,
        budget=0.1,
        clock=lambda: now[0],
    )
    ticks: list[tuple[int, int]] = []
    poller.on_tick = lambda handled, delay: ticks.append((handled, delay))
    poller.start()
    for _ in range(4):
        fake.run_next()
    assert ticks[0][0] == 100  # nothing known about drawing yet: 100 events of handling
    assert [n for n, _ in ticks[1:]] == [25, 25, 25]  # 25 x (1 + 3) ms = the 100 ms budget
    assert seen == list(range(175))


def test_a_name_colour_follows_the_room_after_it_was_asked() -> None:
    """slot() is remembered per name, but an arrival, a departure or a rename changes it."""
    from app.gui.logic import NameColours

    colours = NameColours(4)
    taken = colours.preferred("a")
    other = next(n for n in "bcdefghijklmnop" if colours.preferred(n) == taken)
    assert colours.slot(other) == taken  # not present: its own colour
    colours.update(["a", other])  # "a" has that colour, so the other gets another
    assert colours.slot("a") == taken
    moved = colours.slot(other)
    assert moved != taken
    colours.rename(other, "zed")  # /nick keeps the colour, though "zed" hashes elsewhere
    assert colours.slot("zed") == moved
    colours.update(["a"])
    assert colours.slot(other) == taken  # gone again: its own colour
