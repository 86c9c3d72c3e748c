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

Every copy starts from the same memory state ("settled"). On this kind of VM (Firecracker, with
virtio-balloon free page reporting) a page the kernel freed is handed back to the hypervisor
about 2 s later, and the next first touch of it faults in the hypervisor: writing 1 GiB into
fresh page cache costs 1.1-2.2 s of system time, into pages freed a moment ago 0.17 s. Which copy
happened to meet just-freed pages used to decide the ratio (the plain copy moved between 340 and
1,100 MB/s). So before each copy the previous copy's output is deleted, everything is synced to
disk, and the run waits `--settle` seconds (default 6) until the freed memory has been handed
back, and then holds size + 512 MiB of memory touched page by page, which takes whatever
just-freed pages the wait left (the allocator hands those out first): every copy then writes
into fresh pages, and nothing of an earlier copy is still being written back while it runs.
The source file stays in the page cache for all (each copy reads it, none writes it).

Reported: both throughputs and their ratio (target ≥ 50 %), chat latency p50/p99 during the
transfer (target p99 ≤ 50 ms), the host's peak RSS (VmHWM), and CPU seconds per GB of every
thread or process involved (system time apart: the first-touch cost lands there). Bounded: the
run gives up after `--timeout` seconds.

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
sys.path.insert(0, str(REPO))

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    parser.add_argument("--ping-every", type=float, default=0.1, help="seconds between pings")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this long")
    parser.add_argument(
        "--settle",
        type=float,
        default=6.0,
        help="seconds to wait (after deleting and syncing) before each copy, so freed memory "
        "is handed back and every copy meets the same fresh pages (default 6)",
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    _maybe_profile("receiver")
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="parley-bench-files-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "big.bin"
        plain_dst = tmp / "plain-copy.bin"
        print(f"Making a {args.size} file...", flush=True)
        digest = make_file(src, size)

        hold = settle(args.settle, size)
        before = plain_tls_copy(src, plain_dst, tmp / "plain-id")
        hold.close()
        print(f"plain TLS copy: {before.seconds:.2f} s, {size / before.seconds / 1e6:.0f} MB/s")

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
        saved = tmp / "bob" / "none"
        arrivals = Arrivals()
        worker = NetWorker(arrivals)
        try:
            assert send_pipe.poll(30), "the sender did not join"
            send_pipe.recv()
            worker.join(
                JoinOptions(
                    "127.0.0.1",
                    port,
                    name="Bob",
                    data_dir=tmp / "bob-id",
                    downloads=tmp / "bob",
                )
            )
            arrivals.wait_for(ev.Connected)
            send_pipe.send("go")
            offer = arrivals.wait_for(ev.FileOffered, timeout=args.timeout)
            # the sender has hashed the file; now the same state as the copies
            hold = settle(args.settle, size, plain_dst)
            pids = {"host": host_pid, "sender": sender.pid or 0, "receiver": os.getpid()}
            cpu = {role: _user_sys(pid) for role, pid in pids.items()}
            faults = {role: _faults(pid) for role, pid in pids.items()}
            start = time.perf_counter()
            worker.accept_file(offer.number)
            end = arrivals.wait_for(ev.FileEnded, timeout=args.timeout)
            elapsed = time.perf_counter() - start
            cpu = {role: _minus(_user_sys(pid), cpu[role]) for role, pid in pids.items()}
            faults = {role: _faults(pid) - faults[role] for role, pid in pids.items()}
            hold.close()
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
        # Again after Parley's run, from the same settled state.
        hold = settle(args.settle, size, saved)
        after = plain_tls_copy(src, plain_dst, tmp / "plain-id")
        hold.close()
        plain_dst.unlink()
        rate = size / after.seconds / 1e6
        print(f"plain TLS copy, after: {after.seconds:.2f} s, {rate:.0f} MB/s")
        best = min(before, after, key=lambda c: c.seconds)
        plain_rate = size / best.seconds
        parley_rate = size / elapsed
        lat = arrivals.latencies
        print()
        print(f"| {args.size} through a Parley host (TLS, loopback), settled | figure |")
        print("|---|---|")
        plain = (
            f"{plain_rate / 1e6:.0f} MB/s (before {size / before.seconds / 1e6:.0f}, "
            f"after {size / after.seconds / 1e6:.0f})"
        )
        print(f"| plain TLS copy (Python ssl, same bytes; the faster counts) | {plain} |")
        parley = f"{parley_rate / 1e6:.0f} MB/s ({elapsed:.2f} s, {status})"
        print(f"| Parley: sender → host → receiver, saved and verified | {parley} |")
        print(f"| Parley / plain TLS | {100 * parley_rate / plain_rate:.0f} % (target ≥ 50 %) |")
        if lat:
            print(
                f"| chat latency during the transfer, sender → receiver ({len(lat)} lines) | "
                f"p50 {1000 * statistics.median(lat):.1f} ms, "
                f"p99 {1000 * percentile(lat, 0.99):.1f} ms (target p99 ≤ 50 ms) |"
            )
        print(f"| host peak RSS (VmHWM) | {host_peak_kb / 1024:.0f} MiB |")
        print(
            "| CPU s per GB, plain copy (the faster): sending / receiving thread | "
            f"{_per_gb(best.send_cpu, size)} / {_per_gb(best.recv_cpu, size)} |"
        )
        total = tuple(sum(c[i] for c in cpu.values()) for i in (0, 1))
        print(
            "| CPU s per GB, Parley: sender / host / receiver (all) | "
            f"{_per_gb(cpu['sender'], size)} / {_per_gb(cpu['host'], size)} / "
            f"{_per_gb(cpu['receiver'], size)} ({_per_gb((total[0], total[1]), size)}) |"
        )
        print(
            "| page faults per GB, Parley: sender / host / receiver | "
            + " / ".join(f"{faults[r] * 1e9 / size:,.0f}" for r in ("sender", "host", "receiver"))
            + " |"
        )
        print(f"| machine | {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} |")
    return 0 if status == "received" else 1


if __name__ == "__main__":
    sys.exit(main())
