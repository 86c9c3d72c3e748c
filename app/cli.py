"""The terminal front end: the same worker and events as the window, shown as lines of text.

The main thread drains the worker's queue and prints; a daemon thread reads stdin and hands each
line to the worker. Woken by an event, the main thread waits `GATHER` for more, then shows all
that waits in one write; while events keep coming it looks again every `GATHER` instead of
waiting on the queue (`Drain`), so the worker's posts wake nobody; a host asked by the terminal
posts a turn's chats as one `ChatsReceived` (`HostOptions.view_batches`), so a busy room costs
a line of text per message.
In an interactive terminal a "You: " prompt is kept below incoming lines (with readline, the
half-typed line is redrawn); otherwise output is plain lines, for scripts.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TextIO

from app import events as ev
from app.cli_files import NumberCommand, Progress, SendCommand, clock, describe_file, parse_command
from app.export import ChatExportLog, export
from app.invite import Invite, parse_invite
from app.net import HostOptions, JoinOptions
from app.protocol import clean_text, not_encrypted_warning
from app.worker import NetWorker

PROMPT = "You: "
BATCH = 500  # events shown per write when many arrive at once
# Once an event wakes the terminal, it waits this long for others before showing them, and
# while they keep coming it looks this often (`Drain`): a busy room's lines then cost one
# wake-up and one write for several (each wake-up also takes the interpreter from the network
# thread: 10 ms cost the paced room's host 34 us of CPU a line, 25 ms 20 us), and nobody sees
# 25 ms. An idle terminal just waits.
GATHER = 0.025


def describe(event: ev.Event) -> list[str]:
    """The lines a terminal shows for an event (none for the user's own echoes)."""
    if isinstance(event, ev.Hosting):
        plain = "allowed" if event.allow_plain else "refused (use --allow-plain to admit them)"
        return [
            f"Server is waiting for a connection... on port {event.port}",
            f"Others can join with: {', '.join(event.addresses)}",
            f"Invite ({_invite_holds(event)}): {event.invite}",
            f"Encrypted. Safety code: {event.safety_code}",
            f"Plain connections: {plain}",
        ]
    if isinstance(event, ev.Connecting):
        return [f"Connecting to {event.host}:{event.port}..."]
    if isinstance(event, ev.Reconnecting):
        return [f"{event.reason} Reconnecting in {event.delay:g} s..."]
    if isinstance(event, ev.Connected) and event.resumed:
        return ["Reconnected to the server."] + ([f"* {event.note}"] if event.note else [])
    if isinstance(event, ev.Connected):
        lines = ["Connected to the server."]
        if event.foreign:
            lines.append("(This server is not Parley: lines go out and come in as they are.)")
        else:
            lines.append(f"You are {event.name}. In the room: {', '.join(event.members)}.")
        if event.note and not event.foreign:
            lines.append(f"* {event.note}")
        if event.safety_code:
            lines.append(f"Encrypted. Safety code: {event.safety_code}")
        else:
            lines.append("Not encrypted: anyone on the network can read this chat.")
        if event.session_code:
            lines.append(
                f"Password checked. Session code: {event.session_code} "
                "(the host sees the same next to your name)"
            )
        others = tuple(name for name in event.plain if name != event.name)
        if others and event.safety_code:
            lines.append(f"! {not_encrypted_warning(others)}")
        return lines
    if isinstance(event, ev.MessageReceived):
        return message_lines(event)
    return _describe(event)


def chat_lines(event: ev.ChatsReceived) -> list[str]:
    """`describe` for a batch of chat lines (what `message_lines` gives for each)."""
    lines = [f"{chat.sender}: {chat.text}" for chat in event.chats]
    if any("\n" in line for line in lines):  # a text of several lines: each shown apart
        return [part for chat in event.chats for part in _parts(chat.sender, chat.text)]
    return lines


def _parts(sender: str, text: str) -> list[str]:
    return [f"{sender}: {part}" for part in text.split("\n")]


def message_lines(event: ev.MessageReceived) -> list[str]:
    """`describe` for a chat line (none for the user's own echo)."""
    if event.mine and not event.earlier and event.private is None:
        return []
    if event.sender is None:
        return event.text.split("\n")
    prefix = "(earlier) " if event.earlier else ""
    if event.private is not None:  # a sender sees its private line go, marked
        prefix += f"(private to {event.private}) " if event.mine else "(private) "
    if not prefix and "\n" not in event.text:
        return [f"{event.sender}: {event.text}"]
    return [f"{prefix}{event.sender}: {part}" for part in event.text.split("\n")]


def _describe(event: ev.Event) -> list[str]:
    if isinstance(event, ev.EarlierShown):
        lines = [f"----- {event.text} -----"]
        for message in event.messages:
            lines += describe(message)
        return lines
    if isinstance(event, ev.MemberJoined):
        if event.address:
            code = f" — session code {event.safety_code}" if event.safety_code else ""
            plain = " — not encrypted" if event.encrypted is False else ""
            return [f"Got a connection from {event.address} ({event.name}){plain}{code}"]
        if event.encrypted is False:
            return [f"{event.name} joined.", f"! {not_encrypted_warning((event.name,))}"]
        return [f"{event.name} joined."]
    if isinstance(event, ev.MemberLeft):
        return [
            f"{event.name} left."
            if event.reason == "left"
            else f"{event.name} left ({event.reason})."
        ]
    if isinstance(event, ev.MemberRenamed):
        return [f"You are now {event.new}." if event.you else f"{event.old} is now {event.new}."]
    if isinstance(event, ev.NoticeShown):
        return [f"* {event.text}"]
    if isinstance(event, ev.ErrorShown):
        return [f"! {event.text}"]
    if isinstance(event, ev.ChatEnded):
        reason = [event.reason] if event.reason else []
        return [*reason, "Chat ended."]
    if isinstance(event, ev.Failed):
        return [event.text]
    if isinstance(event, ev.FileOffered | ev.FileSending | ev.FileEnded):
        return describe_file(event)
    return []


def for_terminal(line: str) -> str:
    """One line as it may reach a terminal: cleaned of controls and escape sequences (OSC 52,
    BEL, cursor moves, ...), and any newline left inside it (a separator, or a server's
    multi-line text) indented, so what follows can never pass for a line of its own."""
    if line.isprintable():  # no control, no newline: nothing for clean_text to do
        return line
    return "\n  ".join(clean_text(line).split("\n"))


class Terminal:
    """Prints lines without trampling what the user is typing (as far as a terminal allows)."""

    def __init__(self, out: TextIO = sys.stdout, interactive: bool | None = None) -> None:
        self.out = out
        if interactive is None:
            interactive = sys.stdin.isatty() and out.isatty()
        self.interactive = interactive
        self._line_buffer: Callable[[], str] = lambda: ""
        if interactive:
            try:
                import readline

                self._line_buffer = readline.get_line_buffer
            except ImportError:  # Windows: no readline; the prompt is simply printed again
                pass
        self.prompting = False
        self.status = ""  # a line redrawn in place above the prompt's text (file progress)

    def set_status(self, status: str) -> None:
        """Redraw the status line in place (a terminal only)."""
        self.status = for_terminal(status).replace("\n", " ")
        if self.interactive:
            prompt = PROMPT + self._line_buffer() if self.prompting else ""
            self.out.write("\r\x1b[K" + self.status + prompt)
            self.out.flush()

    def show(self, lines: list[str]) -> None:
        if not lines:
            return
        text = "".join(for_terminal(line) + "\n" for line in lines)
        if self.interactive and self.prompting:
            self.out.write("\r\x1b[K" + text + self.status + PROMPT + self._line_buffer())
        elif self.interactive:
            self.out.write("\r\x1b[K" + text)  # over the prompt left on screen
        else:
            self.out.write(text)
        self.out.flush()


def take_waiting(events: queue.Queue[ev.Event], batch: list[ev.Event], limit: int) -> None:
    """Move what waits in `events` to `batch`, up to `limit` in all, under one lock (what
    `get_nowait` does once per event, for an unbounded queue: nobody waits to put)."""
    with events.mutex:
        waiting = events.queue
        for _ in range(min(len(waiting), limit - len(batch))):
            batch.append(waiting.popleft())


class Drain:
    """How the terminal takes the worker's events: idle, it waits on the queue, and a post
    wakes it; woken, it waits `gather` for more and takes everything that waits. While events
    keep coming it does not wait on the queue again: it sleeps `gather` and takes what came
    meanwhile. A post then finds nobody waiting on the queue, so it wakes no thread, and a
    busy room costs the terminal one wake-up per `gather`, not two per post (the post's, and
    the wait for more after it), and the network thread no futex wake per post. The first
    look that finds nothing sends it back to waiting on the queue."""

    def __init__(
        self,
        events: queue.Queue[ev.Event],
        gather: float = GATHER,
        limit: int = BATCH,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.events = events
        self.gather = gather
        self.limit = limit
        self.sleep = sleep
        self.busy = False  # the last batch had events: look again after `gather`
        self._full = False  # ... and it was cut at `limit`: look again at once

    def next(self, timeout: float = 0.5) -> list[ev.Event]:
        """The next batch, in order: up to `limit` events ([] after `timeout` idle)."""
        events = self.events
        batch: list[ev.Event] = []
        if self.busy:
            if not self._full:
                self.sleep(self.gather)
            take_waiting(events, batch, self.limit)
            self.busy = bool(batch)
        if not batch:
            try:
                batch.append(events.get(timeout=timeout))
            except queue.Empty:
                return batch
            if events.empty():
                self.sleep(self.gather)
            take_waiting(events, batch, self.limit)
            self.busy = True
        self._full = len(batch) >= self.limit
        return batch


def _read_lines(terminal: Terminal, send: Callable[[str], None], eof: Callable[[], None]) -> None:
    try:
        if terminal.interactive:
            terminal.prompting = True
            while True:
                send(input(PROMPT))
        else:
            for line in sys.stdin:
                send(line.rstrip("\r\n"))
    except (EOFError, OSError, ValueError):
        pass
    terminal.prompting = False
    eof()


def _line_typed(worker: NetWorker, terminal: Terminal, line: str) -> None:
    """A file command is the person's own (/send, /accept N, ...); anything else goes out."""
    command = parse_command(line)
    if command is None:
        worker.send(line)
    elif isinstance(command, str):
        terminal.show([f"! {command}"])
    elif isinstance(command, SendCommand):
        worker.send_file(command.path, command.to)
    elif isinstance(command, NumberCommand):
        action = {
            "accept": worker.accept_file,
            "decline": worker.decline_file,
            "cancel": worker.cancel_file,
        }[command.verb]
        action(command.number)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def without_password(event: ev.Hosting) -> ev.Hosting:
    """The Hosting event with an invite that leaves the password out (the rest still pins the
    host's identity); `describe` then says the password is not shown."""
    if not event.password or not event.invite:
        return event
    try:
        invite = parse_invite(event.invite)
    except ValueError:
        return dataclasses.replace(event, invite="(not shown: it would hold the password)")
    return dataclasses.replace(
        event, invite=Invite(invite.host, invite.port, invite.fingerprint).to_text()
    )


def _invite_holds(event: ev.Hosting) -> str:
    if not event.password:
        return "address, identity"
    if "&pw=" in event.invite:
        return "address, identity and password"
    return "address, identity; the password is not shown: share it yourself"


def run(
    start: Callable[[NetWorker], None],
    *,
    leave_on_eof: bool,
    hide_password: bool = False,
    failed: Callable[[ev.Failed], None] | None = None,
) -> int:
    """Run one session in the terminal; returns the process exit code. With `hide_password`
    the host's invite is printed without its password."""
    events: queue.Queue[ev.Event] = queue.Queue()
    worker = NetWorker(events.put)
    terminal = Terminal()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)
    worker.start()
    start(worker)
    kept = ChatExportLog()
    kept_lock = threading.Lock()
    room = ["this room"]
    target: list[str | None] = [None]  # where a join is going (for the connection doctor)

    def line_typed(text: str) -> None:
        """The reader's lines: /export is this terminal's own; the rest goes to the room."""
        word, _, arg = text.strip().partition(" ")
        if word.lower() != "/export":
            _line_typed(worker, terminal, text)
            return
        if not arg.strip():
            events.put(ev.ErrorShown("Usage: /export PATH (.txt or .html)"))
            return
        with kept_lock:
            entries = list(kept.entries)
        try:
            path = export(arg.strip(), room[0], entries)
        except (OSError, ValueError) as exc:
            events.put(ev.ErrorShown(f"Could not export: {exc}"))
        else:
            events.put(ev.NoticeShown(f"Exported {len(entries)} lines to {path}."))

    reader_started = False
    progress = Progress(terminal.interactive, terminal.set_status, clock)
    code = 1
    drain = Drain(events)
    try:
        while True:
            batch = drain.next()  # what waits: one write for all
            if not batch:
                continue
            lines: list[str] = []
            end: ev.Event | None = None
            shown: list[ev.MessageReceived] = []
            kept_chats: list[ev.ChatsReceived] = []
            for event in batch:
                if type(event) is ev.ChatsReceived:  # most of a busy room: the short way
                    lines += chat_lines(event)
                    kept_chats.append(event)
                    continue
                if type(event) is ev.MessageReceived:
                    lines += message_lines(event)
                    shown.append(event)
                    continue
                if isinstance(event, ev.Failed | ev.ChatEnded):
                    end = event  # the session's last event
                    break
                if hide_password and isinstance(event, ev.Hosting):
                    event = without_password(event)
                lines += progress.seen(event) + describe(event)
                if isinstance(event, ev.Hosting):
                    lines += doctor_lines(event)
                elif isinstance(event, ev.Connecting):
                    target[0] = event.host
                if isinstance(event, ev.Hosting):
                    room[0] = f"{event.name}'s room (port {event.port})"
                elif isinstance(event, ev.Connected):
                    room[0] = f"the room at {event.host}:{event.port}"
                if isinstance(event, ev.Hosting | ev.Connected) and not reader_started:
                    reader_started = True
                    on_eof = worker.leave if leave_on_eof else (lambda: None)
                    threading.Thread(
                        target=_read_lines, args=(terminal, line_typed, on_eof), daemon=True
                    ).start()
            if shown or kept_chats:
                with kept_lock:
                    for message in shown:
                        kept.add(message)
                    for chats in kept_chats:
                        kept.add_chats(chats.chats)
            terminal.show(lines)
            if isinstance(end, ev.Failed):
                print(for_terminal(end.text), file=sys.stderr)
                hint = failure_hint(end, target[0])
                if hint:
                    print(for_terminal(hint), file=sys.stderr)
                if failed is not None:
                    failed(end)
                break
            if isinstance(end, ev.ChatEnded):
                terminal.prompting = False  # the last lines: no prompt after them
                terminal.show(describe(end))
                code = 0
                break
    except KeyboardInterrupt:
        code = _finish_after_interrupt(worker, events, terminal)
    finally:
        worker.stop()
    return code


def _finish_after_interrupt(
    worker: NetWorker, events: queue.Queue[ev.Event], terminal: Terminal
) -> int:
    """Ctrl-C or SIGTERM: say bye (the host ends the room), show the end, exit normally."""
    terminal.prompting = False
    worker.leave()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        terminal.show(describe(event))
        if isinstance(event, ev.ChatEnded | ev.Failed):
            return 0
    return 0


def doctor_lines(event: ev.Hosting) -> list[str]:
    """The connection doctor for a host: each address with its interface, a warning when no
    other machine can reach them, and whether a firewall is likely in the way."""
    from app import doctor

    notes = doctor.share_notes(event.addresses)
    lines = [f"  {note}" if not note.startswith("Warning") else note for note in notes]
    if lines:
        lines.insert(0, "Addresses by interface:")
    hint = doctor.firewall_hint(event.port)
    return [*lines, *([hint] if hint else [])]


def failure_hint(event: ev.Failed, host: str | None) -> str | None:
    """After a join could not connect: what this machine's networks say is likely."""
    if host is None or event.kind not in ("unreachable", "timeout"):
        return None
    from app import doctor

    return doctor.explain_unreachable(host)


def find_rooms(wait: float, *, name: str | None = None) -> list[ev.RoomFound]:
    """The rooms announced on the network, looking for `wait` seconds (the whole time, even
    once one is found: another room of the same name may answer a moment later). With `name`,
    only rooms of that name (case-insensitive)."""
    events: queue.Queue[ev.Event] = queue.Queue()
    worker = NetWorker(events.put)
    worker.start()
    worker.browse()
    rooms: dict[str, ev.RoomFound] = {}
    wanted = name.casefold().strip() if name is not None else None
    deadline = time.monotonic() + wait
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(event, ev.RoomFound):
                if wanted is not None and event.name.casefold() != wanted:
                    continue
                rooms[event.key] = event
            elif isinstance(event, ev.RoomGone):
                rooms.pop(event.key, None)
            elif isinstance(event, ev.NoticeShown):
                print(f"* {event.text}", file=sys.stderr)
    finally:
        worker.stop()
    return sorted(rooms.values(), key=lambda r: (r.name.casefold(), r.key))


def room_where(room: ev.RoomFound) -> str:
    """HOST:PORT of a found room (IPv6 in brackets)."""
    host = f"[{room.host}]" if ":" in room.host else room.host
    return f"{host}:{room.port}"


def room_line(room: ev.RoomFound) -> str:
    """One room as `rooms` prints it: name, where, members, password, the fingerprint's start."""
    people = "1 member" if room.members == 1 else f"{room.members} members"
    parts = [room.name, room_where(room), people]
    if room.password:
        parts.append("password")
    if room.fingerprint:
        parts.append(f"identity {room.fingerprint[:11]}…")
    return clean_text("  ".join(parts))


def rooms(wait: float) -> int:
    """`parley rooms`: print the rooms found on the network; exit 0 either way."""
    found = find_rooms(wait)
    for room in found:
        print(room_line(room))
    if not found:
        print(
            f"No rooms found on the network (looked for {wait:g} s). "
            "A firewall, another network or a VPN may hide them: join by address instead."
        )
    return 0


def host(options: HostOptions, *, password_from_env: bool = False) -> int:
    """Host in the terminal. A password from PARLEY_PASSWORD is never written where it is not
    shown on a terminal (a pipe, a log file): the printed invite leaves it out there."""
    hide = password_from_env and not sys.stdout.isatty()
    options = dataclasses.replace(options, view_batches=True)  # ChatsReceived: shown below
    return run(lambda worker: worker.host(options), leave_on_eof=False, hide_password=hide)


def _start_join(options: JoinOptions, worker: NetWorker) -> None:
    worker.join(options)


PASSWORD_TRIES = 3
PASSWORD_HINT = "Give the room's password with --password PW (or set PARLEY_PASSWORD)."


def needs_password(event: ev.Failed) -> bool:
    """The join failed for want of the right password (missing or wrong)."""
    if event.code in ("wrong_password", "password_required"):
        return True
    text = event.text.lower()
    return event.kind == "" and "password" in text and "encrypt" not in text


def join(
    options: JoinOptions,
    *,
    interactive: bool | None = None,
    ask: Callable[[str], str] = getpass.getpass,
) -> int:
    """Join from the terminal. A room that wants a (right) password asks for it on the
    terminal, without echo, and tries again; without a terminal it says how to give one."""
    if interactive is None:
        interactive = sys.stdin.isatty()
    for _ in range(PASSWORD_TRIES):
        why: list[ev.Failed] = []
        code = run(functools.partial(_start_join, options), leave_on_eof=True, failed=why.append)
        if not why or not needs_password(why[0]):
            return code
        if not interactive:
            print(PASSWORD_HINT, file=sys.stderr)
            return code
        try:
            password = ask(f"Password for {options.host}:{options.port}: ")
        except (EOFError, KeyboardInterrupt):
            return code
        if not password:
            return code
        options = dataclasses.replace(options, password=password)
    return 1
