"""Ready-made networks: multi-layer perceptrons for any loss, and the seed notebook's fraud net."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, Integer, SeedLike
from layerkit._validate import as_rng, is_integer
from layerkit.errors import ConfigError, describe_array
from layerkit.layers import Linear, ReLU, Sigmoid
from layerkit.layers.linear import InitScheme
from layerkit.losses import BCELoss, Loss
from layerkit.sequential import Sequential

FRAUD_NET_WIDTHS: tuple[int, ...] = (4, 5, 3, 1)
"""The seed's architecture: LINEAR(4->5) -> RELU -> LINEAR(5->3) -> RELU -> LINEAR(3->1) -> SIGMOID."""

SEED_PARAMETER_SHAPES: dict[str, tuple[int, ...]] = {
    name: shape
    for k, (n_in, n_out) in enumerate(itertools.pairwise(FRAUD_NET_WIDTHS), start=1)
    for name, shape in ((f"W{k}", (n_out, n_in)), (f"b{k}", (n_out, 1)))
}
"""The seed's parameters in its column layout, in the order of its flat vector:
`W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1), W3 (1, 3), b3 (1, 1)`."""


def mlp(
    widths: Sequence[Integer],
    *,
    loss: Loss | None = None,
    seed: SeedLike = 0,
    init: InitScheme = "he",
    dtype: type[np.floating] | np.dtype[np.floating] = np.float64,
) -> Sequential:
    """Linear layers of `widths` with ReLU between, and `loss` at the end.

    `widths=(4, 5, 3, 1)` with the default loss is the seed's fraud net.

    Args:
        widths: input width, hidden widths, output width (two or more positive integers).
        loss: default [`BCELoss`][layerkit.BCELoss], a binary classifier: the net then ends in
            a Sigmoid (BCELoss reads probabilities). Any other loss reads the last Linear's
            output: [`MSELoss`][layerkit.MSELoss] for regression,
            [`SoftmaxCrossEntropyLoss`][layerkit.SoftmaxCrossEntropyLoss] for `k` classes
            (`widths[-1] == k`), [`BCEWithLogitsLoss`][layerkit.BCEWithLogitsLoss].
        seed: seed or generator for the initial weights.
        init: weight initialisation scheme of each Linear.
        dtype: the parameters' floating dtype.

    Raises:
        ConfigError: `widths` not two or more positive integers.
    """
    try:
        if isinstance(widths, str | bytes):
            raise TypeError
        sizes = list(widths)
    except TypeError:  # a number, a 0-d array, a string...
        msg = (
            f"mlp: 'widths' must be two or more positive integers, e.g. (4, 5, 3, 1) "
            f"(got {describe_array(widths)})."
        )
        raise ConfigError(msg) from None
    if len(sizes) < 2 or any(not is_integer(w) or w < 1 for w in sizes):
        msg = f"mlp: 'widths' must be two or more positive integers (got {list(widths)!r})."
        raise ConfigError(msg)
    rng = as_rng(seed, owner="mlp")
    chosen = BCELoss() if loss is None else loss
    layers: list[Linear | ReLU | Sigmoid] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [Linear(int(n_in), int(n_out), init=init, seed=rng, dtype=dtype), ReLU()]
    layers[-1:] = [Sigmoid()] if isinstance(chosen, BCELoss) else []
    return Sequential(layers, loss=chosen)


def fraud_net(*, seed: SeedLike = 0, init: InitScheme = "he") -> Sequential:
    """The seed's fraud-detection net, 4 -> 5 -> 3 -> 1, freshly initialised from `seed`."""
    return mlp(FRAUD_NET_WIDTHS, seed=seed, init=init)


@attrs.frozen(eq=False)
class SeedCase:
    """The seed notebook's `gradient_check_n_test_case` in layerkit's layout.

    Attributes:
        model: The fraud net, parameters `W1..b3` as drawn by the seed.
        x: The seed's `X.T`, `(3, 4)`.
        y: Labels 1, 1, 0, `(3, 1)`.
    """

    model: Sequential
    x: Array
    y: Array


def seed_parameters() -> tuple[Array, Array, dict[str, Array]]:
    """The seed's test case in the seed's own column layout: `(X (4, 3), Y (1, 3), params)`
    with `W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1), W3 (1, 3), b3 (1, 1)`.

    Drawn as the seed does after `np.random.seed(1)`, from a private `RandomState(1)`, so
    the caller's global RNG is untouched.
    """
    rng = np.random.RandomState(1)
    x = rng.randn(4, 3)
    y = np.array([[1.0, 1.0, 0.0]])
    params: dict[str, Array] = {k: rng.randn(*shape) for k, shape in SEED_PARAMETER_SHAPES.items()}
    return x, y, params


def fraud_net_from_arrays(params: Mapping[str, ArrayLike]) -> Sequential:
    """The fraud net holding the seed-layout arrays `W1..b3` (biases `(out, 1)` accepted)."""
    missing = [k for k in SEED_PARAMETER_SHAPES if k not in params]
    if missing:
        msg = (
            f"fraud_net_from_arrays: 'params' is missing {missing} (needs W1, b1, W2, b2, W3, b3)."
        )
        raise ConfigError(msg)
    return Sequential(
        Linear.from_arrays(params["W1"], params["b1"]),
        ReLU(),
        Linear.from_arrays(params["W2"], params["b2"]),
        ReLU(),
        Linear.from_arrays(params["W3"], params["b3"]),
        Sigmoid(),
        loss=BCELoss(),
    )


def fraud_net_seed_case() -> SeedCase:
    """The seed's test case as a layerkit model and batch-first data (cost 2.407833389834357)."""
    x, y, params = seed_parameters()
    return SeedCase(model=fraud_net_from_arrays(params), x=x.T.copy(), y=y.T.copy())
