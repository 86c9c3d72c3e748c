"""Helpers for the load benchmark: the machine, /proc readings, statistics, the servers.

Every server (Parley, ncat, the C floor broker) runs as a child process on 127.0.0.1 with an
OS-chosen port, so the benchmark never collides with anything and never leaves loopback.
Parley prints its port; ncat does not (it says "Listening on 127.0.0.1:0"), so its port is read
from the kernel: the listening socket among the child's file descriptors, looked up in
/proc/net/tcp (the floor broker prints nothing either). The floor broker
(`../shared/bench/floor_broker.c` beside the repository) is compiled with `cc -O2` on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOR_SOURCE = REPO.parent / "shared" / "bench" / "floor_broker.c"
LOOPBACK = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")


# --- the machine and processes ------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Lift our soft RLIMIT_NOFILE to the hard limit (children inherit it); return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine() -> dict[str, str]:
    """What a reader needs to judge the figures: cores, CPU, Python, kernel, ncat."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ncat = "not installed"
    if shutil.which("ncat"):
        out = subprocess.run(["ncat", "--version"], capture_output=True, text=True, timeout=10)
        found = re.search(r"Version (\S+)", out.stdout + out.stderr)
        ncat = found.group(1) if found else "unknown"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "ncat": ncat,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


@dataclass(frozen=True)
class ProcSample:
    rss_kb: int  # VmRSS: resident now
    hwm_kb: int  # VmHWM: peak resident so far
    cpu_s: float  # utime + stime
    # ... of which its main thread's (the terminal host's own person, whose thread drains the
    # worker's queue and prints; the rest of a Parley host is its network thread)
    main_cpu_s: float = 0.0


