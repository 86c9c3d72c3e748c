"""Files in a real window under Xvfb: Send file…, the offer card, Accept, the progress bar
moving, Cancel, and Open folder once the file is saved."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.gui.window import ChatWindow
from tests.gui.tk_helpers import pump_until, start_host, start_join
from tests.test_files import Link

SHOTS = os.environ.get("PARLEY_SHOTS")  # a folder: save what the window looked like there


@pytest.fixture
def slow_link() -> Iterator[Callable[[int], Link]]:
    made: list[Link] = []

    def make(port: int) -> Link:
        link = Link(port)
        link.rate = 2_000_000  # bytes per second: slow enough to watch the bar move
        made.append(link)
        return link

    yield make
    for link in made:
        link.close()


def _card(window: ChatWindow, number: int = 1):  # type: ignore[no-untyped-def]
    pump_until(window.top, lambda: number in window.files.cards, f"card {number}")
    return window.files.cards[number]


def _shot(window: ChatWindow, name: str) -> None:
    if SHOTS:
        window.top.update()
        subprocess.run(
            ["import", "-window", str(window.top.winfo_id()), str(Path(SHOTS) / name)],
            check=True,
            timeout=20,
        )


def _hal_and_ann_slowly(
    make_window, slow_link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[ChatWindow, ChatWindow, int]:
    """Hal's window hosts (port returned); Ann's joins through a slow link; both in the room."""
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(tmp_path / "downloads"))
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, slow_link(port).port, "Ann")
    pump_until(hal.top, lambda: "Ann" in hal.view.members, "Ann in Hal's list")
    return hal, ann, port


def test_send_accept_progress_and_open_folder(
    make_window, slow_link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hal, ann, port = _hal_and_ann_slowly(make_window, slow_link, tmp_path, monkeypatch)
    src = tmp_path / "holiday photos.zip"
    src.write_bytes(os.urandom(6_000_000))
    asked: list[str] = []

    def ask(parent: object, title: str) -> list[str]:
        asked.append(title)
        return [str(src)]

    hal.files.ask = ask
    hal.file_button.invoke()  # Send file…
    assert asked == ["Send files to the room"]
    sending = _card(hal)
    assert sending.title.cget("text") == "You offer holiday photos.zip (6.0 MB) to Ann"
    assert sending.shown_buttons() == ["Cancel"]

    card = _card(ann)
    assert card.title.cget("text") == "Hal offers holiday photos.zip (6.0 MB)"
    assert card.shown_buttons() == ["Accept", "Decline"]
    assert not (tmp_path / "downloads").exists()  # nothing written before Accept
    _shot(ann, "offer-card.png")
    card.accept.invoke()
    assert card.shown_buttons() == ["Cancel"]
    pump_until(ann.top, lambda: "Hal" in card.rows, "a progress row")
    row = card.rows["Hal"]
    pump_until(ann.top, lambda: 0 < float(row.bar.cget("value")) < 1000, "the bar to move")
    first = float(row.bar.cget("value"))
    pump_until(ann.top, lambda: float(row.bar.cget("value")) > first + 50, "the bar to move on")
    figures = str(row.figures.cget("text"))
    assert re.fullmatch(r"\d+% · [\d.]+ [kM]?B of 6\.0 MB · [\d.]+ [kM]?B/s · .+ left", figures)
    _shot(ann, "progress.png")
    pump_until(hal.top, lambda: "Ann" in sending.rows, "the sender's progress row")

    pump_until(ann.top, lambda: card.over, "the file to arrive", timeout=30)
    saved = tmp_path / "downloads" / "holiday photos.zip"
    assert card.status.cget("text") == f"Saved to {saved}"
    assert card.shown_buttons() == ["Open folder"]
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    opened: list[str] = []
    ann.files.open_folder = opened.append
    card.open.invoke()
    assert opened == [str(saved.parent)]
    pump_until(
        hal.top,
        lambda: "Ann received holiday photos.zip." in str(sending.status.cget("text")),
        "the sender to see who received it",
    )
    _shot(ann, "saved.png")


def test_send_file_to_one_member_from_the_member_list_and_decline(
    make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(tmp_path / "downloads"))
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    src = tmp_path / "a.txt"
    src.write_text("hello")
    ann.files.ask = lambda parent, title: [str(src), str(src)]  # several files at once
    pump_until(ann.top, lambda: len(ann.view.members) == 2, "both in Ann's list")
    index = ann.view.members.index("Hal")
    assert ann.files.choose_and_send(ann._member_at(index)) == [str(src), str(src)]
    first, second = _card(hal, 1), _card(hal, 2)
    assert first.title.cget("text") == "Ann offers you a.txt (5 B)"
    first.decline.invoke()
    assert first.shown_buttons() == []
    _card(ann, 2)
    pump_until(
        ann.top,
        lambda: any(
            "Hal declined a.txt." in str(c.status.cget("text")) for c in ann.files.cards.values()
        ),
        "Ann to hear of the decline",
    )
    second.accept.invoke()
    pump_until(hal.top, lambda: second.over, "the second to arrive")
    assert (tmp_path / "downloads" / "a.txt").read_text() == "hello"
    assert ann._member_at(ann.view.members.index("Ann")) is None  # not to yourself


def test_the_member_lists_menu_offers_send_file_to_that_member(make_window, tmp_path) -> None:
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, port, "Ann")
    pump_until(hal.top, lambda: len(hal.view.members) == 2, "Ann in Hal's list")
    asked: list[str] = []
    hal.files.ask = lambda parent, title: asked.append(title) or []
    box = hal.members
    row = hal.view.members.index("Ann")
    x, y, _, height = box.bbox(row)
    posted: list[str] = []
    menu = hal.files.menu
    menu.tk_popup = lambda *a: posted.extend(  # type: ignore[method-assign]
        menu.entrycget(i, "label") for i in range(int(menu.index("end")) + 1)
    )
    box.event_generate("<Button-3>", x=x + 2, y=y + height // 2, rootx=0, rooty=0)
    hal.top.update()
    assert "Send file to Ann…" in posted
    menu.invoke(posted.index("Send file to Ann…"))
    assert asked == ["Send files to Ann"]


def test_cancel_on_either_side_mid_way(
    make_window, slow_link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(tmp_path / "downloads"))
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    start_join(ann, slow_link(port).port, "Ann")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(6_000_000))
    hal.files.ask = lambda parent, title: [str(src), str(src)]
    hal.file_button.invoke()
    first, second = _card(ann, 1), _card(ann, 2)
    for card in (first, second):
        card.accept.invoke()
        pump_until(ann.top, lambda c=card: "Hal" in c.rows, "bytes to move")
    first.cancel.invoke()  # the receiver cancels one
    pump_until(ann.top, lambda: first.over, "the receiver's cancel")
    assert first.status.cget("text") == "You cancelled receiving big.bin."
    sent = [_card(hal, 1), _card(hal, 2)]
    pump_until(
        hal.top,
        lambda: any("Ann cancelled receiving big.bin." in str(c.status.cget("text")) for c in sent),
        "the sender to hear of it",
    )
    other = next(c for c in sent if "Ann cancelled" not in str(c.status.cget("text")))
    other.cancel.invoke()  # the sender withdraws the other
    pump_until(ann.top, lambda: second.over, "the sender's cancel to arrive", timeout=20)
    assert second.status.cget("text") == "Hal cancelled big.bin."
    assert second.shown_buttons() == []
    pump_until(ann.top, lambda: not list((tmp_path / "downloads").iterdir()), "no partial file")


def test_a_download_carries_on_in_a_new_window_after_the_first_was_closed(
    make_window, slow_link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ann closes her window mid-way through a file; a new window of hers joins, is offered
    the same file and accepts it: the card's bar starts where the kept partial file ends, the
    transcript says it carries on, and the file arrives whole."""
    hal, ann, port = _hal_and_ann_slowly(make_window, slow_link, tmp_path, monkeypatch)
    src = tmp_path / "talk.mp4"
    src.write_bytes(os.urandom(4_000_000))
    hal.files.ask = lambda parent, title: [str(src)]
    hal.file_button.invoke()
    card = _card(ann)
    card.accept.invoke()
    pump_until(ann.top, lambda: "Hal" in card.rows, "a progress row")
    row = card.rows["Hal"]
    pump_until(ann.top, lambda: float(row.bar.cget("value")) > 100, "a tenth of the file")
    ann.request_close()  # the window's close button: bye, then gone
    pump_until(hal.top, lambda: "Ann" not in hal.view.members, "Ann gone from Hal's list")
    part = tmp_path / "downloads" / "talk.mp4.part"
    held = part.stat().st_size
    assert held > 0

    again = make_window()
    start_join(again, port, "Ann")
    card = _card(again)
    assert card.title.cget("text") == "Hal offers talk.mp4 (4.0 MB)"
    card.accept.invoke()
    pump_until(again.top, lambda: "Hal" in card.rows, "a progress row")
    row = card.rows["Hal"]
    pump_until(
        again.top,
        lambda: "carrying on from" in again.transcript.text.get("1.0", "end"),
        "the transcript to say it carries on",
    )
    assert float(row.bar.cget("value")) >= held * 1000 // src.stat().st_size
    _shot(again, "resumed.png")
    pump_until(again.top, lambda: card.over, "the file to arrive", timeout=30)
    saved = tmp_path / "downloads" / "talk.mp4"
    assert card.status.cget("text") == f"Saved to {saved}"
    pump_until(again.top, lambda: float(row.bar.cget("value")) == 1000, "a full bar")
    assert row.figures.cget("text") == "100% · 4.0 MB of 4.0 MB"
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["talk.mp4"]


