"""The `layerkit` command: gradient-check a network, or sweep the finite-difference step.

`layerkit check` checks the seed notebook's fraud-detection net (its parameters and data), a
fresh `--arch` mlp, or your own network (`--model module:factory` or
`--model path/to/file.py:factory`, `--params file.npz`, `--data file.npz`) and prints one
row per tensor and a verdict; `layerkit sweep` shows the relative error of a plain central
difference against its step, and says plainly when the curve has no V (a wrong gradient).

Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 usage error (also: a run that would need more
memory than half the machine's, or output that cannot be written), 130 interrupted (Ctrl-C).
A reader that closes the pipe early (`layerkit check | head -1`) does not change the exit
code: it is still the verdict's.

One idea per module: `app` runs the command and maps errors to exit codes, `parser` builds
the arguments, `flags` derives the check-option flags from
[`CheckOptions`][layerkit.CheckOptions], `case` builds what is checked, `user_model` loads
`--model` and `--data`, `commands` runs `check` and `sweep`, `sweep_output` prints and plots
the sweep, and `progress` draws the progress bar.
"""

from __future__ import annotations

from layerkit.cli.app import main
from layerkit.cli.case import Case, build_case
from layerkit.cli.exit_codes import (
    EXIT_CODES,
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
)
from layerkit.cli.parser import build_parser

__all__ = [
    "EXIT_CODES",
    "EXIT_FAIL",
    "EXIT_INCONCLUSIVE",
    "EXIT_INTERRUPTED",
    "EXIT_PASS",
    "EXIT_USAGE",
    "Case",
    "build_case",
    "build_parser",
    "main",
]