def proc_sample(pid: int) -> ProcSample:
    """Memory and CPU of a process from /proc (what `ps` would say, without psutil)."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return ProcSample(rss, hwm, cpu_s(pid), main_thread_cpu_s(pid))


def main_thread_cpu_s(pid: int) -> float:
    """CPU time of a process's main thread (its task whose id is the process's), in seconds,
    from its schedstat (0.0 where the kernel has none)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e9
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU time of every thread of a process, in seconds. From /proc/<pid>/task/*/schedstat
    (nanoseconds on the CPU) where the kernel has it: `utime + stime` counts 10 ms ticks, too
    coarse for the floor broker, which relays a whole flood in a few ticks."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        total = 0
    if total:
        return total / 1e9
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces; skip past it
    return (int(fields[11]) + int(fields[12])) / _TICKS


def own_cpu_s() -> float:
    """CPU used by this (the generator's) process, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def listening_port(pid: int) -> int | None:
    """The TCP port a process listens on, found through its socket inodes."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    return int(cols[1].rsplit(":", 1)[1], 16)
    return None


# --- statistics ---------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for no values)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def median(values: Sequence[float]) -> float | None:
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    mid = len(clean) // 2
    return clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2


# --- the servers under test ---------------------------------------------------------------------


class ServerFailed(RuntimeError):
    """The server did not start, or died; the message says what it printed."""


class Server:
    """A chat server in a child process. `start()` sets `port`; `stop()` always ends it."""

    name = "server"

    cwd = REPO
    env: dict[str, str] | None = None

    def __init__(self, *, tls: bool, max_members: int) -> None:
        self.tls = tls
        self.max_members = max_members
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._tail = bytearray()  # the last bytes it printed, for error messages
        self._last = ProcSample(0, 0, 0.0)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def describe(self) -> str:
        return " ".join(self.argv())

    async def start(self, timeout: float = 20.0) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            self.port = await asyncio.wait_for(self._find_port(), timeout)
        except (asyncio.TimeoutError, ServerFailed) as exc:
            await self.stop()
            raise ServerFailed(f"{self.name} did not start: {self.tail()}") from exc
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._drains = [
            asyncio.ensure_future(self._drain(self.proc.stdout)),
            asyncio.ensure_future(self._drain(self.proc.stderr)),
        ]

    async def _find_port(self) -> int:
        raise NotImplementedError

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        """Read what the server prints so it never blocks on a full pipe; keep the tail."""
        while chunk := await stream.read(65536):
            self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        self._tail += chunk
        del self._tail[:-2000]

    def tail(self) -> str:
        return self._tail.decode(errors="replace").strip()[-600:] or "(nothing printed)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def sample(self) -> ProcSample:
        """The server's memory and CPU now; once it has exited, the last reading taken."""
        with contextlib.suppress(OSError):
            self._last = proc_sample(self.pid)
        return self._last

    def exit_note(self) -> str | None:
        """None while running; otherwise how it ended and its last words."""
        if self.proc is None or self.proc.returncode is None:
            return None
        return f"exited with status {self.proc.returncode}: {self.tail()[-200:]}"

    async def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await asyncio.wait_for(self.proc.wait(), timeout)
        for task in self._drains:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout)


def parley_host_help(checkout: Path = REPO) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "app", "host", "--help"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout + out.stderr


# Starts the terminal host with HostOptions the command line does not offer (the per-member rate
# limit, lifted to measure the relay itself). Options this checkout does not know are skipped.
_LAUNCH = """
import dataclasses, json, sys
from app import cli
from app.net import HostOptions
wanted = json.loads(sys.argv[1])
known = {f.name for f in dataclasses.fields(HostOptions)}
sys.exit(cli.host(HostOptions(**{k: v for k, v in wanted.items() if k in known})))
"""
_UVLOOP = (
    "import asyncio, sys, runpy, uvloop; asyncio.SelectorEventLoop = uvloop.Loop; "
    "sys.argv[0] = 'app'; runpy.run_module('app', run_name='__main__', alter_sys=True)"
)
LIFTED = {"rate": 1e9, "burst": 1e9, "flood_strikes": 1 << 30}


class ParleyServer(Server):
    """The terminal host: `python -m app host ...` as a person would start it, with the flags
    this checkout offers (`--allow-plain`, `--max-members`, `--max-per-address`) set for the
    scenario; with `lift_limits`, the same host with its per-member rate limit lifted.

    Its identity (TLS certificate) goes to a temporary data folder, not the user's.
    """

    name = "Parley"
    _READY = re.compile(rb"on port (\d+)")

    def __init__(
        self,
        *,
        tls: bool,
        max_members: int,
        help_text: str,
        lift_limits: bool = False,
        checkout: Path = REPO,
        loop: str = "asyncio",
    ) -> None:
        super().__init__(tls=tls, max_members=max_members)
        self.loop = loop
        self.help_text = help_text
        self.lift_limits = lift_limits
        self.cwd = checkout
        self._home = tempfile.TemporaryDirectory(prefix="parley-bench-")
        self.env = {**os.environ, "XDG_DATA_HOME": self._home.name}

    def argv(self) -> list[str]:
        plain = not self.tls
        if self.lift_limits and "--rate" not in self.help_text:  # an older checkout
            options: dict[str, object] = {
                "port": 0,
                "bind": LOOPBACK,
                "name": "H",
                "allow_plain": plain,
                "max_members": self.max_members,
                "max_per_address": self.max_members,
                **LIFTED,
            }
            return [sys.executable, "-c", _LAUNCH, json.dumps(options)]
        argv = [sys.executable, "-m", "app", "host", "--port", "0", "--bind", LOOPBACK]
        if self.loop == "uvloop":  # measurement only: the worker's loop class swapped for uvloop's
            argv[1:3] = ["-c", _UVLOOP]
        argv += ["--name", "H"]
        if plain and "--allow-plain" in self.help_text:
            argv.append("--allow-plain")
        for flag in ("--max-members", "--max-per-address"):
            if flag in self.help_text:
                argv += [flag, str(self.max_members)]
        if self.lift_limits:
            argv += ["--rate", "0"]
        if "--no-announce" in self.help_text:  # measure the relay, not multicast DNS
            argv.append("--no-announce")
        return argv

    def describe(self) -> str:
        argv = self.argv()
        if argv[1] == "-c" and self.loop == "uvloop":
            return " ".join(["python -c '<uvloop swapped in>' -m app", *argv[3:]])
        if argv[1] == "-c":
            options = ", ".join(f"{k}={v!r}" for k, v in json.loads(argv[-1]).items())
            return f"app.cli.host(HostOptions({options}))"
        return " ".join(["python", *argv[1:]])

    async def _find_port(self) -> int:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self._keep(line)
            found = self._READY.search(line)
            if found:
                return int(found.group(1))
        if self.proc.stderr is not None:
            self._keep(await self.proc.stderr.read(4000))
        raise ServerFailed("exited")

    async def stop(self, timeout: float = 5.0) -> None:
        await super().stop(timeout)
        self._home.cleanup()


class NcatServer(Server):
    """`ncat -l --chat` (optionally `--ssl`, with the certificate ncat makes up on the spot)."""

    name = "ncat"

    def argv(self) -> list[str]:
        argv = ["ncat", "-l", "--chat", "--max-conns", str(self.max_members + 10)]
        if self.tls:
            argv.append("--ssl")
        return [*argv, LOOPBACK, "0"]

    async def _find_port(self) -> int:
        # ncat reports port 0 as "0"; ask the kernel instead. Bounded by start()'s timeout.
        while True:
            if self.proc is None or self.proc.returncode is not None:
                raise ServerFailed("exited")
            port = listening_port(self.pid)
            if port:
                return port
            await asyncio.sleep(0.02)


class FloorServer(Server):
    """The C epoll broker: a line relay with no names, no echo and write coalescing per loop
    turn, the physical floor for relaying lines on this machine. Built by `build_floor`."""

    name = "floor"

    def __init__(self, binary: Path, *, max_members: int) -> None:
        super().__init__(tls=False, max_members=max_members)
        self.binary = binary

    def argv(self) -> list[str]:
        return [str(self.binary), "0"]

    def describe(self) -> str:
        return f"cc -O2 floor_broker.c && floor_broker 0 (binds {LOOPBACK})"

    async def _find_port(self) -> int:
        while True:  # it prints nothing: ask the kernel, as for ncat
            if self.proc is None or self.proc.returncode is not None:
                raise ServerFailed("exited")
            port = listening_port(self.pid)
            if port:
                return port
            await asyncio.sleep(0.02)

    def sockets(self) -> int:
        """Connected sockets it holds now (its listener not counted): accepted members."""
        count = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{self.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    count += os.readlink(fd).startswith("socket:[")
        return max(0, count - 1)


def build_floor(source: Path, into: Path) -> tuple[Path | None, str]:
    """Compile the floor broker with `cc -O2`; (binary, "") or (None, why it is skipped)."""
    return build_c(source, into / "floor_broker", "the C floor broker")


LOADGEN_SOURCE = REPO / "benchmarks" / "loadgen.c"


def build_loadgen(into: Path) -> tuple[Path | None, str]:
    """Compile the C flood generator (`benchmarks/loadgen.c`) with `cc -O2`."""
    return build_c(LOADGEN_SOURCE, into / "loadgen", "the C load generator")


def build_loadgen_tls(into: Path) -> tuple[Path | None, str]:
    """The same generator with TLS (OpenSSL's headers and libraries: Debian's libssl-dev)."""
    return build_c(
        LOADGEN_SOURCE,
        into / "loadgen-tls",
        "the C load generator's TLS build",
        flags=("-DLOADGEN_TLS",),
        libs=("-lssl", "-lcrypto"),
    )


def build_c(
    source: Path,
    binary: Path,
    what: str,
    flags: Sequence[str] = (),
    libs: Sequence[str] = (),
) -> tuple[Path | None, str]:
    """`cc -O2 [flags] -o binary source [libs]`; (binary, "") or (None, why `what` is
    skipped)."""
    if not source.is_file():
        return None, f"{what} is skipped: {source} is not there"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, f"{what} is skipped: no C compiler (cc) on PATH"
    binary.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [cc, "-O2", *flags, "-o", str(binary), str(source), *libs],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        return None, f"{what} is skipped: cc failed: {done.stderr.strip()[-300:]}"
    return binary, ""


class Remote(Server):
    """A server another process started: a generator worker only needs its port."""

    name = "remote"

    def __init__(self, port: int, *, tls: bool) -> None:
        super().__init__(tls=tls, max_members=0)
        self.port = port

    async def start(self, timeout: float = 20.0) -> None:
        return None

    async def stop(self, timeout: float = 5.0) -> None:
        return None

    def sample(self) -> ProcSample:
        return ProcSample(0, 0, 0.0)


def client_tls() -> ssl.SSLContext:
    """TLS for the load generator: encryption without verification (both servers self-sign)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def now_ns() -> int:
    return time.monotonic_ns()
