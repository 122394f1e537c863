"""Step-size sweep: the error of a plain central difference against the step `h`.

The seed notebook checks its gradient with one fixed step `h = 1e-7` for every parameter.
Sweeping `h` shows why one step cannot be trusted blindly: the error of
`(f(theta + h e_i) - f(theta - h e_i)) / (2h)` is about `h^2 |f'''| / 6` (truncation, falls
as `h` shrinks) plus `eps |f| / h` (round-off, grows as `h` shrinks), a V on a log-log plot
with its floor near `h = eps^(1/3)` (about 6e-6 in float64, layerkit's default relative step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from layerkit._typing import ArrayLike, Float64Array
from layerkit.errors import ConfigError
from layerkit.gradcheck.probes import DEFAULT_STEP
from layerkit.sequential import Sequential

__all__ = ["DEFAULT_STEP", "V_DEPTH", "SweepResult", "default_steps", "step_sweep"]

V_DEPTH = 1e-3
"""A sweep has a V when its smallest ``difference`` lies at an inner step and is at most this
fraction of the ``difference`` at both ends (truncation at the largest step, round-off at the
smallest). A correct gradient's floor lies many orders below both; a wrong one's error stays
at the bug's size at every step, so the curve has no V."""


def default_steps(
    count: int = 25, largest: float = 1e-1, smallest: float = 1e-13
) -> tuple[float, ...]:
    """`count` log-spaced steps from `largest` down to `smallest`, plus layerkit's
    default step `eps^(1/3)` (about 6.06e-6), in decreasing order."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        msg = f"default_steps: 'count' must be an integer >= 2 (got {count!r})."
        raise ConfigError(msg)
    if not (0 < smallest < largest and math.isfinite(largest)):
        msg = (
            "default_steps: need 0 < 'smallest' < 'largest' (finite) "
            f"(got smallest={smallest!r}, largest={largest!r})."
        )
        raise ConfigError(msg)
    grid = np.logspace(math.log10(largest), math.log10(smallest), count)
    steps = {float(h) for h in grid}
    if smallest <= DEFAULT_STEP <= largest:
        steps.add(DEFAULT_STEP)
    return tuple(sorted(steps, reverse=True))


def _number(value: float) -> float | str:
    """A float for JSON: NaN and infinities become strings."""
    return value if math.isfinite(value) else str(value)


@attrs.frozen
class SweepResult:
    """Errors of a fixed-step central difference over all parameters, one per step.

    Attributes:
        steps: The absolute steps `h`, as given.
        difference: The seed's `||g - n|| / (||g|| + ||n||)` at each step.
        max_rel_error: The largest `|g_i - n_i| / max(|g_i|, |n_i|)` at each step (0 where
            both are 0).
        parameters: The number of entries differentiated.
        loss: The loss at the unperturbed point.
        analytic_norm: `||g||`.
    """

    steps: tuple[float, ...]
    difference: tuple[float, ...]
    max_rel_error: tuple[float, ...]
    parameters: int
    loss: float
    analytic_norm: float

    @property
    def best_index(self) -> int | None:
        """Index of the step with the smallest finite `difference` (None if none is finite)."""
        values = np.array(self.difference, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            return None
        return int(np.argmin(np.where(finite, values, np.inf)))

    @property
    def best_step(self) -> float | None:
        """The step with the smallest `difference` (None if none is finite)."""
        index = self.best_index
        return None if index is None else self.steps[index]

    @property
    def has_v(self) -> bool:
        """True when the ``difference`` falls to a floor at an inner step and rises on both
        sides (by at least ``1 / V_DEPTH``): truncation and round-off, and a correct gradient
        between them. False when it never falls far: the analytic gradient is wrong."""
        best = self.best_index
        if best is None or best in (0, len(self.steps) - 1):
            return False
        floor = self.difference[best]
        ends = (self.difference[0], self.difference[-1])
        return all(not math.isfinite(end) or floor <= V_DEPTH * end for end in ends)

    @property
    def default_step(self) -> float:
        """layerkit's default (relative) step `eps^(1/3)`, for comparison."""
        return float(DEFAULT_STEP)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN and infinities as strings)."""
        best = self.best_index
        return {
            "parameters": self.parameters,
            "loss": _number(self.loss),
            "analytic_norm": _number(self.analytic_norm),
            "default_step": self.default_step,
            "best_step": None if best is None else self.steps[best],
            "best_difference": None if best is None else _number(self.difference[best]),
            "has_v": self.has_v,
            "points": [
                {"step": h, "difference": _number(d), "max_rel_error": _number(r)}
                for h, d, r in zip(self.steps, self.difference, self.max_rel_error, strict=True)
            ],
        }


def _check_steps(steps: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(h) for h in steps)
    except (TypeError, ValueError):
        msg = f"step_sweep: 'steps' must be a sequence of positive numbers (got {steps!r})."
        raise ConfigError(msg) from None
    if not values or not all(math.isfinite(h) and h > 0 for h in values):
        msg = f"step_sweep: 'steps' must be one or more positive finite numbers (got {steps!r})."
        raise ConfigError(msg)
    return values


def _errors(analytic: Float64Array, numeric: Float64Array) -> tuple[float, float]:
    """The seed's `difference` and the max relative error of `numeric` against `analytic`."""
    numerator = float(np.linalg.norm(analytic - numeric))
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    if denominator == 0.0:
        difference = 0.0 if numerator == 0.0 else math.nan
    else:
        difference = numerator / denominator
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    gap = np.abs(analytic - numeric)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, gap / scale, np.where(gap == 0, 0.0, np.nan))
    max_rel = float(np.max(relative)) if relative.size else 0.0  # NaN propagates
    return difference, max_rel


