"""The fully connected layer `y = x @ W.T + b`."""

from __future__ import annotations

from typing import Literal

import numpy as np

from layerkit._typing import Array, ArrayLike, SeedLike
from layerkit._validate import as_float_array, as_float_dtype, as_rng, positive_int
from layerkit.errors import ConfigError, LayerkitError, ShapeError
from layerkit.layers.base import Layer

InitScheme = Literal["normal", "he", "xavier", "xavier_uniform", "zeros"]
INIT_SCHEMES: tuple[str, ...] = ("normal", "he", "xavier", "xavier_uniform", "zeros")
LinearCache = tuple[Array, Array]
"""`(x, W)`: the input `(m, in)` and the weights `(out, in)` a forward used."""


def init_weights(
    scheme: str, out_features: int, in_features: int, rng: np.random.Generator
) -> Array:
    """Draw a `(out, in)` weight matrix by `scheme`.

    `normal`: standard normal (the seed notebook's `randn`); `he`: N(0, 2/in);
    `xavier`: N(0, 2/(in+out)); `xavier_uniform`: U(+-sqrt(6/(in+out))); `zeros`.
    """
    shape = (out_features, in_features)
    if scheme == "normal":
        return rng.standard_normal(shape)
    if scheme == "he":
        return rng.standard_normal(shape) * float(np.sqrt(2.0 / in_features))
    if scheme == "xavier":
        return rng.standard_normal(shape) * float(np.sqrt(2.0 / (in_features + out_features)))
    if scheme == "xavier_uniform":
        limit = np.sqrt(6.0 / (in_features + out_features))
        return rng.uniform(-limit, limit, size=shape)
    if scheme == "zeros":
        return np.zeros(shape)
    msg = f"Linear: 'init' must be one of {list(INIT_SCHEMES)} (got {scheme!r})."
    raise ConfigError(msg)


class Linear(Layer):
    """Fully connected layer: `y = x @ W.T + b`, with `W (out, in)` (the seed's and torch's
    layout) and `b (out,)` (zeros at init).

    Args:
        in_features: Input width.
        out_features: Output width.
        init: `normal` (the seed's `randn`), `he`, `xavier`, `xavier_uniform` or `zeros`.
        seed: An int or a `numpy.random.Generator` (never the global RNG).
        dtype: float64 or float32.

    Raises:
        ConfigError: A width that is not a positive integer, or an unknown `init`.
    """

    __slots__ = ("W", "b")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: InitScheme = "he",
        seed: SeedLike = None,
        dtype: type[np.floating] | np.dtype[np.floating] = np.float64,
    ) -> None:
        n_in = positive_int(in_features, name="in_features", owner="Linear")
        n_out = positive_int(out_features, name="out_features", owner="Linear")
        real = as_float_dtype(dtype, owner="Linear")
        rng = as_rng(seed, owner="Linear")
        try:
            self.W: Array = init_weights(init, n_out, n_in, rng).astype(real)
            self.b: Array = np.zeros(n_out, dtype=real)
        except (MemoryError, ValueError) as exc:  # numpy cannot allocate W (out, in)
            if isinstance(exc, LayerkitError):
                raise
            gigabytes = n_out * n_in * real.itemsize / 1e9
            msg = (
                f"Linear: cannot allocate W of shape ({n_out}, {n_in}) ({gigabytes:.3g} GB of "
                f"{real}); use smaller widths."
            )
            raise ConfigError(msg) from exc

    @classmethod
    def from_arrays(cls, W: ArrayLike, b: ArrayLike | None = None) -> Linear:
        """A layer holding copies of `W` `(out, in)` and `b` `(out,)` (zeros if None)."""
        weights = as_float_array(W, name="W", ndim=2, owner="Linear.from_arrays").copy()
        out_features, _in_features = weights.shape
        if weights.size == 0:
            msg = (
                f"Linear.from_arrays: 'W' must have at least one row and one column (out, in), "
                f"got shape {weights.shape} (a zero-width layer)."
            )
            raise ShapeError(msg)
        bias = (
            np.zeros(out_features, dtype=weights.dtype)
            if b is None
            else as_float_array(b, name="b", dtype=weights.dtype, owner="Linear.from_arrays").copy()
        )
        if bias.shape != (out_features,):
            if bias.size == out_features:  # accept the seed's (out, 1) column
                bias = bias.reshape(out_features)
            else:
                msg = f"Linear: 'b' must have shape ({out_features},) to match W, got {bias.shape}."
                raise ShapeError(msg)
        layer = cls.__new__(cls)
        layer.W = weights
        layer.b = bias
        return layer

    @property
    def in_features(self) -> int:  # type: ignore[override]
        return int(self.W.shape[1])

    @property
    def out_features(self) -> int:  # type: ignore[override]
        return int(self.W.shape[0])

    @property
    def name(self) -> str:
        return f"Linear({self.in_features}->{self.out_features})"

    def params(self) -> dict[str, Array]:
        return {"W": self.W, "b": self.b}

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, LinearCache]:
        """`y = x @ W.T + b` for `x` `(m, in)`; the cache holds `x` and the `W` used."""
        x = self.check_input(x).astype(self.W.dtype, copy=False)
        p = self.check_params()
        return x @ p["W"].T + p["b"], (x, p["W"])

    def backward(self, cache: LinearCache, grad_y: Array) -> tuple[Array, dict[str, Array]]:
        x, W = cache
        grad_y = np.asarray(grad_y).astype(W.dtype, copy=False)
        return grad_y @ W, {"W": grad_y.T @ x, "b": grad_y.sum(axis=0)}
