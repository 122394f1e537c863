"""One probe's state and its central-difference stencils, with Richardson error bounds.

[`Prober`][layerkit.gradcheck.stencil.Prober] holds, for `n` probes, the point, the analytic
slopes, the current numeric slopes, their error bounds and steps; `measure_stencil` measures a
stencil at half-widths `w` and `2w`.
"""

from __future__ import annotations

import attrs
import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.gradcheck.probes import Evaluate, Noise, ProbeResult, Status, Tolerance

GRAD_ROUNDOFF = 64.0
"""The analytic gradient's round-off allowance: `GRAD_ROUNDOFF * eps_g * scale`, with
`eps_g` the gradient's machine epsilon and `scale` its tensor's largest slope. For a
float32 backward that is about 7.6e-6 of the tensor's gradient scale: float32 sums over a
batch of a few thousand rows stay inside it, even for entries whose terms cancel."""


def stencil_offsets(base: Float64Array, h: Float64Array) -> Float64Array:
    """`(base + h) - base`: the step actually taken after rounding `base + h`."""
    return np.asarray((base + h) - base, dtype=np.float64)


class Prober:
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


@attrs.frozen(eq=False)
class Stencil:
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


def measure_stencil(
    state: Prober,
    ids: IntArray,
    h: Float64Array,
    known: tuple[Float64Array, Float64Array, Float64Array] | None = None,
) -> Stencil:
    """Evaluate the stencil at half-width `h` for probes `ids` (`known`: the values and
    margins at `+-h` already taken)."""
    base = state.base[ids]
    offsets = np.stack(
        [
            stencil_offsets(base, h),
            stencil_offsets(base, -h),
            stencil_offsets(base, 2 * h),
            stencil_offsets(base, -2 * h),
        ]
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
    return Stencil(
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
