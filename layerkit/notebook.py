"""The seed notebook's functions, under its names and signatures, built on layerkit.

The same column layout and return values as the notebook (examples in columns: `X (4, m)`,
`Y (1, m)`, `b (out, 1)`), computed by the fraud net of
[`fraud_net_from_arrays`][layerkit.fraud_net_from_arrays] through the public
[`Sequential`][layerkit.Sequential] API. The page "The notebook API" explains the layout, and
why the notebook's one-number check is kept for continuity only: for a verdict use
[`check_function`][layerkit.check_function] or [`check_model`][layerkit.check_model].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from layerkit._seed import (
    CACHE_NAMES,
    GRADIENT_CHECK_N_THRESHOLD,
    GRADIENT_CHECK_THRESHOLD,
    PARAMETER_KEYS,
    check_epsilon,
    check_gradient_shapes,
    check_parameters,
    check_X,
    check_Y,
    real_number,
    require_keys,
    seed_difference,
    seed_message,
    shape_of,
)
from layerkit._seed_comparison import Comparison, compare_checks
from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_float_array
from layerkit.errors import CacheError, ConfigError, GradientSpecError
from layerkit.layers import Linear, ReLU
from layerkit.layers.activations import sigmoid as _stable_sigmoid
from layerkit.models import SEED_PARAMETER_SHAPES, fraud_net_from_arrays, seed_parameters
from layerkit.params import ParamSpec, TensorSpec
from layerkit.sequential import Sequential, SequentialCache

__all__ = [
    "GRADIENT_CHECK_N_THRESHOLD",
    "GRADIENT_CHECK_THRESHOLD",
    "PARAMETER_KEYS",
    "SEED_PARAMETER_SHAPES",
    "Comparison",
    "NotebookCache",
    "backward_propagation",
    "backward_propagation_n",
    "backward_propagation_n_with_seed_bugs",
    "compare_checks",
    "dictionary_to_vector",
    "forward_propagation",
    "forward_propagation_n",
    "gradient_check",
    "gradient_check_n",
    "gradient_check_n_test_case",
    "gradients_to_vector",
    "relu",
    "sigmoid",
    "vector_to_dictionary",
]

# -- 1-dimensional gradient checking -----------------------------------------------------------


def forward_propagation(x: float, theta: float) -> float:
    """The seed's 1-D model `J(theta) = theta * x`."""
    real_number(x, "x", "forward_propagation")
    real_number(theta, "theta", "forward_propagation")
    return theta * x


def backward_propagation(x: float, theta: float) -> float:
    """The derivative of [`forward_propagation`][layerkit.notebook.forward_propagation]: `x`."""
    real_number(x, "x", "backward_propagation")
    real_number(theta, "theta", "backward_propagation")
    return x


def gradient_check(x: float, theta: float, epsilon: float = 1e-7, *, verbose: bool = True) -> float:
    """The seed's 1-D check: a central difference of step `epsilon`, then
    `|g - n| / (|g| + |n|)`, returned (`gradient_check(2, 4)`: about 2.919e-10).

    With `verbose`, prints "The gradient is correct!" below 1e-7, else "The gradient is
    wrong!" (also for a NaN difference, e.g. `x = 0`).
    """
    check_epsilon(epsilon, "gradient_check")
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    difference = seed_difference(backward_propagation(x, theta), (J_plus - J_minus) / (2 * epsilon))
    if verbose:
        correct = difference < GRADIENT_CHECK_THRESHOLD
        print("The gradient is correct!" if correct else "The gradient is wrong!")
    return difference


# -- helpers the seed imported from gc_utils ---------------------------------------------------


def sigmoid(x: ArrayLike) -> Array:
    """The logistic function, elementwise, in an overflow-free form."""
    return _stable_sigmoid(as_float_array(x, name="x", allow_nonfinite=True))


def relu(x: ArrayLike) -> Array:
    """`max(0, x)`, elementwise, as float."""
    return ReLU().function(as_float_array(x, name="x", allow_nonfinite=True))


