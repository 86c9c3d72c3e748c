"""Start-up benchmark: Parley's executable against a hello-world Tk window built the same way.

    make exe && make bench-startup      (or: python -m benchmarks.startup [--exe dist/Parley])

Builds `benchmarks/hello_window.py` with PyInstaller exactly as `build_exe.spec` builds Parley
(one file, windowed, stripped, no UPX), then launches the two in turn on a private Xvfb display
and times launch -> MapNotify (the window becoming visible; Xvfb has no window manager, so that
is when it would appear on screen), and launch -> the window's pixels settling (grabbed every few
ms after the map until unchanged for 0.25 s; Tk draws the widgets after the map, a 1-label
window at once, Parley's ~100 widgets over tens of ms; the last change can also be what the
window shows just after, such as the rooms list's first hint). Each run ends the way a user ends
it: WM_DELETE_WINDOW. Prints medians side by side with the file sizes and the machine, and exits
1 if Parley misses a target: start-up within 1.3x of the hello window's, mapped and drawn, with
the temp folder on disk and on a RAM disk (/dev/shm, where there is one), file under 25 MB.
`python -m benchmarks.startup_phases` splits the time into unpacking, Python and the window.
`--before OLD_EXE` times an older build too, interleaved with the others in the same sitting
(its ratios are printed, not judged): a before/after comparison that the machine's drift cannot
skew. `--runs 5` for a quick look.

Both unpack themselves on every start (into $TMPDIR), which is most of either's start-up time:
the ratio is smaller on a slow temp disk than on a RAM disk (try TMPDIR=/dev/shm).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from Xlib import X
from Xlib.xobject.drawable import Window

from tools.xwin import XWatcher

ROOT = Path(__file__).resolve().parent.parent
HELLO_SOURCE = ROOT / "benchmarks" / "hello_window.py"
BUILD = ROOT / "build" / "bench"
MAX_RATIO = 1.3
MAX_MB = 25.0
WINDOW_DEADLINE = 30.0  # a launch slower than this is a failure, not a data point
EXIT_DEADLINE = 10.0
DRAWN_QUIET = 0.25  # a window's pixels unchanged this long: its first paint is over


def build_hello() -> Path:
    """The yardstick, built with the same options the spec uses for Parley."""
    strip = [] if sys.platform == "win32" else ["--strip"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level=WARN",
            "--onefile",
            "--windowed",
            "--noupx",
            *strip,
            "--name=HelloWindow",
            f"--distpath={BUILD / 'dist'}",
            f"--workpath={BUILD / 'work'}",
            f"--specpath={BUILD}",
            str(HELLO_SOURCE),
        ],
        check=True,
    )
    suffix = ".exe" if sys.platform == "win32" else ""
    return BUILD / "dist" / f"HelloWindow{suffix}"


@contextmanager
def xvfb() -> Iterator[str]:
    """A private X display, so nothing else on screen (or a window manager) skews the timing."""
    if shutil.which("Xvfb") is None:
        sys.exit("Xvfb is needed (apt install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as numbers:
            number = numbers.readline().strip()
        if not number:
            sys.exit("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(EXIT_DEADLINE)


def drawn_after(window: Window, mapped: float, quiet: float = DRAWN_QUIET) -> float:
    """Seconds from the map until the window's pixels last changed (grabbed every few ms until
    they stay the same for `quiet` seconds): when its first paint was really finished."""
    geometry = window.get_geometry()
    last, changed = b"", mapped
    while True:
        now = time.monotonic()
        pixels = window.get_image(0, 0, geometry.width, geometry.height, X.ZPixmap, 0xFFFFFFFF).data
        if pixels != last:
            last, changed = pixels, now
        elif now - changed >= quiet or now - mapped > WINDOW_DEADLINE:
            return changed - mapped
        time.sleep(0.002)


def launch_once(
    watcher: XWatcher, exe: Path, title: str, env: dict[str, str]
) -> tuple[float, float]:
    """Seconds from launch to the window being mapped, and to its pixels settling (see
    `drawn_after`); the window is then closed politely."""
    started = time.monotonic()
    proc = subprocess.Popen([str(exe)], env=env)
    try:
        window, mapped = watcher.wait_mapped(title, WINDOW_DEADLINE)
        drawn = drawn_after(window, mapped)
        watcher.request_close(window)
        if proc.wait(EXIT_DEADLINE) != 0:
            raise RuntimeError(f"{exe.name} exited with {proc.returncode}")
    finally:
        if proc.poll() is None:
            # never SIGKILL: a one-file app killed that way leaves its unpacked child running
            proc.send_signal(signal.SIGTERM)
            proc.wait(EXIT_DEADLINE)
    return mapped - started, mapped - started + drawn


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs, {cpu}, {platform.system()} {platform.release()}"


def temp_filesystem(folder: str) -> str:
    """Where a one-file app unpacks itself, and on what: it weighs on both start-up times."""
    where = Path(folder).resolve()
    kind, best = "?", ""
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, mount_point, fs_type = line.split()[:3]
                if where.is_relative_to(mount_point) and len(mount_point) > len(best):
                    kind, best = fs_type, mount_point
    except OSError:
        pass
    return f"{where} ({kind})"


def temp_folders(chosen: list[str] | None) -> list[str]:
    """Where the two unpack: the usual temp folder (on disk, as a rule) and a RAM disk."""
    if chosen:
        return chosen
    folders = [tempfile.gettempdir()]
    if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        folders.append("/dev/shm")
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exe", type=Path, default=Path(os.environ.get("PARLEY_EXE", "dist/Parley"))
    )
    parser.add_argument("--runs", type=int, default=15, help="timed launches of each (default 15)")
    parser.add_argument(
        "--tmpdir",
        action="append",
        help="temp folder to unpack into (repeat; default: the usual one and /dev/shm)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="an older build of Parley to time in the same runs (e.g. one built from main)",
    )
    args = parser.parse_args()
    parley = args.exe.resolve()
    if not parley.is_file():
        sys.exit(f"{parley} does not exist: build it first with `make exe`")
    before = args.before.resolve() if args.before else None
    if before is not None and not before.is_file():
        sys.exit(f"{before} does not exist")
    labels = ["Parley", "hello window"] + (["Parley before"] if before else [])

    hello = build_hello()
    home = Path(tempfile.mkdtemp(prefix="parley-bench-"))  # keep the user's settings untouched
    folders = temp_folders(args.tmpdir)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {
        (folder, label): [] for folder in folders for label in labels
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
            candidates = [("Parley", parley, "Parley"), ("hello window", hello, "Hello window")]
            if before is not None:
                candidates.append(("Parley before", before, "Parley"))
            for folder in folders:
                there = {**env, "TMPDIR": folder}
                for _label, exe, title in candidates:  # one untimed launch each: warm caches
                    launch_once(watcher, exe, title, there)
            for _ in range(args.runs):  # interleaved, so drift on the machine hits all alike
                for folder in folders:
                    there = {**env, "TMPDIR": folder}
                    for label, exe, title in candidates:
                        times[(folder, label)].append(launch_once(watcher, exe, title, there))
    shutil.rmtree(home, ignore_errors=True)

    sizes = {"Parley": parley.stat().st_size, "hello window": hello.stat().st_size}
    if before is not None:
        sizes["Parley before"] = before.stat().st_size
    print(f"\nMachine: {machine()}; Python {platform.python_version()}")
    print(
        f"Median of {args.runs} launches (min-max): launch -> the window mapped (MapNotify), "
        "and -> its pixels settled (first paint over):"
    )
    verdict = {True: "ok", False: "MISSED"}
    ok_time = True
    for folder in folders:
        print(f"Unpacking into {temp_filesystem(folder)}:")
        medians: dict[tuple[str, int], float] = {}
        for label in labels:
            cells = []
            for which in (0, 1):
                values = [run[which] for run in times[(folder, label)]]
                medians[(label, which)] = statistics.median(values)
                cells.append(
                    f"{medians[(label, which)] * 1000:5.0f} ms "
                    f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
                )
            print(
                f"  {label:<14} mapped {cells[0]:<18} drawn {cells[1]:<18} "
                f"size {sizes[label] / 1e6:5.1f} MB"
            )
        for which, what in ((0, "mapped"), (1, "drawn")):
            ratio = medians[("Parley", which)] / medians[("hello window", which)]
            ok_time = ok_time and ratio <= MAX_RATIO
            met = verdict[ratio <= MAX_RATIO]
            print(f"  Parley / hello, {what:<6} = {ratio:.2f}x (target <= {MAX_RATIO}x): {met}")
            if before is not None:
                old = medians[("Parley before", which)] / medians[("hello window", which)]
                print(f"  (before: {old:.2f}x)")
    size_mb = sizes["Parley"] / 1e6
    ok_size = size_mb < MAX_MB
    print(f"Parley size {size_mb:.1f} MB (target < {MAX_MB:.0f} MB): {verdict[ok_size]}")
    return 0 if ok_time and ok_size else 1


if __name__ == "__main__":
    sys.exit(main())
