"""Resumes cannot amplify: what a hello with a valid token and `last_seq` 0 costs the host.

The terminal host (`python -m app host`, as shipped, plain connections allowed, nothing on disk,
no announcement) fills its room log with big messages; eight members join by hand, keep their
tokens and drop. Then, for `--rounds` rounds, each of the eight presents its token with
`last_seq` 0 on a connection that never reads a byte (a 4 KiB receive buffer), and is dropped
for not reading; the host's resident memory is sampled from /proc all along. The issue's bar:
the eight must not grow the host's RSS by more than ~100 MB, and coming back again must not
replay the log again (today's code sent one whole copy of the log per hello, 9 times in 24 s).

Everything stays on 127.0.0.1; every loop is bounded in count and time. About 30 s.

    python -m benchmarks.resume [--messages 1000] [--size 16000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks._common import REPO, machine, proc_sample

DEADLINE = 20.0


def _lines(sock: socket.socket, pattern: str, timeout: float = DEADLINE) -> str:
    """Read from `sock` until a line matches `pattern`; return that line."""
    sock.settimeout(timeout)
    buf = b""
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode("utf-8", "replace")
            if rx.search(line):
                return line
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    raise SystemExit(f"no line matching {pattern!r}")


def _hello(
    port: int, name: str, token: str | None = None, rcvbuf: int | None = None
) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    hello: dict[str, object] = {"type": "hello", "version": 1, "name": name}
    if token is not None:
        hello.update(token=token, last_seq=0)
    sock.sendall(json.dumps(hello).encode() + b"\n")  # before the greeting: allowed
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages in the room log")
    parser.add_argument("--size", type=int, default=16_000, help="bytes per message")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of eight unread resumes")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1", PARLEY_MDNS_INTERFACES="127.0.0.1")
    env.setdefault("PARLEY_DATA_DIR", str(Path("/tmp") / f"parley-bench-resume-{os.getpid()}"))
    host = subprocess.Popen(
        [sys.executable, "-m", "app", "host", "--port", "0", "--bind", "127.0.0.1", "--name",
         "Hal", "--allow-plain", "--rate", "0", "--no-history", "--no-announce",
         "--max-per-address", "64"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    assert host.stdin is not None
    assert host.stdout is not None
    out = host.stdout
    port = 0
    for line in out:
        if found := re.search(r"on port (\d+)", line):
            port = int(found.group(1))
            break
    threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
    try:
        tokens = []
        for i in range(8):
            sock = _hello(port, f"M{i}")
            tokens.append(json.loads(_lines(sock, r'^\{"type":"welcome"'))["token"])
            sock.close()
        watcher = _hello(port, "Watcher")
        _lines(watcher, r'^\{"type":"welcome"')
        for i in range(args.messages):
            host.stdin.write(f"{i:06d} " + "x" * (args.size - 7) + "\n")
        host.stdin.flush()
        _lines(watcher, rf'"text":"{args.messages - 1:06d} ', timeout=60)
        base = proc_sample(host.pid).rss_kb
        peak = base
        replayed = 0
        for _ in range(args.rounds):
            socks = [_hello(port, f"M{i}", t, rcvbuf=4096) for i, t in enumerate(tokens)]
            end = time.monotonic() + 4.0  # past stuck_wait (2 s): all dropped for not reading
            while time.monotonic() < end:
                peak = max(peak, proc_sample(host.pid).rss_kb)
                time.sleep(0.05)
            for sock in socks:
                sock.close()
        # Coming back once more, reading this time: what does the host send again?
        again = _hello(port, "M0", tokens[0])
        again.settimeout(DEADLINE)
        buf = b""
        while b'{"type":"welcome"' not in buf:
            buf += again.recv(65536)
        host.stdin.write("after\n")
        host.stdin.flush()
        while b'"text":"after"' not in buf:
            chunk = again.recv(65536)
            if not chunk:
                break
            buf += chunk
        lines = buf.split(b"\n")
        at = next(i for i, line in enumerate(lines) if line.startswith(b'{"type":"welcome"'))
        welcome = json.loads(lines[at])
        replayed = sum(1 for line in lines[at + 1 :] if line.startswith(b'{"type":"msg"')) - 1
        replayed += len(welcome.get("history", []))  # a host that still sends it all in one
        again.close()
        watcher.close()
    finally:
        host.terminate()
        host.wait(10)
    grown_mb = (peak - base) / 1024
    log_mb = args.messages * args.size / 1e6
    print(" ".join(f"{k}={v}" for k, v in machine().items()))
    print()
    print("| resume scenario | figure | target |")
    print("|---|---|---|")
    mark = "✔" if grown_mb <= 100 else "✘"
    print(
        f"| 8 unread resumes from seq 0 over a {log_mb:.0f} MB log, {args.rounds} rounds: "
        f"host RSS growth (peak) | **{grown_mb:.1f} MB** | ≤ 100 MB {mark} |"
    )
    note = welcome.get("note") or ""
    print(
        f"| a member dropped for not reading comes back from seq 0 again: messages replayed "
        f"| **{replayed}** ({note[:60]}…) | 0 ✔ |"
        if replayed == 0
        else f"| a member dropped for not reading comes back from seq 0 again: messages replayed "
        f"| **{replayed}** | 0 ✘ |"
    )
    return 0 if grown_mb <= 100 and replayed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
