"""The seed notebook's functions, under the seed's names and signatures, built on layerkit.

For people arriving from the gradient-checking notebook (``seed/000_ff7ff67dbab12d8b.txt``):
the same functions, the same array layout and the same return values, but computed by
layerkit's layers (:func:`~layerkit.models.fraud_net_from_arrays`, ``Sequential.forward``,
each layer's ``backward``) instead of a second copy of the math.

**Layout conversions.** The seed stores examples in *columns*; layerkit is *batch-first*::

    seed (column layout)          layerkit (batch-first)
    X          (features, m)      x = X.T              (m, features)
    Y          (1, m)             y = Y.T              (m, 1)
    W1, W2, W3 (out, in)          Linear.W             (out, in)      same array layout
    b1, b2, b3 (out, 1)           Linear.b             (out,)         reshaped
    Z1, A1 ... (units, m)         layer outputs        (m, units)     transposed
    dW1 ... db3                   gradients of the cost J (the batch mean), as layerkit's;
                                  db reshaped to (out, 1)
    dZ3, dA2 ... dZ1              gradients of the *summed* loss m * J, as the seed computes
                                  them (dZ3 = A3 - Y): m times layerkit's grad_out, transposed

Flat vectors follow the seed's ``dictionary_to_vector``: ``W1, b1, W2, b2, W3, b3`` in that
order, each flattened row-major, as one column of shape ``(P, 1)`` (``P = 47`` for the
seed's 4 -> 5 -> 3 -> 1 net).

**What is kept, and what is not.** :func:`gradient_check` and :func:`gradient_check_n` keep the
seed's algorithm (fixed step, one relative-difference number, a threshold) so that its printed
numbers reproduce; they are a tutorial's check, not a verdict. NaN is the one deviation: the
seed's ``gradient_check_n`` reads a NaN difference as a pass, ours reports it as wrong. For a
real verdict (per-parameter errors, kinks, inconclusive cases) use ``layerkit.check_function``
or ``layerkit.check_model``; :func:`compare_checks` shows the seed's check and layerkit's side
by side on the seed's test case.
"""

from __future__ import annotations

import numbers
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Self, Unpack

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, Float64Array
from layerkit._validate import as_float_array, is_integer
from layerkit.errors import (
    CacheError,
    ConfigError,
    DTypeError,
    GradientSpecError,
    ShapeError,
    describe_array,
)
from layerkit.gradcheck.api import check_function, check_model
from layerkit.gradcheck.options import CheckKwargs
from layerkit.gradcheck.report import GradCheckReport
from layerkit.layers.activations import ReLU
from layerkit.layers.activations import sigmoid as _stable_sigmoid
from layerkit.losses import check_targets
from layerkit.models import fraud_net_from_arrays, fraud_net_seed_case, seed_parameters
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

PARAMETER_KEYS: tuple[str, ...] = ("W1", "b1", "W2", "b2", "W3", "b3")
"""The seed's parameter names, in the order of its flat vector."""

SEED_PARAMETER_SHAPES: dict[str, tuple[int, ...]] = {
    "W1": (5, 4),
    "b1": (5, 1),
    "W2": (3, 5),
    "b2": (3, 1),
    "W3": (1, 3),
    "b3": (1, 1),
}
"""The shapes the seed's ``vector_to_dictionary`` hard-codes (the 4 -> 5 -> 3 -> 1 net)."""

GRADIENT_CHECK_THRESHOLD = 1e-7
"""The seed's 1-D pass mark: ``difference < 1e-7``."""

GRADIENT_CHECK_N_THRESHOLD = 1.2e-7
"""The seed's N-D pass mark: ``difference <= 1.2e-7`` (it prints an error above it)."""

_CACHE_NAMES: tuple[str, ...] = (
    "Z1",
    "A1",
    "W1",
    "b1",
    "Z2",
    "A2",
    "W2",
    "b2",
    "Z3",
    "A3",
    "W3",
    "b3",
)


# -- 1-dimensional gradient checking -----------------------------------------------------------


