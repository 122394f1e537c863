"""How `layerkit sweep` shows its result: the table, one plain sentence on the V (or its
absence), and the plot, in the format its file extension names."""

from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

import numpy as np

from layerkit.errors import ConfigError
from layerkit.sweep import DEFAULT_STEP, SweepResult

PLOT_FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""Plot formats by file extension (matplotlib writes them all)."""


def plot_path(text: str) -> str:
    """argparse `type` of `--plot`: a file name ending in one of `PLOT_FORMATS`, in a folder
    that exists."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    suffix = Path(text).suffix.lower()
    if suffix not in PLOT_FORMATS:
        known = ", ".join(PLOT_FORMATS)
        shown = f"extension {suffix!r}" if suffix else "no extension"
        msg = f"{text!r} has {shown}; the format comes from it: use one of {known}"
        raise argparse.ArgumentTypeError(msg)
    folder = Path(text).parent
    if not folder.is_dir():  # said before the sweep runs, not after
        msg = f"{text!r}: the folder {str(folder)!r} does not exist"
        raise argparse.ArgumentTypeError(msg)
    return text


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


def v_sentence(result: SweepResult) -> str:
    """One plain sentence: the V and its floor, or that there is none and what that means."""
    best = result.best_index
    if best is None:
        return "NO V: the difference is NaN at every step; the loss or its gradient is not finite."
    floor, step = result.difference[best], result.steps[best]
    if result.has_v:
        return (
            f"V: the difference falls to a floor of {floor:.1e} at h = {step:.1e} and rises on "
            "both sides, as it does for a correct gradient."
        )
    return (
        f"NO V: the difference never falls far below {floor:.1e} (its smallest, at "
        f"h = {step:.1e}), at any step: the gradient is wrong, not the step. "
        "Run layerkit check to see which tensor."
    )


def write_plot(result: SweepResult, path: str, title: str) -> None:
    """A log-log plot of both error curves against the step, minimum and default marked, in
    the format of `path`'s extension (`.png`, `.svg`, `.pdf`).

    Raises:
        ConfigError: Matplotlib is not installed, the extension is not one of those, or the
            file cannot be written.
    """
    fmt = PLOT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        msg = (
            f"--plot: {path!r}: the format comes from the extension: use {', '.join(PLOT_FORMATS)}."
        )
        raise ConfigError(msg)
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
    if not result.has_v:
        title += " - NO V: the gradient is wrong"
    axes.set_title(textwrap.fill(title, width=90), fontsize=9)
    axes.invert_xaxis()
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path, format=fmt, dpi=100)
    except OSError as error:
        msg = f"--plot: cannot write {path!r}: {error.strerror or error}"
        raise ConfigError(msg) from None
