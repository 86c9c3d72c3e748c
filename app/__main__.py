"""Entry point: the window by default; `host` and `join` run in the terminal."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.address import DEFAULT_PORT, parse_address, parse_port

if TYPE_CHECKING:
    import argparse
    from types import SimpleNamespace

    from app.net import JoinOptions

ENV_PASSWORD = "PARLEY_PASSWORD"

# The network stack, the crypto and the window are imported only once it is clear which of them
# this run needs: `--version` and `--help` answer at once, and the window appears sooner.

# What `build_parser().parse_args([])` gives (tests/test_main.py checks that it stays so): the
# window opened with no arguments at all (a double-click, a desktop launcher) builds no parser,
# and argparse is not imported (1.9 ms of the executable's start).
WINDOW_DEFAULTS: dict[str, Any] = {
    "host": False,
    "join": None,
    "port": None,
    "name": None,
    "bind": None,
    "room": None,
    "no_announce": False,
    "command": None,
}


def _default_name(fallback: str) -> str:
    try:
        return getpass.getuser() or fallback
    except Exception:  # no user name in this environment (e.g. some containers)
        return fallback


def _port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise _bad_value(str(exc)) from exc


def _bad_value(message: str) -> Exception:
    """The error an option's `type=` function raises: argparse shows its message as it is."""
    import argparse

    return argparse.ArgumentTypeError(message)


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: chat with people on your network. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"Parley {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--host", action="store_true", help="window: start hosting at once")
    mode.add_argument(
        "--join", metavar="HOST[:PORT]|INVITE", help="window: join this host (or invite) at once"
    )
    parser.add_argument("--port", type=_port, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--name", help="your display name")
    parser.add_argument("--bind", metavar="ADDR", help="window: when hosting, listen on ADDR only")
    parser.add_argument("--room", type=_room, help="window: the room's name when hosting")
    parser.add_argument(
        "--no-announce", action="store_true", help="window: host without announcing the room"
    )
    commands = parser.add_subparsers(dest="command", metavar="{host,join,rooms}")

    host = commands.add_parser("host", help="host a room in this terminal")
    host.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 lets the system choose)",
    )
    host.add_argument("--bind", metavar="ADDR", help="listen on this address only")
    host.add_argument("--name", default=None, help="your display name")
    host.add_argument(
        "--room",
        type=_room,
        default=None,
        help="the room's name on the network (default: \"NAME's room\")",
    )
    host.add_argument(
        "--no-announce",
        action="store_true",
        help="do not announce the room on the local network (join by address only)",
    )
    _password_option(host, "let in only people who know PW")
    host.add_argument(
        "--allow-plain",
        action="store_true",
        help="also admit unencrypted connections (nc, telnet, joiners using --plain)",
    )
    host.add_argument("--max-members", type=_count, default=256, help="default 256")
    host.add_argument("--max-per-address", type=_count, default=16, help="default 16")
    host.add_argument(
        "--rate",
        type=_rate,
        default=20.0,
        help="messages per second a member may send on average (default 20; 0: no rate "
        "limits at all, for benchmarks: messages, bytes and new connections)",
    )
    host.add_argument("--burst", type=_rate, default=40.0, help="... in bursts of (default 40)")
    _history_options(host)
    host.add_argument(
        "--max-file-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="largest file a member may send, e.g. 500MB (default 4GiB; 0: no files)",
    )
    _downloads_option(host)

    join = commands.add_parser("join", help="join a room from this terminal")
    join.add_argument(
        "address",
        metavar="HOST[:PORT]|INVITE|ROOM",
        help="where the host is, or the name of a room on the network (see `rooms`)",
    )
    join.add_argument("--port", type=_port, default=None, help=f"default {DEFAULT_PORT}")
    join.add_argument("--name", default=None, help="your display name")
    _password_option(join, "the room's password")
    join.add_argument(
        "--plain", action="store_true", help="no encryption: for nc -l, ncat --chat and the like"
    )
    join.add_argument(
        "--trust-new",
        action="store_true",
        help="accept a host identity that changed since your last visit",
    )
    _downloads_option(join)
    rooms = commands.add_parser("rooms", help="list the rooms announced on the network")
    rooms.add_argument(
        "--wait",
        type=_seconds,
        default=3.0,
        metavar="SECONDS",
        help="how long to look (default 3)",
    )
    return parser


