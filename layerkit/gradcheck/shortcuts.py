"""The chain evaluator's speed tricks, verified on the layer at the checked point, never declared.

* **Stacking:** `n` perturbed batches `(n, m, k)` run as one `(n * m, k)` forward, and an
  entry of `x` runs on its moved row alone. Exact only for a layer whose output row `i`
  depends on input row `i` alone: `verified_samplewise` tests that first.
* **Low-rank propagation:** one moved entry of a Linear's `W` or `b` changes one column of
  its output (`ColumnChange`). An elementwise layer keeps it one column; the next Linear
  turns it into a dense change as an outer product. Only the layers after that run dense.
* **Plain forwards:** known layer types run without re-validating internal arrays.

`plan_layer` verifies each trick on the layer's own input before the checker uses it
(a subclass that overrides `forward` gets none); anything else runs the layer's forward.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from layerkit._typing import Array, Float64Array, IntArray
from layerkit.layers.activations import Activation, ReLU, Sigmoid, Tanh
from layerkit.layers.base import Layer, run_layer
from layerkit.layers.linear import Linear

STACKING_RTOL = 1e-12
"""How far (relative to the output's scale) a shortcut may stray from the layer's forward."""


@attrs.frozen(eq=False)
class ColumnChange:
    """`n` perturbations of a layer output `(m, k)`, each changing one column: column
    `cols[j]` `(n,)` becomes `new[j]` `(n, m)`; the rest is the checked point's."""

    cols: IntArray
    new: Float64Array

    def full(self, base: Array) -> Float64Array:
        """The changed outputs in full, `(n, m, k)`, from the checked point's `base` `(m, k)`."""
        n, m = self.new.shape
        if base.shape[1] == 1:
            return self.new.reshape(n, m, 1)
        stacked = np.repeat(np.asarray(base, dtype=np.float64)[np.newaxis], n, axis=0)
        stacked[np.arange(n), :, self.cols] = self.new
        return stacked


def _close(got: Array, expected: Array) -> bool:
    """Same shape and equal within `STACKING_RTOL` of the scale (NaN: not close)."""
    if np.shape(got) != np.shape(expected):
        return False
    with np.errstate(all="ignore"):
        gap = np.max(np.abs(np.asarray(got) - expected), initial=0.0)
        scale = np.max(np.abs(expected), initial=0.0)
    return bool(gap <= STACKING_RTOL * scale)


def verified_samplewise(layer: Layer, x: Array, y: Array, noise: Array | None) -> bool:
    """True when `layer`, whose output on `x` `(m, k)` is `y`, treats rows alone: one
    forward of `x` stacked with a different batch (half of `x`'s rows in reverse order;
    for `m = 1`, `x / 2`) gives `y` and that batch's own output. A layer using batch
    statistics or mixing rows fails (the checker then runs each perturbation on its own); so
    does one that refuses the stacked shape with a `ValueError` (`ShapeError` is one)."""
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
    except ValueError:  # a layer refusing the stacked batch's shape is not samplewise
        return False  # (any other exception is the user's code failing: it aborts the check)
    return _close(stacked, np.concatenate([y, expected]))


def _linear_forward(layer: Linear, x: Array) -> Float64Array:
    """Linear's forward `(N, in) -> (N, out)` without validation (the same arithmetic)."""
    return np.asarray(x @ layer.W.T + layer.b)


def _linear_columns(
    layer: Linear, x: Array, y: Array, param: str, flat_indices: IntArray, deltas: Float64Array
) -> ColumnChange:
    """Linear's output `y` `(m, out)` on `x` with `param.flat[flat_indices[j]]` moved
    by `deltas[j]`: one column changes, by `deltas[j] * x[:, input]` (or `deltas[j]`)."""
    if param == "W":
        cols, inputs = np.divmod(flat_indices, x.shape[1])
        new = y[:, cols].T + deltas[:, np.newaxis] * x[:, inputs].T
    else:
        cols = flat_indices
        new = y[:, cols].T + deltas[:, np.newaxis]
    return ColumnChange(cols, np.asarray(new, dtype=np.float64))


def _linear_after_column(layer: Linear, x: Array, y: Array, change: ColumnChange) -> Float64Array:
    """Linear's outputs `(n, m, out)` for inputs that differ from `x` `(m, in)` (output
    `y`) in one column each: `y` plus an outer product with that column of `W`."""
    moved = change.new - x[:, change.cols].T
    out: Float64Array = np.einsum("nm,nk->nmk", moved, layer.W.T[change.cols])  # 3x a broadcast
    out += y
    return out


def _columns_of(function: Callable[[Array], Array | None], new: Array) -> Float64Array:
    """An elementwise `function` applied to columns `(n, m)` as one `(n * m, 1)` batch."""
    return np.asarray(function(new.reshape(-1, 1)), dtype=np.float64).reshape(new.shape)


@attrs.frozen(eq=False)
class LayerPlan:
    """What the chain evaluator may do with one layer, verified at the checked point.

    `samplewise`: batches may be stacked. `forward`: a validation-free forward `(N, k)`
    (None: call the layer). `columnwise`: an elementwise layer, whose `forward` (and kink
    distance) may run on changed columns alone. `perturbed`: a moved parameter's output as a
    `ColumnChange`. `after_column`: the dense output `(n, m, out)` for inputs that
    changed in one column each.
    """

    samplewise: bool
    forward: Callable[[Array], Float64Array] | None = None
    columnwise: bool = False
    kinks: Callable[[Array], Array | None] | None = None
    perturbed: Callable[[Array, Array, str, IntArray, Float64Array], ColumnChange] | None = None
    after_column: Callable[[Array, Array, ColumnChange], Float64Array] | None = None

    def columns(self, new: Float64Array) -> Float64Array:
        """The layer on changed columns `(n, m)` -> `(n, m)` (`columnwise` only)."""
        assert self.forward is not None
        return _columns_of(self.forward, new)

    def column_kinks(self, new: Float64Array) -> Float64Array | None:
        """Kink distances of changed input columns `(n, m)` (None: a smooth layer)."""
        return None if self.kinks is None else _columns_of(self.kinks, new)


def _keeps_forward(layer: Layer, kind: type[Layer]) -> bool:
    return isinstance(layer, kind) and type(layer).forward is kind.forward


def _plain(
    function: Callable[[Array], Array], x: Array, y: Array, *, own: bool
) -> Callable[[Array], Float64Array] | None:
    """`function` as a float64 forward, if it reproduces `y` from `x` (else None). For one
    of `OWN_LAYERS` it is that layer's own forward without validation: not re-run here."""

    def forward(z: Array) -> Float64Array:
        return np.asarray(function(z), dtype=np.float64)

    if own:
        return forward
    with np.errstate(all="ignore"):
        return forward if _close(forward(x), y) else None


VERIFIED_ROWS = 8
"""Rows of the checked batch a Linear's outer-product update is verified on (the update and
the forward are the same arithmetic row by row; more rows would only cost a forward)."""


def _after_column(
    layer: Linear, x: Array, y: Array, *, own: bool
) -> Callable[[Array, Array, ColumnChange], Float64Array] | None:
    """Linear's outer-product update, if it matches the plain forward on a changed column
    (on the first `VERIFIED_ROWS` rows; not re-run for one of `OWN_LAYERS`)."""
    if not own:
        x, y = x[:VERIFIED_ROWS], y[:VERIFIED_ROWS]
        change = ColumnChange(np.array([0]), np.asarray(1.5 * x[:, 0] + 1.0)[np.newaxis])
        moved = x.copy()
        moved[:, 0] = change.new[0]
        got = _linear_after_column(layer, x, y, change)[0]
        if not _close(got, _linear_forward(layer, moved)):
            return None
    return lambda xi, yi, c: _linear_after_column(layer, xi, yi, c)


OWN_LAYERS: frozenset[type[Layer]] = frozenset({Linear, ReLU, Sigmoid, Tanh})
"""Exact types whose forward is layerkit's own code: their validation-free forward, samplewise
stacking and (activations) elementwise columns hold by that code, and layerkit's own test
suite checks them against the forward; they are not re-verified per check. A subclass, or
any other layer, gets the full verification at the checked point."""


def plan_layer(
    layer: Layer, x: Array, y: Array, noise: Array | None, kinks: Array | None
) -> LayerPlan:
    """Verify the tricks for `layer` on its input `x` `(m, k)`, output `y` and kink
    distances `kinks` (None: smooth) at the checked point; keep those that hold."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    known = _known_plan(layer, x, y, kinks) if noise is None else None
    if known is not None:
        return known
    return LayerPlan(samplewise=verified_samplewise(layer, x, y, noise))


def _known_plan(layer: Layer, x: Array, y: Array, kinks: Array | None) -> LayerPlan | None:
    """The plan of a Linear or an activation keeping layerkit's forward, if its plain forward
    reproduces `y` (and, unless it is one of `OWN_LAYERS`, it is verified samplewise
    and elementwise); None otherwise."""
    own = type(layer) in OWN_LAYERS
    if isinstance(layer, Linear) and _keeps_forward(layer, Linear) and kinks is None:
        plain = _plain(lambda z: _linear_forward(layer, z), x, y, own=own)
        if plain is None or not (own or verified_samplewise(layer, x, y, None)):
            return None
        return LayerPlan(
            samplewise=True,
            forward=plain,
            perturbed=lambda xi, yi, param, i, d: _linear_columns(layer, xi, yi, param, i, d),
            after_column=_after_column(layer, x, y, own=own),
        )
    if isinstance(layer, Activation) and _keeps_forward(layer, Activation):
        plain = _plain(layer.function, x, y, own=own)
        if plain is None or not (own or verified_samplewise(layer, x, y, None)):
            return None
        distance = None if kinks is None else layer.kink_distance
        elementwise = own or (
            _close(_columns_of(plain, x), y)
            and (distance is None or kinks is None or _close(_columns_of(distance, x), kinks))
        )
        return LayerPlan(True, plain, columnwise=elementwise, kinks=distance)
    return None


TAIL_BUDGET = 1 << 22
"""Largest table (float64 entries) a `LinearTail` may hold."""
TAIL_BLOCK = 1 << 19
"""Largest temporary (float64 entries) building a `LinearTail` may take at once."""


@attrs.frozen(eq=False)
class LinearTail:
    """`Linear A -> ReLU -> Linear B` on inputs of A that changed in one column each.

    While no input of the ReLU crosses 0, the three are linear in the change: a change `d`
    `(m,)` of A's input column `i` changes B's output row `r` by `d[r] * J[i, r]`, with
    `J[i, r] = B.W @ (mask[r] * A.W[:, i])`. `reach[i, r] = min_c |z[r, c]| / |A.W[c, i]|`
    (`z` the ReLU's input) is how far `d[r]` may go before an input crosses: the kink
    margin of the change is `min_r reach[i, r] / |d[r]|`, exact, in `O(m)`.
    """

    jacobian: Float64Array
    """`J` `(in_A, m, out_B)`."""
    reach: Float64Array
    """`(in_A, m)`."""
    output: Float64Array
    """B's output at the checked point `(m, out_B)`."""

    def outputs(self, cols: IntArray, d: Float64Array) -> tuple[Float64Array, Float64Array]:
        """B's outputs `(n, m, out_B)` for changes `d` `(n, m)` of A's input columns
        `cols` `(n,)`, and their kink margins `(n,)` (valid only where above 1)."""
        out: Float64Array = np.einsum("nm,nmo->nmo", d, self.jacobian[cols])
        out += self.output
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.reach[cols] / np.abs(d)
        ratio[d == 0] = np.inf
        return out, np.asarray(np.min(ratio, axis=1, initial=np.inf))


def linear_tail(a: Linear, z: Float64Array, b: Linear, b_output: Float64Array) -> LinearTail | None:
    """The `LinearTail` of `a`, a ReLU on `a`'s output `z` `(m, h)`, and `b`
    (output `b_output`), if its tables fit `TAIL_BUDGET` and it reproduces a dense
    forward of the three on a test change; else None."""
    m, (h, n_in), k = z.shape[0], a.W.shape, b.W.shape[0]
    if n_in * m * k > TAIL_BUDGET or h * n_in > TAIL_BUDGET:
        return None
    mask = z > 0
    weighted = mask[:, :, np.newaxis] * b.W.T[np.newaxis]  # (m, h, k)
    jacobian = np.asarray(np.tensordot(a.W, weighted, axes=([0], [1])), np.float64)  # (in, m, k)
    reach = np.empty((n_in, m))
    weights = np.abs(a.W)[np.newaxis]
    block = max(1, TAIL_BLOCK // (h * n_in))
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo in range(0, m, block):
            ratio = np.abs(z[lo : lo + block, :, np.newaxis]) / weights
            ratio[np.isnan(ratio)] = np.inf  # 0 / 0: an entry that does not move
            reach[:, lo : lo + block] = ratio.min(axis=1).T
    tail = LinearTail(jacobian, reach, np.asarray(b_output, dtype=np.float64))
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=m)
    d = 0.5 * np.where(np.isfinite(reach[0]), reach[0], 1.0) * signs  # crosses no kink
    got, _ = tail.outputs(np.array([0]), d[np.newaxis])
    moved = z + d[:, np.newaxis] * a.W[:, 0]
    expected = np.maximum(moved, 0) @ b.W.T + b.b
    return tail if _close(got[0], expected) else None
