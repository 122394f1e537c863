"""Losses: one small protocol (per-sample values, their gradient, target checks) and four losses.

Every loss is a mean over the batch of per-sample values. A loss subclasses [`Loss`][layerkit.Loss]
and writes two methods, `sample_losses` and `sample_grads`; the base class validates outputs and
targets and takes the mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_float_array
from layerkit.errors import ConfigError, ShapeError, TargetError
from layerkit.layers.activations import Sigmoid
from layerkit.layers.base import Layer
from layerkit.layers.linear import Linear

PROBABILITY_ADVICE = "add a Sigmoid, or use BCEWithLogitsLoss"
"""What a model whose output is not a probability needs before BCELoss."""


def _matching_shape(target: Array, shape: tuple[int, ...], owner: str) -> Array:
    """`target` as `shape` `(m, k)`; `(m,)` and the seed's row `(1, m)` pass when k == 1."""
    m = shape[0]
    if target.shape == shape:
        return target
    if shape[-1] == 1 and target.shape in ((m,), (1, m)):
        return target.reshape(shape)
    msg = f"{owner}: targets 'y' must have shape {shape} to match the predictions, got {target.shape}."
    raise ShapeError(msg)


def check_targets(y: ArrayLike, shape: tuple[int, ...], *, owner: str = "BCELoss") -> Array:
    """Validate binary targets for predictions of `shape` `(m, k)`: values in [0, 1].

    Accepts `(m, k)`, and `(m,)` or the seed's `(1, m)` row when `k == 1`.
    """
    target = _matching_shape(as_float_array(y, name="y", owner=owner), shape, owner)
    outside = (target < 0) | (target > 1)
    if np.any(outside):
        first = target[outside].flat[0]
        msg = (
            f"{owner}: targets 'y' must lie in [0, 1] (binary labels or probabilities); "
            f"{int(outside.sum())} value(s) outside, e.g. {float(first)!r}."
        )
        raise TargetError(msg)
    return target


class Loss(ABC):
    """The loss protocol: the mean over the batch of per-sample losses.

    A subclass writes [`sample_losses`][layerkit.Loss.sample_losses] and
    [`sample_grads`][layerkit.Loss.sample_grads]; it may override `check_targets` (default:
    finite real targets of the output's shape) and `check_outputs` (default: any `(m, k)`).
    """

    output_name: ClassVar[str] = "out"
    """The output's name in error messages (`p` for probabilities, `z` for logits)."""

    @property
    def name(self) -> str:
        """The loss's class name, used in error messages."""
        return type(self).__name__

    @abstractmethod
    def sample_losses(self, out: Array, y: Array) -> Array:
        """Per-sample losses, on validated arrays.

        Args:
            out: model outputs `(..., m, k)`; leading axes stack perturbed copies (the checker).
            y: targets `(m, k)` as returned by `check_targets`.

        Returns:
            `(..., m)`: one loss per sample.
        """

    @abstractmethod
    def sample_grads(self, out: Array, y: Array) -> Array:
        """Gradient of each sample's loss w.r.t. its own output row.

        Args:
            out: model outputs `(m, k)`.
            y: targets `(m, k)` as returned by `check_targets`.

        Returns:
            `(m, k)`: row `i` is `d sample_losses[i] / d out[i]`.
        """

    def check_outputs(self, out: ArrayLike, *, owner: str) -> Array:
        """Validate model outputs: shape `(m, k)` with `m >= 1` (NaN/Inf pass through)."""
        array = as_float_array(out, name=self.output_name, allow_nonfinite=True, owner=owner)
        if array.ndim != 2 or array.shape[0] == 0:
            msg = (
                f"{owner}: '{self.output_name}' must have shape (m, k) with m >= 1, "
                f"got shape {array.shape}."
            )
            raise ShapeError(msg)
        return array

    def check_targets(self, y: ArrayLike, shape: tuple[int, int], *, owner: str) -> Array:
        """Validate targets for outputs of `shape` `(m, k)`: finite reals of that shape
        (`(m,)` when `k == 1`). Returns them as `(m, k)`."""
        return _matching_shape(as_float_array(y, name="y", owner=owner), shape, owner)

    def _checked(self, out: ArrayLike, y: ArrayLike, owner: str) -> tuple[Array, Array]:
        array = self.check_outputs(out, owner=owner)
        shape = (int(array.shape[0]), int(array.shape[1]))
        return array, self.check_targets(y, shape, owner=owner).astype(array.dtype, copy=False)

    def _mean(self, out: Array, y: Array) -> float:
        return float(self.sample_losses(out, y).mean(axis=-1))

    def _mean_grad(self, out: Array, y: Array) -> Array:
        return np.asarray(self.sample_grads(out, y) / out.shape[0])

    def value(self, out: ArrayLike, y: ArrayLike, *, owner: str | None = None) -> float:
        """The mean loss over the batch.

        Args:
            out: model outputs `(m, k)`.
            y: targets (see the loss's `check_targets`).
            owner: prefix for error messages (default: `<Loss>.value`).

        Raises:
            ShapeError: outputs or targets of the wrong shape.
            TargetError: targets (or outputs) outside the range this loss accepts.
        """
        return self._mean(*self._checked(out, y, owner or f"{self.name}.value"))

    def grad(self, out: ArrayLike, y: ArrayLike, *, owner: str | None = None) -> Array:
        """Gradient of [`value`][layerkit.Loss.value] w.r.t. `out`: `sample_grads / m`,
        shape `(m, k)`. Arguments and errors as in `value`."""
        return self._mean_grad(*self._checked(out, y, owner or f"{self.name}.grad"))

    def value_and_grad(
        self, out: ArrayLike, y: ArrayLike, *, owner: str | None = None
    ) -> tuple[float, Array]:
        """[`value`][layerkit.Loss.value] and [`grad`][layerkit.Loss.grad], validating once."""
        array, target = self._checked(out, y, owner or f"{self.name}.value_and_grad")
        return self._mean(array, target), self._mean_grad(array, target)

    def __repr__(self) -> str:
        return f"{self.name}()"


