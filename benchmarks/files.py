"""One large file through a Parley host over TLS on loopback, beside a plain TLS copy of the same
bytes, and chat latency while the file moves.

Three processes, so each side has its own interpreter as it would on three machines: the host
(a room on 127.0.0.1, the host's own person idle), the sender (a joiner that offers the file and,
while it moves, sends a chat line every `--ping-every` seconds stamped with the system's
monotonic clock), and this process, the receiver (a joiner that accepts, saves, verifies, and
notes when each chat line arrived). The plain copy runs before and after Parley's, in the same
run: Python's ssl over a TCP connection on 127.0.0.1, the sender reading the same file in
256 KiB blocks, the receiver writing them to disk, with the host's own certificate. Both ends
read into one buffer each (`readinto`, `recv_into`), as a careful copy would: no new object per
block.

Two memory states, each run in full (plain copy, Parley, plain copy again), one after the other
(`--memory both`, the default; `settled` or `warm` alone). On this kind of VM (Firecracker, with
virtio-balloon free page reporting) a page the kernel freed is handed back to the hypervisor
about 2 s later, and the next first touch of it faults in the hypervisor: writing 1 GiB into
fresh page cache costs 0.6-2.2 s of system time, into pages freed a moment ago 0.17 s. Which copy
happened to meet just-freed pages used to decide the ratio (the plain copy moved between 340 and
1,100 MB/s), so every copy now starts from a state chosen on purpose:

* settled: the previous copy's output is deleted, everything is synced to disk, and the run
  waits `--settle` seconds (default 6) until the freed memory has been handed back, and then
  holds size + 512 MiB of memory touched page by page, which takes whatever just-freed pages
  the wait left (the allocator hands those out first): every copy writes into fresh pages, as
  on a machine whose first touch of memory is costly.
* warm: the same deletion, sync and wait, and then a process of its own (`Warm`) writes a
  size + 512 MiB file into the page cache and, while the copy runs, cuts it from its end,
  always 256 MiB ahead of what the copy has written: every page the copy writes into was freed
  a moment before, as on hardware without that cost. This is the harder state for Parley: the
  plain copy's receiving thread then needs ~0.9 CPU s/GB.

In both, nothing of an earlier copy is still being written back while a copy runs, and the
source file stays in the page cache (each copy reads it, none writes it).

Reported, side by side for the two states: both throughputs and their ratio (target ≥ 50 %),
chat latency p50/p99 during the transfer (target p99 ≤ 50 ms), the host's peak RSS (VmHWM),
and CPU seconds per GB of every thread or process involved (system time apart: the first-touch
cost lands there); the exit status is 1 when a target is missed in either state (as
`make bench`). Bounded: the run gives up after `--timeout` seconds.
`PARLEY_BENCH_CODE=DIR` measures the Parley code of another checkout (such as a `git worktree`
of the code before a change) with this benchmark.

Run: make bench-files  (or python -m benchmarks.files --size 1GiB); --size 100MB to iterate.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import multiprocessing as mp
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# PARLEY_BENCH_CODE=DIR: Parley's code (app/, tests/helpers.py) from another checkout, such as
# a `git worktree` of the code before a change, measured by this very benchmark
CODE = Path(os.environ.get("PARLEY_BENCH_CODE") or REPO).resolve()
sys.path.insert(0, str(CODE))

os.environ.setdefault("PARLEY_MDNS_INTERFACES", "127.0.0.1")  # never a real interface

from app import events as ev  # noqa: E402
from app.net import HostOptions, JoinOptions  # noqa: E402
from app.net.files import hash_file  # noqa: E402
from app.transfer import parse_size  # noqa: E402
from app.worker import NetWorker  # noqa: E402
from benchmarks._common import proc_sample  # noqa: E402
from tests.helpers import Recorder  # noqa: E402

BLOCK = 256 * 1024
_TICKS = os.sysconf("SC_CLK_TCK")
PROFILE = os.environ.get("PARLEY_BENCH_PROFILE")  # a folder: each network loop's cProfile there


def _maybe_profile(role: str) -> None:
    """Profile the network thread of this process (where Parley spends its time)."""
    if not PROFILE:
        return
    import cProfile

    original = NetWorker._run

    def run(self: NetWorker, ready: threading.Event) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU, not waiting or preempted
        profile.enable()
        try:
            original(self, ready)
        finally:
            profile.disable()
            profile.dump_stats(str(Path(PROFILE or ".") / f"{role}.prof"))

    NetWorker._run = run  # type: ignore[method-assign]


def make_file(path: Path, size: int) -> str:
    """`size` bytes of a random 1 MiB block repeated (TLS does not compress); its SHA-256."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left > 0:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


