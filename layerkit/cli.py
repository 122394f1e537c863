"""The ``layerkit`` command: gradient-check a network, or sweep the finite-difference step.

``layerkit check`` checks the seed notebook's fraud-detection net (its parameters and data) and
prints one row per tensor and a verdict; ``layerkit sweep`` shows the relative error of a plain
central difference against its step. Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 usage error
(also: a run that would need more memory than :data:`MEMORY_LIMIT_FRACTION` of the machine's,
or output that cannot be written), 130 interrupted (Ctrl-C). A reader that closes the pipe
early (``layerkit check | head -1``) does not change the exit code: it is still the verdict's.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import sys
import textwrap
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any, NoReturn

import attrs
import numpy as np

from layerkit import __version__
from layerkit._typing import Array
from layerkit.errors import ConfigError, LayerkitError
from layerkit.gradcheck import MODES, check_layers, check_model
from layerkit.gradcheck.report import GradCheckReport, LayersReport, Verdict
from layerkit.layers.linear import Linear, LinearCache
from layerkit.models import fraud_net_seed_case, mlp
from layerkit.sequential import Sequential
from layerkit.sweep import DEFAULT_STEP, SweepResult, default_steps, step_sweep

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
EXIT_CODES: dict[Verdict, int] = {
    "pass": EXIT_PASS,
    "fail": EXIT_FAIL,
    "inconclusive": EXIT_INCONCLUSIVE,
}

DEFAULT_BATCH = 8
"""Rows of synthetic data drawn for ``--arch`` when ``--batch`` is not given."""

SEED_BUGS: tuple[tuple[str, float], ...] = (("W2", 2.0), ("b1", 4.0))
"""The seed notebook's planted bugs: ``dW2`` doubled, ``db1`` times four."""

PROGRESS_AFTER_SECONDS = 1.0
"""Show a progress indicator (on a terminal) when a run is expected to take longer than this."""

MEMORY_LIMIT_FRACTION = 0.5
"""A command whose estimated memory exceeds this fraction of the machine's physical memory is
refused before anything is allocated (exit 2)."""

BYTES_PER_SWEEP_STEP = 160
"""Memory per ``sweep`` step: the step itself, its Python float in the step set, and two
results."""

BYTES_PER_PARAMETER = 64
"""Memory per parameter: the model, its float64 copy in the checker, gradients and the
checker's flat vectors (a generous estimate)."""

BYTES_PER_ACTIVATION = 64
"""Memory per (row x unit) of a check: the data, each layer's input and output in the caches,
their gradients, and the checker's perturbed copies (a generous estimate)."""

SECONDS_PER_EVALUATION = 30e-6
SECONDS_PER_SWEEP_EVALUATION = 150e-6
SECONDS_PER_UNIT_ROW = 2e-9
"""Rough cost model of one loss evaluation: a fixed overhead (the checker's stacked evaluations
are cheaper than the sweep's one forward each) plus a cost per (row x unit). Measured on the
fraud net and mlps up to 12k parameters, within a factor of about 3."""

_EPILOG = """\
exit codes: 0 pass, 1 fail, 3 inconclusive, 2 usage error (or too much memory, or
unwritable output), 130 interrupted

examples:
  layerkit check                         the seed notebook's fraud net, every entry
  layerkit check --inject-seed-bugs      the seed's two bugs: fails on W2 and b1
  layerkit check --per-layer             each layer alone, first faulty layer named
  layerkit check --arch 10,32,1 --mode fast --json
  layerkit sweep --plot sweep.png        error vs step: the V between truncation and round-off
"""


# -- the model under check -------------------------------------------------------------------


class ScaledGradLinear(Linear):
    """A :class:`~layerkit.Linear` whose backward multiplies some parameter gradients: a
    planted bug, like the seed notebook's. ``scale`` maps a local name (``W``, ``b``) to its
    factor; the forward is the wrapped layer's."""

    def __init__(self, base: Linear, scale: Mapping[str, float]) -> None:
        self.W = base.W.copy()
        self.b = base.b.copy()
        self.scale = dict(scale)

    def backward(self, cache: LinearCache, grad_out: Array) -> tuple[Array, dict[str, Array]]:
        grad_x, grads = super().backward(cache, grad_out)
        return grad_x, {name: g * self.scale.get(name, 1.0) for name, g in grads.items()}

    def astype(self, dtype: type[np.floating] | np.dtype[np.floating]) -> ScaledGradLinear:
        return ScaledGradLinear(super().astype(dtype), self.scale)


