"""Numeric differentiation along probes, with measured error bounds and per-probe verdicts.

A *probe* is a 1-D slice `phi(t) = f(theta + t * direction)` of the loss: one coordinate of a
tensor, or a random direction over all parameters. For each probe we know the analytic slope
`g = phi'(0)`, the loss's measured noise `sigma` (see `layerkit.gradcheck.noise`) and
a *gradient scale* (the largest analytic slope of the probe's tensor). Two numbers decide:

- the **tolerance** `tol = atol + rtol * max(|g|, |n|) + c * eps_g * scale`: how far the
  analytic slope may stray from the truth (the last term is the analytic gradient's own
  round-off, which matters for float32 backwards);
- the numeric slope `n` with its **error bound** `E` (truncation, measured by Richardson
  extrapolation, plus noise `sigma / w` at half-width `w`).

A probe **passes** only when `|g - n| <= tol + safety * E` *and* the bound resolves the
gradient: `safety * E <= max(tol, rtol * scale)`. It **fails** when `|g - n|` exceeds
`tol + safety * E` on a smooth, finite stencil that crosses no reported kink. Otherwise the
step is adapted and the probe tried again:

1. Central difference at `w` (2 evaluations; the common case on correct code ends here). The
   first `w` is `step * max(1, |theta|)`, enlarged when the measured noise needs it. Its
   bound `E` is the noise term alone: agreement within `tol` means the truncation is
   within it too, unless a bug happens to cancel the truncation exactly.
2. `+-2w` added: Richardson `R`, its truncation `|R - D(w)|`, the fourth difference for
   smoothness.
3. Then, per probe, a new `w`: smaller where truncation or roughness dominates, or where a
   perturbed evaluation crossed a kink reported by a layer (the step is cut to stay on one
   side), or where the loss is NaN/Inf (a domain boundary); larger where noise dominates.
4. When no step resolves the probe: `unresolved` (the numbers cannot tell), `kink`,
   `noisy` or `non-finite`. A suspected failure must give the same slope at a 4x wider
   stencil, and is re-examined by secants at `1e-2`, `1e-1` and `1` times the scale: a
   loss with a quantized term (naive BCE on a saturated sigmoid) is `noisy` there, not a
   failure.

A probe never passes unless its numbers are finite, resolved and on one side of every kink.
"""

from __future__ import annotations

import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.gradcheck.confirm import confirm_failure
from layerkit.gradcheck.probes import (
    EPS64,
    Evaluate,
    Noise,
    ProbeResult,
    Status,
    Tolerance,
)
from layerkit.gradcheck.stencil import Prober, measure_stencil, stencil_offsets

ROUGHNESS = 16.0
"""A stencil is smooth when its fourth difference is at most this many noise levels."""

SHRINK = 1.0 / 16.0
"""How much a rough stencil's step shrinks per retry."""

MAX_ROUNDS = 6
"""Adaptive rounds after the first central difference."""

LARGE_STEP = 1e-2
"""The largest relative first step the noise may ask for."""

MAX_STEP = 1e2
"""Largest relative half-width a noise-dominated probe may grow to."""

MIN_STEP = 1e-13
"""Smallest relative half-width a probe may shrink to before it is given up."""

CURVATURE_DROP = 4.0
"""Roughness falling by more than this when the step shrinks 16x (curvature: it falls about
4096x) means the stencil was too wide, not a kink: shrink again."""

NOISE_RATIO = 4.0
"""Roughness growing by more than this when the step shrinks 16x means noise, not a kink."""


