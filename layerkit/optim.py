"""Optimisers over the flat parameter vector, and a short training loop."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, SeedLike
from layerkit._validate import as_float_array
from layerkit.errors import ConfigError, ShapeError
from layerkit.sequential import Sequential


def _check_rate(value: float, name: str, owner: str, *, upper: float | None = None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (upper is not None and value >= upper):
        bound = f"in [0, {upper})" if upper is not None else ">= 0"
        msg = f"{owner}: '{name}' must be a finite number {bound} (got {value!r})."
        raise ConfigError(msg)
    return float(value)


class Optimizer:
    """Base class: ``step(params, grads)`` returns the updated flat parameter vector."""

    def step(self, params: Array, grads: Array) -> Array:
        """One update of the flat vector ``params`` ``(P,)`` given ``grads`` ``(P,)``."""
        raise NotImplementedError

    @staticmethod
    def _check(params: Array, grads: Array, owner: str) -> None:
        if params.shape != grads.shape:
            msg = f"{owner}.step: 'grads' must have the shape of 'params' {params.shape}, got {grads.shape}."
            raise ShapeError(msg)


class SGD(Optimizer):
    """Gradient descent with (optionally Nesterov) momentum: ``v = mu v - lr g; p += v``."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.9, *, nesterov: bool = False) -> None:
        self.lr = _check_rate(lr, "lr", "SGD")
        self.momentum = _check_rate(momentum, "momentum", "SGD", upper=1.0)
        self.nesterov = nesterov
        self._velocity: Array | None = None

    def step(self, params: Array, grads: Array) -> Array:
        self._check(params, grads, "SGD")
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
        self, lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr = _check_rate(lr, "lr", "Adam")
        self.beta1 = _check_rate(beta1, "beta1", "Adam", upper=1.0)
        self.beta2 = _check_rate(beta2, "beta2", "Adam", upper=1.0)
        self.eps = _check_rate(eps, "eps", "Adam")
        self._m: Array | None = None
        self._v: Array | None = None
        self._t = 0

    def step(self, params: Array, grads: Array) -> Array:
        self._check(params, grads, "Adam")
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
    epochs: int = 100,
    batch_size: int | None = None,
    seed: SeedLike = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> History:
    """Train ``model`` in place on ``x`` ``(m, in)``, ``y`` ``(m, out)`` with mini-batches.

    **Arguments:** ``optimizer`` (default ``SGD(0.1, 0.9)``); ``batch_size`` (default: all);
    ``seed`` drives shuffling and dropout masks (never the global RNG); ``on_epoch(epoch, loss)``.

    **Returns:** a :class:`History` of mean epoch losses.
    """
    inputs = model.check_input(x)
    targets = model.check_targets(as_float_array(y, name="y"), inputs.shape[0])
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        msg = f"fit: 'epochs' must be a positive integer (got {epochs!r})."
        raise ConfigError(msg)
    m = inputs.shape[0]
    size = m if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        msg = f"fit: 'batch_size' must be a positive integer (got {batch_size!r})."
        raise ConfigError(msg)
    opt = optimizer if optimizer is not None else SGD()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
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
