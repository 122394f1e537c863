"""Running the `layerkit` command: parse, dispatch, and turn every error into an exit code
and one line on stderr (never a traceback)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from layerkit.cli import commands, parser
from layerkit.cli.exit_codes import EXIT_INTERRUPTED, EXIT_USAGE
from layerkit.errors import LayerkitError


def _say(text: str) -> None:
    """One line on stderr (`layerkit: ...`); a closed stderr is ignored."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"layerkit: {' '.join(text.split())}\n")
        sys.stderr.flush()


def _silence_stdout() -> None:
    """Point the stdout descriptor at /dev/null, so that the interpreter's last flush of
    output that could not be written (closed pipe, full disk) neither fails nor prints."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `layerkit` command, as `layerkit check ...` or `layerkit sweep ...` would.

    Errors never escape as a traceback: each becomes one line on stderr and an exit code.

    Args:
        argv: The arguments after the program name (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 pass, 1 fail, 3 inconclusive, 2 usage error (or too much memory,
            or output that cannot be written), 130 interrupted.
    """
    try:
        return _run(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    argument_parser = parser.build_parser()
    try:
        args = argument_parser.parse_args(argv)
        if args.command is None:
            argument_parser.error("choose a command: check or sweep")
    except SystemExit as stop:  # --help and --version (0), usage errors (2, already reported)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    handler = commands.run_check if args.command == "check" else commands.run_sweep
    try:
        code: int = handler(args)
        sys.stdout.flush()
    except LayerkitError as error:
        _say(f"error: {error}")
        return EXIT_USAGE
    except BrokenPipeError:  # `layerkit check | head -1`: the reader left; the verdict stands
        _silence_stdout()
        return int(getattr(args, "exit_code", EXIT_USAGE))
    except OSError as error:  # `layerkit check > /dev/full`: the output was not written
        _silence_stdout()
        _say(f"error: cannot write the output: {error.strerror or error}")
        return EXIT_USAGE
    return code