# --- the plain TLS copy --------------------------------------------------------------------------


@dataclass
class Copy:
    """One plain copy: seconds, and (user, system) CPU seconds of its sending and receiving
    threads."""

    seconds: float
    send_cpu: tuple[float, float]
    recv_cpu: tuple[float, float]


def _thread_cpu() -> tuple[float, float]:
    """(user, system) seconds of the calling thread, from /proc (ticks of 10 ms)."""
    stat = Path(f"/proc/self/task/{threading.get_native_id()}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def _minus(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] - b[0], a[1] - b[1]


def plain_tls_copy(src: Path, dst: Path, data_dir: Path) -> Copy:
    """Copy `src` to `dst` over TLS on loopback (Python's ssl, the host's identity)."""
    from app.security import load_or_create_identity, server_context

    server_ctx = server_context(load_or_create_identity(data_dir))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    send_cpu = (0.0, 0.0)

    def serve() -> None:
        nonlocal send_cpu
        before = _thread_cpu()
        conn, _ = listener.accept()
        block = memoryview(bytearray(BLOCK))
        with server_ctx.wrap_socket(conn, server_side=True) as tls, src.open("rb") as fh:
            while n := fh.readinto(block):
                tls.sendall(block[:n])
        send_cpu = _minus(_thread_cpu(), before)

    thread = threading.Thread(target=serve, daemon=True)
    before = _thread_cpu()
    start = time.perf_counter()
    thread.start()
    raw = socket.create_connection(("127.0.0.1", port))
    buffer = memoryview(bytearray(BLOCK))
    with client_ctx.wrap_socket(raw) as tls, dst.open("wb") as out:
        while n := tls.recv_into(buffer):
            out.write(buffer[:n])
    elapsed = time.perf_counter() - start
    recv_cpu = _minus(_thread_cpu(), before)
    thread.join(10)
    listener.close()
    return Copy(elapsed, send_cpu, recv_cpu)


def settle(wait: float, size: int, *remove: Path) -> mmap.mmap:
    """Put the machine in the same memory state before every copy: delete what the last copy
    wrote, write everything dirty to disk, wait until the pages just freed have been handed
    back to the hypervisor (free page reporting runs about 2 s after a free, in passes), and
    then take, and hold, `size` + 512 MiB of memory touched page by page: the allocator hands
    out the most recently freed (still cheap) pages first, so whatever the wait left of them
    goes to this hold, not to the copy. The copy then meets fresh pages, as every other copy
    does, and no write-back of an earlier copy runs beside it. Close the hold after the copy."""
    for path in remove:
        path.unlink(missing_ok=True)
    os.sync()
    time.sleep(wait)
    hold = mmap.mmap(-1, size + (512 << 20))
    hold.madvise(mmap.MADV_HUGEPAGE)  # fewer faults to take it (where THP is allowed)
    for at in range(0, len(hold), 4096):
        hold[at] = 1
    return hold


class Warm:
    """The warm state: every page the copy writes into was freed a moment before, as on a
    machine whose freed memory stays with it. A process of its own (so its CPU and the GIL are
    no copy's) writes a `size` + 512 MiB file into the page cache and then, while the copy
    runs, cuts that file from its end so that it frees 256 MiB ahead of what the copy has
    written so far (`watch`: the copy's output file, or the folder a transfer saves into):
    the page cache takes the most recently freed pages first, and each is taken well within
    the ~2 s after which the VM would report it to the hypervisor. Freed anonymous memory does
    not do this (the page cache then met cold pages as in the settled state), nor does one
    free just before the copy (cold again within a second, and Parley's copy takes seconds)."""

    LEAD = 256 << 20

    def __init__(self, wait: float, size: int, feed: Path, watch: Path, *remove: Path) -> None:
        for path in remove:
            path.unlink(missing_ok=True)
        os.sync()
        time.sleep(wait)  # no write-back of an earlier copy beside this one
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_feed, args=(child, str(feed), size + (512 << 20), str(watch), self.LEAD)
        )
        self._proc.start()
        assert self._pipe.poll(120), "the warm-memory feeder did not start"
        self._pipe.recv()

    def close(self) -> None:
        self._pipe.send("stop")
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.terminate()


