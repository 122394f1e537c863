"""Directions through parameter space, and the loss's noise measured along a line.

Fast mode probes a few directions over all parameters (the first balanced per tensor, the
others seeded random); every check measures the loss's noise on one line first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.errors import NonFiniteError
from layerkit.gradcheck import noise as loss_noise
from layerkit.gradcheck.numeric import probe
from layerkit.gradcheck.objective import Objective, random_scaled_signs
from layerkit.gradcheck.options import CheckOptions
from layerkit.gradcheck.probes import Evaluate, Noise, ProbeResult, gradient_scale


def nan_where_nonfinite(losses: Evaluate) -> Evaluate:
    """`losses`, except that a perturbation whose forward overflows (a layer refuses the
    NaN/Inf activation it is handed) gets a NaN loss, judged non-finite, instead of aborting
    the check; the other perturbations of the batch are evaluated one by one."""
    return functools.partial(_nan_where_nonfinite, losses)


def _nan_where_nonfinite(
    losses: Evaluate, ids: IntArray, offsets: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """`nan_where_nonfinite(losses)(ids, offsets)` (no closure over itself: no reference
    cycle keeps the objective alive after a check)."""
    try:
        return losses(ids, offsets)
    except NonFiniteError:
        if ids.shape[0] == 1:
            return np.array([np.nan]), np.array([np.inf])
        parts = [
            _nan_where_nonfinite(losses, ids[k : k + 1], offsets[k : k + 1])
            for k in range(ids.shape[0])
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def random_direction(
    objective: Objective, names: tuple[str, ...], rng: np.random.Generator
) -> dict[str, Float64Array]:
    """Random signs times `max(1, |theta|)` over the tensors `names`, zero elsewhere."""
    direction: dict[str, Float64Array] = {}
    for name in objective.names:
        values = objective.values[name]
        if name in names:
            direction[name] = random_scaled_signs(values, rng)
        else:
            direction[name] = np.zeros_like(values)
    return direction


def _balanced_direction(
    objective: Objective, names: tuple[str, ...], analytic: Mapping[str, Float64Array]
) -> dict[str, Float64Array]:
    """`sign(g_i) / sum_T |g|` on each tensor `T` of `names`: every tensor adds exactly
    1 to the analytic slope, with no cancellation, so a relative error `e` in any one
    tensor's gradient moves the slope by `e` out of `len(names)`, however small or large
    that tensor is (with random signs a big tensor would drown a small one's bug)."""
    direction: dict[str, Float64Array] = {}
    for name in objective.names:
        g = np.nan_to_num(analytic[name], nan=0.0, posinf=0.0, neginf=0.0)
        total = float(np.sum(np.abs(g)))
        if name in names and total > 0 and np.isfinite(total):
            direction[name] = np.sign(g) / total
        else:
            direction[name] = np.zeros_like(objective.values[name])
    return direction


def slope_along(
    analytic: Mapping[str, Float64Array], direction: Mapping[str, Float64Array]
) -> float:
    """The analytic directional derivative `sum(g * d)`."""
    return sum(float(np.sum(analytic[n] * direction[n])) for n in direction if np.any(direction[n]))


MIN_SPACING = 1e-10
"""Smallest relative spacing of a noise line or first directional step."""


def _spacing(slope: float, sigma: float, options: CheckOptions) -> float:
    """A first step along a direction of analytic slope `slope`: the loss must move by many
    times its noise `sigma` for the slope to be resolved at `rtol`, and no more, so that
    the step stays small (inside kinks, away from curvature)."""
    resolution = options.rtol * abs(slope) + options.atol
    if not resolution > 0 or not np.isfinite(resolution):
        return options.step
    wanted = 4 * options.safety * sigma / resolution
    if not np.isfinite(wanted) or wanted <= 0:
        return options.step
    return float(np.clip(wanted, MIN_SPACING, options.step))


def measure_noise(
    objective: Objective,
    along: Callable[[Float64Array], tuple[Float64Array, Float64Array]],
    f0: float,
    spacing: float,
    *,
    points: int,
) -> tuple[Noise, float]:
    """The loss's noise from `along(offsets) -> (losses, margins)` on one line, first at
    `spacing`; and the spacing finally evaluated."""
    sigma, how, used = loss_noise.measure(along, f0, spacing, _floor(objective, f0), points=points)
    relative = sigma / abs(f0) if f0 != 0 and np.isfinite(f0) else 0.0
    return Noise(sigma=sigma, relative=relative, source=how), used


def _floor(objective: Objective, f0: float) -> float:
    """The smallest noise believed: about one ulp of the loss at the point."""
    return objective.loss_eps * abs(f0)


UNMEASURED = Noise(sigma=float("nan"), source="not measured: the loss is not finite")
"""The noise of a loss that is NaN/Inf at the point (every probe is then non-finite)."""


def directions_evaluate(
    objective: Objective, directions: list[dict[str, Float64Array]]
) -> Evaluate:
    """Losses along `directions`, each `(direction, offset)` evaluated once (memoised:
    the noise line and the probe share their points)."""
    memo: dict[tuple[int, float], tuple[float, float]] = {}

    @nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        keys = [(int(i), float(t)) for i, t in zip(ids, offsets, strict=True)]
        for key in dict.fromkeys(k for k in keys if k not in memo):
            loss, margin = objective.direction_losses(directions[key[0]], np.array([key[1]]))
            memo[key] = (float(loss[0]), float(margin[0]))
        return (
            np.array([memo[k][0] for k in keys]),
            np.array([memo[k][1] for k in keys]),
        )

    return evaluate


def directions_probe(
    objective: Objective,
    names: tuple[str, ...],
    analytic: Mapping[str, Float64Array],
    f0: float,
    noise: Noise | None,
    options: CheckOptions,
    rng: np.random.Generator,
) -> tuple[ProbeResult, Noise]:
    """Probe `options.directions` directions over the tensors `names`.

    The first direction is balanced (see `_balanced_direction`), the others random. Without
    a `noise`, it is measured first along the first direction (whose points the probe
    reuses).

    Returns:
        The probes' result, arrays `(options.directions,)`, and the noise used.
    """
    directions = [_balanced_direction(objective, names, analytic)] + [
        random_direction(objective, names, rng) for _ in range(options.directions - 1)
    ]
    slopes = np.array([slope_along(analytic, d) for d in directions])
    evaluate = directions_evaluate(objective, directions)
    if noise is None and not np.isfinite(f0):
        noise = UNMEASURED
    spacing0 = None
    if noise is None:  # measured on direction 0's own stencil (+-w, +-2w): no extra cost
        noise, spacing0 = measure_noise(
            objective,
            lambda offsets: evaluate(np.zeros(offsets.shape[0], dtype=np.intp), offsets),
            f0,
            _spacing(slopes[0], _floor(objective, f0), options),
            points=2,
        )
    first = np.array([_spacing(slope, noise.sigma, options) for slope in slopes])
    if spacing0 is not None:
        first[0] = spacing0
    probed = probe(
        evaluate,
        slopes,
        np.zeros(options.directions),
        np.ones(options.directions),
        f0,
        options.tolerance,
        noise,
        first=first,
        grad_eps=objective.grad_eps,
    )
    return probed, noise


def check_noise(
    objective: Objective,
    analytic: Mapping[str, Float64Array],
    f0: float,
    options: CheckOptions,
    rng: np.random.Generator,
) -> Noise:
    """The loss's noise, measured on one random line at the probes' own relative step (noise
    from a quantized term shows only at the scale where steps are taken): through the inputs
    where the objective can run the points as one stacked forward, else through every tensor
    (a tensor whose slopes would move the loss faster than `|f0|` per unit step is scaled
    down, so that no single tensor's curvature drowns the noise)."""
    if not np.isfinite(f0):
        return UNMEASURED
    line = objective.input_line(rng)
    if line is not None:
        evaluate = nan_where_nonfinite(lambda _, offsets: line(offsets))
    else:
        direction = random_direction(objective, objective.names, rng)
        for name, part in direction.items():  # no tensor may move the loss much faster
            speed = gradient_scale(analytic[name]) * float(np.max(np.abs(part), initial=0.0))
            if speed > abs(f0) > 0:
                part *= abs(f0) / speed
        evaluate = directions_evaluate(objective, [direction])

    def along(offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return evaluate(np.zeros(offsets.shape[0], dtype=np.intp), offsets)

    noise, _ = measure_noise(objective, along, f0, options.step, points=3)
    return noise
