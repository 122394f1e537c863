"""Kink margins: how far a perturbation moved each input of a layer relative to its kink.

A layer with kinks reports the signed distance of each input from its nearest kink
(`Layer.kink_distance`; ReLU: the input itself). A perturbation whose margin is above 1 moved
every input less than its distance from its kink: to first order, nothing crossed.
"""

from __future__ import annotations

import numpy as np

from layerkit._typing import BoolArray, Float64Array


def kink_margins(base: Float64Array, moved: Float64Array) -> Float64Array:
    """Per row of `moved` `(n, k)`, the smallest `|base| / |moved - base|` over its
    entries (`base` `(n, k)` or `(1, k)`): above 1, each entry moved less than its
    distance from its kink (to first order, it stayed on its side); 0, an entry on a kink
    moved; `inf`, nothing moved."""
    delta = np.abs(moved - base)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(base) / delta
    ratio[delta == 0] = np.inf
    return np.asarray(np.min(ratio, axis=1, initial=np.inf))


def side_margins(
    base: Float64Array, moved: Float64Array, on_kink: bool, side: BoolArray | None = None
) -> Float64Array:
    """`kink_margins`, computed only for rows where a cheap test (an entry changed side,
    or moved off a kink it sat on) says it can be small; `inf` for the others. `side` is
    `base > 0`, if known."""
    suspect = np.any(np.not_equal(moved > 0, base > 0 if side is None else side), axis=1)
    if on_kink:
        suspect |= np.any((base == 0) & (moved != base), axis=1)
    margins = np.full(moved.shape[0], np.inf)
    if np.any(suspect):
        chosen = np.flatnonzero(suspect)
        margins[chosen] = kink_margins(base if base.shape[0] == 1 else base[chosen], moved[chosen])
    return margins
