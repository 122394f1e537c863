"""Losses: mean binary cross-entropy, on probabilities or (stably) on logits."""

from __future__ import annotations

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_float_array
from layerkit.errors import ShapeError, TargetError


def check_targets(y: ArrayLike, shape: tuple[int, ...], *, owner: str = "BCELoss") -> Array:
    """Validate targets for predictions of ``shape`` ``(m, k)``: values in [0, 1].

    Accepts ``(m, k)``, and ``(m,)`` or the seed's ``(1, m)`` row when ``k == 1``.
    """
    target = as_float_array(y, name="y")
    m = shape[0]
    if target.shape != shape:
        if shape[-1] == 1 and target.shape in ((m,), (1, m)):
            target = target.reshape(shape)
        else:
            msg = f"{owner}: targets 'y' must have shape {shape} to match the predictions, got {target.shape}."
            raise ShapeError(msg)
    outside = (target < 0) | (target > 1)
    if np.any(outside):
        first = target[outside].flat[0]
        msg = (
            f"{owner}: targets 'y' must lie in [0, 1] (binary labels or probabilities); "
            f"{int(outside.sum())} value(s) outside, e.g. {first!r}."
        )
        raise TargetError(msg)
    return target


class BCELoss:
    """Mean binary cross-entropy over the batch (summed over output columns).

    ``L = mean_i sum_k -(y log p + (1 - y) log(1 - p))``. On probabilities it is exact but can
    overflow where ``p`` rounds to 0 or 1; the ``*_from_logits`` forms use
    ``max(z, 0) - y z + log1p(exp(-|z|))`` and stay finite and exact for any finite logit.
    :class:`~layerkit.sequential.Sequential` uses the logit form when a Sigmoid feeds this loss.
    """

    name = "BCELoss"

    def sample_losses(self, p: Array, y: Array) -> Array:
        """Per-sample losses on probabilities ``p`` ``(..., m, k)`` -> ``(..., m)``."""
        with np.errstate(divide="ignore"):
            terms = -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
        return np.asarray(terms.sum(axis=-1))

    def value(self, p: Array, y: Array) -> float:
        """Mean loss on probabilities ``p`` of shape ``(m, k)``."""
        return float(self.sample_losses(p, y).mean(axis=-1))

    def grad(self, p: Array, y: Array) -> Array:
        """Gradient of :meth:`value` with respect to ``p`` ``(m, k)``."""
        m = p.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((p - y) / (p * (1.0 - p)) / m)

    def sample_losses_from_logits(self, z: Array, y: Array) -> Array:
        """Per-sample losses on logits ``z`` ``(..., m, k)`` -> ``(..., m)``, stable."""
        terms = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
        return np.asarray(terms.sum(axis=-1))

    def value_from_logits(self, z: Array, y: Array) -> float:
        """Mean loss on logits ``z`` of shape ``(m, k)``, finite for any finite ``z``."""
        return float(self.sample_losses_from_logits(z, y).mean(axis=-1))

    def grad_from_logits(self, z: Array, y: Array) -> Array:
        """Gradient of :meth:`value_from_logits` w.r.t. ``z``: ``(sigmoid(z) - y) / m``.

        Computed without cancellation: with ``e = exp(-|z|)``, ``sigmoid(z) - y`` is
        ``(1 - y) - e / (1 + e)`` for ``z >= 0`` and ``e / (1 + e) - y`` for ``z < 0``, so a
        correctly labelled saturated sample keeps its tiny gradient (``-e^-40``, not 0).
        """
        e = np.exp(-np.abs(z))
        tail = e / (1.0 + e)  # sigmoid(-|z|), exact for any finite z
        diff = np.where(z >= 0, (1.0 - y) - tail, tail - y)
        return np.asarray(diff / z.shape[0])

    def __repr__(self) -> str:
        return "BCELoss()"
