"""Numeric differentiation along probes, with error estimates and per-probe verdicts.

A *probe* is a 1-D slice ``phi(t) = f(theta + t * direction)`` of the loss: one coordinate of a
tensor, or a random direction over all parameters. For each probe we know the analytic slope
``g = phi'(0)`` and judge it against numeric slopes, escalating only where needed:

1. Central difference at half-width ``w = step * scale``. Agreement within the tolerance plus
   the round-off bound passes at once (2 evaluations: the common case on correct code).
2. The same at ``2w``; Richardson extrapolation ``R`` and its error estimate ``|R - D(w)|``;
   the five-point fourth difference ``d4`` tests smoothness (a kink or noise makes it large).
   Smooth and agreeing within ``tol + safety * error`` passes.
3. The same at the small scale ``w / 16``. Comparing the two scales tells a kink (its ``d4/w``
   does not shrink with the step) from noise (grows like ``1/w``) from a bug (a smooth, stable
   numeric slope that disagrees). A loss that is bitwise flat over every stencil is probed at
   ``1e-2 * scale``: still flat means the loss ignores the entry (fail), else it is too
   quantized to differentiate here (noisy).

A probe never passes unless its numbers are finite.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

import attrs
import numpy as np

from layerkit._typing import BoolArray, Float64Array, Int8Array, IntArray

EPS64 = float(np.finfo(np.float64).eps)
DEFAULT_STEP = EPS64 ** (1.0 / 3.0)
"""Relative step ``eps^(1/3)`` (about 6.06e-6): balances truncation and round-off for a
central difference."""

ROUNDOFF_FACTOR = 8.0
"""Loss round-off assumed: ``ROUNDOFF_FACTOR * eps * |f|`` (a few ulps of the loss)."""

SMALL_SCALE = 1.0 / 16.0
"""The stage-3 stencil's half-width, relative to the first one."""

LARGE_STEP = 1e-2
"""Relative step of the stage-4 secant that confirms a failure at a large scale."""

SCALE_RATIO = 0.5
"""Stage 4: analytic this much closer to the large-step secant than the small-step estimate
is turns a failure into ``noisy``."""

NOISE_RATIO = 4.0
"""Stage 3: non-smoothness growing by more than this when the step shrinks 16x means noise."""

Evaluate = Callable[[IntArray, Float64Array], Float64Array]
"""``evaluate(probe_ids, offsets) -> losses``: the loss with probe ``probe_ids[k]`` moved by
``offsets[k]``, for each ``k``."""


class Status(IntEnum):
    """Verdict of one probe."""

    PASS = 0
    FAIL = 1
    KINK = 2
    NOISY = 3
    NONFINITE = 4


REASONS: dict[Status, str] = {
    Status.KINK: "kink",
    Status.NOISY: "noisy",
    Status.NONFINITE: "non-finite",
}


@attrs.frozen(eq=False)
class Tolerance:
    """How close analytic and numeric slopes must be: ``atol + rtol * max(|g|, |n|)``, plus
    ``safety`` times the numeric error estimate."""

    rtol: float = 1e-7
    atol: float = 0.0
    safety: float = 3.0
    step: float = DEFAULT_STEP


@attrs.frozen(eq=False)
class ProbeResult:
    """Per-probe outcome, arrays of shape ``(n,)``.

    **Fields:** ``numeric`` best numeric slope; ``error`` its estimated error; ``allowed`` the
    largest ``|analytic - numeric|`` that passes; ``status`` a :class:`Status` per probe;
    ``stage`` the stage that decided (1, 2, 3 or 4 for the flat probe); ``evaluations``.
    """

    numeric: Float64Array
    error: Float64Array
    allowed: Float64Array
    status: Int8Array
    stage: Int8Array
    evaluations: int


@attrs.frozen(eq=False)
class _Stencil:
    """Central differences at half-widths ``w`` and ``2w`` for a subset of probes."""

    w: Float64Array
    richardson: Float64Array
    truncation: Float64Array
    fourth_difference: Float64Array
    values: Float64Array  # (4, n): f(+w), f(-w), f(+2w), f(-2w)


def _offsets(base: Float64Array, h: Float64Array) -> Float64Array:
    """``(base + h) - base``: the step actually taken after rounding ``base + h``."""
    return np.asarray((base + h) - base, dtype=np.float64)


