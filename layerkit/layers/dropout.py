"""Inverted dropout, whose random mask is an explicit input so that checks can hold it fixed."""

from __future__ import annotations

import numpy as np

from layerkit._typing import Array, Real
from layerkit._validate import as_float_array, is_real
from layerkit.errors import ConfigError
from layerkit.layers.base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, zero each entry with probability `rate` and scale the
    rest by `1 / (1 - rate)`.

    The mask is *noise*, an input of `forward`, not hidden state: `sample_noise` draws it,
    `forward(x, noise=mask)` applies it, and `forward(x)` with no mask is the identity
    (evaluation mode). A gradient check draws the masks once, from its own seed, and keeps them
    fixed for every evaluation, so the loss it differentiates is deterministic.
    """

    __slots__ = ("rate",)

    def __init__(self, rate: Real = 0.5) -> None:
        if not is_real(rate) or not 0 <= rate < 1:
            msg = f"Dropout: 'rate' must be a number in [0, 1) (got {rate!r})."
            raise ConfigError(msg)
        self.rate = float(rate)

    @property
    def name(self) -> str:
        return f"Dropout({self.rate:g})"

    def sample_noise(self, x: Array, rng: np.random.Generator) -> Array:
        keep = rng.random(np.shape(x)) >= self.rate
        return keep.astype(np.asarray(x).dtype) / (1.0 - self.rate)

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, Array | None]:
        """`x * noise` (the identity without a mask); the cache is the mask."""
        x = self.check_input(x)
        if noise is None:
            return x, None
        mask = as_float_array(noise, name="noise", owner=self.name)
        if mask.shape != x.shape:
            msg = f"{self.name}: 'noise' must have the input's shape {x.shape}, got {mask.shape}."
            raise ConfigError(msg)
        return x * mask, mask

    def backward(self, cache: Array | None, grad_y: Array) -> tuple[Array, dict[str, Array]]:
        return (grad_y if cache is None else grad_y * cache), {}
