"""One person's file transfers: the disk side of `app/transfer.py`, on the network loop.

How this works
--------------
`Transfers` belongs to a session (a joiner, or the host's own person). It numbers every transfer
the person sees (offers to them and their own offers: 1, 2, 3…, the N of ``/accept N``), and

* sends: hashes the file off the loop, offers it, and when the host asks (``file_get``) reads
  chunks into the window it was given, only while the connection has room (`room`), a bounded
  number per loop turn, so typed chat is never stuck behind file data;
* receives: nothing touches the disk before Accept; then ``NAME.part`` is created (never over
  an existing file), chunks are written in order and hashed, on a disk thread of its own (`_disk`:
  one thread, so in order; writing and SHA-256 let go of the GIL, so the network thread reads the
  next chunk meanwhile), and a window grant goes back only once the bytes are on disk and hashed
  (so what waits in memory stays within a window). At the last byte the hash is compared: a
  match gets the final name (the first free one: ``report (1).pdf``), a mismatch deletes the
  partial file. A dropped connection keeps the partial file; once the session is
  back as the same member, it asks again from the byte it got to.

Everything it learns becomes `FileOffered` / `FileSending` / `FileProgress` / `FileEnded` events.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from app import events as ev
from app.partials import KeptParts, hold
from app.transfer import (
    PART,
    FileAccept,
    FileCancel,
    FileData,
    FileDecline,
    FileDone,
    FileEnd,
    FileFrame,
    FileGet,
    FileOffer,
    FileOffered,
    FileProblem,
    FileRefused,
    FileWindow,
    Incoming,
    Outgoing,
    format_size,
    free_name,
    safe_name,
)

Post = Callable[[ev.Event], None]
PROGRESS_EVERY = 0.25  # seconds between progress events of one transfer
CHUNKS_PER_TURN = 4  # chunks (2 MiB) sent per loop turn before chat gets its chance again
ROOM_POLL = 0.0002  # how often to look again when the connection has no room


def hash_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file; run in a thread (a large file takes seconds)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _open_and_hash(path: Path) -> tuple[BinaryIO, int, str]:
    if not path.is_file():
        raise FileNotFoundError(0, "not a file", str(path))
    handle = path.open("rb")
    try:
        size, sha = hash_file(path)
    except BaseException:
        handle.close()
        raise
    return handle, size, sha


@dataclass
class _Speed:
    """Bytes per second, smoothed, and when to say so next."""

    start: float = field(default_factory=time.monotonic)
    last_post: float = 0.0
    last_done: int = 0
    last_time: float = field(default_factory=time.monotonic)
    rate: float = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        dt = now - self.last_time
        if dt >= 0.1:
            current = (done - self.last_done) / dt
            self.rate = current if self.rate == 0 else 0.6 * self.rate + 0.4 * current
            self.last_done, self.last_time = done, now

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last_post >= PROGRESS_EVERY:
            self.last_post = now
            return True
        return False


@dataclass
class _In:
    number: int
    offer: FileOffer
    state: str = "offered"  # offered, receiving, paused, over
    machine: Incoming | None = None
    part: Path | None = None
    handle: BinaryIO | None = None
    speed: _Speed = field(default_factory=_Speed)
    pending: int = 0  # chunks on their way to the disk thread
    restart_due: bool = False  # resume once nothing is on its way to the disk
    ending: tuple[str, str, bool] | None = None  # _end_in's arguments, once pending is 0


def _rehash(handle: BinaryIO, machine: Incoming) -> int:
    """On the disk thread: hash what a kept partial file holds; its length."""
    handle.seek(0)
    held = 0
    while block := handle.read(1 << 20):
        machine.absorb(block)
        held += len(block)
    return held


def _store(handle: BinaryIO, machine: Incoming, data: bytes) -> None:
    """On the disk thread: write a chunk at the end of the partial file and hash it."""
    handle.write(data)
    handle.flush()
    machine.absorb(data)


@dataclass
class _Out:
    number: int
    path: Path
    name: str
    size: int
    sha256: str
    to: str | None
    ref: str
    file: int | None = None
    handle: BinaryIO | None = None
    streams: dict[int, Outgoing] = field(default_factory=dict)
    speeds: dict[int, _Speed] = field(default_factory=dict)
    over: bool = False


class Transfers:
    """A person's transfers. `send` puts a frame on the wire (or hands it to the host's relay);
    `room` says whether the connection can take another chunk now."""

    def __init__(
        self,
        send: Callable[[FileFrame], None],
        post: Post,
        downloads: Callable[[], Path],
        room: Callable[[], bool] = lambda: True,
        release: Callable[[bytes], None] = lambda data: None,
        kept: KeptParts | None = None,
    ) -> None:
        self._send = send
        self._kept = kept  # partial files kept for a later session (None: none are kept)
        self._release = release  # a received chunk's buffer, once it is on disk
        self.post = post
        self._downloads = downloads
        self._room = room
        self._numbers = itertools.count(1)
        self._in: dict[int, _In] = {}  # by number
        self._in_by_file: dict[int, _In] = {}
        self._out: dict[int, _Out] = {}  # by number
        self._out_by_ref: dict[str, _Out] = {}
        self._out_by_file: dict[int, _Out] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pumping: asyncio.Handle | None = None
        self._disk_thread: concurrent.futures.ThreadPoolExecutor | None = None
        # file -> ok: files whose file_done the host has not yet acknowledged (a file_end
        # without stream); said again after a reconnect, in case the drop swallowed it
        self._unconfirmed: dict[int, bool] = {}
        self.online = True
        self.refuse_files: str | None = None  # why files cannot go through this host, if so

    # --- what the person does ------------------------------------------------------------------

    def offer(self, path: str | Path, to: str | None = None) -> None:
        """Offer a file to the room (`to` None) or one member; hashing runs off the loop."""
        task = asyncio.ensure_future(self._offer(Path(path), to))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offer(self, path: Path, to: str | None) -> None:
        number = next(self._numbers)
        name = safe_name(path.name)
        try:
            handle, size, sha = await asyncio.to_thread(_open_and_hash, path)
        except OSError as exc:
            text = f"Could not send {path}: {exc.strerror or exc}."
            self.post(ev.FileEnded(number, "failed", text))
            return
        ref = f"f{number}"
        out = _Out(number, path, name, size, sha, to, ref, handle=handle)
        self._out[number] = out
        self._out_by_ref[ref] = out
        if self.refuse_files is not None:
            self._end_out(out, "refused", f"{name} was not offered: {self.refuse_files}")
            return
        if not self.online:
            self._end_out(out, "failed", "Not connected to the room: the file was not offered.")
            return
        self._send(FileOffer(name, size, sha, ref=ref, to=to))

    def accept(self, number: int) -> None:
        item = self._in.get(number)
        if item is None or item.state != "offered":
            self._no_such(number, "accept")
            return
        folder = self._downloads()
        if self._resume_kept(item, folder):
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = free_name(item.offer.name, lambda n: (folder / n).exists())
            part = folder / (name + PART)
            item.handle = part.open("xb")  # never over an existing file
            hold(item.handle)  # while it is being written, no other session takes it up
        except (OSError, FileProblem) as exc:
            why = exc.text if isinstance(exc, FileProblem) else (exc.strerror or str(exc))
            self._send(FileDecline(item.offer.file or 0))
            self._end_in(item, "failed", f"Could not save {item.offer.name} in {folder}: {why}.")
            return
        item.part = part
        if self._kept is not None:
            self._kept.keep(part, item.offer.sha256, item.offer.size)
        item.state = "receiving"
        item.machine = Incoming(item.offer)
        item.speed = _Speed()
        self.post(ev.FileProgress(number, item.offer.sender or "", True, 0, item.offer.size))
        self._send(FileAccept(item.machine.file, 0))
        if item.machine.complete:  # an empty file: nothing will come, and nothing needs to
            self._done(item.machine)
            self._finish_in(item)

    def _resume_kept(self, item: _In, folder: Path) -> bool:
        """Accept into a partial file kept from an earlier session, if there is one for this
        very file (hash and size): its bytes are hashed on the disk thread, then the host is
        asked for the rest. False: start afresh."""
        if self._kept is None:
            return False
        part = self._kept.find(folder, item.offer.sha256, item.offer.size)
        if part is None or any(i.part == part for i in self._in.values() if i.state != "over"):
            return False
        try:
            handle = part.open("r+b")
        except OSError:
            return False
        if not hold(handle):  # another Parley of ours is writing it: a copy of our own
            handle.close()
            return False
        item.part, item.handle = part, handle
        item.state = "receiving"
        item.machine = Incoming(item.offer)
        item.speed = _Speed()
        item.pending += 1
        self.post(ev.FileProgress(item.number, item.offer.sender or "", True, 0, item.offer.size))
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._disk(), _rehash, handle, item.machine)
        done.add_done_callback(lambda f: self._rehashed(item, f))
        return True

    def _rehashed(self, item: _In, done: asyncio.Future[int]) -> None:
        """Back on the loop: the kept partial file is hashed; ask for what it lacks."""
        item.pending -= 1
        if item.state == "over":
            if item.pending == 0 and item.ending is not None:
                self._end_in(item, *item.ending)
            return
        machine = item.machine
        assert machine is not None
        exc = None if done.cancelled() else done.exception()
        if exc is not None or done.cancelled():
            self._send(FileDecline(machine.file))
            why = "stopped" if exc is None else getattr(exc, "strerror", None) or str(exc)
            self._end_in(item, "failed", f"Could not read the partial {item.offer.name}: {why}.")
            return
        try:
            accept = machine.resume(done.result())
        except FileProblem as exc2:
            self._send(FileDecline(machine.file))
            self._end_in(item, "failed", f"{item.offer.name}: {exc2.text}")
            return
        if machine.received:
            held = format_size(machine.received)
            self.post(
                ev.NoticeShown(f"{item.offer.name}: carrying on from {held}, kept from before.")
            )
        self._progress_in(item, force=True)
        if item.state != "receiving":
            return  # the connection dropped meanwhile: asked again once back (`welcomed`)
        item.restart_due = False
        self._send(accept)
        if machine.complete:  # the kept partial file was the whole file
            self._done(machine)
            self._finish_in(item)

    def decline(self, number: int) -> None:
        item = self._in.get(number)
        if item is None or item.state != "offered":
            self._no_such(number, "decline")
            return
        self._send(FileDecline(item.offer.file or 0))
        self._end_in(item, "declined", f"You declined {item.offer.name}.")

    def cancel(self, number: int) -> None:
        item = self._in.get(number)
        if item is not None and item.state in ("receiving", "paused"):
            self._send(FileCancel(item.offer.file or 0))
            self._end_in(item, "cancelled", f"You cancelled receiving {item.offer.name}.")
            return
        out = self._out.get(number)
        if out is not None and not out.over:
            if out.file is not None:
                self._send(FileCancel(out.file))
            self._end_out(out, "cancelled", f"You cancelled sending {out.name}.")
            return
        self._no_such(number, "cancel")

    def _no_such(self, number: int, verb: str) -> None:
        self.post(ev.ErrorShown(f"There is no file {number} to {verb}."))

    # --- what the host says --------------------------------------------------------------------

    def received(self, frame: FileFrame) -> None:
        try:
            self._received(frame)
        except FileProblem as exc:
            self.post(ev.ErrorShown(exc.text))

    def _received(self, frame: FileFrame) -> None:
        if isinstance(frame, FileData):
            self._data(frame)
        elif isinstance(frame, FileWindow):
            self._granted(frame)
        elif isinstance(frame, FileOffer):
            self._offered(frame)
        elif isinstance(frame, FileOffered):
            self._out_offered(frame)
        elif isinstance(frame, FileRefused):
            out = self._out_by_ref.get(frame.ref)
            if out is not None:
                self._end_out(out, "refused", frame.text)
        elif isinstance(frame, FileGet):
            self._get(frame)
        elif isinstance(frame, FileEnd):
            self._ended(frame)

    def _offered(self, frame: FileOffer) -> None:
        if frame.file is None or frame.file in self._in_by_file or frame.file in self._unconfirmed:
            return  # told again after a reconnect: the card is there already (or it is saved)
        item = _In(next(self._numbers), frame)
        self._in[item.number] = item
        self._in_by_file[frame.file] = item
        sender = frame.sender or "Someone"
        self.post(ev.FileOffered(item.number, sender, frame.name, frame.size, frame.to is not None))

    def _data(self, frame: FileData) -> None:
        item = self._in_by_file.get(frame.file or 0)
        if item is None or item.state != "receiving" or item.machine is None:
            return  # the end of a transfer we stopped
        assert item.handle is not None
        machine = item.machine
        try:
            data = machine.chunk(frame)
        except FileProblem as exc:
            self._send(FileCancel(machine.file))
            self._end_in(item, "failed", f"{item.offer.name}: {exc.text} The file was deleted.")
            return
        item.pending += 1
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._disk(), _store, item.handle, machine, data)
        done.add_done_callback(lambda f: self._stored_chunk(item, data, f))

    def _disk(self) -> concurrent.futures.ThreadPoolExecutor:
        """The one thread that writes and hashes received chunks (made on the first one)."""
        if self._disk_thread is None:
            self._disk_thread = concurrent.futures.ThreadPoolExecutor(1, "parley-disk")
        return self._disk_thread

    def _stored_chunk(self, item: _In, data: bytes, done: asyncio.Future[None]) -> None:
        self._stored(item, len(data), done)
        if not done.cancelled():  # the disk thread is through with it: use the buffer again
            self._release(data)

    def _stored(self, item: _In, n: int, done: asyncio.Future[None]) -> None:
        """Back on the loop: a chunk is on disk and hashed (or could not be written)."""
        item.pending -= 1
        if item.state == "over":
            if item.pending == 0 and item.ending is not None:
                self._end_in(item, *item.ending)  # nothing touches the file any more
            return
        machine = item.machine
        assert machine is not None
        exc = None if done.cancelled() else done.exception()
        if exc is not None or done.cancelled():
            self._send(FileCancel(machine.file))
            folder = item.part.parent if item.part else self._downloads()
            why = "stopped" if exc is None else getattr(exc, "strerror", None) or str(exc)
            text = (
                f"Could not save {item.offer.name} in {folder}: {why}. "
                "The partial file was deleted."
            )
            self._end_in(item, "failed", text)
            return
        replies = machine.stored(n)
        if machine.complete:
            self._unconfirmed[machine.file] = machine.verified
            self._finish_in(item)
        else:
            self._progress_in(item)
        for reply in replies:
            self._send(reply)
        if item.restart_due and item.pending == 0 and item.state == "receiving":
            item.restart_due = False
            self._send(machine.restart())

    def _done(self, machine: Incoming) -> None:
        """Say every byte came (and whether it matched); kept until the host says it heard."""
        self._unconfirmed[machine.file] = machine.verified
        self._send(FileDone(machine.file, machine.verified))

    def _progress_in(self, item: _In, force: bool = False) -> None:
        assert item.machine is not None
        item.speed.update(item.machine.received)
        if force or item.speed.due():
            self.post(_progress(item.number, item.offer.sender or "", True, item))

    def _finish_in(self, item: _In) -> None:
        assert item.machine is not None
        assert item.part is not None
        assert item.handle is not None
        name = item.offer.name
        try:
            item.handle.close()
        except OSError as exc:
            self._end_in(item, "failed", f"Could not save {name}: {exc.strerror or exc}.")
            return
        if not item.machine.verified:
            self._end_in(
                item,
                "failed",
                f"{name} arrived damaged (its SHA-256 did not match); the partial file was "
                "deleted.",
            )
            return
        if self._kept is not None:
            self._kept.forget(item.part)
        try:
            final = _claim(item.part, name)
        except OSError as exc:
            self._end_in(item, "failed", f"Could not save {name}: {exc.strerror or exc}.")
            return
        item.part = None
        item.state = "over"
        self._in_by_file.pop(item.machine.file, None)
        self.post(_progress(item.number, item.offer.sender or "", True, item))
        self.post(
            ev.FileEnded(
                item.number,
                "received",
                f"Saved to {final}",
                item.offer.sender,
                incoming=True,
                path=str(final),
            )
        )

    def _ended(self, frame: FileEnd) -> None:
        if frame.stream is not None or frame.by is not None:
            out = self._out_by_file.get(frame.file)
            if out is None:
                return
            if frame.stream is not None:
                out.streams.pop(frame.stream, None)
                out.speeds.pop(frame.stream, None)
            self.post(ev.FileEnded(out.number, frame.status, frame.text, frame.by))
            return
        if self._unconfirmed.pop(frame.file, None) is not None:
            return  # the host heard our file_done
        item = self._in_by_file.get(frame.file)
        if item is not None and item.state != "over":
            status = "failed" if frame.status == "gone" else frame.status
            keep = bool(frame.resumable) and self._kept is not None and item.part is not None
            text = self._kept_text(item, frame.text) if keep else frame.text
            self._end_in(item, status, text, keep=keep)

    def _out_offered(self, frame: FileOffered) -> None:
        out = self._out_by_ref.get(frame.ref)
        if out is None or out.over:
            if out is None or out.file is None:
                self._send(FileCancel(frame.file))  # cancelled before the host answered
            return
        out.file = frame.file
        self._out_by_file[frame.file] = out
        self.post(ev.FileSending(out.number, out.name, out.size, frame.to, out.to is not None))

    def _get(self, frame: FileGet) -> None:
        out = self._out_by_file.get(frame.file)
        if out is None or out.over:
            self._send(FileCancel(frame.file))
            return
        out.streams[frame.stream] = Outgoing(frame, out.size)
        out.speeds[frame.stream] = _Speed()
        self.post(ev.FileProgress(out.number, frame.by, False, frame.offset, out.size))
        self.pump()

    def _granted(self, frame: FileWindow) -> None:
        for out in self._out.values():
            stream = out.streams.get(frame.stream or 0)
            if stream is not None:
                stream.grant(frame.bytes)
                self.pump()
                return

    # --- sending -------------------------------------------------------------------------------

    def pump(self) -> None:
        """Send chunks into every window while the connection has room; a bounded number per
        loop turn. Called when a window opens and again while there is work."""
        if self._pumping is not None:
            return
        sent = 0
        waiting = False
        for out in list(self._out.values()):
            for stream_id, stream in list(out.streams.items()):
                while sent < CHUNKS_PER_TURN:
                    want = stream.next_chunk()
                    if want is None:
                        break
                    if not self._room():
                        waiting = True
                        break
                    if not self._send_chunk(out, stream_id, stream, *want):
                        return
                    sent += 1
                if stream.next_chunk() is not None:
                    waiting = True
        if waiting or sent >= CHUNKS_PER_TURN:
            loop = asyncio.get_running_loop()
            again = self._room() and sent < CHUNKS_PER_TURN
            delay = 0.0 if again or sent >= CHUNKS_PER_TURN else ROOM_POLL
            self._pumping = loop.call_later(delay, self._pump_again)

    def _pump_again(self) -> None:
        self._pumping = None
        self.pump()

    def _send_chunk(self, out: _Out, stream_id: int, stream: Outgoing, offset: int, n: int) -> bool:
        assert out.handle is not None
        try:
            out.handle.seek(offset)
            data = out.handle.read(n)
        except OSError as exc:
            data, problem = b"", exc.strerror or str(exc)
        else:
            problem = "the file got shorter while it was being sent"
        if len(data) != n:
            if out.file is not None:
                self._send(FileCancel(out.file))
            self._end_out(out, "failed", f"Could not read {out.path}: {problem}.")
            return False
        self._send(stream.sent(data))
        speed = out.speeds[stream_id]
        speed.update(stream.offset)
        if speed.due() or stream.finished_sending:
            self.post(_progress(out.number, stream.by, False, stream, speed))
        return True

    # --- the connection ------------------------------------------------------------------------

    def connection_lost(self) -> None:
        """Our offers end with the connection (the host withdraws them); what we were
        receiving waits, partial file kept, for the session to come back."""
        self.online = False
        for out in list(self._out.values()):
            if not out.over:
                self._end_out(
                    out, "cancelled", f"The connection dropped: {out.name} was withdrawn."
                )
        for item in self._in.values():
            if item.state == "receiving":
                item.state = "paused"
                text = f"{item.offer.name}: the connection dropped; it will resume once back."
                self.post(ev.FileEnded(item.number, "paused", text, item.offer.sender, True))

    def welcomed(self, resumed: bool) -> None:
        """In the room again: resume what was paused (as the same member), or give it up; a
        file_done the host never acknowledged is said again (the drop may have swallowed it)."""
        self.online = True
        if resumed:
            for file_id, ok in self._unconfirmed.items():
                self._send(FileDone(file_id, ok))
        else:  # another host, or the same one afresh: its numbers may mean other files now
            self._unconfirmed.clear()
        for item in list(self._in.values()):
            if item.state == "over":
                continue
            if not resumed:  # the partial file is kept for the file's next offer
                text = f"{item.offer.name}: the host no longer offers it."
                self._end_in(item, "failed", text, keep=self._kept is not None)
            elif item.state == "paused" and item.machine is not None:
                item.state = "receiving"
                item.speed = _Speed()
                if item.pending:  # chunks still on their way to the disk: resume after them
                    item.restart_due = True
                else:
                    self._send(item.machine.restart())

    def close(self) -> None:
        """The session is over: partial files go, open files close."""
        self.online = False
        if self._pumping is not None:
            self._pumping.cancel()
            self._pumping = None
        for task in list(self._tasks):
            task.cancel()
        if self._disk_thread is not None:
            self._disk_thread.shutdown(wait=True)  # a window at most: then nothing writes
            self._disk_thread = None
            for item in self._in.values():
                item.pending = 0
        for item in list(self._in.values()):
            if item.state == "over":
                if item.ending is not None:  # ended while its chunks were on the disk thread,
                    self._end_in(item, *item.ending)  # whose callbacks come too late now
                continue
            keep = self._kept is not None and item.part is not None
            text = f"{item.offer.name}: the chat ended."
            self._end_in(item, "cancelled", self._kept_text(item, text) if keep else text, keep)
        for out in list(self._out.values()):
            if not out.over:
                self._end_out(out, "cancelled", f"{out.name}: the chat ended.")

    @staticmethod
    def _kept_text(item: _In, text: str) -> str:
        """`text`, and that what came of the file is kept for its next offer."""
        if item.machine is None or not item.machine.received:
            return text
        return (
            f"{text} The {format_size(item.machine.received)} received are kept: accept it again "
            "when it is offered and it carries on from there."
        )

    def _end_in(self, item: _In, status: str, text: str, keep: bool = False) -> None:
        """End an incoming transfer; its partial file is deleted unless `keep` (kept for a
        later session: see `app/partials.py`)."""
        item.state = "over"
        if item.pending:  # the disk thread still has chunks of it: end once they are done
            item.ending = (status, text, keep)
            if item.offer.file is not None:
                self._in_by_file.pop(item.offer.file, None)
            return
        item.ending = None
        if item.offer.file is not None:
            self._in_by_file.pop(item.offer.file, None)
        if item.handle is not None:
            with contextlib.suppress(OSError):
                item.handle.close()
        if item.part is not None and not keep:
            with contextlib.suppress(OSError):
                item.part.unlink()
            if self._kept is not None:
                self._kept.forget(item.part)
        item.part = None
        self.post(ev.FileEnded(item.number, status, text, item.offer.sender, True))

    def _end_out(self, out: _Out, status: str, text: str) -> None:
        out.over = True
        out.streams.clear()
        if out.handle is not None:
            with contextlib.suppress(OSError):
                out.handle.close()
        self._out_by_ref.pop(out.ref, None)
        if out.file is not None:
            self._out_by_file.pop(out.file, None)
        self.post(ev.FileEnded(out.number, status, text))

    @property
    def active(self) -> bool:
        """Something is moving (a benchmark waits on this)."""
        return any(i.state == "receiving" for i in self._in.values()) or any(
            o.streams for o in self._out.values()
        )


def _progress(
    number: int, peer: str, incoming: bool, thing: _In | Outgoing, speed: _Speed | None = None
) -> ev.FileProgress:
    if isinstance(thing, _In):
        assert thing.machine is not None
        done, size, speed = thing.machine.received, thing.offer.size, thing.speed
    else:
        done, size = thing.offset, thing.size
    assert speed is not None
    left = size - done
    eta = left / speed.rate if speed.rate > 0 else (0.0 if left == 0 else None)
    return ev.FileProgress(number, peer, incoming, done, size, speed.rate, eta)


def _claim(part: Path, name: str) -> Path:
    """Give a verified partial file its final name: the first free one, never over another
    file (a hard link fails if the name exists; where links are not allowed, a rename after a
    check, which is as close as that system lets us come)."""
    folder = part.parent
    for _ in range(100):
        final = folder / free_name(name, lambda n: n != part.name and (folder / n).exists())
        try:
            os.link(part, final)
        except FileExistsError:
            continue
        except OSError:
            if final.exists():
                continue
            os.replace(part, final)
            return final
        part.unlink()
        return final
    raise OSError(f"no free name for {name} in {folder}")
