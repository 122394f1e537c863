"""The two commands: `check` (a verdict, an exit code) and `sweep` (error against step)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from layerkit.cli.case import Case, build_case, check_memory
from layerkit.cli.exit_codes import EXIT_CODES, EXIT_PASS
from layerkit.cli.flags import OPTION_FLAGS, options_from_args
from layerkit.cli.progress import progress_bar
from layerkit.cli.sweep_output import format_sweep, v_sentence, write_plot
from layerkit.errors import ConfigError
from layerkit.gradcheck import check_layers, check_model
from layerkit.gradcheck.report import GradCheckReport, LayersReport
from layerkit.sweep import default_steps, step_sweep

BYTES_PER_SWEEP_STEP = 160
"""Memory per `sweep` step: the step itself, its Python float in the step set, and two
results."""


def _print_json(data: Mapping[str, Any]) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def summary(report: GradCheckReport | LayersReport) -> str:
    """The verdict line: what passed, which tensors (and layers) fail, or why inconclusive."""
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


def case_from_args(args: argparse.Namespace, *, dtype: str | None = None) -> Case:
    """The `Case` the case options describe."""
    return build_case(
        args.arch,
        batch=args.batch,
        seed=args.seed or 0,
        dtype=dtype,
        seed_bugs=args.inject_seed_bugs,
        model=args.model,
        params=args.params,
        data=args.data,
    )


def run_check(args: argparse.Namespace) -> int:
    """`layerkit check`: check the case, print the report, return the verdict's exit code."""
    case = case_from_args(args, dtype=args.dtype)
    options = options_from_args(args, OPTION_FLAGS)
    quiet = args.json or args.quiet
    what = "layers" if args.per_layer else f"{case.model.param_spec.size} parameters"
    bar = progress_bar(f"checking {what}", quiet=quiet)
    report: GradCheckReport | LayersReport
    try:
        if args.per_layer:
            report = check_layers(case.model, case.x, progress=bar, **options)
        else:
            report = check_model(case.model, case.x, case.y, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()
    args.exit_code = EXIT_CODES[report.verdict]
    if args.json:
        _print_json(report.to_dict())
    elif args.quiet:
        print(summary(report))
    else:
        print(f"layerkit check: {case.description}")
        print()
        print(report)
        print()
        print(summary(report))
    return EXIT_CODES[report.verdict]


def run_sweep(args: argparse.Namespace) -> int:
    """`layerkit sweep`: the error-vs-step table (or JSON), the V sentence, the plot if asked."""
    args.exit_code = EXIT_PASS
    if args.points < 2:
        raise ConfigError(f"--points must be 2 or more (got {args.points}).")
    check_memory(BYTES_PER_SWEEP_STEP * args.points, f"--points {args.points}")
    case = case_from_args(args)
    steps = default_steps(args.points)
    bar = progress_bar(f"sweeping {len(steps)} steps", quiet=args.json or args.quiet)
    try:
        result = step_sweep(case.model, case.x, case.y, steps, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.plot:
        write_plot(result, args.plot, f"central difference error vs step: {case.description}")
    if args.json:
        _print_json(result.to_dict())
        return EXIT_PASS
    if args.quiet:
        print(v_sentence(result))
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
    print(v_sentence(result))
    if args.plot:
        print(f"plot written to {args.plot}")
    return EXIT_PASS