def _real_number(value: object, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{where}: '{name}' must be a real number (got {describe_array(value)})."
        raise DTypeError(msg)
    return float(value)


def forward_propagation(x: float, theta: float) -> float:
    """The seed's 1-D model ``J(theta) = theta * x`` (``x`` and ``theta`` real numbers)."""
    _real_number(x, "x", "forward_propagation")
    _real_number(theta, "theta", "forward_propagation")
    return theta * x


def backward_propagation(x: float, theta: float) -> float:
    """The derivative of :func:`forward_propagation` with respect to ``theta``: ``x``."""
    _real_number(x, "x", "backward_propagation")
    _real_number(theta, "theta", "backward_propagation")
    return x


def gradient_check(x: float, theta: float, epsilon: float = 1e-7, *, verbose: bool = True) -> float:
    """The seed's 1-D gradient check: formula (1) with step ``epsilon``, then formula (2).

    ``difference = |grad - gradapprox| / (|grad| + |gradapprox|)``; prints
    ``"The gradient is correct!"`` when it is below 1e-7, else ``"The gradient is wrong!"``
    (nothing when ``verbose=False``). A NaN difference (e.g. ``x = 0``: 0 / 0) is "wrong".

    **Returns:** the difference, a float (``gradient_check(2, 4)`` gives about 2.919e-10).
    """
    _check_epsilon(epsilon, "gradient_check")
    thetaplus = theta + epsilon
    thetaminus = theta - epsilon
    J_plus = forward_propagation(x, thetaplus)
    J_minus = forward_propagation(x, thetaminus)
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward_propagation(x, theta)
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = float(numerator / denominator)
    if verbose:
        correct = difference < GRADIENT_CHECK_THRESHOLD
        print("The gradient is correct!" if correct else "The gradient is wrong!")
    return difference


def _check_epsilon(epsilon: object, where: str) -> None:
    step = _real_number(epsilon, "epsilon", where)
    if not (np.isfinite(step) and step > 0):
        msg = f"{where}: 'epsilon' must be a positive finite number (got {epsilon!r})."
        raise ConfigError(msg)


# -- helpers the seed imported from gc_utils ---------------------------------------------------


def sigmoid(x: ArrayLike) -> Array:
    """Logistic function, elementwise (layerkit's overflow-free form; same shape as ``x``)."""
    return _stable_sigmoid(as_float_array(x, name="x", allow_nonfinite=True))


def relu(x: ArrayLike) -> Array:
    """``max(0, x)``, elementwise (same shape as ``x``, as float)."""
    return ReLU().function(as_float_array(x, name="x", allow_nonfinite=True))


def dictionary_to_vector(parameters: Mapping[str, ArrayLike]) -> tuple[Array, list[str]]:
    """Roll ``W1, b1, W2, b2, W3, b3`` into one column, each flattened row-major.

    **Returns:** ``(theta, keys)``: ``theta`` of shape ``(P, 1)`` (a new array), and ``keys``, the
    parameter name of each entry (``["W1"] * 20 + ["b1"] * 5 + ...`` for the seed's net).
    Other keys in ``parameters`` are ignored, as in the seed.
    """
    _require_keys(parameters, PARAMETER_KEYS, "dictionary_to_vector", "parameters", ConfigError)
    spec = ParamSpec(tuple(TensorSpec(k, tuple(np.shape(parameters[k]))) for k in PARAMETER_KEYS))
    selected = {k: parameters[k] for k in PARAMETER_KEYS}
    theta = spec.flatten(selected, what="parameters", dtype=np.float64)
    keys = [t.name for t in spec for _ in range(t.size)]
    return theta.reshape(-1, 1), keys


def vector_to_dictionary(
    theta: ArrayLike, shapes: Mapping[str, tuple[int, ...]] | None = None
) -> dict[str, Array]:
    """Unroll a ``(P, 1)`` (or ``(P,)``) vector into ``W1, b1, W2, b2, W3, b3``.

    **Arguments:** ``shapes``, name -> shape; the seed's fixed shapes
    (:data:`SEED_PARAMETER_SHAPES`, ``P = 47``) when None.

    **Returns:** a dict of views into ``theta`` (as the seed's slices are); a vector of the
    wrong length raises :class:`~layerkit.errors.ShapeError` naming both lengths.
    """
    layout = SEED_PARAMETER_SHAPES if shapes is None else shapes
    if not isinstance(layout, Mapping):
        msg = f"vector_to_dictionary: 'shapes' must be a mapping name -> shape, got {type(layout).__name__}."
        raise ConfigError(msg)
    _require_keys(layout, PARAMETER_KEYS, "vector_to_dictionary", "shapes", ConfigError)
    spec = ParamSpec(tuple(TensorSpec(k, _shape(layout[k], k)) for k in PARAMETER_KEYS))
    return spec.unflatten(theta, owner="vector_to_dictionary")


def _shape(value: object, key: str) -> tuple[int, ...]:
    """``value`` as a shape: a tuple of non-negative integers (else a ConfigError)."""
    dims = tuple(value) if isinstance(value, tuple | list) else None
    if dims is None or not all(is_integer(d) and int(d) >= 0 for d in dims):
        msg = (
            f"vector_to_dictionary: shapes[{key!r}] must be a tuple of non-negative integers, "
            f"got {value!r}."[:200]
        )
        raise ConfigError(msg)
    return tuple(int(d) for d in dims)


def gradients_to_vector(gradients: Mapping[str, ArrayLike]) -> Array:
    """Roll ``dW1, db1, dW2, db2, dW3, db3`` into one column ``(P, 1)``, row-major, like
    :func:`dictionary_to_vector` (other keys, such as ``dZ3``, are ignored)."""
    grad_keys = tuple(f"d{k}" for k in PARAMETER_KEYS)
    _require_keys(gradients, grad_keys, "gradients_to_vector", "gradients", GradientSpecError)
    spec = ParamSpec(tuple(TensorSpec(k, tuple(np.shape(gradients[k]))) for k in grad_keys))
    selected = {k: gradients[k] for k in grad_keys}
    return spec.flatten(selected, what="gradients", dtype=np.float64).reshape(-1, 1)


def _require_keys(
    mapping: Mapping[str, object],
    keys: Sequence[str],
    where: str,
    what: str,
    error: type[ConfigError] | type[GradientSpecError],
) -> None:
    if not isinstance(mapping, Mapping):
        msg = f"{where}: '{what}' must be a dict with keys {list(keys)} (got {type(mapping).__name__})."
        raise error(msg)
    missing = [k for k in keys if k not in mapping]
    if missing:
        msg = f"{where}: '{what}' is missing {missing} (needs {', '.join(keys)})."
        raise error(msg)


# -- N-dimensional: the fraud-detection net -----------------------------------------------------


class NotebookCache(tuple[Array, ...]):
    """The seed's cache ``(Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)``, column layout.

    A plain tuple to seed code (unpack it, index it), which also carries the layerkit forward it
    was read from (``model``, ``model_cache``), so that :func:`backward_propagation_n` runs
    layerkit's backward on exactly that forward. ``Z``/``A`` are ``(units, m)``, ``b`` ``(out, 1)``.
    """

    model: Sequential | None
    model_cache: SequentialCache | None

    def __new__(
        cls,
        arrays: Iterable[Array],
        model: Sequential | None = None,
        model_cache: SequentialCache | None = None,
    ) -> Self:
        self = super().__new__(cls, arrays)
        self.model = model
        self.model_cache = model_cache
        return self


def _check_parameters(parameters: Mapping[str, ArrayLike], where: str) -> dict[str, Array]:
    """The six arrays as float64, shapes checked in the seed's terms (b as (out, 1) or (out,))."""
    _require_keys(parameters, PARAMETER_KEYS, where, "parameters", ConfigError)
    arrays: dict[str, Array] = {}
    width: int | None = None
    for layer in (1, 2, 3):
        W = as_float_array(parameters[f"W{layer}"], name=f"parameters['W{layer}']", ndim=2)
        b = as_float_array(parameters[f"b{layer}"], name=f"parameters['b{layer}']")
        out_features, in_features = W.shape
        if width is not None and in_features != width:
            msg = (
                f"{where}: parameters['W{layer}'] must have {width} columns to follow "
                f"W{layer - 1} of shape {arrays[f'W{layer - 1}'].shape}, got shape {W.shape}."
            )
            raise ShapeError(msg)
        if b.shape not in ((out_features, 1), (out_features,)):
            msg = (
                f"{where}: parameters['b{layer}'] must have shape ({out_features}, 1) to match "
                f"W{layer} of shape {W.shape}, got shape {b.shape}."
            )
            raise ShapeError(msg)
        if layer == 3 and out_features != 1:
            msg = (
                f"{where}: parameters['W3'] must have 1 row (one output unit), got shape {W.shape}."
            )
            raise ShapeError(msg)
        arrays[f"W{layer}"], arrays[f"b{layer}"] = W, b
        width = out_features
    return arrays


def _check_X(X: ArrayLike, features: int, where: str) -> Array:
    """``X`` of shape ``(features, m)``, float64."""
    array = as_float_array(X, name="X", dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != features or array.shape[1] < 1:
        hint = ""
        if array.ndim == 2 and array.shape[1] == features:
            hint = " (batch-first data of shape (m, features)? pass X.T)"
        msg = (
            f"{where}: 'X' must have shape ({features}, m), one example per column as in the "
            f"seed, got shape {array.shape}{hint}."
        )
        raise ShapeError(msg)
    return array


def _check_Y(Y: ArrayLike, m: int, where: str) -> Array:
    """Labels ``Y`` of shape ``(1, m)`` (or the seed's 1-D ``(m,)``), values in [0, 1] -> ``(1, m)``."""
    array = as_float_array(Y, name="Y", dtype=np.float64)
    if array.shape not in ((1, m), (m,)):
        msg = f"{where}: 'Y' must have shape (1, {m}) (one label per column of X), got shape {array.shape}."
        raise ShapeError(msg)
    return check_targets(array.reshape(m, 1), (m, 1), owner=where).reshape(1, m)


def _forward(X: ArrayLike, parameters: Mapping[str, ArrayLike], where: str) -> NotebookCache:
    """Build the fraud net from ``parameters``, run it on ``X.T`` and read the seed's cache."""
    arrays = _check_parameters(parameters, where)
    x_columns = _check_X(X, int(arrays["W1"].shape[1]), where)
    model = fraud_net_from_arrays(arrays)
    _, model_cache = model.forward(x_columns.T)
    entries: list[Array] = []
    # Layers run Linear, ReLU, Linear, ReLU, Linear, Sigmoid: read Z, A, W, b per pair.
    params = model.params()
    for pair, (z, a) in enumerate(
        zip(model_cache.outputs[0::2], model_cache.outputs[1::2], strict=True)
    ):
        entries += [z.T, a.T, params[f"W{pair + 1}"], params[f"b{pair + 1}"].reshape(-1, 1)]
    return NotebookCache(entries, model=model, model_cache=model_cache)


def forward_propagation_n(
    X: ArrayLike, Y: ArrayLike, parameters: Mapping[str, ArrayLike]
) -> tuple[float, NotebookCache]:
    """LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID, and the seed's cost.

    **Arguments:** ``X`` ``(4, m)`` (features, examples); ``Y`` ``(1, m)`` labels in [0, 1];
    ``parameters`` with ``W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1), W3 (1, 3), b3 (1, 1)``
    (other widths work if they chain).

    **Returns:** ``(cost, cache)``. The network runs as layerkit's fraud net on ``X.T``; the
    cost is the seed's formula ``mean(-Y log A3 - (1 - Y) log(1 - A3))`` on the probabilities,
    kept so the seed's numbers reproduce (2.407833389834357 on the test case). It loses precision
    as ``A3`` nears 0 or 1 (and is inf where it rounds there); ``Sequential.loss_value``
    computes the same loss from the logits. ``cache`` unpacks as the seed's 12-tuple.
    """
    cache = _forward(X, parameters, "forward_propagation_n")
    A3 = cache[9]
    m = A3.shape[1]
    labels = _check_Y(Y, m, "forward_propagation_n")
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(A3), labels) + np.multiply(-np.log(1 - A3), 1 - labels)
    cost = 1.0 / m * np.sum(logprobs)
    return float(cost), cache


def _resolve_cache(X: ArrayLike, cache: Sequence[ArrayLike], where: str) -> NotebookCache:
    """The layerkit forward behind ``cache``, refusing one that did not come from this ``X``."""
    if (
        isinstance(cache, NotebookCache)
        and cache.model is not None
        and cache.model_cache is not None
    ):
        features = int(cache.model_cache.inputs[0].shape[1])
        x_columns = _check_X(X, features, where)
        if not np.array_equal(x_columns.T, cache.model_cache.inputs[0]):
            msg = (
                f"{where}: 'cache' comes from forward_propagation_n on a different X; "
                "pass the cache returned for this X."
            )
            raise CacheError(msg)
        return cache
    if not isinstance(cache, Sequence) or len(cache) != len(_CACHE_NAMES):
        length = len(cache) if isinstance(cache, Sequence) else "?"
        msg = (
            f"{where}: 'cache' must be the 12-tuple ({', '.join(_CACHE_NAMES)}) returned by "
            f"forward_propagation_n, got {type(cache).__name__} of length {length}."
        )
        raise CacheError(msg)
    # A plain 12-tuple (e.g. from the seed's own forward): rerun the forward from its
    # parameters and X, and refuse it if its Z and A do not match that forward.
    given = dict(zip(_CACHE_NAMES, cache, strict=True))
    rebuilt = _forward(X, {k: given[k] for k in PARAMETER_KEYS}, where)
    for name, ours in zip(_CACHE_NAMES, rebuilt, strict=True):
        if name[0] in "ZA":
            theirs = as_float_array(given[name], name=f"cache {name}", allow_nonfinite=True)
            if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-9, atol=1e-12):
                msg = (
                    f"{where}: the cache's {name} does not match the forward of its own "
                    f"W1..b3 on this X; pass the cache forward_propagation_n returned for this X."
                )
                raise CacheError(msg)
    return rebuilt