def _stencil(
    evaluate: Evaluate,
    ids: IntArray,
    base: Float64Array,
    h: Float64Array,
    f0: float,
    first: tuple[Float64Array, Float64Array] | None = None,
) -> _Stencil:
    """Evaluate ``f`` at ``+-h`` (unless given) and ``+-2h`` for probes ``ids``."""
    plus1, minus1 = _offsets(base, h), _offsets(base, -h)
    plus2, minus2 = _offsets(base, 2 * h), _offsets(base, -2 * h)
    if first is None:
        values = evaluate(np.tile(ids, 4), np.concatenate([plus1, minus1, plus2, minus2]))
        fp1, fm1, fp2, fm2 = np.split(values, 4)
    else:
        fp1, fm1 = first
        values = evaluate(np.tile(ids, 2), np.concatenate([plus2, minus2]))
        fp2, fm2 = np.split(values, 2)
    w1 = (plus1 - minus1) / 2
    w2 = (plus2 - minus2) / 2
    d1 = (fp1 - fm1) / (2 * w1)
    d2 = (fp2 - fm2) / (2 * w2)
    # Richardson for D(w) = f' + c w^2 + O(w^4), with the exact half-widths taken.
    richardson = (w2**2 * d1 - w1**2 * d2) / (w2**2 - w1**2)
    fourth = fm2 - 4 * fm1 + 6 * f0 - 4 * fp1 + fp2
    return _Stencil(
        w=w1,
        richardson=richardson,
        truncation=np.abs(richardson - d1),
        fourth_difference=fourth,
        values=np.stack([fp1, fm1, fp2, fm2]),
    )


