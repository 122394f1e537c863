"""The ``layerkit`` console script's entry point.

It imports nothing but the standard library before calling :func:`layerkit.cli.main`, so that
Ctrl-C while layerkit and numpy are still being imported ends like Ctrl-C at any other moment:
one line on stderr and exit code 130, no traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Import the command and run it; 130 and one line if interrupted during the import."""
    try:
        from layerkit.cli import main as run
    except KeyboardInterrupt:
        try:
            sys.stderr.write("layerkit: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return EXIT_INTERRUPTED
    return run()


if __name__ == "__main__":
    raise SystemExit(main())