def _downloads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--downloads",
        metavar="DIR",
        default=None,
        help="where files you accept are saved (or set PARLEY_DOWNLOADS; default: Downloads)",
    )


def _size(text: str) -> int:
    from app.transfer import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise _bad_value(str(exc)) from exc


def _history_options(parser: argparse.ArgumentParser) -> None:
    from app.paths import KEEP_DAYS, KEEP_MESSAGES

    parser.add_argument(
        "--no-history",
        action="store_true",
        help="keep nothing on disk (no room log, no transcript); the room starts afresh",
    )
    parser.add_argument(
        "--keep-messages",
        type=_count,
        default=KEEP_MESSAGES,
        help=f"messages the history keeps at most (default {KEEP_MESSAGES})",
    )
    parser.add_argument(
        "--keep-days",
        type=_rate,
        default=KEEP_DAYS,
        help=f"days the history keeps messages (default {KEEP_DAYS:g})",
    )


def _room(text: str) -> str:
    from app.room_names import check_room_name, trim_room_name

    problem = check_room_name(text)
    if problem:
        raise _bad_value(problem)
    return trim_room_name(text)


def _seconds(text: str) -> float:
    value = _rate(text)
    if value > 3600:
        raise _bad_value(f"expected at most 3600 seconds, not {text!r}")
    return value


def _password_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--password",
        metavar="PW",
        default=None,
        help=f"{what} (or set PARLEY_PASSWORD, which other users cannot see in ps)",
    )


def _password_from_env(args: argparse.Namespace) -> bool:
    """Fill in PARLEY_PASSWORD when --password was not given; True if that is where it came
    from (a host then never writes it where it is not shown on a terminal)."""
    if args.password is not None:
        return False
    args.password = os.environ.get(ENV_PASSWORD) or None
    return args.password is not None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise _bad_value(f"expected a number of at least 0, not {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise _bad_value(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def join_options(
    parser: argparse.ArgumentParser, address: str, port: int | None, **rest: Any
) -> JoinOptions:
    """Options for joining `address`, which may be an invite (it brings its own pin)."""
    from app.invite import is_invite, parse_invite
    from app.net import JoinOptions

    if is_invite(address):
        try:
            invite = parse_invite(address)
        except ValueError as exc:
            parser.error(f"That invite is damaged: {exc}")
        password = rest.pop("password", None) or invite.password
        return JoinOptions(
            invite.host, invite.port, password=password, fingerprint=invite.fingerprint, **rest
        )
    try:
        host, parsed_port = parse_address(address, DEFAULT_PORT)
    except ValueError as exc:
        parser.error(str(exc))
    return JoinOptions(host, port if port is not None else parsed_port, **rest)


ROOM_WAIT = 3.0  # how long `join "ROOM NAME"` looks for the room
WORD_WAIT = 2.0  # ... and for a single word, which may be a host name instead


def _parses_as_address(text: str) -> bool:
    try:
        parse_address(text, DEFAULT_PORT)
    except ValueError:
        return False
    return True


def may_be_room_name(text: str) -> bool:
    """Whether `join TEXT` should look for a room called TEXT: anything that is not an invite,
    an IP address or HOST:PORT; a single word without dots may be either a room or a host name
    (the room wins, and with none of that name it is joined as a host name)."""
    from app.invite import is_invite

    text = text.strip()
    if not text or is_invite(text):
        return False
    if not _parses_as_address(text):
        # "host:notaport" is a mistyped address (said as such); "Ann's room" a room name
        return any(ch.isspace() for ch in text) or not (":" in text or text.startswith("["))
    host, _ = parse_address(text, DEFAULT_PORT)
    if host != text:  # a port or brackets: an address
        return False
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "." not in host and host.lower() != "localhost"
    return False