@np.errstate(invalid="ignore", divide="ignore", over="ignore")  # NaN/Inf are judged
def probe(
    evaluate: Evaluate,
    analytic: Float64Array,
    base: Float64Array,
    scale: Float64Array,
    f0: float,
    tolerance: Tolerance,
    *,
    loss_eps: float = EPS64,
    grad_eps: float = EPS64,
) -> ProbeResult:
    """Judge ``n`` analytic slopes against numeric ones.

    **Arguments:** ``analytic`` ``(n,)`` slopes; ``base`` ``(n,)`` the probed values (0 for
    directions), used to round steps exactly; ``scale`` ``(n,)`` step scale per probe
    (``max(1, |theta_i|)``); ``f0`` the loss at the point; ``loss_eps`` / ``grad_eps`` the
    machine epsilon of the loss and of the analytic gradient.

    **Returns:** a :class:`ProbeResult`.
    """
    n = analytic.shape[0]
    g = analytic.astype(np.float64)
    numeric = np.full(n, np.nan)
    error = np.full(n, np.nan)
    allowed = np.full(n, np.nan)
    status = np.full(n, Status.NONFINITE, dtype=np.int8)
    stage = np.ones(n, dtype=np.int8)
    evaluations = 0
    rtol = max(tolerance.rtol, 8 * grad_eps)

    def tol(ids: IntArray, estimate: Float64Array) -> Float64Array:
        return np.asarray(tolerance.atol + rtol * np.maximum(np.abs(g[ids]), np.abs(estimate)))

    def noise(values: Float64Array) -> Float64Array:
        """Round-off of the loss over the evaluated points: ``ROUNDOFF_FACTOR * eps * |f|``."""
        biggest = np.max(np.abs(values), axis=0, initial=abs(f0))
        return np.asarray(ROUNDOFF_FACTOR * loss_eps * biggest)

    # Stage 1: central difference at w.
    ids = np.arange(n)
    h = tolerance.step * scale
    plus, minus = _offsets(base, h), _offsets(base, -h)
    values = evaluate(np.tile(ids, 2), np.concatenate([plus, minus]))
    evaluations += 2 * n
    fp, fm = np.split(values, 2)
    w = (plus - minus) / 2
    d1 = (fp - fm) / (2 * w)
    roundoff = noise(np.stack([fp, fm])) / w
    allowed1 = tol(ids, d1) + roundoff
    finite = np.isfinite(g) & np.isfinite(fp) & np.isfinite(fm) & np.isfinite(f0)
    numeric[:] = d1
    error[:] = roundoff
    allowed[:] = allowed1
    passed = finite & (np.abs(g - d1) <= allowed1)
    status[passed] = Status.PASS

    # Stage 2: add 2w, Richardson, smoothness.
    ids = np.flatnonzero(finite & ~passed)
    if ids.size == 0:
        return ProbeResult(numeric, error, allowed, status, stage, evaluations)
    big = _stencil(evaluate, ids, base[ids], h[ids], f0, first=(fp[ids], fm[ids]))
    evaluations += 2 * ids.size
    stage[ids] = 2
    sigma = noise(big.values)
    err2 = big.truncation + 1.5 * sigma / big.w
    allowed2 = tol(ids, big.richardson) + tolerance.safety * err2
    smooth2 = np.abs(big.fourth_difference) <= 16 * sigma
    finite2 = np.all(np.isfinite(big.values), axis=0)
    numeric[ids], error[ids], allowed[ids] = big.richardson, err2, allowed2
    status[ids[~finite2]] = Status.NONFINITE
    ok2 = finite2 & smooth2 & (np.abs(g[ids] - big.richardson) <= allowed2)
    status[ids[ok2]] = Status.PASS

    # Stage 3: a 16x smaller stencil tells kinks, noise and bugs apart.
    keep = finite2 & ~ok2
    ids, big, sigma, err2, allowed2, smooth2 = (
        ids[keep],
        _subset(big, keep),
        sigma[keep],
        err2[keep],
        allowed2[keep],
        smooth2[keep],
    )
    if ids.size == 0:
        return ProbeResult(numeric, error, allowed, status, stage, evaluations)
    small = _stencil(evaluate, ids, base[ids], h[ids] * SMALL_SCALE, f0)
    evaluations += 4 * ids.size
    stage[ids] = 3
    finite3 = np.all(np.isfinite(small.values), axis=0)
    sigma_s = noise(np.concatenate([big.values, small.values]))
    err_s = small.truncation + 1.5 * sigma_s / small.w
    allowed_s = tol(ids, small.richardson) + tolerance.safety * err_s
    smooth_s = np.abs(small.fourth_difference) <= 16 * sigma_s
    agrees_small = np.abs(g[ids] - small.richardson) <= allowed_s
    scales_agree = np.abs(small.richardson - big.richardson) <= tolerance.safety * (err2 + err_s)
    # Noise measured at the small scale, carried to the large one.
    measured_noise = np.abs(small.fourth_difference) / 16
    noise_at_w = tolerance.safety * 1.5 * measured_noise / big.w
    nu_big = np.abs(big.fourth_difference) / big.w
    nu_small = np.abs(small.fourth_difference) / small.w

    verdict = np.full(ids.size, Status.FAIL, dtype=np.int8)
    use_small = smooth_s & (~smooth2 | ~scales_agree)
    verdict[use_small & agrees_small] = Status.PASS
    noisy_small = smooth2 & ~smooth_s
    verdict[noisy_small & (np.abs(g[ids] - big.richardson) <= allowed2 + noise_at_w)] = Status.NOISY
    # Both stencils rough: a kink or noise, unless the disagreement is far beyond what a slope
    # jump (or noise) of the measured size could explain.
    rough = ~smooth2 & ~smooth_s
    explained = np.abs(g[ids] - big.richardson) <= allowed2 + tolerance.safety * nu_big
    kind = np.where(nu_small > NOISE_RATIO * nu_big, Status.NOISY, Status.KINK)
    verdict[rough & explained] = kind[rough & explained]
    verdict[~finite3] = Status.NONFINITE
    numeric[ids[use_small]] = small.richardson[use_small]
    error[ids[use_small]] = err_s[use_small]
    allowed[ids[use_small]] = allowed_s[use_small]

    # Stage 4: a failing probe's numeric slope must hold at a much larger step too. A loss with
    # a quantized term (naive BCE on a saturated sigmoid) is flat in that term at small steps
    # and gives a smooth, stable, wrong slope there; at 1e-2 * scale the secant sees the term
    # again and lands near the analytic slope. Analytic closer to that secant than the small-
    # step estimate is means the loss is too imprecise here (noisy), not that backward is wrong.
    suspects = verdict == Status.FAIL
    if np.any(suspects):
        sus_ids = ids[suspects]
        far = LARGE_STEP * scale[sus_ids]
        plus_far, minus_far = _offsets(base[sus_ids], far), _offsets(base[sus_ids], -far)
        far_values = evaluate(np.tile(sus_ids, 2), np.concatenate([plus_far, minus_far]))
        evaluations += 2 * sus_ids.size
        fp_far, fm_far = np.split(far_values, 2)
        secant = (fp_far - fm_far) / (plus_far - minus_far)
        best = numeric[sus_ids]
        nearer = np.abs(g[sus_ids] - secant) < SCALE_RATIO * np.abs(best - secant)
        imprecise = np.isfinite(secant) & nearer
        verdict[np.flatnonzero(suspects)[imprecise]] = Status.NOISY
        stage[sus_ids] = 4
    status[ids] = verdict
    return ProbeResult(numeric, error, allowed, status, stage, evaluations)


def _subset(stencil: _Stencil, keep: BoolArray) -> _Stencil:
    return _Stencil(
        w=stencil.w[keep],
        richardson=stencil.richardson[keep],
        truncation=stencil.truncation[keep],
        fourth_difference=stencil.fourth_difference[keep],
        values=stencil.values[:, keep],
    )