def inject_seed_bugs(model: Sequential) -> Sequential:
    """A copy of ``model`` with the seed's bugs planted in the Linear layers holding ``W2``
    (gradient doubled) and ``b1`` (gradient times four)."""
    factors: dict[int, dict[str, float]] = {}
    names = model.param_spec.names
    for name, factor in SEED_BUGS:
        if name not in names:
            msg = (
                f"--inject-seed-bugs needs parameters W2 and b1 (two or more Linear layers); "
                f"the model has {', '.join(names) or 'no parameters'}."
            )
            raise ConfigError(msg)
        ref = model.param_ref(name)
        factors.setdefault(ref.index, {})[ref.local] = factor
    layers = list(model.layers)
    for index, scale in factors.items():
        layer = layers[index]
        if not isinstance(layer, Linear):
            msg = f"--inject-seed-bugs: layer {index} ({layer.name}) must be a Linear layer."
            raise ConfigError(msg)
        layers[index] = ScaledGradLinear(layer, scale)
    return Sequential(layers, loss=model.loss)


def memory_limit() -> int:
    """The most bytes a command may expect to use: a fraction of physical memory (8 GiB when
    the system does not say)."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 16 << 30
    return int(physical * MEMORY_LIMIT_FRACTION)


def check_memory(needed: float, what: str) -> None:
    """Refuse (ConfigError, exit 2) a command estimated to need more than :func:`memory_limit`
    bytes, naming the option responsible (``what``)."""
    limit = memory_limit()
    if needed > limit:
        msg = (
            f"{what} would need about {needed / 1e9:.3g} GB, more than "
            f"{MEMORY_LIMIT_FRACTION:.0%} of this machine's memory; use a smaller value."
        )
        raise ConfigError(msg)


@attrs.frozen(eq=False)
class Case:
    """What a command checks: ``model``, data ``x`` ``(m, in)`` and ``y`` ``(m, out)``, and a
    one-line ``description``."""

    model: Sequential
    x: Array
    y: Array
    description: str


def build_case(
    arch: Sequence[int] | None,
    *,
    batch: int | None = None,
    seed: int = 0,
    dtype: str = "float64",
    seed_bugs: bool = False,
) -> Case:
    """The seed's fraud-net case, or (``arch`` given) a fresh ``mlp(arch, seed=seed)`` with
    ``batch`` rows of synthetic data: ``x ~ N(0, 1)`` and labels in {0, 1} drawn from
    ``numpy.random.default_rng([seed, 1])``. Parameters are cast to ``dtype``."""
    if arch is None:
        if batch is not None:
            msg = "--batch applies with --arch only (the seed case has its own 3 examples)."
            raise ConfigError(msg)
        seed_case = fraud_net_seed_case()
        model, x, y = seed_case.model, seed_case.x, seed_case.y
        what = "the seed notebook's fraud net 4->5->3->1 (its parameters and 3 examples)"
    else:
        rows = DEFAULT_BATCH if batch is None else batch
        widths = ",".join(map(str, arch))
        parameters = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(arch))
        check_memory(BYTES_PER_PARAMETER * parameters, f"--arch {widths}")
        check_memory(BYTES_PER_ACTIVATION * rows * sum(arch), f"--batch {rows} with --arch")
        model = mlp(arch, seed=seed)
        rng = np.random.default_rng([seed, 1])
        x = rng.standard_normal((rows, arch[0]))
        y = rng.integers(0, 2, size=(rows, arch[-1])).astype(np.float64)
        what = f"mlp {widths.replace(',', '->')} (seed {seed}, {rows} synthetic examples)"
    model = model.astype(np.dtype(dtype))
    if seed_bugs:
        model = inject_seed_bugs(model)
        what += ", with the seed's bugs planted (dW2 x2, db1 x4)"
    count = model.param_spec.size
    return Case(model, x, y, f"{what}: {count} parameters, {dtype}")


# -- progress ----------------------------------------------------------------------------------


def _units(model: Sequential, m: int) -> int:
    """Activations per row summed over layers (plus the input width)."""
    width = model.in_features or 1
    total = width
    for layer in model.layers:
        width = layer.output_width(width)
        total += width
    return total


def expected_seconds(
    evaluations: int, model: Sequential, m: int, *, overhead: float = SECONDS_PER_EVALUATION
) -> float:
    """A rough estimate of the time ``evaluations`` loss evaluations of ``model`` on ``m`` rows
    take, ``overhead`` seconds each plus the arithmetic (only decides whether to show
    progress)."""
    per_evaluation = overhead + SECONDS_PER_UNIT_ROW * m * _units(model, m)
    return evaluations * per_evaluation


def _check_evaluations(model: Sequential, m: int, mode: str, samples: int, per_layer: bool) -> int:
    """About how many loss evaluations a check makes (2 per probe on correct code)."""
    spec = model.param_spec
    if mode == "exact":
        probes = spec.size
    elif mode == "sampled":
        probes = sum(min(t.size, samples) for t in spec)
    else:
        probes = 4 * len(spec)
    if per_layer:
        probes += m * _units(model, m) if mode == "exact" else samples * len(model.layers)
    return 2 * probes


class Spinner:
    """A one-line text spinner with elapsed seconds on ``stream``, erased at the end."""

    FRAMES = "|/-\\"

    def __init__(self, stream: IO[str], label: str, interval: float = 0.1) -> None:
        self.stream = stream
        self.label = label
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0
        self._width = 0

    def _draw(self, frame: str) -> None:
        text = f"\r{frame} {self.label} {time.monotonic() - self._start:.1f}s"
        self._width = max(self._width, len(text))
        self.stream.write(text)
        self.stream.flush()

    def _run(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            if self._stop.wait(self.interval):
                return
            self._draw(frame)

    def __enter__(self) -> Spinner:
        self._start = time.monotonic()
        self._draw(self.FRAMES[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.stream.write("\r" + " " * self._width + "\r")
        self.stream.flush()


def progress(label: str, seconds: float, *, quiet: bool) -> contextlib.AbstractContextManager[Any]:
    """A :class:`Spinner` on stderr when stderr is a terminal, the run is expected to take
    longer than :data:`PROGRESS_AFTER_SECONDS` and ``quiet`` is false; else nothing."""
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    if quiet or seconds <= PROGRESS_AFTER_SECONDS or not (callable(isatty) and isatty()):
        return contextlib.nullcontext()
    return Spinner(stream, label)


# -- argument parsing --------------------------------------------------------------------------


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


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return value


def _plot_path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    return text


def _rtol(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, 1]")
    return value


def _add_case_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to check (default: the seed notebook's fraud net)")
    group.add_argument(
        "--arch",
        type=_widths,
        metavar="WIDTHS",
        help="layer widths of a fresh mlp, e.g. 4,5,3,1 (ReLU between, sigmoid + BCE at the end)",
    )
    group.add_argument(
        "--batch",
        type=_positive_int,
        metavar="N",
        help=f"rows of synthetic data for --arch (default {DEFAULT_BATCH})",
    )
    group.add_argument(
        "--seed",
        type=_nonnegative_int,
        default=0,
        metavar="N",
        help="seed of the --arch parameters and data, and of the checker's random choices "
        "(default 0)",
    )
    group.add_argument(
        "--inject-seed-bugs",
        action="store_true",
        help="plant the seed notebook's two bugs: dW2 doubled, db1 times four",
    )


def _wrap(text: str) -> str:
    """A description paragraph wrapped for the raw help formatter."""
    return textwrap.fill(text, width=78)


def build_parser() -> argparse.ArgumentParser:
    """The ``layerkit`` argument parser (subcommands ``check`` and ``sweep``)."""
    parser = _Parser(
        prog="layerkit",
        description="Gradient-check numpy networks with hand-written backward passes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"layerkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser(
        "check",
        help="gradient-check a network: one row per tensor and a verdict",
        description=_wrap(
            "Gradient-check every parameter of a network against central differences and "
            "print one row per tensor (W1, b1, ...) and a verdict: pass, fail (which tensor, "
            "which entry, which layer) or inconclusive (why)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_options(check)
    how = check.add_argument_group("how to check")
    how.add_argument(
        "--mode",
        choices=MODES,
        default="exact",
        help="exact: every entry (default); sampled: --samples seeded entries per tensor; "
        "fast: a few directions over all parameters",
    )
    how.add_argument(
        "--samples",
        type=_positive_int,
        default=10,
        metavar="K",
        help="entries per tensor in sampled mode (and when fast mode localises a failure); "
        "default 10",
    )
    how.add_argument(
        "--per-layer",
        action="store_true",
        help="check each layer in isolation and name the first faulty layer",
    )
    how.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float64",
        help="the model's parameter dtype (the checker differentiates float64 copies)",
    )
    how.add_argument(
        "--rtol",
        type=_rtol,
        metavar="R",
        help="relative tolerance, in [0, 1] (default 1e-7)",
    )
    how.add_argument(
        "--json", action="store_true", help="print the report as JSON, and nothing else"
    )
    check.set_defaults(handler=run_check)

    sweep = commands.add_parser(
        "sweep",
        help="relative error of a central difference vs its step (truncation vs round-off)",
        description=_wrap(
            "Differentiate every parameter with a plain central difference and one fixed "
            "absolute step h (as the seed notebook does), for log-spaced h from 1e-1 to 1e-13, "
            "and print the seed's 'difference' and the max relative error against the "
            "analytic gradient at each h. Truncation error falls as h^2, round-off grows as "
            "eps/h: the curve is a V, with its floor near layerkit's default step eps^(1/3)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_case_options(sweep)
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
        type=_plot_path,
        metavar="FILE",
        help='write a log-log PNG of the curves to FILE (needs pip install "layerkit[plot]")',
    )
    out.add_argument(
        "--json", action="store_true", help="print the sweep as JSON, and nothing else"
    )
    sweep.set_defaults(handler=run_sweep)
    return parser


# -- commands ----------------------------------------------------------------------------------


def _print_json(data: Mapping[str, Any]) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def _summary(report: GradCheckReport | LayersReport) -> str:
    verdict = report.verdict.upper()
    if isinstance(report, LayersReport):
        if report.verdict == "fail":
            return f"{verdict}: faulty layer(s): {', '.join(report.faulty)}"
        tensors = [t for layer in report.layers for t in layer.report.tensors]
    else:
        if report.verdict == "fail":
            where = f" (in {', '.join(report.culprits)})" if report.culprits else ""
            return f"{verdict}: wrong gradient(s): {', '.join(report.failed)}{where}"
        tensors = list(report.tensors)
    if report.verdict == "pass":
        return f"{verdict}: every checked gradient matches its numeric estimate"
    reasons: dict[str, int] = {}
    for tensor in tensors:
        for reason, count in tensor.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    why = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "see the notes"
    return f"{verdict}: nothing fails, but some entries could not be judged ({why})"


def run_check(args: argparse.Namespace) -> int:
    """``layerkit check``: check the case, print the report, return the verdict's exit code."""
    case = build_case(
        args.arch,
        batch=args.batch,
        seed=args.seed,
        dtype=args.dtype,
        seed_bugs=args.inject_seed_bugs,
    )
    options: dict[str, Any] = {"mode": args.mode, "samples": args.samples, "seed": args.seed}
    if args.rtol is not None:
        options["rtol"] = args.rtol
    m = int(case.x.shape[0])
    evaluations = _check_evaluations(case.model, m, args.mode, args.samples, args.per_layer)
    seconds = expected_seconds(evaluations, case.model, m)
    report: GradCheckReport | LayersReport
    with progress(f"checking {case.model.param_spec.size} parameters", seconds, quiet=args.json):
        if args.per_layer:
            report = check_layers(case.model, case.x, **options)
        else:
            report = check_model(case.model, case.x, case.y, **options)
    args.exit_code = EXIT_CODES[report.verdict]
    if args.json:
        _print_json(report.to_dict())
    else:
        print(f"layerkit check: {case.description}")
        print()
        print(report)
        print()
        print(_summary(report))
    return EXIT_CODES[report.verdict]