def _watched(path: str) -> int:
    """Bytes written so far to a file, or to every file in a folder."""
    try:
        if os.path.isdir(path):
            return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _feed(pipe: Connection, feed: str, total: int, watch: str, lead: int) -> None:
    """The warm state's process (see `Warm`)."""
    block = bytes(BLOCK)
    with open(feed, "wb") as fh:
        for _ in range(total // BLOCK):
            fh.write(block)
    fd = os.open(feed, os.O_WRONLY)
    pipe.send("ready")
    freed = 0
    # every 10 ms (11 MB at the plain copy's 1.1 GB/s, well within the lead), so the feeder
    # itself takes little of the two cores the copies share
    while not pipe.poll(0.01):
        want = min(total, _watched(watch) + lead)
        if want > freed:
            freed = want
            os.ftruncate(fd, total - freed)
    os.close(fd)
    os.unlink(feed)


# --- Parley: the host and the sender, each in its own process -------------------------------------


def run_host(pipe: Connection, data_dir: str) -> None:
    _maybe_profile("host")
    rec = Recorder()
    worker = NetWorker(rec)
    worker.host(HostOptions(port=0, bind="127.0.0.1", name="Hal", data_dir=Path(data_dir), rate=0))
    pipe.send((rec.wait_for(ev.Hosting).port, os.getpid()))
    pipe.recv()  # until told to stop
    worker.stop()


def run_sender(pipe: Connection, port: int, path: str, data_dir: str, ping_every: float) -> None:
    _maybe_profile("sender")
    rec = Recorder()
    worker = NetWorker(rec)
    worker.join(JoinOptions("127.0.0.1", port, name="Ann", data_dir=Path(data_dir)))
    rec.wait_for(ev.Connected)
    pipe.send("in")
    pipe.recv()  # the receiver is in too
    worker.send_file(path)
    rec.wait_for(ev.FileProgress, lambda e: e.done > 0, timeout=120)
    pings = 0
    while not rec.of(ev.FileEnded) and pings < 100_000:
        worker.send(f"ping {time.monotonic():.6f}")
        pings += 1
        time.sleep(ping_every)
    end = rec.wait_for(ev.FileEnded)
    pipe.send((end.status, pings))
    pipe.recv()
    worker.stop()


# --- the receiver, here ---------------------------------------------------------------------


class Arrivals(Recorder):
    """A recorder that notes when each ping arrived (on the network thread, as it is posted)."""

    def __init__(self) -> None:
        super().__init__()
        self.latencies: list[float] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageReceived) and event.text.startswith("ping "):
            self.latencies.append(time.monotonic() - float(event.text[5:]))
            return
        super().__call__(event)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _user_sys(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a whole process (every thread, ended ones too)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def _faults(pid: int) -> int:
    """Minor page faults of a whole process so far (each a first touch of a page)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])


def _per_gb(cpu: tuple[float, float], size: int) -> str:
    """ "1.23 (sys 0.45)": CPU seconds per GB, its system part in brackets."""
    per_gb = 1e9 / size
    return f"{(cpu[0] + cpu[1]) * per_gb:.2f} (sys {cpu[1] * per_gb:.2f})"


@dataclass
class Run:
    """One memory state's figures: the plain copy before and after, and Parley's between."""

    state: str
    before: Copy
    after: Copy
    seconds: float
    status: str
    latencies: list[float]
    host_peak_kb: int
    cpu: dict[str, tuple[float, float]]
    faults: dict[str, int]

    @property
    def best(self) -> Copy:
        return min(self.before, self.after, key=lambda c: c.seconds)

    def ratio(self) -> float:
        return self.best.seconds / self.seconds

    def p99(self) -> float:
        return percentile(self.latencies, 0.99) if self.latencies else float("nan")

    def missed(self) -> list[str]:
        """The targets this state misses (issue 11)."""
        out = []
        if self.status != "received":
            out.append(f"the file was not received ({self.status})")
        if not self.ratio() >= 0.5:
            out.append(f"Parley / plain TLS {100 * self.ratio():.0f} % (target ≥ 50 %)")
        if not self.p99() <= 0.050:
            out.append(f"chat p99 {1000 * self.p99():.1f} ms (target ≤ 50 ms)")
        return out


def prepare(
    state: str, args: argparse.Namespace, size: int, tmp: Path, watch: Path, *remove: Path
) -> mmap.mmap | Warm:
    """Put the machine in `state` for the next copy; close what this returns after it."""
    if state == "warm":
        return Warm(args.settle, size, tmp / "warm-feed.bin", watch, *remove)
    return settle(args.settle, size, *remove)


def run_state(
    state: str, args: argparse.Namespace, size: int, tmp: Path, src: Path, digest: str
) -> Run:
    """The plain copy, Parley's transfer and the plain copy again, each prepared in `state`."""
    ctx = mp.get_context("spawn")
    plain_dst = tmp / "plain-copy.bin"
    downloads = tmp / f"bob-{state}"
    print(f"[{state}] plain TLS copy...", flush=True)
    prep = prepare(state, args, size, tmp, plain_dst)
    before = plain_tls_copy(src, plain_dst, tmp / "plain-id")
    prep.close()
    print(
        f"[{state}] plain TLS copy: {before.seconds:.2f} s, {size / before.seconds / 1e6:.0f} MB/s"
    )

    host_peak_kb = 0
    host_end, host_pipe = ctx.Pipe()
    host = ctx.Process(target=run_host, args=(host_end, str(tmp / "host-id")))
    host.start()
    port, host_pid = host_pipe.recv()
    send_end, send_pipe = ctx.Pipe()
    sender = ctx.Process(
        target=run_sender,
        args=(send_end, port, str(src), str(tmp / "ann-id"), args.ping_every),
    )
    sender.start()
    status = "timeout"
    elapsed = float("nan")
    saved = downloads / "none"
    arrivals = Arrivals()
    worker = NetWorker(arrivals)
    cpu: dict[str, tuple[float, float]] = {}
    faults: dict[str, int] = {}
    try:
        assert send_pipe.poll(30), "the sender did not join"
        send_pipe.recv()
        worker.join(
            JoinOptions("127.0.0.1", port, name="Bob", data_dir=tmp / "bob-id", downloads=downloads)
        )
        arrivals.wait_for(ev.Connected)
        send_pipe.send("go")
        offer = arrivals.wait_for(ev.FileOffered, timeout=args.timeout)
        # the sender has hashed the file; now the same state as the copies
        prep = prepare(state, args, size, tmp, downloads, plain_dst)
        pids = {"host": host_pid, "sender": sender.pid or 0, "receiver": os.getpid()}
        cpu = {role: _user_sys(pid) for role, pid in pids.items()}
        faults = {role: _faults(pid) for role, pid in pids.items()}
        start = time.perf_counter()
        worker.accept_file(offer.number)
        end = arrivals.wait_for(ev.FileEnded, timeout=args.timeout)
        elapsed = time.perf_counter() - start
        cpu = {role: _minus(_user_sys(pid), cpu[role]) for role, pid in pids.items()}
        faults = {role: _faults(pid) - faults[role] for role, pid in pids.items()}
        prep.close()
        status = end.status
        saved = Path(end.path or "")
        if status == "received":  # verified by the receiver already; and by us
            assert hash_file(saved)[1] == digest, "the saved file differs"
        host_peak_kb = proc_sample(host_pid).hwm_kb
        if send_pipe.poll(30):
            send_pipe.recv()
    finally:
        worker.stop()
        for pipe, proc in [(send_pipe, sender), (host_pipe, host)]:
            pipe.send("stop")
            proc.join(15)
            if proc.is_alive():
                proc.terminate()
    print(f"[{state}] Parley: {elapsed:.2f} s, {size / elapsed / 1e6:.0f} MB/s, {status}")
    # Again after Parley's run, from the same state.
    prep = prepare(state, args, size, tmp, plain_dst, saved)
    after = plain_tls_copy(src, plain_dst, tmp / "plain-id")
    prep.close()
    plain_dst.unlink()
    print(
        f"[{state}] plain TLS copy, after: {after.seconds:.2f} s, "
        f"{size / after.seconds / 1e6:.0f} MB/s"
    )
    lat = arrivals.latencies
    return Run(state, before, after, elapsed, status, lat, host_peak_kb, cpu, faults)


def report(runs: list[Run], size_text: str, size: int) -> str:
    """The Markdown table: one column per memory state."""

    def mb(copy: Copy) -> str:
        return f"{size / copy.seconds / 1e6:.0f}"

    rows: list[tuple[str, list[str]]] = []
    rows.append(
        (
            "plain TLS copy (Python ssl, same bytes; the faster counts): before / after",
            [f"**{mb(r.best)} MB/s** ({mb(r.before)} / {mb(r.after)})" for r in runs],
        )
    )
    rows.append(
        (
            "Parley: sender → host → receiver, saved and verified",
            [
                f"**{size / r.seconds / 1e6:.0f} MB/s** ({r.seconds:.2f} s, {r.status})"
                for r in runs
            ],
        )
    )
    rows.append(
        (
            "Parley / plain TLS (target ≥ 50 %)",
            [f"**{100 * r.ratio():.0f} %** {'✔' if r.ratio() >= 0.5 else '✘'}" for r in runs],
        )
    )
    rows.append(
        (
            "chat latency during the transfer, p50 / p99 (target p99 ≤ 50 ms)",
            [
                f"{1000 * statistics.median(r.latencies):.1f} / {1000 * r.p99():.1f} ms "
                f"({len(r.latencies)} lines) {'✔' if r.p99() <= 0.050 else '✘'}"
                if r.latencies
                else "no lines ✘"
                for r in runs
            ],
        )
    )
    rows.append(("host peak RSS (VmHWM)", [f"{r.host_peak_kb / 1024:.0f} MiB" for r in runs]))
    rows.append(
        (
            "CPU s per GB, plain copy (the faster): sending / receiving thread",
            [f"{_per_gb(r.best.send_cpu, size)} / {_per_gb(r.best.recv_cpu, size)}" for r in runs],
        )
    )
    cells = []
    for r in runs:
        total = (sum(c[0] for c in r.cpu.values()), sum(c[1] for c in r.cpu.values()))
        parts = " / ".join(_per_gb(r.cpu.get(k, (0.0, 0.0)), size) for k in ROLES)
        cells.append(f"{parts} (**{_per_gb(total, size)}**)")
    rows.append(("CPU s per GB, Parley: sender / host / receiver (all)", cells))
    rows.append(
        (
            "page faults per GB, Parley: sender / host / receiver",
            [" / ".join(f"{r.faults.get(k, 0) * 1e9 / size:,.0f}" for k in ROLES) for r in runs],
        )
    )
    lines = [
        f"| {size_text} through a Parley host (TLS, loopback) | "
        + " | ".join(r.state for r in runs)
        + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    lines.append(
        f"| machine | {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} |"
        + " |" * (len(runs) - 1)
    )
    return "\n".join(lines)


ROLES = ("sender", "host", "receiver")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    parser.add_argument("--ping-every", type=float, default=0.1, help="seconds between pings")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this long")
    parser.add_argument(
        "--memory",
        choices=["settled", "warm", "both"],
        default="both",
        help="the memory state every copy starts from: settled (fresh pages), warm (pages "
        "freed a moment before), or both, one after the other (default)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=6.0,
        help="seconds to wait (after deleting and syncing) before each copy, so freed memory "
        "is handed back and no write-back runs beside the copy (default 6)",
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    _maybe_profile("receiver")
    states = ["settled", "warm"] if args.memory == "both" else [args.memory]
    with tempfile.TemporaryDirectory(prefix="parley-bench-files-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "big.bin"
        print(f"Making a {args.size} file...", flush=True)
        digest = make_file(src, size)
        runs = [run_state(state, args, size, tmp, src, digest) for state in states]
    print()
    print(report(runs, args.size, size))
    missed = [f"{r.state}: {m}" for r in runs for m in r.missed()]
    if missed:
        print()
        print("Targets missed:")
        for item in missed:
            print(f"  - {item}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
