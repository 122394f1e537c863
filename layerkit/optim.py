"""Optimisers over the flat parameter vector, and a short training loop."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, Integer, Real, SeedLike
from layerkit._validate import as_float_array, as_rng, is_real, positive_int
from layerkit.errors import ConfigError, ShapeError, describe_array
from layerkit.params import assign_arrays, check_writable
from layerkit.sequential import Sequential


def _check_rate(value: Real, name: str, owner: str, *, upper: float | None = None) -> float:
    try:
        ok = is_real(value) and math.isfinite(value)
    except OverflowError:  # a Python int beyond the float range
        ok = False
    if not ok or value < 0 or (upper is not None and value >= upper):
        bound = f"in [0, {upper})" if upper is not None else ">= 0"
        msg = f"{owner}: '{name}' must be a finite number {bound} (got {value!r})."
        raise ConfigError(msg)
    return float(value)


class Optimizer:
    """Base class: `step(params, grads)` returns the updated flat parameter vector."""

    def step(self, params: Array, grads: Array) -> Array:
        """One update of the flat vector `params` `(P,)` given `grads` `(P,)`."""
        raise NotImplementedError

    @staticmethod
    def _check(params: ArrayLike, grads: ArrayLike, owner: str) -> tuple[Array, Array]:
        """`params` and `grads` as finite flat float vectors of one shape (lists and
        integers converted); checked before any state changes."""
        where = f"{owner}.step"
        flat = as_float_array(params, name="params", ndim=1, owner=where)
        grad = as_float_array(grads, name="grads", ndim=1, owner=where)
        if flat.shape != grad.shape:
            msg = (
                f"{where}: 'grads' must have the shape of 'params' {flat.shape}, got {grad.shape}."
            )
            raise ShapeError(msg)
        return flat, grad


class SGD(Optimizer):
    """Gradient descent with (optionally Nesterov) momentum: `v = mu v - lr g; p += v`."""

    def __init__(self, lr: Real = 0.1, momentum: Real = 0.9, *, nesterov: bool = False) -> None:
        self.lr = _check_rate(lr, "lr", "SGD")
        self.momentum = _check_rate(momentum, "momentum", "SGD", upper=1.0)
        if not isinstance(nesterov, bool | np.bool_):
            msg = f"SGD: 'nesterov' must be True or False (got {describe_array(nesterov)})."
            raise ConfigError(msg)
        self.nesterov = bool(nesterov)
        self._velocity: Array | None = None

    def step(self, params: Array, grads: Array) -> Array:
        params, grads = self._check(params, grads, "SGD")
        if self._velocity is None or self._velocity.shape != params.shape:
            self._velocity = np.zeros_like(params)
        self._velocity = self.momentum * self._velocity - self.lr * grads
        if self.nesterov:
            ahead: Array = params + self.momentum * self._velocity - self.lr * grads
            return ahead
        return params + self._velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(
        self, lr: Real = 1e-2, beta1: Real = 0.9, beta2: Real = 0.999, eps: Real = 1e-8
    ) -> None:
        self.lr = _check_rate(lr, "lr", "Adam")
        self.beta1 = _check_rate(beta1, "beta1", "Adam", upper=1.0)
        self.beta2 = _check_rate(beta2, "beta2", "Adam", upper=1.0)
        self.eps = _check_rate(eps, "eps", "Adam")
        self._m: Array | None = None
        self._v: Array | None = None
        self._t = 0

    def step(self, params: Array, grads: Array) -> Array:
        params, grads = self._check(params, grads, "Adam")
        if self._m is None or self._v is None or self._m.shape != params.shape:
            self._m, self._v, self._t = np.zeros_like(params), np.zeros_like(params), 0
        self._t += 1
        self._m = self.beta1 * self._m + (1 - self.beta1) * grads
        self._v = self.beta2 * self._v + (1 - self.beta2) * grads * grads
        m_hat = self._m / (1 - self.beta1**self._t)
        v_hat = self._v / (1 - self.beta2**self._t)
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


@attrs.frozen
class History:
    """Mean training loss per epoch."""

    losses: tuple[float, ...]


def fit(
    model: Sequential,
    x: ArrayLike,
    y: ArrayLike,
    *,
    optimizer: Optimizer | None = None,
    epochs: Integer = 100,
    batch_size: Integer | None = None,
    seed: SeedLike = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> History:
    """Train `model` in place with mini-batches.

    Arguments are all checked before the first update. If training raises (a NaN gradient,
    `on_epoch`...), the parameters and the optimizer's state are restored and the error
    propagates; after Ctrl-C the model keeps the updates made so far.

    Args:
        model: A [`Sequential`][layerkit.Sequential] with a loss.
        x: Inputs `(m, in)`.
        y: Targets `(m, out)`.
        optimizer: An optimizer instance (default `SGD(0.1, 0.9)`).
        epochs: A positive integer.
        batch_size: A positive integer (default: all `m` rows in one batch).
        seed: Drives shuffling and dropout masks (never the global RNG).
        on_epoch: Called as `on_epoch(epoch, loss)` after each epoch.

    Returns:
        A [`History`][layerkit.History] of mean epoch losses.

    Raises:
        ConfigError: An argument is of the wrong kind or out of range.
    """
    if not isinstance(model, Sequential):
        msg = f"fit: 'model' must be a Sequential with a loss, got {describe_array(model)}."
        raise ConfigError(msg)
    if model.loss is None:
        raise ConfigError("fit: the model has no loss; build it with loss=BCELoss().")
    inputs = model.check_input(x)
    targets = model.check_targets(as_float_array(y, name="y"), inputs.shape[0])
    n_epochs = positive_int(epochs, name="epochs", owner="fit")
    size = positive_int(
        inputs.shape[0] if batch_size is None else batch_size, name="batch_size", owner="fit"
    )
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
            got = f"the class {optimizer.__name__} (pass an instance: {optimizer.__name__}())"
        else:
            got = describe_array(optimizer)
        msg = f"fit: 'optimizer' must be an Optimizer such as SGD() or Adam(), got {got}."
        raise ConfigError(msg)
    if on_epoch is not None and not callable(on_epoch):
        msg = f"fit: 'on_epoch' must be a function (epoch, loss) or None, got {describe_array(on_epoch)}."
        raise ConfigError(msg)
    opt = optimizer if optimizer is not None else SGD()
    rng = as_rng(seed, owner="fit")
    check_writable(model.params(), owner="fit")
    start = model.flatten()
    saved_state = copy.deepcopy(vars(opt)) if hasattr(opt, "__dict__") else None
    try:
        return _train(model, inputs, targets, opt, n_epochs, size, rng, on_epoch)
    except Exception:
        assign_arrays(model.params(), model.param_spec.unflatten(start), owner="fit")
        if saved_state is not None:
            vars(opt).clear()
            vars(opt).update(saved_state)
        raise


def _train(
    model: Sequential,
    inputs: Array,
    targets: Array,
    opt: Optimizer,
    epochs: int,
    size: int,
    rng: np.random.Generator,
    on_epoch: Callable[[int, float], None] | None,
) -> History:
    """The training loop of `fit`, on checked arguments."""
    m = inputs.shape[0]
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(m)
        total = 0.0
        for start in range(0, m, size):
            batch = order[start : start + size]
            value, grads = model.loss_and_grad(inputs[batch], targets[batch], rng=rng)
            flat_grads = model.param_spec.flatten(grads)
            model.unflatten(opt.step(model.flatten(), flat_grads))
            total += value * len(batch)
        losses.append(total / m)
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return History(tuple(losses))