def dictionary_to_vector(parameters: Mapping[str, ArrayLike]) -> tuple[Array, list[str]]:
    """Roll `W1, b1, W2, b2, W3, b3` into one column, each row-major; other keys are ignored.

    Returns:
        `(theta, keys)`: a new array `(P, 1)`, and the parameter name of each entry.
    """
    theta, spec = _roll(parameters, PARAMETER_KEYS, "dictionary_to_vector", ConfigError)
    return theta, [t.name for t in spec for _ in range(t.size)]


def vector_to_dictionary(
    theta: ArrayLike, shapes: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, Array]:
    """Unroll a `(P, 1)` or `(P,)` vector into views `W1, b1, ..., b3` of it.

    `shapes` maps each name to its shape; the seed's (`P = 47`) when None. A vector of the
    wrong length raises [`ShapeError`][layerkit.errors.ShapeError] naming both lengths.
    """
    layout = SEED_PARAMETER_SHAPES if shapes is None else shapes
    if not isinstance(layout, Mapping):
        msg = f"vector_to_dictionary: 'shapes' must be a mapping name -> shape, got {type(layout).__name__}."
        raise ConfigError(msg)
    require_keys(layout, PARAMETER_KEYS, "vector_to_dictionary", "shapes", ConfigError)
    spec = ParamSpec(tuple(TensorSpec(k, shape_of(layout[k], k)) for k in PARAMETER_KEYS))
    return spec.unflatten(theta, owner="vector_to_dictionary")


def gradients_to_vector(gradients: Mapping[str, ArrayLike]) -> Array:
    """Roll `dW1, db1, ..., db3` into one column `(P, 1)`; other keys (`dZ3`...) are ignored."""
    keys = tuple(f"d{k}" for k in PARAMETER_KEYS)
    return _roll(gradients, keys, "gradients_to_vector", GradientSpecError)[0]


def _roll(
    arrays: Mapping[str, ArrayLike],
    keys: Sequence[str],
    where: str,
    error: type[ConfigError] | type[GradientSpecError],
) -> tuple[Array, ParamSpec]:
    """The arrays of `keys` rolled into one float64 column `(P, 1)`, and their layout."""
    what = "parameters" if error is ConfigError else "gradients"
    require_keys(arrays, keys, where, what, error)
    spec = ParamSpec(tuple(TensorSpec(k, tuple(np.shape(arrays[k]))) for k in keys))
    vector = spec.flatten({k: arrays[k] for k in keys}, what=what, dtype=np.float64)
    return vector.reshape(-1, 1), spec


# -- N-dimensional: the fraud-detection net -----------------------------------------------------


class NotebookCache(tuple[Array, ...]):
    """The seed's cache `(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)`, column layout.

    A plain tuple to seed code, which also carries the layerkit forward it was read from, so
    that [`backward_propagation_n`][layerkit.notebook.backward_propagation_n] differentiates
    exactly that forward.

    Attributes:
        model: The fraud net that ran.
        x: Its input, batch-first `(m, 4)`.
        logits: Its output before the final Sigmoid, `(m, 1)`.
        body_cache: The cache of its forward up to the logits.
    """

    model: Sequential
    x: Array
    logits: Array
    body_cache: SequentialCache


def _seed_names(model: Sequential) -> list[str]:
    """The seed's name of each layer's output: `Z<k>` after the k-th Linear, else `A<k>`."""
    names, k = [], 0
    for layer in model:
        k += isinstance(layer, Linear)
        names.append(f"{'Z' if isinstance(layer, Linear) else 'A'}{k}")
    return names


