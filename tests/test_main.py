"""`python -m app`'s start: the window opened with no arguments builds no parser."""

from __future__ import annotations

import subprocess
import sys

from app.__main__ import WINDOW_DEFAULTS, build_parser


def test_the_windows_defaults_are_what_the_parser_gives_for_no_arguments() -> None:
    # `main()` hands these to the window when there are no arguments, without argparse: they
    # must stay what the parser would have given, option for option.
    assert vars(build_parser().parse_args([])) == WINDOW_DEFAULTS


def test_a_bad_option_value_still_gets_its_own_message() -> None:
    # The options' checks make argparse's error lazily now (argparse is imported with the
    # parser): the message is still theirs, not argparse's "invalid value".
    out = subprocess.run(
        [sys.executable, "-m", "app", "host", "--rate", "fast"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "expected a number of at least 0, not 'fast'" in out.stderr