def backward_propagation_n(
    X: ArrayLike, Y: ArrayLike, cache: Sequence[ArrayLike]
) -> dict[str, Array]:
    """The seed's backward pass, fixed (no planted bugs), run by layerkit's layers.

    **Arguments:** ``X`` ``(4, m)``, ``Y`` ``(1, m)``, ``cache`` from
    :func:`forward_propagation_n` on this ``X`` (a plain seed 12-tuple is accepted too, after a
    check that it matches ``X``).

    **Returns:** the seed's dict, in its order: ``dZ3, dW3, db3, dA2, dZ2, dW2, db2, dA1, dZ1,
    dW1, db1``. ``dW``/``db`` are gradients of the cost (``db`` as ``(out, 1)``); ``dZ``/``dA``
    ``(units, m)`` follow the seed's convention (``dZ3 = A3 - Y``: gradients of the summed
    loss, ``m`` times those of the cost).
    """
    where = "backward_propagation_n"
    resolved = _resolve_cache(X, cache, where)
    model, model_cache = resolved.model, resolved.model_cache
    assert model is not None and model_cache is not None  # set by _forward
    logits = model_cache.outputs[len(model.body) - 1]  # Z3, (m, 1)
    m = logits.shape[0]
    labels = _check_Y(Y, m, where)
    # layerkit's backward: loss gradient from the logits, then each body layer's backward.
    grad = model.loss_grad(logits, labels.T)
    grad_outputs: dict[int, Array] = {}
    local_grads: dict[int, dict[str, Array]] = {}
    for index in reversed(range(len(model.body))):
        grad_outputs[index] = grad
        grad, local_grads[index] = model.layers[index].backward(model_cache.caches[index], grad)
    named: dict[str, Array] = {}
    for name in model.params():
        ref = model.param_ref(name)
        named[name] = local_grads[ref.index][ref.local]
    # Body layer outputs are Z1, A1, Z2, A2, Z3 (indices 0..4).
    seed_names = {0: "dZ1", 1: "dA1", 2: "dZ2", 3: "dA2", 4: "dZ3"}
    summed = {seed_names[i]: m * g.T for i, g in grad_outputs.items()}
    gradients: dict[str, Array] = {}
    for layer in (3, 2, 1):
        if layer == 3:
            gradients["dZ3"] = summed["dZ3"]
        else:
            gradients[f"dA{layer}"] = summed[f"dA{layer}"]
            gradients[f"dZ{layer}"] = summed[f"dZ{layer}"]
        gradients[f"dW{layer}"] = named[f"W{layer}"]
        gradients[f"db{layer}"] = named[f"b{layer}"].reshape(-1, 1)
    return gradients