def _times_log(weight: Array, log_value: Array) -> Array:
    """`weight * log_value` with `0 * log 0 = 0` (a term whose weight is exactly 0 vanishes)."""
    with np.errstate(invalid="ignore"):
        return np.where(weight == 0, 0.0, weight * log_value)


def _over(weight: Array, value: Array) -> Array:
    """`weight / value` with `0 / 0 = 0` (the derivative of a vanished term)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight == 0, 0.0, weight / value)


class BCELoss(Loss):
    """Binary cross-entropy on probabilities `p`: `-(y log p + (1 - y) log(1 - p))` summed
    over columns, mean over samples.

    Exact at the saturated ends: a term whose weight is 0 vanishes, so `p = 1, y = 1` costs 0
    with gradient `-1 / m`. Targets lie in [0, 1]. After a final [`Sigmoid`][layerkit.Sigmoid]
    a [`Sequential`][layerkit.Sequential] evaluates it from the logits (see [`fused_loss`][layerkit.losses.fused_loss]).
    """

    output_name = "p"

    def check_outputs(self, out: ArrayLike, *, owner: str) -> Array:
        """Outputs `(m, k)` that are probabilities in [0, 1]."""
        array = super().check_outputs(out, owner=owner)
        if np.any((array < 0) | (array > 1)):
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            msg = (
                f"{owner}: 'p' must be probabilities in [0, 1], got values in "
                f"[{low:g}, {high:g}] (logits? {PROBABILITY_ADVICE})."
            )
            raise TargetError(msg)
        return array

    def check_targets(self, y: ArrayLike, shape: tuple[int, int], *, owner: str) -> Array:
        """Targets in [0, 1] of shape `(m, k)` (`(m,)` or `(1, m)` when `k == 1`)."""
        return check_targets(y, shape, owner=owner)

    def sample_losses(self, out: Array, y: Array) -> Array:
        with np.errstate(divide="ignore"):
            terms = _times_log(y, np.log(out)) + _times_log(1.0 - y, np.log1p(-out))
        return np.asarray(-terms.sum(axis=-1))

    def sample_grads(self, out: Array, y: Array) -> Array:
        return np.asarray(_over(1.0 - y, 1.0 - out) - _over(y, out))


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits `z` (`p = sigmoid(z)`), in the stable form
    `max(z, 0) - y z + log1p(exp(-|z|))`: finite and exact for any finite logit.

    Summed over columns, mean over samples; targets lie in [0, 1].
    """

    output_name = "z"

    def check_targets(self, y: ArrayLike, shape: tuple[int, int], *, owner: str) -> Array:
        """Targets in [0, 1] of shape `(m, k)` (`(m,)` or `(1, m)` when `k == 1`)."""
        return check_targets(y, shape, owner=owner)

    def sample_losses(self, out: Array, y: Array) -> Array:
        terms = np.maximum(out, 0) - y * out + np.log1p(np.exp(-np.abs(out)))
        return np.asarray(terms.sum(axis=-1))

    def sample_grads(self, out: Array, y: Array) -> Array:
        """`sigmoid(z) - y` without cancellation: with `e = exp(-|z|)` it is
        `(1 - y) - e / (1 + e)` for `z >= 0` and `e / (1 + e) - y` below, so a correctly
        labelled saturated sample keeps its tiny gradient (`-e^-40`, not 0)."""
        e = np.exp(-np.abs(out))
        tail = e / (1.0 + e)  # sigmoid(-|z|), exact for any finite z
        return np.asarray(np.where(out >= 0, (1.0 - y) - tail, tail - y))


class MSELoss(Loss):
    """Mean squared error: `mean_k (out - y)^2` per sample, mean over samples (so the mean
    over every entry, as `np.mean((out - y) ** 2)`). Targets are any finite reals."""

    def sample_losses(self, out: Array, y: Array) -> Array:
        return np.asarray(np.square(out - y).mean(axis=-1))

    def sample_grads(self, out: Array, y: Array) -> Array:
        return np.asarray(2.0 * (out - y) / out.shape[-1])