def format_sweep(result: SweepResult) -> str:
    """The sweep as a table: step, difference, max relative error, and marks for the minimum
    and layerkit's default step."""
    best = result.best_index
    best_rel = (
        int(np.nanargmin(result.max_rel_error))
        if any(math.isfinite(r) for r in result.max_rel_error)
        else None
    )
    default_row = int(np.argmin([abs(math.log(h / DEFAULT_STEP)) for h in result.steps]))
    lines = [f"{'step h':>10}  {'difference':>10}  {'max rel err':>11}"]
    lines.append(f"{'-' * 10}  {'-' * 10}  {'-' * 11}")
    for index, (h, d, r) in enumerate(
        zip(result.steps, result.difference, result.max_rel_error, strict=True)
    ):
        marks = []
        if index == best:
            marks.append("minimum difference")
        if index == best_rel and best_rel != best:
            marks.append("minimum max rel err")
        if index == default_row:
            exact = math.isclose(h, DEFAULT_STEP, rel_tol=1e-12)
            marks.append("layerkit default eps^(1/3)" + ("" if exact else f" ~ {DEFAULT_STEP:.2e}"))
        mark = "  <- " + ", ".join(marks) if marks else ""
        lines.append(f"{h:>10.2e}  {d:>10.2e}  {r:>11.2e}{mark}")
    return "\n".join(lines)