def backward_propagation_n_with_seed_bugs(
    X: ArrayLike, Y: ArrayLike, cache: Sequence[ArrayLike]
) -> dict[str, Array]:
    """The seed's backward *with its two planted bugs*, for the tutorial: ``dW2`` doubled and
    ``db1`` times four (the correct :func:`backward_propagation_n`, then those two scaled).
    :func:`gradient_check_n` reports a difference of about 0.285 for it."""
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

    For each of the ``P`` parameter entries, ``gradapprox[i] = (J(theta + eps e_i) -
    J(theta - eps e_i)) / (2 eps)`` with :func:`forward_propagation_n`, then formula (3):
    ``difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||)``. Prints
    ``"Your backward propagation works perfectly fine! difference = ..."`` when
    ``difference <= 1.2e-7``, else ``"There is a mistake in the backward propagation!
    difference = ..."`` (the seed prints these in Russian and in color: "Ваше обратное
    распространение работает совершенно нормально!" / "Есть ошибка в обратном
    распространении!"); nothing when ``verbose=False``.

    Why weak: one fixed step, one number for all 47 entries, a threshold on that number. With
    ``h = 1e-7``, rounding alone gives about 1.19e-7 on a correct backprop (the test case's
    third ``A3`` is 0.9989: its rounding error, through ``log(1 - A3)`` and over ``2h``, is the
    noise), so the noise floor sits on the seed's own threshold; the same check on layerkit's
    logit-form loss gives about 1e-9. A single wrong entry among many can hide under the norm;
    a ReLU kink within ``h`` looks like a bug. The seed also reads a NaN
    difference as a pass; *here NaN prints the mistake message* (deviation on purpose). For a
    real pass / fail / inconclusive verdict, per parameter, use ``layerkit.check_function`` or
    ``layerkit.check_model``.

    **Arguments:** ``parameters`` (W1..b3, seed shapes), ``gradients`` (dW1..db3, same shapes;
    e.g. from :func:`backward_propagation_n`), ``X`` ``(4, m)``, ``Y`` ``(1, m)``. None of them
    is modified.

    **Returns:** the difference, a float (about 1.19e-7 on the seed's test case with the
    correct backprop, about 0.285 with the seed's bugs).
    """
    where = "gradient_check_n"
    _check_epsilon(epsilon, where)
    parameters_values, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    shapes = {k: tuple(np.shape(parameters[k])) for k in PARAMETER_KEYS}
    for key in PARAMETER_KEYS:
        given = tuple(np.shape(gradients[f"d{key}"]))
        same = given == shapes[key] or (key[0] == "b" and np.prod(given) == np.prod(shapes[key]))
        if not same:
            msg = (
                f"{where}: gradients['d{key}'] must have the shape of parameters['{key}'] "
                f"{shapes[key]}, got {given}."
            )
            raise GradientSpecError(msg)
    num_parameters = parameters_values.shape[0]
    J_plus = np.zeros((num_parameters, 1))
    J_minus = np.zeros((num_parameters, 1))
    gradapprox = np.zeros((num_parameters, 1))
    for i in range(num_parameters):
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] = thetaplus[i][0] + epsilon
        J_plus[i], _ = forward_propagation_n(X, Y, vector_to_dictionary(thetaplus, shapes))
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] = thetaminus[i][0] - epsilon
        J_minus[i], _ = forward_propagation_n(X, Y, vector_to_dictionary(thetaminus, shapes))
        gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon)
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = float(numerator / denominator)
    if verbose:
        print(f"{_seed_message(difference)} difference = {difference}")
    return difference


def _seed_message(difference: float) -> str:
    """What the seed's ``gradient_check_n`` prints for ``difference`` (NaN: the mistake)."""
    if difference <= GRADIENT_CHECK_N_THRESHOLD:  # False for NaN: never a pass
        return "Your backward propagation works perfectly fine!"
    return "There is a mistake in the backward propagation!"


def gradient_check_n_test_case() -> tuple[Array, Array, dict[str, Array]]:
    """The seed's test case: ``(X (4, 3), Y (1, 3), parameters)`` as after ``np.random.seed(1)``.

    Draws ``X = randn(4, 3)`` then ``W1, b1, W2, b2, W3, b3`` in that order from a private
    ``RandomState(1)``: the same numbers as the seed, without touching the global RNG. ``Y`` is
    ``[[1., 1., 0.]]`` (the seed's ``gc_utils`` has the 1-D int ``[1, 1, 0]``; both are accepted).
    Fresh arrays on every call.
    """
    return seed_parameters()


# -- the seed's check next to layerkit's --------------------------------------------------------


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent=indent, subsequent_indent=indent)