def _drop(window: ChatWindow, paths: list[Path]) -> str:
    """Drop `paths` on the middle of `window` from another X client (a file manager's part),
    with the window's event loop running meanwhile."""
    from tools.xdnd import drop_files

    top = window.top
    top.update()
    x = top.winfo_rootx() + top.winfo_width() // 2
    y = top.winfo_rooty() + top.winfo_height() // 2
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(drop_files(paths, x, y)))
    thread.start()
    pump_until(top, lambda: not thread.is_alive(), "the drop to finish")
    return result[0]


def test_files_dropped_on_the_window_are_offered_to_the_room(
    make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real XDND drop (another X client, as a file manager) of two files and a folder onto
    Ann's window: both files are offered to the room, the folder is refused with a line saying
    why; on the start screen, before joining, the window does not take the drop."""
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(tmp_path / "downloads"))
    hal = make_window()
    port = start_host(hal, "Hal")
    ann = make_window()
    ann.top.geometry("+660+0")  # beside Hal's: the drop lands on Ann's alone
    assert ann.enable_drops()
    files = [tmp_path / "holiday notes.txt", tmp_path / "100% done.pdf"]
    for f in files:
        f.write_bytes(os.urandom(1000))
    folder = tmp_path / "photos"
    folder.mkdir()
    assert _drop(ann, files) == "refused"  # not in a room yet: nothing to send it to
    start_join(ann, port, "Ann")
    pump_until(hal.top, lambda: "Ann" in hal.view.members, "Ann in Hal's list")
    assert _drop(ann, [*files, folder]) == "finished"
    first, second = _card(hal, 1), _card(hal, 2)
    titles = sorted(str(c.title.cget("text")) for c in (first, second))
    assert titles == ["Ann offers 100% done.pdf (1.0 kB)", "Ann offers holiday notes.txt (1.0 kB)"]
    pump_until(
        ann.top,
        lambda: "photos is a folder" in ann.transcript.text.get("1.0", "end"),
        "the folder to be refused",
    )
    first.accept.invoke()
    pump_until(hal.top, lambda: first.over, "the first file to arrive")
    saved = Path(first.path or "")
    assert saved.read_bytes() in {f.read_bytes() for f in files}


def test_in_a_private_conversation_send_file_and_a_drop_go_to_that_member_alone(
    make_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ann talks with Bob in a private tab: Send file… there asks "Send files to Bob", and what
    she picks, or drops on the window, is offered to Bob alone (Hal, in the room, sees nothing)."""
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(tmp_path / "downloads"))
    hal = make_window()
    port = start_host(hal, "Hal")
    ann, bob = make_window(), make_window()
    ann.top.geometry("+660+0")
    start_join(ann, port, "Ann")
    start_join(bob, port, "Bob")
    pump_until(ann.top, lambda: "Bob" in ann.view.members, "Bob in Ann's list")
    src = tmp_path / "just for you.txt"
    src.write_text("psst")
    asked: list[str] = []
    ann.files.ask = lambda parent, title: asked.append(title) or [str(src)]
    ann.tabs.open("Bob")
    ann.file_button.invoke()
    assert asked == ["Send files to Bob"]
    assert _card(bob, 1).title.cget("text") == "Ann offers you just for you.txt (4 B)"
    assert ann.enable_drops()
    assert _drop(ann, [src]) == "finished"
    assert _card(bob, 2).title.cget("text") == "Ann offers you just for you.txt (4 B)"
    ann.tabs.select(0)  # back in the room, Send file… is for the room again
    ann.file_button.invoke()
    assert asked[-1] == "Send files to the room"
    _card(hal, 1)
    assert [c.title.cget("text") for c in hal.files.cards.values()] == [
        "Ann offers just for you.txt (4 B)"
    ]