def step_sweep(
    model: Sequential,
    x: ArrayLike,
    y: ArrayLike,
    steps: Sequence[float] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Central differences of `model`'s mean loss with a fixed absolute step, per step.

    For each `h` in `steps` and each parameter entry `i` (all of them, as the seed does):
    `n_i = (L(theta + h e_i) - L(theta - h e_i)) / (2h)`, compared with the analytic gradient
    `g` of `model.loss_and_grad`. Runs on a float64 copy: `model` is never modified.
    Stochastic layers act as the identity (no masks), as in `loss_value`.

    Args:
        model: A [`Sequential`][layerkit.Sequential] with a loss.
        x: Inputs, `(m, in)`.
        y: Targets, `(m, out)`.
        steps: Positive numbers; [`default_steps`][layerkit.sweep.default_steps] when None.
        progress: Called as `progress(done, total)` after each step, if given.

    Returns:
        One `difference` and `max_rel_error` per step.

    Raises:
        ConfigError: `model` is not a `Sequential`, or a step is not a positive number.
    """
    if not isinstance(model, Sequential):
        msg = f"step_sweep: 'model' must be a Sequential, got {type(model).__name__}."
        raise ConfigError(msg)
    values = default_steps() if steps is None else _check_steps(steps)
    work = model.copy().astype(np.float64)
    inputs = np.asarray(work.check_input(x), dtype=np.float64)
    loss, grads = work.loss_and_grad(inputs, y)
    names = work.param_spec.names
    analytic = (
        np.concatenate([np.asarray(grads[n], dtype=np.float64).reshape(-1) for n in names])
        if names
        else np.zeros(0)
    )
    # The live float64 arrays: each perturbation moves one entry (`.flat`, any memory layout)
    # and restores it exactly (theta + h - h need not round back to theta).
    live = [work.params()[n] for n in names]
    differences: list[float] = []
    max_rel: list[float] = []
    for done, h in enumerate(values):
        if progress is not None:
            progress(done, len(values))
        numeric = np.empty_like(analytic)
        position = 0
        for array in live:
            flat = array.flat
            for j in range(array.size):
                base = float(flat[j])
                flat[j] = base + h
                plus = work.loss_value(inputs, y)
                flat[j] = base - h
                minus = work.loss_value(inputs, y)
                flat[j] = base
                numeric[position] = (plus - minus) / (2.0 * h)
                position += 1
        difference, worst = _errors(analytic, numeric)
        differences.append(difference)
        max_rel.append(worst)
    if progress is not None:
        progress(len(values), len(values))
    return SweepResult(
        steps=values,
        difference=tuple(differences),
        max_rel_error=tuple(max_rel),
        parameters=int(analytic.shape[0]),
        loss=float(loss),
        analytic_norm=float(np.linalg.norm(analytic)),
    )
