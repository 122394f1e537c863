"""The `layerkit` argument parser: subcommands `check` and `sweep`, usage errors as one
line on stderr (exit 2). The check-option flags come from `flags`."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import NoReturn

from layerkit import __version__
from layerkit.cli.case import DEFAULT_BATCH
from layerkit.cli.exit_codes import EXIT_USAGE
from layerkit.cli.flags import add_option_flags
from layerkit.cli.sweep_output import plot_path

EPILOG = """\
exit codes: 0 pass, 1 fail, 3 inconclusive, 2 usage error (or too much memory, or
unwritable output), 130 interrupted

examples:
  layerkit check                         the seed notebook's fraud net, every entry
  layerkit check --inject-seed-bugs      the seed's two bugs: fails on W2 and b1
  layerkit check --per-layer             each layer alone, first faulty layer named
  layerkit check --arch 10,32,1 --mode fast --json
  layerkit check --model mynet.py:build --params weights.npz --data batch.npz
  layerkit sweep --plot sweep.svg        error vs step: the V between truncation and round-off
"""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"layerkit: error: {text} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def _widths(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if len(widths) < 2 or any(w < 1 for w in widths):
        msg = f"{text!r} is not two or more comma-separated positive integers (e.g. 4,5,3,1)"
        raise argparse.ArgumentTypeError(msg)
    return widths


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _add_case_options(parser: argparse.ArgumentParser, *, check: bool) -> None:
    group = parser.add_argument_group("what to check (default: the seed notebook's fraud net)")
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--arch",
        type=_widths,
        metavar="WIDTHS",
        help="layer widths of a fresh mlp, e.g. 4,5,3,1 (ReLU between, sigmoid + BCE at the end)",
    )
    which.add_argument(
        "--model",
        metavar="SPEC",
        help="your own network: module:factory or path/to/file.py:factory, a function of no "
        "arguments returning a Sequential with a loss (needs --data)",
    )
    group.add_argument(
        "--params",
        metavar="FILE",
        help="load the parameters from FILE (written by layerkit.save_params) into the network",
    )
    group.add_argument(
        "--data",
        metavar="FILE",
        help="an .npz file with arrays x (rows, inputs) and y (rows, outputs), as numpy.savez "
        "writes it: the examples to check on",
    )
    group.add_argument(
        "--batch",
        type=_positive_int,
        metavar="N",
        help=f"rows of synthetic data for --arch (default {DEFAULT_BATCH})",
    )
    seed_help = "seed of the --arch parameters and data"
    add_option_flags(
        group,
        ("seed",),
        help_for={"seed": seed_help + (", and of the checker's random choices" if check else "")},
    )
    group.add_argument(
        "--inject-seed-bugs",
        action="store_true",
        help="plant the seed notebook's two bugs: dW2 doubled, db1 times four",
    )


def _wrap(text: str) -> str:
    """A description paragraph wrapped for the raw help formatter."""
    return textwrap.fill(text, width=78)


def _add_check(commands: argparse._SubParsersAction[_Parser]) -> None:
    check = commands.add_parser(
        "check",
        help="gradient-check a network: one row per tensor and a verdict",
        description=_wrap(
            "Gradient-check every parameter of a network against central differences and "
            "print one row per tensor (W1, b1, ...) and a verdict: pass, fail (which tensor, "
            "which entry, which layer) or inconclusive (why). Check your own network with "
            "--model, --params and --data."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_options(check, check=True)
    how = check.add_argument_group(
        "how to check (the options of layerkit.CheckOptions; a left-out one keeps its default)"
    )
    add_option_flags(
        how, ("mode", "samples", "directions", "rtol", "atol", "step", "safety", "worst")
    )
    how.add_argument(
        "--per-layer",
        action="store_true",
        help="check each layer in isolation and name the first faulty layer",
    )
    how.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="the model's parameter dtype (default float64; --model: the model's own); the "
        "checker differentiates float64 copies",
    )
    out = check.add_argument_group("output")
    out.add_argument(
        "--json", action="store_true", help="print the report as JSON, and nothing else"
    )
    out.add_argument(
        "--quiet", action="store_true", help="print only the verdict line; no progress bar"
    )
    check.set_defaults(command="check")


def _add_sweep(commands: argparse._SubParsersAction[_Parser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="relative error of a central difference vs its step (truncation vs round-off)",
        description=_wrap(
            "Differentiate every parameter with a plain central difference and one fixed "
            "absolute step h (as the seed notebook does), for log-spaced h from 1e-1 to 1e-13, "
            "and print the seed's 'difference' and the max relative error against the "
            "analytic gradient at each h. Truncation error falls as h^2, round-off grows as "
            "eps/h: the curve is a V, with its floor near layerkit's default step eps^(1/3). "
            "A wrong gradient has no V, and the sweep says so."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_options(sweep, check=False)
    out = sweep.add_argument_group("output")
    out.add_argument(
        "--points",
        type=_positive_int,
        default=25,
        metavar="N",
        help="log-spaced steps from 1e-1 to 1e-13 (default 25; the default step is added)",
    )
    out.add_argument(
        "--plot",
        type=plot_path,
        metavar="FILE",
        help="write a log-log plot of the curves to FILE, as .png, .svg or .pdf by its "
        'extension (needs pip install "layerkit[plot]")',
    )
    out.add_argument(
        "--json", action="store_true", help="print the sweep as JSON, and nothing else"
    )
    out.add_argument(
        "--quiet", action="store_true", help="print only the V sentence; no progress bar"
    )
    sweep.set_defaults(command="sweep")


def build_parser() -> argparse.ArgumentParser:
    """The `layerkit` argument parser (subcommands `check` and `sweep`)."""
    parser = _Parser(
        prog="layerkit",
        description="Gradient-check numpy networks with hand-written backward passes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"layerkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_check(commands)
    _add_sweep(commands)
    return parser