class SoftmaxCrossEntropyLoss(Loss):
    """Cross-entropy of `softmax(z)` over `k >= 2` classes, from the logits `z`.

    `-log softmax(z)[label]` per sample, mean over samples; the log-softmax is computed
    around the largest logit, so logits of +-1000 are exact. Targets: integer labels `(m,)`
    or `(m, 1)` in `[0, k)`, or one-hot rows `(m, k)`; both give the same loss.
    """

    output_name = "z"

    def check_outputs(self, out: ArrayLike, *, owner: str) -> Array:
        """Logits `(m, k)` with `k >= 2` classes."""
        array = super().check_outputs(out, owner=owner)
        _require_classes(array.shape[1], owner)
        return array

    def check_targets(self, y: ArrayLike, shape: tuple[int, int], *, owner: str) -> Array:
        """Class labels `(m,)`/`(m, 1)` or one-hot `(m, k)`; returns one-hot `(m, k)`."""
        m, k = shape
        _require_classes(k, owner)
        target = as_float_array(y, name="y", owner=owner)
        if target.shape == (m, k) and k > 1:
            bad_rows = np.flatnonzero(
                np.any((target != 0) & (target != 1), axis=1) | (target.sum(axis=1) != 1)
            )
            if bad_rows.size:
                row = int(bad_rows[0])
                msg = (
                    f"{owner}: targets 'y' of shape {shape} must be one-hot rows (a single 1, "
                    f"the rest 0); row {row} is {target[row].tolist()} "
                    f"({bad_rows.size} bad row(s))."
                )
                raise TargetError(msg)
            return target
        if target.shape not in ((m,), (m, 1)):
            msg = (
                f"{owner}: targets 'y' must be class labels of shape ({m},) or one-hot rows of "
                f"shape {shape}, got shape {target.shape}."
            )
            raise ShapeError(msg)
        labels = target.reshape(m)
        bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | (labels >= k))
        if bad.size:
            msg = (
                f"{owner}: targets 'y' must be integer class labels in [0, {k - 1}]; "
                f"{bad.size} value(s) are not, e.g. {float(labels[bad[0]])!r} at sample {int(bad[0])}."
            )
            raise TargetError(msg)
        one_hot = np.zeros(shape, dtype=target.dtype)
        one_hot[np.arange(m), labels.astype(np.intp)] = 1.0
        return one_hot

    def sample_losses(self, out: Array, y: Array) -> Array:
        top = out.argmax(axis=-1)[..., np.newaxis]
        shifted = out - np.take_along_axis(out, top, axis=-1)  # largest logit -> 0
        others = np.exp(shifted)
        np.put_along_axis(others, top, 0.0, axis=-1)
        log_norm = np.log1p(others.sum(axis=-1))  # exact when one class dominates
        return np.asarray(log_norm - (y * shifted).sum(axis=-1))

    def sample_grads(self, out: Array, y: Array) -> Array:
        """`softmax(z) - y`; the labelled entry is minus the other classes' probabilities
        (no `1 - p` cancellation, so a confident right answer keeps its tiny gradient)."""
        e = np.exp(out - out.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        rest = (p * (1.0 - y)).sum(axis=-1, keepdims=True)
        return np.asarray(np.where(y == 1, -rest, p))


def _require_classes(k: int, owner: str) -> None:
    if k < 2:
        msg = (
            f"{owner}: SoftmaxCrossEntropyLoss needs k >= 2 output columns (one per class), got "
            f"{k}; for two classes in one column use BCEWithLogitsLoss."
        )
        raise ShapeError(msg)


def fused_loss(loss: Loss, last: Layer) -> Loss | None:
    """How `loss` reads a model whose last layer is `last`: the one fusion rule.

    The rule: a [`BCELoss`][layerkit.BCELoss] (that class exactly) after a final
    [`Sigmoid`][layerkit.Sigmoid] (that class exactly) is evaluated as
    [`BCEWithLogitsLoss`][layerkit.BCEWithLogitsLoss] on the Sigmoid's input: the same function,
    finite and exact where the sigmoid saturates. Subclasses are never fused, so their
    overrides always run. The model's `forward` and `predict` still return probabilities.

    Returns:
        The loss to apply to the input of `last`, or None when `loss` reads the output.

    Raises:
        ConfigError: a BCELoss after a bare [`Linear`][layerkit.Linear], whose output is not a
            probability.
    """
    if isinstance(loss, BCELoss) and isinstance(last, Linear):
        msg = (
            f"Sequential: the model ends in a bare {last.name}, whose output is not a "
            f"probability, but the loss is {loss!r}: {PROBABILITY_ADVICE}."
        )
        raise ConfigError(msg)
    if type(loss) is BCELoss and type(last) is Sigmoid:
        return BCEWithLogitsLoss()
    return None
