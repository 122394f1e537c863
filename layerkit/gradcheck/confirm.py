"""Confirming a suspected failure: the same slope at a wider stencil and at large secants.

A probe whose numeric slope disagrees with the analytic one beyond its bound is a failure only
if the slope is stable (a 4x wider stencil agrees) and large-step secants do not reveal a
quantized term (naive BCE on a saturated sigmoid): otherwise it is `noisy`.
"""

from __future__ import annotations

import numpy as np

from layerkit._typing import IntArray
from layerkit.gradcheck.probes import Status
from layerkit.gradcheck.stencil import Prober, measure_stencil, stencil_offsets

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

SCALE_RATIO = 0.5
"""Analytic this much closer to the large-step secant than the small-step estimate turns a
failure into `noisy`."""


def confirm_failure(state: Prober, ids: IntArray) -> None:
    """A suspected failure must be stable: the same numeric slope at a 4x wider stencil
    (within both error bounds), and no large-step secant revealing a quantized term."""
    st = measure_stencil(state, ids, STABLE_RATIO * state.step[ids])
    stable = np.abs(st.estimate - state.numeric[ids]) <= state.tolerance.safety * (
        st.error + state.error[ids]
    )
    finite = np.all(np.isfinite(st.values), axis=0)
    state.status[ids[finite & ~stable]] = Status.NOISY
    _at_large_step(state, ids[~finite | stable])


def _at_large_step(state: Prober, ids: IntArray) -> None:
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
        plus, minus = stencil_offsets(base, far), stencil_offsets(base, -far)
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
