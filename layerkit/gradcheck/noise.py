"""How noisy is the loss? Measured, not assumed, from a few evaluations along one line.

The estimator is the difference-table method of Moré and Wild, "Estimating computational
noise", SIAM J. Sci. Comput. 33(3), 2011 (ECnoise). Sample `f` at `2k + 1` equally spaced
points `t_i = (i - k) * delta`. For a smooth `f` the `j`-th differences of its smooth part
shrink like `delta**j`, while those of independent noise of size `sigma` keep a variance of
`sigma**2 / gamma_j` with `gamma_j = (j!)**2 / (2j)!`. So
`sigma_j = sqrt(gamma_j * mean(diff_j**2))` levels off at the noise: the first `j` where
three consecutive levels agree within a factor 4, and the differences change sign (noise, not
a smooth trend), gives `sigma`.

Too few distinct values mean `delta` is too small (the loss is quantized at that scale): the
caller retries with a larger one. No plateau means the smooth part dominates every order;
since each level's square is about the noise variance plus the smooth part's, the smallest
level is then still an upper bound, which is safe to use: an overestimated noise can make a
verdict inconclusive, never a false pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from enum import Enum

import attrs
import numpy as np

from layerkit._typing import Float64Array

PLATEAU = 4.0
"""Three consecutive noise levels within this factor of each other form a plateau."""


class Spacing(Enum):
    """Why a noise estimate failed: the spacing was too small (quantized values)."""

    TOO_SMALL = "too small"


@attrs.frozen
class Level:
    """A noise level: `plateau` (measured) or an upper `bound` (the smooth part dominated
    every difference order, so the smallest level bounds the noise from above)."""

    sigma: float
    kind: str


def ecnoise(values: Float64Array) -> Level | Spacing:
    """The noise level of `f` from `values` `(2k + 1,)` at equally spaced points.

    Each level's expected square is the noise variance plus the smooth part's, so without a
    plateau the smallest level from order 2 on is an upper bound.

    Args:
        values: `f` at the points `(2k + 1,)`, in order (fewer than 5, or any NaN/Inf,
            give an infinite `bound`).

    Returns:
        A `Level` (its `sigma` is 0.0 when every difference of some order vanishes: the
            values are exactly polynomial), or `Spacing.TOO_SMALL` when half the values
            repeat.
    """
    table = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    count = len(table)  # a handful of values: plain floats beat numpy calls here
    if count < 5 or not all(math.isfinite(v) for v in table):
        return Level(float("inf"), "bound")
    repeats = sum(1 for a, b in itertools.pairwise(table) if a == b)
    if repeats >= count / 2:
        return Spacing.TOO_SMALL
    unit = max(abs(v) for v in table)  # differences of values near 1e308 must not overflow
    table = [v / unit for v in table]
    levels: list[float] = []
    sign_change: list[bool] = []
    gamma = 1.0
    for j in range(1, count):
        table = [b - a for a, b in itertools.pairwise(table)]
        gamma *= 0.5 * j / (2 * j - 1)
        levels.append(math.sqrt(gamma * sum(d * d for d in table) / len(table)))
        sign_change.append(min(table) < 0 < max(table))
        if levels[-1] == 0.0:
            return Level(0.0, "plateau")
    for j in range(count - 3):
        window = levels[j : j + 3]
        if max(window) <= PLATEAU * min(window) and sign_change[j]:
            return Level(unit * max(window), "plateau")
    return Level(unit * min(levels[1:]), "bound")


TRIES = 3
"""Spacings tried before the noise is taken from the floor."""

RESPACE = 100.0
"""How much the spacing changes after a failed try."""


def measure(
    losses_along: Callable[[Float64Array], tuple[Float64Array, Float64Array]],
    f0: float,
    delta: float,
    floor: float,
    *,
    points: int = 3,
) -> tuple[float, str, float]:
    """The loss's noise along one line, from `2 * points` evaluations per try.

    A spacing that crosses a reported kink is cut to stay inside it; one that gives
    quantized values grows `RESPACE` times.

    Args:
        losses_along: `losses_along(offsets) -> (losses, margins)`, the loss at `offsets`
            `(2 * points,)` along the line and each move's kink margin (see
            `layerkit.gradcheck.numeric.Evaluate`).
        f0: The loss at the point.
        delta: The first spacing.
        floor: The smallest noise believed (about one ulp of the loss).
        points: Evaluations on each side of the point.

    Returns:
        `(sigma, how, spacing)`: `sigma` at least `floor`; `how` says where it came from;
            `spacing` the last one evaluated (its points can be reused).
    """
    steps = np.concatenate([np.arange(-points, 0), np.arange(1, points + 1)]).astype(float)
    best = (float("inf"), "")
    evaluated = delta
    for _ in range(TRIES):
        losses, margins = losses_along(steps * delta)
        evaluated = delta
        if np.min(margins) <= 1:  # the line crossed a reported kink: stay well inside it
            room = float(np.min(margins * np.abs(steps) * delta))
            if room == 0.0:
                break
            delta = room / (2 * points)
            continue
        found = ecnoise(np.concatenate([losses[:points], [f0], losses[points:]]))
        if found is Spacing.TOO_SMALL:
            delta *= RESPACE
            continue
        assert isinstance(found, Level)
        if found.sigma < best[0]:
            how = "measured" if found.kind == "plateau" else "bounded above"
            best = (found.sigma, f"{how} (ECnoise, spacing {delta:.1e})")
        if found.sigma <= LOOSE_BOUND * floor:
            break
        # Far above round-off: real noise stays at a smaller spacing, while a slope jump (an
        # unreported kink on the line) or curvature shrinks with it. Keep the smallest.
        delta /= RESPACE
    if np.isfinite(best[0]):
        return max(best[0], floor), best[1], evaluated
    how = f"assumed ({ASSUMED_ULPS:g} ulps: no usable measurement)"
    return ASSUMED_ULPS * floor, how, evaluated


LOOSE_BOUND = 64.0
"""A level within this many floors (ulps) is kept; a larger one is checked again at a 100x
smaller spacing, and the smallest level seen is taken."""

ASSUMED_ULPS = 8.0
"""The noise taken, in ulps of the loss, when no spacing gives a measurement."""
