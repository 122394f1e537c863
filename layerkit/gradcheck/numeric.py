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

from collections.abc import Callable
from enum import IntEnum

import attrs
import numpy as np

from layerkit._typing import Float64Array, Int8Array, IntArray

EPS64 = float(np.finfo(np.float64).eps)
DEFAULT_STEP = EPS64 ** (1.0 / 3.0)
"""Relative step `eps^(1/3)` (about 6.06e-6): balances truncation and round-off for a
central difference."""

GRAD_ROUNDOFF = 64.0
"""The analytic gradient's round-off allowance: `GRAD_ROUNDOFF * eps_g * scale`, with
`eps_g` the gradient's machine epsilon and `scale` its tensor's largest slope. For a
float32 backward that is about 7.6e-6 of the tensor's gradient scale: float32 sums over a
batch of a few thousand rows stay inside it, even for entries whose terms cancel."""

ROUGHNESS = 16.0
"""A stencil is smooth when its fourth difference is at most this many noise levels."""

SHRINK = 1.0 / 16.0
"""How much a rough stencil's step shrinks per retry."""

MAX_ROUNDS = 6
"""Adaptive rounds after the first central difference."""

LARGE_STEP = 1e-2
"""The largest relative first step the noise may ask for."""

SECANT_STEPS = (1e-2, 1e-1, 1.0)
"""Relative steps of the secants that confirm a failure at large scales."""

STABLE_RATIO = 4.0
"""A suspected failure is re-measured at this many times its step: a bug's numeric slope is
the same there, a quantized loss's is not."""

FIRST_DRIFT = 0.03
"""The first secant's drift counts as a jump above this fraction of the stencil's error bound
grown to its step. Measured: on 150 random nets with a 1e-6 relative bug, real drifts stayed
below 0.0065 of it; a naive BCE's quantized terms mostly land far above."""

DRIFT_GROWTH = (10.0, 1000.0)
"""From one secant to the next (10x the step), a smooth loss's drift grows about 100x; growth
outside this range means jumps (a quantized term), not truncation."""

MAX_STEP = 1e2
"""Largest relative half-width a noise-dominated probe may grow to."""

MIN_STEP = 1e-13
"""Smallest relative half-width a probe may shrink to before it is given up."""

SCALE_RATIO = 0.5
"""Analytic this much closer to the large-step secant than the small-step estimate turns a
failure into `noisy`."""

CURVATURE_DROP = 4.0
"""Roughness falling by more than this when the step shrinks 16x (curvature: it falls about
4096x) means the stencil was too wide, not a kink: shrink again."""

NOISE_RATIO = 4.0
"""Roughness growing by more than this when the step shrinks 16x means noise, not a kink."""

Evaluate = Callable[[IntArray, Float64Array], tuple[Float64Array, Float64Array]]
"""`evaluate(probe_ids, offsets) -> (losses, margins)`: the loss with probe `probe_ids[k]`
moved by `offsets[k]`, for each `k`, and how far that move stayed from every reported kink
(`margins[k] > 1`: on the same side of each; `0`: an input sat on a kink; `inf`: no kink
reported)."""


class Status(IntEnum):
    """Verdict of one probe."""

    PASS = 0
    FAIL = 1
    KINK = 2
    NOISY = 3
    NONFINITE = 4
    UNRESOLVED = 5


REASONS: dict[Status, str] = {
    Status.KINK: "kink",
    Status.NOISY: "noisy",
    Status.NONFINITE: "non-finite",
    Status.UNRESOLVED: "unresolved",
}


@attrs.frozen(eq=False)
class Tolerance:
    """How close analytic and numeric slopes must be: `atol + rtol * max(|g|, |n|)`, plus
    `safety` times the numeric error bound; `step` the first relative half-width."""

    rtol: float = 1e-7
    atol: float = 0.0
    safety: float = 3.0
    step: float = DEFAULT_STEP


@attrs.frozen(eq=False)
class Noise:
    """The loss's measured noise: `sigma` at the point, `relative` to `|f0|` (used for
    evaluations where `|f|` is larger), and how it was obtained (`source`)."""

    sigma: float
    relative: float = 0.0
    source: str = "measured"

    def at(self, values: Float64Array) -> Float64Array:
        """Noise level over the evaluated `values` `(p, n)` -> `(n,)`."""
        biggest = np.max(np.abs(np.nan_to_num(values, posinf=0.0, neginf=0.0)), axis=0)
        return np.asarray(np.maximum(self.sigma, self.relative * biggest), dtype=np.float64)


@attrs.frozen(eq=False)
class ProbeResult:
    """Per-probe outcome, arrays of shape `(n,)`.

    Attributes:
        numeric: The best numeric slope `(n,)`.
        error: Its error bound `(n,)`.
        allowed: The largest `|analytic - numeric|` that passes `(n,)`.
        step: The last half-width used, absolute `(n,)`.
        status: A `Status` per probe `(n,)`.
        noise: The loss noise used.
    """

    numeric: Float64Array
    error: Float64Array
    allowed: Float64Array
    step: Float64Array
    status: Int8Array
    noise: float

    def subset(self, lo: int, hi: int) -> ProbeResult:
        """Probes `lo:hi`."""
        return ProbeResult(
            numeric=self.numeric[lo:hi],
            error=self.error[lo:hi],
            allowed=self.allowed[lo:hi],
            step=self.step[lo:hi],
            status=self.status[lo:hi],
            noise=self.noise,
        )