def _summary(report: GradCheckReport) -> str:
    """One line per verdict: ``fail: b1 (4/5 entries), W2 (4/15); pass: W1, b2, W3, b3``."""
    parts: list[str] = []
    for verdict in ("fail", "inconclusive", "pass"):
        names: list[str] = []
        for tensor in report.tensors:
            if tensor.verdict != verdict:
                continue
            if verdict == "fail" and tensor.checked:
                names.append(f"{tensor.name} ({tensor.n_fail}/{tensor.checked} entries)")
            elif verdict == "inconclusive" and tensor.reasons:
                why = ", ".join(f"{k}: {v}" for k, v in sorted(tensor.reasons.items()))
                names.append(f"{tensor.name} ({why})")
            else:
                names.append(tensor.name)
        if names:
            parts.append(f"{verdict}: " + ", ".join(names))
    return "; ".join(parts)


@attrs.frozen
class Comparison:
    """The seed's ``gradient_check_n`` and layerkit's checks on the same case.

    **Fields:** ``bugs`` whether the backward has the seed's planted bugs; ``seed_difference``
    the seed's one number (formula (3), ``h = 1e-7``) and ``seed_message`` what the seed prints
    for it; ``function_report`` :func:`~layerkit.check_function` on
    :func:`forward_propagation_n` (the seed's cost, on probabilities) and the backward;
    ``stable_report`` the same backward against the same cost computed from the logits;
    ``model_report`` :func:`~layerkit.check_model` on the fraud net, i.e. layerkit's own
    backward (never bugged) on the logit cost; ``max_probability`` the largest output probability;
    ``seed_cost`` and ``stable_cost`` the cost at the point, seed formula and from logits.
    """

    bugs: bool
    seed_difference: float
    seed_message: str
    function_report: GradCheckReport
    stable_report: GradCheckReport
    model_report: GradCheckReport
    max_probability: float
    seed_cost: float
    stable_cost: float

    @property
    def cost_gap(self) -> float:
        """``|seed_cost - stable_cost|``: the seed cost's rounding error at the point."""
        return abs(self.seed_cost - self.stable_cost)

    @property
    def seed_passed(self) -> bool:
        """True when the seed's check would print that backprop works (never for NaN)."""
        return bool(self.seed_difference <= GRADIENT_CHECK_N_THRESHOLD)

    def __str__(self) -> str:
        backward = "backward_propagation_n" + ("_with_seed_bugs" if self.bugs else "")
        rows = [
            ("check_function, the seed's cost log(1 - A3)", self.function_report),
            ("check_function, the same cost from logits", self.stable_report),
            ("check_model, the fraud net's own backward", self.model_report),
        ]
        width = max(len(label) for label, _ in rows)
        lines = [
            f"The seed's test case (X of shape (4, 3)), {backward}:",
            "",
            f"seed gradient_check_n (h = 1e-7, one number, pass if <= {GRADIENT_CHECK_N_THRESHOLD:g}):",
            f"  difference {self.seed_difference:.4e} -> {self.seed_message}",
            "",
            "layerkit (per entry; pass / fail / inconclusive):",
        ]
        for label, report in rows:
            lines.append(f"  {label.ljust(width)}  {report.verdict.upper()}")
            lines.append(f"  {' ' * width}  {_summary(report)}")
        if self.bugs:
            lines += _wrapped(
                "(check_model checks layerkit's own backward, which has no planted bugs: it "
                "shows what a correct backward scores on this case.)",
                indent="  ",
            )
        noisy = [t.name for t in self.function_report.tensors if t.reasons.get("noisy")]
        if noisy:
            ulps = self.cost_gap / (np.finfo(np.float64).eps * abs(self.stable_cost))
            lines.append("")
            lines += _wrapped(
                f"Why {', '.join(noisy)} is 'inconclusive (noisy)' on the seed's cost: A3 "
                f"reaches {self.max_probability:.4f}, so 1 - A3 keeps few correct digits and "
                "log(1 - A3) carries rounding noise: at this very point the seed's cost is off "
                f"the exact one by {self.cost_gap:.1e} ({ulps:.0f} ulps), and by more at "
                "nearby points, while the checker allows for 8 ulps. Divided by the step, that "
                "noise is as large as the tolerance (rtol * |slope|) on the smallest slopes, "
                "so the numeric slope cannot confirm the analytic one there: layerkit says so "
                "instead of guessing. The same backward passes against the cost from logits. "
                "The seed's own 1.19e-7 on the correct backward is this same noise, sitting on "
                "its 1.2e-7 threshold."
            )
        lines += ["", str(self.function_report)]
        return "\n".join(lines)