def _forward(X: ArrayLike, parameters: Mapping[str, ArrayLike], where: str) -> NotebookCache:
    """Run the fraud net holding `parameters` on `X.T`, and name what the seed caches."""
    arrays = check_parameters(parameters, where)
    x = check_X(X, int(arrays["W1"].shape[1]), where).T
    model = fraud_net_from_arrays(arrays)
    logits, body_cache, outputs = model.forward(x, layers=len(model.body), intermediates=True)
    probabilities = model[len(model.body) :].predict(logits)
    named = dict(zip(_seed_names(model), (*outputs, probabilities), strict=True))
    params = model.params()
    seed = {k: v.T for k, v in named.items()} | {
        k: v.reshape(len(v), -1) for k, v in params.items()
    }
    cache = NotebookCache(seed[k] for k in CACHE_NAMES)
    cache.model, cache.x, cache.logits, cache.body_cache = model, x, logits, body_cache
    return cache


def forward_propagation_n(
    X: ArrayLike, Y: ArrayLike, parameters: Mapping[str, ArrayLike]
) -> tuple[float, NotebookCache]:
    """LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID, and the seed's cost.

    The cost is the seed's formula `mean(-Y log A3 - (1 - Y) log(1 - A3))` on the
    probabilities, so that its numbers reproduce (2.407833389834357 on the test case); it loses
    precision as `A3` nears 0 or 1, where [`Sequential.loss_value`][layerkit.Sequential.loss_value]
    computes the same loss from the logits.

    Args:
        X: Examples in columns, `(4, m)`.
        Y: Labels in [0, 1], `(1, m)`.
        parameters: `W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1), W3 (1, 3), b3 (1, 1)` (other
            widths work if they chain).

    Returns:
        `(cost, cache)`, `cache` a [`NotebookCache`][layerkit.notebook.NotebookCache].
    """
    cache = _forward(X, parameters, "forward_propagation_n")
    A3 = dict(zip(CACHE_NAMES, cache, strict=True))["A3"]
    m = A3.shape[1]
    labels = check_Y(Y, m, "forward_propagation_n")
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(A3), labels) + np.multiply(-np.log(1 - A3), 1 - labels)
    return float(1.0 / m * np.sum(logprobs)), cache


def _resolve_cache(X: ArrayLike, cache: Sequence[ArrayLike], where: str) -> NotebookCache:
    """The layerkit forward behind `cache`, refusing one that did not come from this `X`."""
    if isinstance(cache, NotebookCache):
        if not np.array_equal(check_X(X, cache.x.shape[1], where).T, cache.x):
            msg = (
                f"{where}: 'cache' comes from forward_propagation_n on a different X; "
                "pass the cache returned for this X."
            )
            raise CacheError(msg)
        return cache
    if not isinstance(cache, Sequence) or len(cache) != len(CACHE_NAMES):
        length = len(cache) if isinstance(cache, Sequence) else "?"
        msg = (
            f"{where}: 'cache' must be the 12-tuple ({', '.join(CACHE_NAMES)}) returned by "
            f"forward_propagation_n, got {type(cache).__name__} of length {length}."
        )
        raise CacheError(msg)
    # A plain 12-tuple (e.g. from the seed's own forward): rerun the forward of its W1..b3 on
    # X, and refuse it if its Z and A differ.
    given = dict(zip(CACHE_NAMES, cache, strict=True))
    rebuilt = _forward(X, {k: given[k] for k in PARAMETER_KEYS}, where)
    for name, ours in zip(CACHE_NAMES, rebuilt, strict=True):
        theirs = as_float_array(given[name], name=f"cache {name}", allow_nonfinite=True)
        if name[0] in "ZA" and (
            theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-9, atol=1e-12)
        ):
            msg = (
                f"{where}: the cache's {name} does not match the forward of its own "
                f"W1..b3 on this X; pass the cache forward_propagation_n returned for this X."
            )
            raise CacheError(msg)
    return rebuilt


