"""The scalar end of a chain: a loss over the last layer's output `(m, k)`, summed per sample.

Besides full stacked outputs, a head evaluates outputs that differ from the checked point's in
one row (an entry of `x` moved) or in one column (a parameter moved in the last layers),
at `O(m + k)` or `O(m)` per perturbation where it can.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import attrs
import numpy as np

from layerkit._typing import Array, Float64Array, IntArray
from layerkit.gradcheck.shortcuts import ColumnChange
from layerkit.losses import BCELoss, BCEWithLogitsLoss, Loss, MSELoss, SoftmaxCrossEntropyLoss


class Head(ABC):
    """A loss of the last output, for many perturbed outputs at once."""

    own_code: bool = True
    """Whether the head runs only layerkit's own code (a model's loss may be the user's)."""

    @abstractmethod
    def values(self, out: Float64Array) -> Float64Array:
        """Loss for each stacked output `(n, m, k)` -> `(n,)`."""

    @abstractmethod
    def grad(self, out: Float64Array) -> Float64Array:
        """Gradient of the loss w.r.t. one output `(m, k)`."""

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        """Loss of `base` `(m, k)` with row `rows[j]` replaced by `new_rows[j]` `(n, k)`,
        for each `j` -> `(n,)`; equal to `values` on the full outputs."""
        n = rows.shape[0]
        stacked = np.repeat(base[np.newaxis], n, axis=0)
        stacked[np.arange(n), rows] = new_rows
        return self.values(stacked)

    def replaced_columns(self, base: Float64Array, change: ColumnChange) -> Float64Array:
        """Loss of `base` `(m, k)` with the one-column `change` of each perturbation ->
        `(n,)`; equal to `values` on the full outputs."""
        return self.values(change.full(base))

    def column_width(self, k: int) -> int:
        """The row width `replaced_columns` builds per perturbation for outputs `(m, k)`."""
        return k


def _replace_and_reduce(
    per_row: Float64Array, rows: IntArray, new_values: Float64Array, *, mean: bool
) -> Float64Array:
    """Per-row terms `(m,)` with entry `rows[j]` set to `new_values[j]`, reduced over rows
    for each `j` -> `(n,)` (the same reduction as on a full `(n, m)` stack)."""
    n = rows.shape[0]
    stacked = np.repeat(per_row[np.newaxis], n, axis=0)
    stacked[np.arange(n), rows] = new_values
    return np.asarray(stacked.mean(axis=-1) if mean else stacked.sum(axis=-1))


@attrs.frozen(eq=False)
class ProjectionHead(Head):
    """`L = sum(r * y)` for a fixed random `r` `(m, k)`: checks a layer in isolation."""

    weights: Float64Array

    def values(self, out: Float64Array) -> Float64Array:
        return np.asarray((out * self.weights).sum(axis=-1).sum(axis=-1))

    def grad(self, out: Float64Array) -> Float64Array:
        return self.weights

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        per_row = np.asarray((base * self.weights).sum(axis=-1))
        new_values = np.asarray((new_rows * self.weights[rows]).sum(axis=-1))
        return _replace_and_reduce(per_row, rows, new_values, mean=False)

    def column_width(self, k: int) -> int:
        return 1

    def replaced_columns(self, base: Float64Array, change: ColumnChange) -> Float64Array:
        """Per column `O(m)`: the other columns' sum once, plus the new column's."""
        per_column = np.asarray((base * self.weights).sum(axis=0))
        others = per_column.sum() - per_column[change.cols]
        terms = np.einsum("nm,mn->n", change.new, self.weights[:, change.cols])
        return np.asarray(others + terms)


OWN_LOSSES: frozenset[type[Loss]] = frozenset(
    {BCELoss, BCEWithLogitsLoss, MSELoss, SoftmaxCrossEntropyLoss}
)
"""layerkit's own loss types (exact types: a subclass may be the user's code)."""


@attrs.frozen(eq=False)
class ModelLossHead(Head):
    """The model's mean loss on targets `y` (from logits when a Sigmoid feeds BCE)."""

    sample_losses: Callable[[Array, Array], Array]
    loss_grad: Callable[[Array, Array], Array]
    targets: Float64Array
    own_code: bool = False

    def values(self, out: Float64Array) -> Float64Array:
        return np.asarray(self.sample_losses(out, self.targets).mean(axis=-1), dtype=np.float64)

    def grad(self, out: Float64Array) -> Float64Array:
        return np.asarray(self.loss_grad(out, self.targets), dtype=np.float64)

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        per_row = np.asarray(self.sample_losses(base, self.targets), dtype=np.float64)
        new_values = np.asarray(self.sample_losses(new_rows, self.targets[rows]), dtype=np.float64)
        return _replace_and_reduce(per_row, rows, new_values, mean=True)