def _write_plot(result: SweepResult, path: str, title: str) -> None:
    """A log-log PNG of both error curves against the step, the minimum and default marked."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        msg = '--plot needs matplotlib: pip install "layerkit[plot]"'
        raise ConfigError(msg) from None
    figure = Figure(figsize=(7.0, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = np.array(result.steps)
    for values, label, style in (
        (result.difference, "difference (seed's formula)", "o-"),
        (result.max_rel_error, "max relative error", "s--"),
    ):
        data = np.array(values, dtype=np.float64)
        shown = np.isfinite(data) & (data > 0)
        axes.loglog(steps[shown], data[shown], style, markersize=4, label=label)
    axes.axvline(DEFAULT_STEP, color="gray", linestyle=":", label="layerkit default eps^(1/3)")
    best = result.best_index
    if best is not None and result.difference[best] > 0:
        axes.loglog(
            [result.steps[best]], [result.difference[best]], "r*", markersize=12, label="minimum"
        )
    axes.set_xlabel("step h (absolute)")
    axes.set_ylabel("error vs analytic gradient")
    axes.set_title(textwrap.fill(title, width=90), fontsize=9)
    axes.invert_xaxis()
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as error:
        msg = f"--plot: cannot write {path!r}: {error.strerror or error}"
        raise ConfigError(msg) from None


def run_sweep(args: argparse.Namespace) -> int:
    """``layerkit sweep``: the error-vs-step table (or JSON), and the plot if asked."""
    args.exit_code = EXIT_PASS
    if args.points < 2:
        raise ConfigError(f"--points must be 2 or more (got {args.points}).")
    check_memory(BYTES_PER_SWEEP_STEP * args.points, f"--points {args.points}")
    case = build_case(args.arch, batch=args.batch, seed=args.seed, seed_bugs=args.inject_seed_bugs)
    steps = default_steps(args.points)
    m = int(case.x.shape[0])
    evaluations = 2 * case.model.param_spec.size * len(steps)
    seconds = expected_seconds(evaluations, case.model, m, overhead=SECONDS_PER_SWEEP_EVALUATION)
    with progress(f"sweeping {len(steps)} steps", seconds, quiet=args.json):
        result = step_sweep(case.model, case.x, case.y, steps)
    if args.plot:
        _write_plot(result, args.plot, f"central difference error vs step: {case.description}")
    if args.json:
        _print_json(result.to_dict())
        return EXIT_PASS
    print(f"layerkit sweep: {case.description}")
    print("central differences with one absolute step h for every parameter, as the seed does")
    print()
    print(format_sweep(result))
    print()
    print(
        "truncation error falls as h^2 (large h), round-off grows as eps/h (small h); "
        "the seed's fixed h = 1e-7 sits on the round-off side."
    )
    if args.plot:
        print(f"plot written to {args.plot}")
    return EXIT_PASS


def _say(text: str) -> None:
    """One line on stderr (``layerkit: ...``); a closed stderr is ignored."""
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
    """Run the ``layerkit`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    code: 0 pass, 1 fail, 3 inconclusive, 2 usage error (or too much memory, or output that
    cannot be written), 130 interrupted."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.error("choose a command: check or sweep")
    except SystemExit as stop:  # --help and --version (0), usage errors (2, already reported)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        code: int = args.handler(args)
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


if __name__ == "__main__":
    raise SystemExit(main())
