"""The chain evaluator's speed tricks, verified or keyed on the layer type, never declared.

Stacking: ``n`` perturbed batches ``(n, m, k)`` run as one ``(n * m, k)`` forward, and an entry
of ``x`` runs on its moved row alone. Both are exact only for a layer whose output row ``i``
depends on input row ``i`` alone; :func:`verified_samplewise` tests that on the layer's own
input before the checker relies on it. Shortcuts: known layer types compute their perturbed
outputs in closed form (Linear: a rank-one update of the cached output).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from layerkit._typing import Array, Float64Array, IntArray
from layerkit.layers.base import Layer, run_layer
from layerkit.layers.linear import Linear

STACKING_RTOL = 1e-12
"""How far (relative to the output's scale) a stacked forward may stray from the unstacked."""

PerturbedOutputs = Callable[[Layer, Array, Array, str, IntArray, Float64Array], Float64Array]
"""``(layer, x, y, param, flat_indices, deltas) -> (n, m, out)``: row ``k`` is the output of
``layer`` on ``x`` ``(m, in)`` (whose output is ``y``) with ``param.flat[flat_indices[k]]``
moved by ``deltas[k]``."""


def _close(got: Array, expected: Array) -> bool:
    """Same shape and equal within :data:`STACKING_RTOL` of the scale (NaN: not close)."""
    if np.shape(got) != np.shape(expected):
        return False
    gap = np.max(np.abs(np.asarray(got) - expected), initial=0.0)
    scale = np.max(np.abs(expected), initial=0.0)
    return bool(gap <= STACKING_RTOL * scale)


def verified_samplewise(layer: Layer, x: Array, y: Array, noise: Array | None) -> bool:
    """True when ``layer``, whose output on ``x`` ``(m, k)`` is ``y``, treats rows alone: one
    forward of ``x`` stacked with a different batch (half of ``x``'s rows in reverse order;
    for ``m = 1``, ``x / 2``) gives ``y`` and that batch's own output. A layer using batch
    statistics or mixing rows fails (the checker then runs each perturbation on its own); so
    does one that raises."""
    m = x.shape[0]
    rows = np.arange(m)[::-1][: max(1, m // 2)]
    try:
        if m > 1:
            other, expected = x[rows], np.asarray(y)[rows]
            mask = None if noise is None else noise[rows]
        else:
            other, mask = 0.5 * x, noise
            expected, _ = run_layer(layer, other, mask)
        tiled = None if noise is None or mask is None else np.concatenate([noise, mask])
        stacked, _ = run_layer(layer, np.concatenate([x, other]), tiled)
    except Exception:  # a layer refusing other batch sizes is not samplewise for the checker
        return False
    return _close(stacked, np.concatenate([y, expected]))


def _linear_outputs(
    layer: Layer, x: Array, y: Array, param: str, flat_indices: IntArray, deltas: Float64Array
) -> Float64Array:
    """Linear's perturbed outputs ``(n, m, out)`` as rank-one updates of ``y`` ``(m, out)``."""
    n = flat_indices.shape[0]
    stacked = np.repeat(np.asarray(y, dtype=np.float64)[np.newaxis], n, axis=0)
    rows = np.arange(n)
    if param == "W":
        out_idx, in_idx = np.divmod(flat_indices, x.shape[1])
        stacked[rows, :, out_idx] += deltas[:, np.newaxis] * x[:, in_idx].T
    else:
        stacked[rows, :, flat_indices] += deltas[:, np.newaxis]
    return stacked


SHORTCUTS: dict[type[Layer], PerturbedOutputs] = {Linear: _linear_outputs}
"""Closed-form perturbed outputs by layer type (used for subclasses that keep its forward)."""


def shortcut_for(layer: Layer) -> PerturbedOutputs | None:
    """The shortcut of the nearest registered base class whose ``forward`` ``layer`` keeps
    (a subclass overriding ``forward`` gets none)."""
    for kind in type(layer).__mro__:
        if kind in SHORTCUTS:
            return SHORTCUTS[kind] if type(layer).forward is kind.forward else None
    return None
