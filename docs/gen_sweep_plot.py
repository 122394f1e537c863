"""Regenerate docs/img/step_sweep.png: the error of a fixed-step central difference against
the step, on the seed notebook's fraud-net test case.

Two curves, both with one absolute step ``h`` for every one of the 47 parameters, as the seed
does: the seed's own ``gradient_check_n`` (its cost ``log(1 - A3)`` on probabilities, through
``layerkit.notebook``) and ``layerkit.sweep.step_sweep`` (the same net's loss computed from the
logits). Run from the repository root: ``python docs/gen_sweep_plot.py [OUTPUT.png]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit import notebook
from layerkit.sweep import DEFAULT_STEP, default_steps, step_sweep

OUTPUT = Path(__file__).resolve().parent / "img" / "step_sweep.png"
SEED_STEP = 1e-7
"""The seed notebook's fixed step."""
SEED_THRESHOLD = 1.2e-7
"""The seed notebook's pass mark on its difference."""


@attrs.frozen(eq=False)
class Curves:
    """The sweep: ``steps`` ``(k,)``; the seed formula's ``difference`` at each step for the
    seed's cost (``seed``) and for layerkit's loss from logits (``logits``)."""

    steps: npt.NDArray[np.float64]
    seed: npt.NDArray[np.float64]
    logits: npt.NDArray[np.float64]


def sweep_curves(points: int = 37) -> Curves:
    """Both curves over ``points`` log-spaced steps from 1e-1 to 1e-13 (plus ``eps^(1/3)``)."""
    steps = default_steps(points)
    case = lk.fraud_net_seed_case()
    logits = step_sweep(case.model, case.x, case.y, steps).difference
    X, Y, parameters = notebook.gradient_check_n_test_case()
    _, cache = notebook.forward_propagation_n(X, Y, parameters)
    gradients = notebook.backward_propagation_n(X, Y, cache)
    seed = [
        notebook.gradient_check_n(parameters, gradients, X, Y, epsilon=h, verbose=False)
        for h in steps
    ]
    return Curves(np.array(steps), np.array(seed), np.array(logits))


def draw(curves: Curves, path: Path) -> None:
    """Write the log-log plot of ``curves`` to ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    h = curves.steps
    axes.loglog(h, curves.seed, "o-", ms=3.5, color="tab:red", label="seed's cost, log(1 - A3)")
    axes.loglog(
        h, curves.logits, "s-", ms=3.5, color="tab:blue", label="layerkit's loss, from logits"
    )
    # Slope guides anchored on the logit curve: truncation ~ h^2, round-off ~ eps / h.
    big = (h <= 1e-2) & (h >= 1e-3)
    small = (h <= 1e-8) & (h >= 1e-12)
    c2 = float(np.median(curves.logits[big] / h[big] ** 2))
    c1 = float(np.median(curves.logits[small] * h[small]))
    guide = np.logspace(-1, -13, 200)
    axes.loglog(guide, c2 * guide**2, ":", color="gray", lw=1, label="~ h^2 (truncation)")
    axes.loglog(guide, c1 / guide, "--", color="gray", lw=1, label="~ eps/h (round-off)")
    axes.axvline(DEFAULT_STEP, color="tab:green", lw=1, label="eps^(1/3) = 6.06e-6")
    axes.axvline(SEED_STEP, color="tab:red", lw=1, ls="-.", label="seed's h = 1e-7")
    axes.axhline(SEED_THRESHOLD, color="tab:red", lw=0.8, ls=":", label="seed's threshold 1.2e-7")
    seed_at = float(curves.seed[np.argmin(np.abs(np.log(h / SEED_STEP)))])
    axes.annotate(
        f"seed: {seed_at:.3g}",
        (SEED_STEP, seed_at),
        xytext=(2e-5, 2e-6),
        fontsize=8,
        arrowprops={"arrowstyle": "->", "lw": 0.8},
    )
    axes.set_ylim(1e-12, 1.0)
    axes.set_xlim(2e-1, 5e-14)  # large steps on the left, as h shrinks to the right
    axes.set_xlabel("step h (the same absolute step for all 47 parameters)")
    axes.set_ylabel("difference = |g - n| / (|g| + |n|)")
    axes.set_title("Central differences on the seed's fraud net (correct backward)", fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=7.5, loc="upper center", ncols=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the sweep and write the plot to ``argv[0]`` (default docs/img/step_sweep.png)."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else OUTPUT
    curves = sweep_curves()
    draw(curves, path)
    best = int(np.argmin(curves.logits))
    print(
        f"wrote {path}: logit-loss minimum {curves.logits[best]:.2e} at h = {curves.steps[best]:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
