"""Security in the window, over real sockets and real TLS: password rooms, invites, the safety
code, a host whose identity changed, and plain (unencrypted) connections."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import tkinter as tk
from collections.abc import Callable
from pathlib import Path

import pytest

from app.gui.logic import NOT_ENCRYPTED, PLAIN_WITH_PASSWORD, Request
from app.gui.window import ChatWindow
from app.invite import make_invite, parse_invite
from app.net import HostOptions
from app.security import load_or_create_identity
from app.settings import FILE_NAME
from tests.gui.conftest import MakeWindow, host_options
from tests.gui.tk_helpers import (
    close_by_wm,
    listed,
    pump_until,
    say,
    shows,
    start_host,
    start_join,
)
from tests.helpers import Proc, RawPeer

PASSWORD = "open sesame"
CODE = r"\d{4} \d{4} \d{4} \d{4}"


def host_in(folder: Path) -> Callable[[Request], HostOptions]:
    """The tests' host options, with the host's identity kept in `folder`."""
    return lambda request: dataclasses.replace(host_options(request), data_dir=folder)


def code_in(text: str) -> str:
    match = re.search(CODE, text)
    assert match is not None, f"no safety code in {text!r}"
    return match.group(0)


def attempt(window: ChatWindow, port: int, name: str, *, password: str = "") -> None:
    """Press Connect and wait until the attempt is over, however it ends."""
    window.bar.set_mode("join")
    window.bar.address.set("127.0.0.1")
    window.bar.port.set(str(port))
    window.bar.name.set(name)
    window.bar.password.set(password)
    window.bar.start_button.invoke()
    assert window.view.state == "starting"
    pump_until(window.top, lambda: window.view.state != "starting", f"{name}'s attempt to end")


def test_a_password_room_admits_the_right_password(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.bar.password.set(PASSWORD)
    port = start_host(hal, "Hal")
    assert hal.status.cget("text") == f"Hosting a password room on port {port} as Hal"
    assert hal.bar.room_kind.cget("text") == "Password room"
    host_code = code_in(hal.security_label.cget("text"))
    assert f"Safety code {host_code} — read it to joiners to compare." in hal.transcript.contents()

    ann = make_window()
    ann.bar.password.set(PASSWORD)
    start_join(ann, port, "Ann")
    pump_until(
        root,
        lambda: listed(hal) == ["Hal (you)", "Ann"] and listed(ann) == ["Hal", "Ann (you)"],
        "both member lists to show Hal and Ann",
    )
    say(ann, "the password worked")
    pump_until(root, shows(hal, "Ann  the password worked"), "Ann's message at the host")
    say(hal, "welcome")
    pump_until(root, shows(ann, "Hal  welcome"), "Hal's message at Ann")

    # The code both are told to compare is the same: the host's identity code. Each member
    # of a password room also has a session code, mixed from the exchange, shown as such on
    # both sides: the host next to her arrival, Ann under her safety code.
    assert ann.security_label.cget("text") == f"Encrypted · safety code {host_code}"
    assert f"Encrypted. Safety code {host_code} — compare it" in ann.transcript.contents()
    session = re.search(rf"Password checked\. Session code ({CODE})", ann.transcript.contents())
    assert session is not None
    assert re.search(
        rf"Ann joined from 127\.0\.0\.1:\d+ \(session code {session[1]}\)\.",
        hal.transcript.contents(),
    )
    assert session[1] != host_code


def test_a_wrong_password_is_said_plainly_and_not_admitted(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.password.set(PASSWORD)
    port = start_host(hal, "Hal")
    bob = make_window()
    attempt(bob, port, "Bob", password="open sesam")
    assert bob.view.state == "idle"
    text = bob.transcript.contents()
    assert "Wrong password" in text
    assert "Traceback" not in text
    assert "Wrong password" in bob.status.cget("text")
    assert bob.bar.start_button.cget("text") == "Connect"
    assert listed(bob) == []
    assert listed(hal) == ["Hal (you)"]
    assert "Bob joined" not in hal.transcript.contents()
    assert not bob.banner.winfo_ismapped()  # a wrong password is no identity warning


def test_no_password_for_a_password_room_is_said_plainly(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.password.set(PASSWORD)
    port = start_host(hal, "Hal")
    bob = make_window()
    attempt(bob, port, "Bob")
    assert "This room needs a password." in bob.transcript.contents()
    assert bob.view.state == "idle"
    assert listed(hal) == ["Hal (you)"]


def test_the_host_shows_the_invite_and_copy_invite_copies_exactly_it(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    assert not hal.bar.invite_row.winfo_ismapped()  # nothing to hand out before hosting
    hal.bar.password.set(PASSWORD)
    port = start_host(hal, "Hal")
    pump_until(root, hal.bar.copy_invite_button.winfo_ismapped, "the invite row")
    hal.bar.copy_invite_button.invoke()
    copied = root.clipboard_get()
    assert copied == hal.view.invite
    invite = parse_invite(copied)
    assert (invite.host, invite.port, invite.password) == ("127.0.0.1", port, PASSWORD)
    # Shown, but not readable over a shoulder: the password is masked, the fingerprint short.
    shown = hal.bar.invite_text.cget("text")
    assert shown.startswith(f"parley://127.0.0.1:{port}/#fp=")
    assert "sesame" not in shown
    assert "pw=••••••" in shown
    assert hal.bar.copy_invite_button.cget("text") == "Copied"
    # The address and its own Copy button are still there.
    hal.bar.copy_button.invoke()
    assert root.clipboard_get() == f"127.0.0.1:{port}"

    hal.bar.start_button.invoke()  # Leave: the invite is no longer valid, and goes
    pump_until(root, lambda: hal.view.state == "idle", "the room to end")
    pump_until(root, lambda: not hal.bar.invite_row.winfo_ismapped(), "the invite row to go")


def test_joining_by_a_pasted_invite(make_window: MakeWindow, root: tk.Tk) -> None:
    hal = make_window()
    hal.bar.password.set(PASSWORD)
    port = start_host(hal, "Hal")
    hal.bar.copy_invite_button.invoke()

    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.port.set("1")  # left over from before: the invite says which port
    ann.bar.name.set("Ann")
    ann.bar.address_entry.focus_force()
    ann.bar.address_entry.event_generate("<<Paste>>")
    assert ann.typed_address() == hal.view.invite
    assert PASSWORD.replace(" ", "%20") not in ann.bar.address.get()  # never shown in clear
    assert ann.bar.address.get().endswith("&pw=••••••")
    assert ann.bar.note.cget("text") == (
        f"Invite: 127.0.0.1:{port}, with its password — identity verified on connect."
    )
    pump_until(root, ann.bar.note.winfo_ismapped, "the invite note")
    assert ann.bar.port.get() == str(port)  # the invite's port, where people look for it
    ann.bar.start_button.invoke()
    pump_until(root, lambda: ann.view.state == "in_room", "Ann to join by the invite")
    pump_until(root, lambda: listed(hal) == ["Hal (you)", "Ann"], "Ann in Hal's list")
    text = ann.transcript.contents()
    assert "First visit" not in text  # the invite vouched for the host: nothing to compare
    assert "Encrypted. Safety code" in text
    say(ann, "in by invite")
    pump_until(root, shows(hal, "Ann  in by invite"), "Ann's message")


def test_an_invite_for_another_identity_is_refused(
    make_window: MakeWindow, root: tk.Tk, tmp_path: Path
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    impostor = load_or_create_identity(tmp_path / "elsewhere")
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set(make_invite("127.0.0.1", port, impostor.fingerprint))
    ann.bar.name.set("Ann")
    ann.bar.start_button.invoke()
    pump_until(root, lambda: ann.view.state == "idle", "the refusal")
    assert "is not the one in the invite" in ann.transcript.contents()
    assert listed(hal) == ["Hal (you)"]


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (
            lambda invite: invite[:-20],
            "The invite's fingerprint is damaged (it may have been cut off when it was copied).",
        ),
        (lambda invite: invite.replace(":5151/", "/"), "The invite has no port after the address."),
        (
            lambda invite: invite.split("#")[0],
            "The invite has no fingerprint (fp=...); ask the host for a new one.",
        ),
    ],
)
def test_a_damaged_invite_is_refused_at_the_field(
    make_window: MakeWindow, tmp_path: Path, damage: Callable[[str], str], error: str
) -> None:
    fingerprint = load_or_create_identity(tmp_path / "host").fingerprint
    damaged = damage(make_invite("192.0.2.7", 5151, fingerprint))
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set(damaged)
    assert ann.bar.note.cget("text") == ""  # no promise for a damaged invite
    ann.bar.start_button.invoke()
    assert ann.bar.errors == {"address": error}
    assert ann.bar.hint.cget("text") == error
    assert ann.bar.address_entry.instate(["invalid"])
    assert ann.view.state == "idle"
    assert not ann.worker.running  # it was never tried as a host name


def test_a_damaged_invite_from_the_command_line_is_refused_at_the_field(
    make_window: MakeWindow,
) -> None:
    ann = make_window()
    ann.apply_arguments(join="parley://127.0.0.1:5151/#fp=tooshort", name="Ann")
    assert ann.view.state == "idle"
    assert ann.bar.errors["address"].startswith("The invite's fingerprint is damaged")


def test_a_changed_identity_warns_and_trusting_it_is_an_explicit_act(
    make_window: MakeWindow, root: tk.Tk, tmp_path: Path
) -> None:
    first = make_window(host_options=host_in(tmp_path / "first"))
    port = start_host(first, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    assert f"First visit to 127.0.0.1:{port}" in ann.transcript.contents()
    assert not ann.banner.winfo_ismapped()
    close_by_wm(first)
    pump_until(root, lambda: ann.view.state == "idle", "the first room to end")

    # Another machine (another identity) answers at the same address.
    second = make_window(host_options=host_in(tmp_path / "second"))
    second.bar.port.set(str(port))
    second.bar.name.set("Hal")
    second.bar.start_button.invoke()
    pump_until(root, lambda: second.view.state == "in_room", "the second host")
    new_code = code_in(second.security_label.cget("text"))

    ann.bar.start_button.invoke()  # Connect, as before
    pump_until(root, lambda: bool(ann.view.warning), "the identity warning")
    pump_until(root, ann.banner.winfo_ismapped, "the warning banner")
    warning = ann.banner_text.cget("text")
    assert warning.startswith(f"WARNING: the identity of 127.0.0.1:{port} has CHANGED")
    assert new_code in warning  # the code to compare is the new host's
    assert warning in ann.transcript.contents()
    assert ann.status.cget("text") == (
        f"Not connected: the identity of 127.0.0.1:{port} has changed."
    )
    assert ann.trust_button.winfo_ismapped()
    assert ann.view.state == "idle"
    assert listed(second) == ["Hal (you)"]  # not let in

    # Dismissing is not trusting: Connect is refused again, and the offer comes back.
    ann.dismiss_button.invoke()
    pump_until(root, lambda: not ann.banner.winfo_ismapped(), "the banner to go")
    ann.bar.start_button.invoke()
    pump_until(root, lambda: bool(ann.view.warning), "the warning again")
    pump_until(root, ann.trust_button.winfo_ismapped, "the Trust button again")
    assert listed(second) == ["Hal (you)"]

    ann.trust_button.invoke()
    pump_until(root, lambda: ann.view.state == "in_room", "Ann to join, trusting")
    assert not ann.banner.winfo_ismapped()
    assert f"You accepted a new identity for 127.0.0.1:{port}." in ann.transcript.contents()
    pump_until(root, lambda: listed(second) == ["Hal (you)", "Ann"], "Ann in the new room")
    say(ann, "trusted")
    pump_until(root, shows(second, "Ann  trusted"), "Ann's message in the new room")

    # Remembered: the next visit needs no trusting.
    ann.bar.start_button.invoke()  # Leave
    pump_until(root, lambda: ann.view.state == "idle", "Ann to leave")
    start_join(ann, port, "Ann")
    assert not ann.view.warning


def test_editing_where_to_connect_takes_the_warning_away(
    make_window: MakeWindow, root: tk.Tk, tmp_path: Path
) -> None:
    first = make_window(host_options=host_in(tmp_path / "first"))
    port = start_host(first, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    close_by_wm(first)
    pump_until(root, lambda: ann.view.state == "idle", "the first room to end")
    second = make_window(host_options=host_in(tmp_path / "second"))
    second.bar.port.set(str(port))
    second.bar.name.set("Hal")
    second.bar.start_button.invoke()
    pump_until(root, lambda: second.view.state == "in_room", "the second host")
    ann.bar.start_button.invoke()
    pump_until(root, ann.trust_button.winfo_ismapped, "the Trust button")

    ann.bar.address.set("localhost")  # the offer was for 127.0.0.1:port, not for this
    pump_until(root, lambda: not ann.banner.winfo_ismapped(), "the banner to go")
    assert not ann.view.can_trust
    ann.trust_new_identity()  # nothing to trust: nothing happens
    assert ann.view.state == "idle"


def test_plain_joins_an_allow_plain_host_and_says_not_encrypted(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.allow_plain.set(True)
    port = start_host(hal, "Hal")
    assert hal.security_label.cget("text").startswith("Unencrypted peers admitted · safety code")
    assert "Unencrypted peers (nc, telnet) are admitted too" in hal.transcript.contents()

    ann = make_window()
    ann.bar.plain.set(True)
    start_join(ann, port, "Ann")
    assert ann.security_label.cget("text") == "Not encrypted"
    assert ann.security_label.cget("style") == "Warn.Status.TLabel"
    assert NOT_ENCRYPTED in ann.transcript.contents()
    say(ann, "in the clear")
    pump_until(root, shows(hal, "Ann  in the clear"), "Ann's message")


def test_an_unencrypted_member_shows_in_the_badge_and_member_list(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    hal.bar.allow_plain.set(True)
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    host_code = code_in(hal.security_label.cget("text"))
    assert ann.security_label.cget("text") == f"Encrypted · safety code {host_code}"

    peer = RawPeer(port)  # nc: everything it reads crosses the network in the clear
    peer.line("hello from nc")
    for window, me in ((ann, "Ann (you)"), (hal, "Hal (you)")):
        pump_until(
            root,
            lambda w=window: "guest1 (not encrypted)" in listed(w),
            "the member list to mark guest1",
        )
        assert me in listed(window)
        assert window.security_label.cget("text") == (
            f"Not all encrypted: guest1 · safety code {host_code}"
        )
        assert window.security_label.cget("style") == "Warn.Status.TLabel"
    assert "guest1 is connected without encryption" in ann.transcript.contents()

    peer.close()
    pump_until(root, lambda: listed(ann) == ["Hal", "Ann (you)"], "guest1 to leave")
    pump_until(
        root,
        lambda: ann.security_label.cget("text") == f"Encrypted · safety code {host_code}",
        "Ann's badge to say Encrypted again",
    )
    assert ann.security_label.cget("style") == "Status.TLabel"


def test_plain_is_refused_by_a_host_that_does_not_allow_it(
    make_window: MakeWindow, root: tk.Tk
) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    ann.bar.plain.set(True)
    attempt(ann, port, "Ann")
    assert ann.view.state == "idle"
    assert "This Parley room is encrypted." in ann.transcript.contents()
    assert listed(hal) == ["Hal (you)"]


def test_plain_with_a_password_is_refused_at_the_field(make_window: MakeWindow) -> None:
    ann = make_window()
    ann.bar.set_mode("join")
    ann.bar.address.set("127.0.0.1")
    ann.bar.plain.set(True)
    ann.bar.password.set(PASSWORD)
    ann.bar.start_button.invoke()
    assert ann.bar.errors == {"password": PLAIN_WITH_PASSWORD}
    assert not ann.worker.running
    ann.bar.plain.set(False)  # the fix clears the hint
    assert ann.bar.errors == {}


def test_unencrypted_checkboxes_and_passwords_are_never_remembered(
    make_window: MakeWindow, root: tk.Tk, config_dir: Path, tmp_path: Path
) -> None:
    first = make_window()
    first.bar.allow_plain.set(True)
    first.bar.plain.set(True)
    first.bar.password.set(PASSWORD)
    first.bar.set_mode("join")
    fingerprint = load_or_create_identity(tmp_path / "host").fingerprint
    first.bar.address.set(make_invite("192.0.2.7", 6000, fingerprint, PASSWORD))
    close_by_wm(first)
    raw = (config_dir / FILE_NAME).read_text()
    assert "sesame" not in raw
    assert "parley://" not in raw
    saved = json.loads(raw)
    assert "plain" not in saved
    assert "allow_plain" not in saved
    assert (saved["host"], saved["port"]) == ("192.0.2.7", 6000)  # from the invite

    # Even a settings file from an older Parley that kept them ticked does not tick them.
    (config_dir / FILE_NAME).write_text(json.dumps(dict(saved, plain=True, allow_plain=True)))
    second = make_window()
    assert second.bar.plain.get() is False
    assert second.bar.allow_plain.get() is False
    assert second.bar.password.get() == ""
    assert (second.bar.address.get(), second.bar.port.get()) == ("192.0.2.7", "6000")


def test_the_app_window_joins_an_invite_from_the_command_line(config_dir: Path) -> None:
    """`python -m app --join INVITE` in its own process: a terminal host with a password room
    sees the window come in with the invite's password, and leave again on SIGTERM."""
    host = Proc("host", "--port", "0", "--bind", "127.0.0.1", "--name", "Hal", "--password", "pw")
    app: Proc | None = None
    try:
        invite = host.expect(r"Invite \(.*\): (parley://\S+)").group(1)
        app = Proc("--join", invite, "--name", "Ann")
        host.expect(rf"Got a connection from 127\.0\.0\.1:\d+ \(Ann\) — session code {CODE}")
        app.p.send_signal(signal.SIGTERM)  # closes the window, saying bye
        host.expect(r"Ann left\.")
        assert app.wait() == 0
        assert "Traceback" not in "\n".join(app.err)
    finally:
        if app is not None:
            app.kill()
        host.kill()
    raw = (config_dir / FILE_NAME).read_text()
    assert "parley://" not in raw
    assert json.loads(raw)["host"] == "127.0.0.1"
