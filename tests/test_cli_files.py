"""Files in the terminal: /send, /accept N, /decline N, /cancel N, --downloads and progress."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from app import events as ev
from app.cli import Terminal
from app.cli_files import PLAIN_EVERY, NumberCommand, Progress, SendCommand, parse_command


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("/send report.pdf", SendCommand("report.pdf")),
        ("/send my report.pdf", SendCommand("my report.pdf")),
        ('/send "my report.pdf"', SendCommand("my report.pdf")),
        ("/send @Bob a.txt", SendCommand("a.txt", "Bob")),
        ('/send @"Bob Smith" a b.txt', SendCommand("a b.txt", "Bob Smith")),
        ("/SEND @Bob 'x y'", SendCommand("x y", "Bob")),
        ("/accept 3", NumberCommand("accept", 3)),
        ("/decline 12", NumberCommand("decline", 12)),
        ("/cancel 1", NumberCommand("cancel", 1)),
        ("/accept", "Usage: /accept N (the number shown with the offer)"),
        ("/cancel x", "Usage: /cancel N (the number of a file on its way)"),
        (
            "/send",
            'Usage: /send PATH, or /send @NAME PATH (a name with spaces in quotes: @"Ann Lee")',
        ),
        (
            '/send @"Bob a.txt',
            'Usage: /send PATH, or /send @NAME PATH (a name with spaces in quotes: @"Ann Lee")',
        ),
        (
            "/send @Bob",
            'Usage: /send PATH, or /send @NAME PATH (a name with spaces in quotes: @"Ann Lee")',
        ),
        ("/who", None),
        ("hello /send x", None),
    ],
)
def test_parse_command(line: str, parsed: object) -> None:
    assert parse_command(line) == parsed


def test_send_expands_the_home_folder() -> None:
    assert parse_command("/send ~/x.txt") == SendCommand(str(Path.home() / "x.txt"))


def _progress(done: int) -> ev.FileProgress:
    return ev.FileProgress(3, "Ann", True, done, 100, 10.0, 1.0)


def test_progress_prints_at_most_a_line_every_few_seconds_when_not_a_terminal() -> None:
    now = [0.0]
    progress = Progress(False, lambda s: None, lambda: now[0])
    progress.seen(ev.FileOffered(3, "Ann", "a.bin", 100))
    lines = []
    for i in range(1, 60):
        now[0] = i * 0.1  # 5.9 s of events, ten a second
        lines += progress.seen(_progress(i))
    assert len(lines) == 2  # at 0.1 s and at 5.1 s
    assert lines[0].startswith("[3] a.bin from Ann: 1% · 1 B of 100 B")
    assert PLAIN_EVERY == 5.0
    assert progress.seen(_progress(100)) == ["[3] a.bin from Ann: 100% · 100 B of 100 B"]


def test_progress_redraws_one_line_on_a_terminal() -> None:
    out = io.StringIO()
    terminal = Terminal(out, interactive=True)
    terminal.prompting = True
    progress = Progress(True, terminal.set_status, lambda: 0.0)
    progress.seen(ev.FileOffered(3, "Ann", "a.bin", 100))
    for i in (10, 50):
        assert progress.seen(_progress(i)) == []
    assert out.getvalue().count("\n") == 0  # redrawn in place: no new lines
    assert out.getvalue().endswith(
        "\r\x1b[K[3] a.bin from Ann: 50% · 50 B of 100 B · 10 B/s · 1 s left  You: "
    )
    progress.seen(ev.FileEnded(3, "received", "Saved to /x", "Ann", True))
    assert out.getvalue().endswith("\r\x1b[KYou: ")


def test_send_accept_decline_and_cancel_in_the_terminal(
    procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hal_dir, ann_dir, bob_dir = (tmp_path / n for n in ("hal", "ann", "bob"))
    host = procs(
        "host",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--name",
        "Hal",
        "--downloads",
        str(hal_dir),
        "--max-file-size",
        "3MB",
    )
    port = host.expect(r"on port (\d+)").group(1)
    ann = procs("join", f"127.0.0.1:{port}", "--name", "Ann", "--downloads", str(ann_dir))
    ann.expect("^You are Ann")
    monkeypatch.setenv("PARLEY_DOWNLOADS", str(bob_dir))  # Bob's folder comes from the setting
    bob = procs("join", f"127.0.0.1:{port}", "--name", "Bob Smith")
    bob.expect("^You are Bob Smith")
    ann.expect("^Bob Smith joined.$")

    src = tmp_path / "src"
    src.mkdir()
    (src / "report one.pdf").write_bytes(os.urandom(2_100_000))
    ann.say(f"/send {src / 'report one.pdf'}")
    ann.expect(r"^Offering report one\.pdf \(2\.1 MB\) to Hal, Bob Smith as file 1 ")
    m = bob.expect(r"^Ann offers report one\.pdf \(2\.1 MB\): /accept (\d+) or /decline \1$")
    host.expect(r"^Ann offers report one\.pdf \(2\.1 MB\): /accept 1 or /decline 1$")
    bob.say(f"/accept {m.group(1)}")
    saved = bob.expect(r"^Saved to (.+) \(file 1\)$").group(1)
    assert saved == str(bob_dir / "report one.pdf")
    digest = hashlib.sha256((src / "report one.pdf").read_bytes()).hexdigest()
    assert hashlib.sha256(Path(saved).read_bytes()).hexdigest() == digest
    bob.expect(r"^\[1\] report one\.pdf from Ann: 100% · 2\.1 MB of 2\.1 MB")  # not a tty: lines
    ann.expect(r"^\* Bob Smith received report one\.pdf\.$")
    host.say("/decline 1")
    ann.expect(r"^\* Hal declined report one\.pdf\.$")

    # To one member by a name with spaces; over the host's limit; a number that does not exist.
    (src / "note.txt").write_text("hello")
    ann.say(f'/send @"Bob Smith" {src / "note.txt"}')
    m = bob.expect(r"^Ann offers you note\.txt \(5 B\): /accept (\d+) or /decline \1$")
    bob.say(f"/decline {m.group(1)}")
    ann.expect(r"^\* Bob Smith declined note\.txt\.$")
    (src / "big.iso").write_bytes(b"\0" * 3_000_001)
    ann.say(f"/send {src / 'big.iso'}")
    ann.expect(r"^\* big\.iso is 3\.0 MB; this host allows files of up to 3\.0 MB\.$")
    ann.say("/cancel 9")
    ann.expect(r"^! There is no file 9 to cancel\.$")
    ann.say("/accept")
    ann.expect(r"^! Usage: /accept N")
    ann.say("/cancel 1")  # withdraw the first offer
    ann.expect(r"^\* You cancelled sending report one\.pdf\.$")
    assert not hal_dir.exists()  # Hal declined: nothing was written, not even the folder
