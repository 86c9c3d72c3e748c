"""Where a one-file executable's start-up goes: unpacking, Python's start, the window.

    make exe && python -m benchmarks.startup_phases [--runs 9] [--tmpdir /dev/shm]

`make bench-startup` gives one figure per app (launch -> the window mapped). This splits it, for
Parley and for the hello window built the same way, so a change can be aimed at the phase that
costs:

1. **What each one unpacks.** A PyInstaller one-file app writes every binary and data file of
   its archive into a fresh `_MEIxxxxxx` folder before Python starts (the Python modules stay
   inside, in the PYZ, and are read from the file in place). Counted and sized from the archive's
   table of contents.
2. **Timed phases**, each launch run under `strace -f -ttt -e trace=execve,connect` (the two
   system calls that mark them; `--seccomp-bpf` keeps the others untraced and full speed):
   - *unpack*: launch -> the bootloader re-executes itself as the child that runs Python
     (PyInstaller's parent unpacks first, then starts that child);
   - *python*: -> the child's first connection to the X server (`tk.Tk()` being made: Python's
     start-up and every import on the way to the window);
   - *window*: -> the window's MapNotify (building the widgets, the first layout, the map);
   - *+drawn*: from the MapNotify until the window's pixels stop changing (grabbed every few
     ms until they stay the same for 0.25 s): Tk draws the widgets after the map, so this is
     when the first paint was really over. The grabbing costs the app some CPU.
   strace costs a little, so these add up to a bit more than `bench-startup`'s figures; compare
   the two apps within one run.

Needs strace (Debian package `strace`); without it only the unpack table is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.startup import (
    EXIT_DEADLINE,
    WINDOW_DEADLINE,
    build_hello,
    drawn_after,
    temp_filesystem,
    temp_folders,
    xvfb,
)
from tools.xwin import XWatcher

# typecodes of the entries a one-file bootloader writes to disk: binaries, data files, symlinks
UNPACKED = {"b": "binaries", "x": "data files", "n": "symlinks", "d": "dependencies"}
PHASES = ("unpack", "python", "window")


def unpacked(exe: Path) -> tuple[int, int, int, list[tuple[int, str]]]:
    """(files, bytes written, bytes stored, the largest ten as (bytes, name)) for `exe`."""
    from PyInstaller.archive.readers import CArchiveReader

    toc = CArchiveReader(str(exe)).toc
    files = [(entry[2], entry[1], name) for name, entry in toc.items() if entry[4] in UNPACKED]
    largest = sorted(((size, name) for size, _, name in files), reverse=True)[:10]
    return len(files), sum(f[0] for f in files), sum(f[1] for f in files), largest


_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(execve|connect)\((.*)$")


def phases_from_trace(trace: str, exe: Path, mapped_at: float) -> dict[str, float] | None:
    """The three phases (seconds) from one strace log and the wall-clock time of the map."""
    launched = child = x_connect = None
    parent_pid = None
    for line in trace.splitlines():
        match = _LINE.match(line)
        if not match or "= -1" in line:
            continue
        pid, stamp, call, rest = match.groups()
        when = float(stamp)
        if call == "execve" and str(exe) in rest.split(",", 1)[0]:
            if launched is None:
                launched, parent_pid = when, pid
            elif child is None and pid != parent_pid:
                child = when
        elif call == "connect" and "X11-unix" in rest and child is not None and x_connect is None:
            x_connect = when
    if launched is None or child is None or x_connect is None:
        return None
    return {
        "unpack": child - launched,
        "python": x_connect - child,
        "window": mapped_at - x_connect,
    }


def launch_traced(
    watcher: XWatcher, exe: Path, title: str, env: dict[str, str], log: Path
) -> dict[str, float] | None:
    """Launch `exe` under strace, wait for its window, close it; its phases."""
    command = ["strace", "-f", "-ttt", "--seccomp-bpf", "-e", "trace=execve,connect"]
    proc = subprocess.Popen([*command, "-o", str(log), str(exe)], env=env)
    try:
        window, mapped = watcher.wait_mapped(title, WINDOW_DEADLINE)
        mapped_wall = mapped + (time.time() - time.monotonic())
        drawn = drawn_after(window, mapped)
        watcher.request_close(window)
        proc.wait(EXIT_DEADLINE)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(EXIT_DEADLINE)
    phases = phases_from_trace(log.read_text(errors="replace"), exe, mapped_wall)
    if phases is not None:
        phases["drawn"] = drawn
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exe", type=Path, default=Path(os.environ.get("PARLEY_EXE", "dist/Parley"))
    )
    parser.add_argument("--runs", type=int, default=9, help="traced launches of each (default 9)")
    parser.add_argument("--tmpdir", action="append", help="temp folder to unpack into (repeat)")
    args = parser.parse_args()
    parley = args.exe.resolve()
    if not parley.is_file():
        sys.exit(f"{parley} does not exist: build it first with `make exe`")
    hello = build_hello()
    apps = [("Parley", parley, "Parley"), ("hello window", hello, "Hello window")]

    print("What the bootloader writes to _MEIxxxxxx before Python starts:")
    for label, exe, _ in apps:
        count, written, stored, largest = unpacked(exe)
        print(
            f"  {label:<13} {count:4d} files, {written / 1e6:5.1f} MB written "
            f"({stored / 1e6:.1f} MB compressed in the {exe.stat().st_size / 1e6:.1f} MB file)"
        )
        print("    largest: " + ", ".join(f"{n} {s / 1e6:.1f} MB" for s, n in largest[:6]))
    if shutil.which("strace") is None:
        print("strace is not installed: no timed phases (apt install strace)")
        return 0

    home = Path(tempfile.mkdtemp(prefix="parley-phases-"))
    folders = temp_folders(args.tmpdir)
    results: dict[tuple[str, str], list[dict[str, float]]] = {
        (folder, label): [] for folder in folders for label, _, _ in apps
    }
    with xvfb() as display_name:
        env = {
            **os.environ,
            "DISPLAY": display_name,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
        }
        with XWatcher(display_name) as watcher:
            for run in range(args.runs + 1):  # the first round is untimed: warm caches
                for folder in folders:
                    for label, exe, title in apps:
                        got = launch_traced(
                            watcher, exe, title, {**env, "TMPDIR": folder}, home / "trace"
                        )
                        if run and got is not None:
                            results[(folder, label)].append(got)
    shutil.rmtree(home, ignore_errors=True)

    print(f"\nPhases under strace, median of {args.runs} launches (ms):")
    for folder in folders:
        print(f"Unpacking into {temp_filesystem(folder)}:")
        print(f"  {'':<13} " + " ".join(f"{p:>8}" for p in (*PHASES, "total", "+drawn")))
        medians = {}
        for label, _, _ in apps:
            runs = results[(folder, label)]
            if not runs:
                print(f"  {label:<13} (no complete trace)")
                continue
            row = {p: statistics.median(r[p] for r in runs) for p in PHASES}
            row["total"] = statistics.median(sum(r[p] for p in PHASES) for r in runs)
            row["+drawn"] = statistics.median(r["drawn"] for r in runs)
            medians[label] = row
            print(f"  {label:<13} " + " ".join(f"{row[p] * 1000:8.0f}" for p in row))
        if len(medians) == 2:
            diff = {p: medians["Parley"][p] - medians["hello window"][p] for p in medians["Parley"]}
            print(f"  {'difference':<13} " + " ".join(f"{diff[p] * 1000:+8.0f}" for p in diff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
