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
    target = as_float_array(y, name="y", owner=owner)
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
            f"{int(outside.sum())} value(s) outside, e.g. {float(first)!r}."
        )
        raise TargetError(msg)
    return target


def _predictions_and_targets(
    predictions: ArrayLike, y: ArrayLike, *, owner: str, name: str, probabilities: bool
) -> tuple[Array, Array]:
    """Validate predictions ``(m, k)`` (probabilities in [0, 1], or logits) and their targets."""
    array = as_float_array(predictions, name=name, allow_nonfinite=True, owner=owner)
    if array.ndim != 2 or array.shape[0] == 0:
        msg = f"{owner}: '{name}' must have shape (m, k) with m >= 1, got shape {array.shape}."
        raise ShapeError(msg)
    if probabilities and np.any((array < 0) | (array > 1)):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        msg = (
            f"{owner}: '{name}' must be probabilities in [0, 1], got values in "
            f"[{low:g}, {high:g}] (logits? use the *_from_logits form)."
        )
        raise TargetError(msg)
    return array, check_targets(y, array.shape, owner=owner).astype(array.dtype, copy=False)


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
        """Mean loss on probabilities ``p`` of shape ``(m, k)``; ``y`` targets in [0, 1]."""
        p, y = _predictions_and_targets(p, y, owner="BCELoss.value", name="p", probabilities=True)
        return float(self.sample_losses(p, y).mean(axis=-1))

    def grad(self, p: Array, y: Array) -> Array:
        """Gradient of :meth:`value` with respect to ``p`` ``(m, k)``."""
        p, y = _predictions_and_targets(p, y, owner="BCELoss.grad", name="p", probabilities=True)
        m = p.shape[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((p - y) / (p * (1.0 - p)) / m)

    def sample_losses_from_logits(self, z: Array, y: Array) -> Array:
        """Per-sample losses on logits ``z`` ``(..., m, k)`` -> ``(..., m)``, stable."""
        terms = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
        return np.asarray(terms.sum(axis=-1))

    def value_from_logits(self, z: Array, y: Array) -> float:
        """Mean loss on logits ``z`` of shape ``(m, k)``, finite for any finite ``z``."""
        owner = "BCELoss.value_from_logits"
        z, y = _predictions_and_targets(z, y, owner=owner, name="z", probabilities=False)
        return float(self.sample_losses_from_logits(z, y).mean(axis=-1))

    def grad_from_logits(self, z: Array, y: Array) -> Array:
        """Gradient of :meth:`value_from_logits` w.r.t. ``z``: ``(sigmoid(z) - y) / m``.

        Computed without cancellation: with ``e = exp(-|z|)``, ``sigmoid(z) - y`` is
        ``(1 - y) - e / (1 + e)`` for ``z >= 0`` and ``e / (1 + e) - y`` for ``z < 0``, so a
        correctly labelled saturated sample keeps its tiny gradient (``-e^-40``, not 0).
        """
        owner = "BCELoss.grad_from_logits"
        z, y = _predictions_and_targets(z, y, owner=owner, name="z", probabilities=False)
        e = np.exp(-np.abs(z))
        tail = e / (1.0 + e)  # sigmoid(-|z|), exact for any finite z
        diff = np.where(z >= 0, (1.0 - y) - tail, tail - y)
        return np.asarray(diff / z.shape[0])

    def __repr__(self) -> str:
        return "BCELoss()"