def _room_by_name(name: str, *, sure: bool) -> tuple[str, int] | int | None:
    """Where the room called `name` is; an exit code when it cannot be joined by name; None
    when it was only maybe a room name and none was found (join it as a host name)."""
    from app import cli

    wait = ROOM_WAIT if sure else WORD_WAIT
    found = cli.find_rooms(wait, name=name)
    if len(found) == 1:
        room = found[0]
        print(f"Found the room “{room.name}” at {cli.room_where(room)}.")
        return (f"[{room.host}]" if ":" in room.host else room.host), room.port
    if len(found) > 1:
        print(f"{len(found)} rooms are called “{name}”; join one by its address:", file=sys.stderr)
        for room in found:
            print(f"  {cli.room_line(room)}", file=sys.stderr)
        return 1
    if not sure:
        return None
    print(
        f"No room called “{name}” was found on the network (looked for {wait:g} s). "
        "See `parley rooms`, or join by address.",
        file=sys.stderr,
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    if not (sys.argv[1:] if argv is None else argv):  # the window, nothing asked: no parser
        from types import SimpleNamespace

        return _window(SimpleNamespace(**WINDOW_DEFAULTS))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        import gc

        gc.enable()  # off while the program started (see the end of this file)
    from_env = _password_from_env(args) if args.command in ("host", "join") else False
    if args.command == "host":
        from app import cli
        from app.net import HostOptions

        options = HostOptions(
            port=args.port,
            bind=args.bind,
            name=args.name or _default_name("Host"),
            password=args.password,
            allow_plain=args.allow_plain,
            max_members=args.max_members,
            max_per_address=args.max_per_address,
            rate=args.rate,
            burst=max(args.burst, 1.0),
            keep_history=not args.no_history,
            keep_messages=args.keep_messages,
            keep_days=args.keep_days,
            downloads=Path(args.downloads).expanduser() if args.downloads else None,
            room=args.room,
            announce=not args.no_announce,
        )
        if args.rate == 0:  # no rate limits at all: bytes and new connections too
            options.byte_rate = options.connect_rate = 0.0
        if args.max_file_size is not None:
            options.max_file_size = args.max_file_size
        return cli.host(options, password_from_env=from_env)
    if args.command == "rooms":
        from app import cli

        return cli.rooms(args.wait)
    if args.command == "join":
        from app import cli

        address, port = args.address, args.port
        if may_be_room_name(address):
            found = _room_by_name(address, sure=not _parses_as_address(address))
            if isinstance(found, int):
                return found
            if found is not None:
                address, port = found
        joining = join_options(
            parser,
            address,
            port,
            name=args.name or _default_name("Guest"),
            password=args.password,
            plain=args.plain,
            trust_new=args.trust_new,
            downloads=Path(args.downloads).expanduser() if args.downloads else None,
        )
        return cli.join(joining)
    return _window(args)


def _window(args: argparse.Namespace | SimpleNamespace) -> int:
    from app import dark_mode

    # Before the window's modules are imported: its `gsettings` runs meanwhile (app/dark_mode.py).
    dark_mode.ask()
    from app.gui import run_window

    return run_window(args)


if __name__ == "__main__":
    import gc

    # No garbage collection until the window's first paint (app.gui.launch turns it on again)
    # or until a terminal command is chosen: start-up makes objects by the ten thousand and
    # drops few, and the collector's passes over them were 4-5 ms of the window's start.
    gc.disable()
    from app import deferred

    deferred.install()  # the executable: its network and TLS files are unpacked on first use
    sys.exit(main())