def compare_checks(bugs: bool = False, **options: Unpack[CheckKwargs]) -> Comparison:
    """Run the seed's ``gradient_check_n`` and layerkit's checks on the seed's test case.

    With ``bugs`` the backward is :func:`backward_propagation_n_with_seed_bugs` (``dW2`` doubled,
    ``db1`` times four), else :func:`backward_propagation_n`. ``options`` go to every layerkit
    check (:class:`~layerkit.CheckOptions`).

    What to expect (``str()`` of the result prints it): the seed gives one number (about
    1.19e-7 correct, 0.285 bugged). layerkit fails exactly ``W2`` and ``b1`` when bugged. On
    the seed's cost it may call a couple of ``W1`` entries *inconclusive (noisy)* even for the
    correct backward: the naive ``log(1 - A3)`` at ``A3 = 0.9989`` is noisier than the 8 ulps
    the checker allows for, so at the default ``rtol = 1e-7`` those small slopes cannot be
    confirmed. That is what "noisy" means; the same backward on the cost from logits, and
    :func:`~layerkit.check_model`, pass.

    **Returns:** a :class:`Comparison`.
    """
    X, Y, parameters = gradient_check_n_test_case()
    backward = backward_propagation_n_with_seed_bugs if bugs else backward_propagation_n
    cost, cache = forward_propagation_n(X, Y, parameters)
    seed_difference = gradient_check_n(parameters, backward(X, Y, cache), X, Y, verbose=False)

    def seed_cost(point: dict[str, Float64Array]) -> float:
        return forward_propagation_n(X, Y, point)[0]

    def stable_cost(point: Mapping[str, Array]) -> float:
        return fraud_net_from_arrays(point).loss_value(X.T, Y.T)

    def gradients(point: dict[str, Float64Array]) -> dict[str, Array]:
        _, point_cache = forward_propagation_n(X, Y, point)
        grads = backward(X, Y, point_cache)
        return {key: grads[f"d{key}"] for key in PARAMETER_KEYS}

    case = fraud_net_seed_case()
    return Comparison(
        bugs=bool(bugs),
        seed_difference=seed_difference,
        seed_message=_seed_message(seed_difference),
        function_report=check_function(seed_cost, gradients, parameters, **options),
        stable_report=check_function(stable_cost, gradients, parameters, **options),
        model_report=check_model(case.model, case.x, case.y, **options),
        max_probability=float(np.max(cache[9])),
        seed_cost=cost,
        stable_cost=stable_cost(parameters),
    )