def first_steps(
    analytic: Float64Array,
    scale: Float64Array,
    gradient_scale: Float64Array,
    tolerance: Tolerance,
    noise: Noise,
) -> Float64Array:
    """The first half-width per probe: `step * scale`, times `(noise / ulp)**(1/3)` for a
    loss noisier than one ulp (the balance of truncation and noise moves with the noise), and
    enlarged (up to `LARGE_STEP * scale`) until the noise error `safety * 4 * sigma / w`
    fits in the resolution."""
    size = np.maximum(np.abs(np.nan_to_num(analytic)), np.nan_to_num(gradient_scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        wanted = 4 * tolerance.safety * noise.sigma / (tolerance.rtol * size + tolerance.atol)
    wanted = np.where(np.isfinite(wanted), wanted, 0.0)
    noisier = np.cbrt(max(1.0, noise.relative / EPS64)) if np.isfinite(noise.relative) else 1.0
    step = tolerance.step * noisier
    return np.asarray(np.clip(wanted, step * scale, np.maximum(LARGE_STEP, step) * scale))


@np.errstate(invalid="ignore", divide="ignore", over="ignore")  # NaN/Inf are judged
def probe(
    evaluate: Evaluate,
    analytic: Float64Array,
    base: Float64Array,
    scale: Float64Array,
    f0: float,
    tolerance: Tolerance,
    noise: Noise,
    *,
    gradient_scale: Float64Array | None = None,
    first: Float64Array | None = None,
    grad_eps: float = EPS64,
) -> ProbeResult:
    """Judge `n` analytic slopes against numeric ones.

    Args:
        evaluate: The loss along the probes, see `Evaluate`.
        analytic: The analytic slopes `(n,)`.
        base: The probed values `(n,)` (0 for directions), used to round steps exactly.
        scale: The step scale per probe `(n,)`, `max(1, |theta_i|)`.
        f0: The loss at the point.
        tolerance: How close the slopes must be.
        noise: The loss's measured noise.
        gradient_scale: The largest analytic slope of each probe's tensor `(n,)` (default:
            the probe's own).
        first: The first half-widths `(n,)` (default: `first_steps`).
        grad_eps: The machine epsilon of the analytic gradient.

    Returns:
        The numeric slopes, their error bounds and a `Status` per probe, each `(n,)`.
    """
    n = analytic.shape[0]
    if gradient_scale is None:
        gradient_scale = np.abs(np.nan_to_num(analytic, nan=0.0, posinf=0.0, neginf=0.0))
    state = Prober(evaluate, analytic, base, scale, gradient_scale, f0, tolerance, noise, grad_eps)
    if n == 0 or not np.isfinite(f0):
        return state.result()
    h = (
        first
        if first is not None
        else first_steps(analytic, scale, gradient_scale, tolerance, noise)
    )

    # Round 1: central difference at w.
    ids = np.arange(n)
    plus, minus = stencil_offsets(base, h), stencil_offsets(base, -h)
    values, margins = state.run(np.tile(ids, 2), np.concatenate([plus, minus]))
    fp, fm = np.split(values, 2)
    w = (plus - minus) / 2
    d1 = (fp - fm) / (2 * w)
    sigma = noise.at(np.stack([fp, fm]))
    err1 = sigma / w
    tol1 = state.tol(ids, d1)
    allowed1 = tol1 + tolerance.safety * err1
    finite = np.isfinite(fp) & np.isfinite(fm) & ~state.bad_g
    clear = np.min(margins.reshape(2, n), axis=0) > 1
    state.record(ids, d1, err1, allowed1, w)
    resolved = tolerance.safety * err1 <= state.needed(ids, d1)
    passed = finite & clear & (np.abs(state.g - d1) <= allowed1) & resolved
    state.status[passed] = Status.PASS
    # Crossed a reported kink: restart inside it; otherwise reuse +-w and add +-2w.
    crossed = np.flatnonzero(~passed & ~clear)
    if crossed.size:
        room = np.min(
            margins.reshape(2, n)[:, crossed] * np.abs(np.stack([plus, minus]))[:, crossed], axis=0
        )
        state.status[crossed[room == 0]] = Status.KINK
        inside = crossed[room > 0]
        state.kink_limited[inside] = True
        if inside.size:
            _adapt(state, inside, room[room > 0] / 4, None)
    rest = np.flatnonzero(~passed & clear)
    if rest.size:
        _adapt(state, rest, h[rest], (fp[rest], fm[rest], margins.reshape(2, n)[:, rest]))
    return state.result()


def _adapt(
    state: Prober,
    ids: IntArray,
    h: Float64Array,
    known: tuple[Float64Array, Float64Array, Float64Array] | None,
) -> None:
    """Rounds 2..: Richardson stencils with a per-probe step until each probe is decided."""
    tolerance = state.tolerance
    safety = tolerance.safety
    g = state.g
    rough_before = np.full(ids.size, np.nan)  # |d4| / w at the previous rough round
    for round_number in range(2, MAX_ROUNDS + 2):
        st = measure_stencil(state, ids, h, known)
        known = None
        p1, m1, p2, m2 = st.offsets
        fp1, fm1, fp2, fm2 = st.values
        margins, w1 = st.margins, st.w
        richardson, error, sigma = st.estimate, st.error, st.sigma
        truncation, noise_error = st.truncation, st.noise_error
        values = st.values
        fourth = np.abs(fm2 - 4 * fm1 + 6 * state.f0 - 4 * fp1 + fp2)
        tol = state.tol(ids, richardson)
        allowed = tol + safety * error
        state.record(ids, richardson, error, allowed, w1)

        finite = np.all(np.isfinite(values), axis=0)
        offsets = np.abs(np.stack([p1, m1, p2, m2]))
        kink_room = np.min(np.where(np.isfinite(margins), margins * offsets, np.inf), axis=0)
        crossed = finite & (np.min(margins, axis=0) <= 1)
        smooth = finite & ~crossed & (fourth <= ROUGHNESS * sigma)
        bad_g = state.bad_g[ids]
        disagrees = bad_g | (np.abs(g[ids] - richardson) > allowed)
        resolved = safety * error <= state.needed(ids, richardson)
        last = round_number == MAX_ROUNDS + 1

        decided = np.zeros(ids.size, dtype=bool)
        new_h = h.copy()
        status = state.status

        # On a kink (an input exactly at it moved): nothing to do but say so.
        on_kink = crossed & (kink_room == 0)
        status[ids[on_kink]] = Status.KINK
        decided |= on_kink
        # Crossed a kink at distance d: retry with 2w well inside it.
        near_kink = crossed & ~on_kink
        new_h[near_kink] = kink_room[near_kink] / 4
        state.kink_limited[ids[near_kink]] = True

        # Smooth: a clear disagreement fails; a resolved agreement passes; else adapt.
        fail = smooth & disagrees
        status[ids[fail]] = Status.FAIL
        decided |= fail
        ok = smooth & ~disagrees & resolved
        status[ids[ok]] = Status.PASS
        decided |= ok
        adapt = smooth & ~disagrees & ~resolved
        new_h[adapt] = _better_step(
            h[adapt],
            truncation[adapt],
            noise_error[adapt],
            state.needed(ids, richardson)[adapt] / safety,
            state.scale[ids][adapt],
        )
        hopeless = adapt & (new_h == h)
        status[ids[hopeless]] = Status.UNRESOLVED
        decided |= hopeless

        # Rough (no kink reported): shrink. The roughness nu = |d4| / w tells why: curvature
        # on a scale finer than w makes it fall like w**3 as w shrinks (keep shrinking), a
        # kink keeps it (a slope jump), noise makes it grow like 1/w. Rough again without
        # falling: a kink or noise, unless the disagreement is far beyond what a slope jump
        # of the measured size explains.
        rough = finite & ~crossed & ~smooth
        nu = fourth / w1
        falling = nu * CURVATURE_DROP < rough_before
        twice = rough & np.isfinite(rough_before) & ~falling
        explained = np.abs(g[ids] - richardson) <= allowed + safety * nu
        kind = np.where(nu > NOISE_RATIO * rough_before, Status.NOISY, Status.KINK)
        unexplained = twice & ~explained & ~bad_g
        status[ids[twice & explained]] = kind[twice & explained]
        status[ids[unexplained]] = Status.FAIL
        decided |= twice
        rough_before = np.where(rough, nu, rough_before)
        new_h[rough & ~twice] = h[rough & ~twice] * SHRINK

        # NaN/Inf: a domain boundary inside the stencil; shrink.
        # A step wider than the value itself may flip its sign (log or sqrt of a positive
        # parameter): stay within a quarter of it.
        broken = ~finite
        size = np.abs(state.base[ids])
        inside = np.where(size < h, size / 4, np.inf)
        new_h[broken] = np.minimum(h * SHRINK, inside)[broken]
        status[ids[broken]] = Status.NONFINITE

        too_small = ~decided & (new_h < MIN_STEP * state.scale[ids])
        status[ids[too_small & crossed]] = Status.KINK
        status[ids[too_small & ~crossed & finite]] = Status.UNRESOLVED
        decided |= too_small
        if last:
            leftover = ~decided & ~broken
            status[ids[leftover & crossed]] = Status.KINK
            status[ids[leftover & ~crossed]] = np.where(
                rough[leftover & ~crossed], Status.KINK, Status.UNRESOLVED
            )
            decided[:] = True
        failing = ids[decided & (status[ids] == Status.FAIL) & ~bad_g]
        if failing.size:
            confirm_failure(state, failing)
        keep = ~decided
        ids, h, rough_before = ids[keep], new_h[keep], rough_before[keep]
        if ids.size == 0:
            return


def _better_step(
    h: Float64Array,
    truncation: Float64Array,
    noise_error: Float64Array,
    budget: Float64Array,
    scale: Float64Array,
) -> Float64Array:
    """A half-width that should resolve a smooth, agreeing, unresolved probe, or `h` itself
    when none can. Truncation scales like `h**2` and noise like `1/h`, so the error at
    `s * h` is about `T s**2 + N / s`, smallest at `s = (N / 2T)**(1/3)`; `budget` is the
    error that resolves the probe."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.cbrt(noise_error / (2 * truncation))
        s = np.where(np.isnan(s), 1.0, s)
        s = np.clip(s, MIN_STEP * scale / h, np.minimum(MAX_STEP * scale / h, 1e4))
        best_error = truncation * s**2 + noise_error / s
    moves = (best_error <= budget) & (np.abs(s - 1.0) > 1e-2)
    return np.where(moves, h * s, h)