def backward_propagation_n(
    X: ArrayLike, Y: ArrayLike, cache: Sequence[ArrayLike]
) -> dict[str, Array]:
    """The seed's backward pass without its planted bugs, by layerkit's backward.

    Args:
        X: Examples in columns, `(4, m)`.
        Y: Labels, `(1, m)`.
        cache: From [`forward_propagation_n`][layerkit.notebook.forward_propagation_n] on this
            `X` (a plain seed 12-tuple is accepted after a check that it matches `X`).

    Returns:
        The seed's dict, in its order `dZ3, dW3, db3, dA2, dZ2, dW2, db2, dA1, dZ1, dW1, db1`:
            `dW`, `db (out, 1)` are gradients of the cost; `dZ`, `dA (units, m)` those of the
            summed loss, as the seed's (`dZ3 = A3 - Y`).

    Raises:
        CacheError: `cache` is not from this `X`.
    """
    where = "backward_propagation_n"
    resolved = _resolve_cache(X, cache, where)
    model, m = resolved.model, resolved.x.shape[0]
    grad_logits = model.loss_grad(resolved.logits, check_Y(Y, m, where).T)
    _, grads, grad_outputs = model.backward(resolved.body_cache, grad_logits, intermediates=True)
    names = _seed_names(model)[: len(grad_outputs)]
    summed = {f"d{n}": m * g.T for n, g in zip(names, grad_outputs, strict=True)}
    gradients: dict[str, Array] = {}
    for k in (3, 2, 1):
        if k < 3:
            gradients[f"dA{k}"] = summed[f"dA{k}"]
        gradients[f"dZ{k}"] = summed[f"dZ{k}"]
        gradients[f"dW{k}"] = grads[f"W{k}"]
        gradients[f"db{k}"] = grads[f"b{k}"].reshape(-1, 1)
    return gradients


def backward_propagation_n_with_seed_bugs(
    X: ArrayLike, Y: ArrayLike, cache: Sequence[ArrayLike]
) -> dict[str, Array]:
    """The seed's backward with its two planted bugs: `dW2` doubled, `db1` times four."""
    gradients = backward_propagation_n(X, Y, cache)
    gradients["dW2"] = gradients["dW2"] * 2
    gradients["db1"] = gradients["db1"] * 4
    return gradients


def gradient_check_n(
    parameters: Mapping[str, ArrayLike],
    gradients: Mapping[str, ArrayLike],
    X: ArrayLike,
    Y: ArrayLike,
    epsilon: float = 1e-7,
    *,
    verbose: bool = True,
) -> float:
    """The seed's N-D gradient check, kept for continuity: a weak check, not a verdict.

    A central difference of the seed's cost with step `epsilon` for each entry of
    `parameters` (`W1..b3`; none is modified), then one difference against `gradients`
    (`dW1..db3`). With `verbose`, prints the seed's "Your backward propagation works perfectly
    fine! difference = ..." when it is `<= 1.2e-7`, else "There is a mistake ..." (also NaN).

    Returns:
        The difference: about 1.19e-7 on the seed's test case with the correct backward,
            0.285 with the seed's bugs.

    Raises:
        GradientSpecError: A gradient is missing or not of its parameter's shape.
    """
    where = "gradient_check_n"
    check_epsilon(epsilon, where)
    theta, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    shapes = check_gradient_shapes(parameters, gradients, where)
    gradapprox = np.zeros_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = epsilon
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta + step, shapes))
        J_minus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta - step, shapes))
        gradapprox[i] = (J_plus - J_minus) / (2 * epsilon)
    difference = seed_difference(grad, gradapprox)
    if verbose:
        print(f"{seed_message(difference)} difference = {difference}")
    return difference


def gradient_check_n_test_case() -> tuple[Array, Array, dict[str, Array]]:
    """The seed's test case `(X (4, 3), Y (1, 3), parameters)`, as after `np.random.seed(1)`.

    Drawn from a private generator (the global numpy RNG is untouched); fresh arrays on every
    call. `Y` is `[[1., 1., 0.]]`; the seed's 1-D `[1, 1, 0]` is accepted too.
    """
    return seed_parameters()
