"""One large file through a Parley host over TLS on loopback, beside a plain TLS copy of the same
bytes, and chat latency while the file moves.

Three processes, so each side has its own interpreter as it would on three machines: the host
(a room on 127.0.0.1, the host's own person idle), the sender (a joiner that offers the file and,
while it moves, sends a chat line every `--ping-every` seconds stamped with the system's
monotonic clock), and this process, the receiver (a joiner that accepts, saves, verifies, and
notes when each chat line arrived). The plain copy runs first, in the same run: Python's ssl
over a TCP connection on 127.0.0.1, the sender reading the same file in 256 KiB blocks, the
receiver writing them to disk, with the host's own certificate.

Reported: both throughputs and their ratio (target ≥ 50 %), chat latency p50/p99 during the
transfer (target p99 ≤ 50 ms), and the host's peak RSS (VmHWM). Bounded: the run gives up after
`--timeout` seconds.

Run: make bench-files  (or python -m benchmarks.files --size 1GiB); --size 100MB to iterate.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
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
from benchmarks._common import cpu_s, proc_sample  # noqa: E402
from tests.helpers import Recorder  # noqa: E402

BLOCK = 256 * 1024
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


def plain_tls_copy(src: Path, dst: Path, data_dir: Path) -> float:
    """Seconds to copy `src` to `dst` over TLS on loopback (Python's ssl, the host's identity)."""
    from app.security import load_or_create_identity, server_context

    server_ctx = server_context(load_or_create_identity(data_dir))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls, src.open("rb") as fh:
            while block := fh.read(BLOCK):
                tls.sendall(block)

    thread = threading.Thread(target=serve, daemon=True)
    start = time.perf_counter()
    thread.start()
    raw = socket.create_connection(("127.0.0.1", port))
    with client_ctx.wrap_socket(raw) as tls, dst.open("wb") as out:
        while data := tls.recv(BLOCK):
            out.write(data)
    elapsed = time.perf_counter() - start
    thread.join(10)
    listener.close()
    return elapsed


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    parser.add_argument("--ping-every", type=float, default=0.1, help="seconds between pings")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this long")
    args = parser.parse_args()
    size = parse_size(args.size)
    _maybe_profile("receiver")
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="parley-bench-files-") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "big.bin"
        print(f"Making a {args.size} file...", flush=True)
        digest = make_file(src, size)

        plain_cpu = cpu_s(os.getpid())
        plain_s = plain_tls_copy(src, tmp / "plain-copy.bin", tmp / "plain-id")
        plain_cpu = cpu_s(os.getpid()) - plain_cpu
        (tmp / "plain-copy.bin").unlink()
        plain_rate = size / plain_s
        print(f"plain TLS copy: {plain_s:.2f} s, {plain_rate / 1e6:.0f} MB/s", flush=True)

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
            pids = {"host": host_pid, "sender": sender.pid or 0, "receiver": os.getpid()}
            cpu = {role: cpu_s(pid) for role, pid in pids.items()}
            start = time.perf_counter()
            worker.accept_file(offer.number)
            end = arrivals.wait_for(ev.FileEnded, timeout=args.timeout)
            elapsed = time.perf_counter() - start
            cpu = {role: cpu_s(pid) - cpu[role] for role, pid in pids.items()}
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
        # Again after Parley's run: which copy gets pages the system has just freed (cheap to
        # write into here) and which must fault in fresh ones changes the figures a lot, so
        # the plain copy runs on both sides of Parley's and the faster one counts.
        after_s = plain_tls_copy(src, tmp / "plain-copy.bin", tmp / "plain-id")
        (tmp / "plain-copy.bin").unlink()
        print(f"plain TLS copy, after: {after_s:.2f} s, {size / after_s / 1e6:.0f} MB/s")
        plain_s = min(plain_s, after_s)
        plain_rate = size / plain_s
        parley_rate = size / elapsed
        lat = arrivals.latencies
        print()
        print(f"| {args.size} through a Parley host (TLS, loopback) | figure |")
        print("|---|---|")
        plain = f"{plain_rate / 1e6:.0f} MB/s ({plain_s:.2f} s)"
        print(f"| plain TLS copy (Python ssl, same bytes; faster of before/after) | {plain} |")
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
        per_gb = 1e9 / size
        print(
            "| CPU s per GB: plain copy (its receiving thread) / Parley sender, host, receiver | "
            f"{plain_cpu * per_gb:.2f} / {cpu['sender'] * per_gb:.2f}, "
            f"{cpu['host'] * per_gb:.2f}, {cpu['receiver'] * per_gb:.2f} |"
        )
        print(f"| machine | {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} |")
    return 0 if status == "received" else 1


if __name__ == "__main__":
    sys.exit(main())