def _offsets(base: Float64Array, h: Float64Array) -> Float64Array:
    """`(base + h) - base`: the step actually taken after rounding `base + h`."""
    return np.asarray((base + h) - base, dtype=np.float64)


class _Prober:
    """The state of one `probe` run: the probes' data and the best result so far."""

    def __init__(
        self,
        evaluate: Evaluate,
        analytic: Float64Array,
        base: Float64Array,
        scale: Float64Array,
        gradient_scale: Float64Array,
        f0: float,
        tolerance: Tolerance,
        noise: Noise,
        grad_eps: float,
    ) -> None:
        n = analytic.shape[0]
        self.evaluate = evaluate
        self.g = analytic.astype(np.float64)
        self.bad_g = ~np.isfinite(self.g)
        self.abs_g = np.where(self.bad_g, 0.0, np.abs(self.g))
        self.base = base
        self.scale = scale
        self.f0 = f0
        self.tolerance = tolerance
        self.noise = noise
        self.rtol = tolerance.rtol
        floor = np.where(np.isfinite(gradient_scale), gradient_scale, 0.0)
        self.grad_round = GRAD_ROUNDOFF * grad_eps * floor
        self.floor = tolerance.rtol * floor
        self.numeric = np.full(n, np.nan)
        self.error = np.full(n, np.nan)
        self.allowed = np.full(n, np.nan)
        self.step = np.full(n, np.nan)
        self.status = np.full(n, Status.NONFINITE, dtype=np.int8)
        self.kink_limited = np.zeros(n, dtype=bool)

    def tol(self, ids: IntArray, estimate: Float64Array) -> Float64Array:
        """`atol + rtol * max(|g|, |n|) + gradient round-off` for probes `ids`."""
        size = np.maximum(self.abs_g[ids], np.abs(estimate))
        return np.asarray(self.tolerance.atol + self.rtol * size + self.grad_round[ids])

    def needed(self, ids: IntArray, estimate: Float64Array) -> Float64Array:
        """The largest `safety * E` that resolves probes `ids`: `max(tol, rtol*scale)`."""
        return np.maximum(self.tol(ids, estimate), self.floor[ids])

    def run(self, ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        """Evaluate `(ids, offsets)`; losses and kink margins."""
        losses, margins = self.evaluate(ids, offsets)
        return np.asarray(losses, dtype=np.float64), np.asarray(margins, dtype=np.float64)

    def record(
        self,
        ids: IntArray,
        numeric: Float64Array,
        error: Float64Array,
        allowed: Float64Array,
        w: Float64Array,
    ) -> None:
        self.numeric[ids], self.error[ids], self.allowed[ids], self.step[ids] = (
            numeric,
            error,
            allowed,
            w,
        )

    def result(self) -> ProbeResult:
        # A probe whose step a reported kink had to cut, and that then could not be resolved,
        # is inconclusive because of that kink.
        self.status[(self.status == Status.UNRESOLVED) & self.kink_limited] = Status.KINK
        return ProbeResult(
            self.numeric,
            self.error,
            self.allowed,
            self.step,
            self.status,
            self.noise.sigma,
        )


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
    state = _Prober(evaluate, analytic, base, scale, gradient_scale, f0, tolerance, noise, grad_eps)
    if n == 0 or not np.isfinite(f0):
        return state.result()
    h = (
        first
        if first is not None
        else first_steps(analytic, scale, gradient_scale, tolerance, noise)
    )

    # Round 1: central difference at w.
    ids = np.arange(n)
    plus, minus = _offsets(base, h), _offsets(base, -h)
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
    state: _Prober,
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
        st = _richardson(state, ids, h, known)
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
            _confirm_failure(state, failing)
        keep = ~decided
        ids, h, rough_before = ids[keep], new_h[keep], rough_before[keep]
        if ids.size == 0:
            return


@attrs.frozen(eq=False)
class _Stencil:
    """A Richardson stencil at `+-w, +-2w` for some probes: `offsets` and `values`
    `(4, n)` (order `+w, -w, +2w, -2w`), kink `margins` `(4, n)`, the extrapolated
    `estimate` and its `error` bound: `truncation` (its distance from the central
    difference at `w`) plus `noise_error` (from `sigma`)."""

    offsets: Float64Array
    values: Float64Array
    margins: Float64Array
    w: Float64Array
    estimate: Float64Array
    error: Float64Array
    truncation: Float64Array
    noise_error: Float64Array
    sigma: Float64Array


def _richardson(
    state: _Prober,
    ids: IntArray,
    h: Float64Array,
    known: tuple[Float64Array, Float64Array, Float64Array] | None = None,
) -> _Stencil:
    """Evaluate the stencil at half-width `h` for probes `ids` (`known`: the values and
    margins at `+-h` already taken)."""
    base = state.base[ids]
    offsets = np.stack(
        [_offsets(base, h), _offsets(base, -h), _offsets(base, 2 * h), _offsets(base, -2 * h)]
    )
    if known is not None:
        fp1, fm1, first_margins = known
        vals, margins = state.run(np.tile(ids, 2), np.concatenate(offsets[2:]))
        values = np.concatenate([np.stack([fp1, fm1]), vals.reshape(2, -1)])
        margins = np.concatenate([first_margins, margins.reshape(2, -1)])
    else:
        vals, margins = state.run(np.tile(ids, 4), np.concatenate(offsets))
        values, margins = vals.reshape(4, -1), margins.reshape(4, -1)
    w1 = (offsets[0] - offsets[1]) / 2
    w2 = (offsets[2] - offsets[3]) / 2
    d1 = (values[0] - values[1]) / (2 * w1)
    d2 = (values[2] - values[3]) / (2 * w2)
    # Richardson for D(w) = f' + c w^2 + O(w^4), with the exact half-widths taken.
    estimate = (w2**2 * d1 - w1**2 * d2) / (w2**2 - w1**2)
    sigma = state.noise.at(values)
    noise_error = 1.5 * sigma / w1
    truncation = np.abs(estimate - d1)
    return _Stencil(
        offsets=offsets,
        values=values,
        margins=margins,
        w=w1,
        estimate=estimate,
        error=truncation + noise_error,
        truncation=truncation,
        noise_error=noise_error,
        sigma=sigma,
    )


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


def _confirm_failure(state: _Prober, ids: IntArray) -> None:
    """A suspected failure must be stable: the same numeric slope at a 4x wider stencil
    (within both error bounds), and no large-step secant revealing a quantized term."""
    st = _richardson(state, ids, STABLE_RATIO * state.step[ids])
    stable = np.abs(st.estimate - state.numeric[ids]) <= state.tolerance.safety * (
        st.error + state.error[ids]
    )
    finite = np.all(np.isfinite(st.values), axis=0)
    state.status[ids[finite & ~stable]] = Status.NOISY
    _confirm_at_large_step(state, ids[~finite | stable])


def _confirm_at_large_step(state: _Prober, ids: IntArray) -> None:
    """A failing probe's numeric slope must hold at much larger steps too. A loss with a
    quantized term (naive BCE on a saturated sigmoid: `log(1 - p)` where `1 - p` is a few
    ulps) is flat in that term at small steps and gives a smooth, stable, wrong slope there;
    a secant at `1e-2`, `1e-1` or `1` times the scale sees the term again and lands near
    the analytic slope: the loss is too imprecise here (noisy), not the backward wrong.

    A smooth loss's secant also drifts at large steps, by truncation, and may land near a
    wrong analytic slope by chance; but its drift from the small-step slope grows like the
    step squared (100x per 10x step). A secant counts only when its drift broke that law: a
    quantized term gives jumps (flat, then far) or erratic secants that do not grow. The first
    secant is held to the law from the stencil itself: it may drift at most the stencil's
    error bound (truncation plus noise, an over-estimate of the truncation) grown by the
    squared ratio of the steps, times `FIRST_DRIFT`."""
    drift_before = np.full(ids.size, np.nan)
    for relative in SECANT_STEPS:
        if ids.size == 0:
            return
        base = state.base[ids]
        far = relative * state.scale[ids]
        plus, minus = _offsets(base, far), _offsets(base, -far)
        values, _ = state.run(np.tile(ids, 2), np.concatenate([plus, minus]))
        fp, fm = np.split(values, 2)
        secant = (fp - fm) / (plus - minus)
        g, n = state.g[ids], state.numeric[ids]
        drift = np.abs(secant - n) / np.abs(g - n)
        nearer = np.abs(g - secant) < SCALE_RATIO * np.abs(n - secant)
        if np.all(np.isnan(drift_before)):  # the first secant: the stencil's own law
            grown = state.error[ids] * (far / state.step[ids]) ** 2 / np.abs(g - n)
            smooth_drift = drift <= FIRST_DRIFT * grown
        else:
            smooth_drift = (drift >= DRIFT_GROWTH[0] * drift_before) & (
                drift <= DRIFT_GROWTH[1] * drift_before
            )
        imprecise = np.isfinite(secant) & nearer & ~smooth_drift
        state.status[ids[imprecise]] = Status.NOISY
        keep = ~imprecise
        ids, drift_before = ids[keep], np.where(np.isfinite(drift), drift, np.inf)[keep]


def gradient_scale(analytic: Float64Array) -> float:
    """A tensor's gradient scale: its largest finite analytic slope in magnitude (0 if none)."""
    finite = np.abs(analytic[np.isfinite(analytic)])
    return float(np.max(finite, initial=0.0))
