"""Entry point: the window by default; `host` and `join` run in the terminal."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from app import __version__
from app.address import parse_address, parse_port
from app.net import DEFAULT_PORT, HostOptions, JoinOptions


def _default_name(fallback: str) -> str:
    try:
        return getpass.getuser() or fallback
    except Exception:  # no user name in this environment (e.g. some containers)
        return fallback


def _port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: chat with people on your network. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"Parley {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--host", action="store_true", help="window: start hosting at once")
    mode.add_argument("--join", metavar="HOST[:PORT]", help="window: join this host at once")
    parser.add_argument("--port", type=_port, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--name", help="your display name")
    parser.add_argument("--bind", metavar="ADDR", help="window: when hosting, listen on ADDR only")
    commands = parser.add_subparsers(dest="command", metavar="{host,join}")

    host = commands.add_parser("host", help="host a room in this terminal")
    host.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 lets the system choose)",
    )
    host.add_argument("--bind", metavar="ADDR", help="listen on this address only")
    host.add_argument("--name", default=None, help="your display name")

    join = commands.add_parser("join", help="join a room from this terminal")
    join.add_argument("address", metavar="HOST[:PORT]", help="where the host is")
    join.add_argument("--port", type=_port, default=None, help=f"default {DEFAULT_PORT}")
    join.add_argument("--name", default=None, help="your display name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "host":
        from app import cli

        name = args.name or _default_name("Host")
        return cli.host(HostOptions(port=args.port, bind=args.bind, name=name))
    if args.command == "join":
        from app import cli

        try:
            host, port = parse_address(args.address, DEFAULT_PORT)
        except ValueError as exc:
            parser.error(str(exc))
        if args.port is not None:
            port = args.port
        return cli.join(JoinOptions(host, port, name=args.name or _default_name("Guest")))
    from app.gui import run_window

    return run_window(args)


if __name__ == "__main__":
    sys.exit(main())
