"""The seed notebook's conventions: its names, pass marks and messages, and the checks of what
its functions are given (shapes in its column layout, `b` as `(out, 1)`)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_float_array, is_integer
from layerkit.errors import ConfigError, DTypeError, GradientSpecError, ShapeError, describe_array
from layerkit.losses import check_targets
from layerkit.models import SEED_PARAMETER_SHAPES

PARAMETER_KEYS: tuple[str, ...] = tuple(SEED_PARAMETER_SHAPES)
"""The seed's parameter names, in the order of its flat vector: `W1, b1, W2, b2, W3, b3`."""

GRADIENT_CHECK_THRESHOLD = 1e-7
"""The seed's 1-D pass mark: `difference < 1e-7`."""

GRADIENT_CHECK_N_THRESHOLD = 1.2e-7
"""The seed's N-D pass mark: `difference <= 1.2e-7`."""

CACHE_NAMES = tuple(f"{kind}{k}" for k in (1, 2, 3) for kind in ("Z", "A", "W", "b"))


def real_number(value: object, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{where}: '{name}' must be a real number (got {describe_array(value)})."
        raise DTypeError(msg)
    return float(value)


def check_epsilon(epsilon: object, where: str) -> None:
    step = real_number(epsilon, "epsilon", where)
    if not (np.isfinite(step) and step > 0):
        msg = f"{where}: 'epsilon' must be a positive finite number (got {epsilon!r})."
        raise ConfigError(msg)


def seed_difference(grad: ArrayLike, gradapprox: ArrayLike) -> float:
    """The seed's formula `||g - n|| / (||g|| + ||n||)` (NaN for 0 / 0)."""
    numerator = np.linalg.norm(np.subtract(grad, gradapprox))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(numerator / (np.linalg.norm(grad) + np.linalg.norm(gradapprox)))


def seed_message(difference: float) -> str:
    if difference <= GRADIENT_CHECK_N_THRESHOLD:  # False for NaN: never a pass
        return "Your backward propagation works perfectly fine!"
    return "There is a mistake in the backward propagation!"


def check_gradient_shapes(
    parameters: Mapping[str, ArrayLike], gradients: Mapping[str, ArrayLike], where: str
) -> dict[str, tuple[int, ...]]:
    """The parameters' shapes, after refusing a `d<key>` gradient of another shape (a bias's
    gradient may be flat)."""
    shapes = {k: tuple(np.shape(parameters[k])) for k in PARAMETER_KEYS}
    for key in PARAMETER_KEYS:
        given = tuple(np.shape(gradients[f"d{key}"]))
        if given != shapes[key] and not (key[0] == "b" and np.prod(given) == np.prod(shapes[key])):
            msg = (
                f"{where}: gradients['d{key}'] must have the shape of parameters['{key}'] "
                f"{shapes[key]}, got {given}."
            )
            raise GradientSpecError(msg)
    return shapes


def require_keys(
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


def shape_of(value: object, key: str) -> tuple[int, ...]:
    dims = tuple(value) if isinstance(value, tuple | list) else None
    if dims is None or not all(is_integer(d) and int(d) >= 0 for d in dims):
        msg = (
            f"vector_to_dictionary: shapes[{key!r}] must be a tuple of non-negative integers, "
            f"got {value!r}."[:200]
        )
        raise ConfigError(msg)
    return tuple(int(d) for d in dims)


def check_parameters(parameters: Mapping[str, ArrayLike], where: str) -> dict[str, Array]:
    """The six arrays as float, shapes checked in the seed's terms (b as (out, 1) or (out,))."""
    require_keys(parameters, PARAMETER_KEYS, where, "parameters", ConfigError)
    arrays: dict[str, Array] = {}
    width: int | None = None
    for k in (1, 2, 3):
        W = as_float_array(parameters[f"W{k}"], name=f"parameters['W{k}']", ndim=2)
        b = as_float_array(parameters[f"b{k}"], name=f"parameters['b{k}']")
        out_features, in_features = W.shape
        if width is not None and in_features != width:
            msg = (
                f"{where}: parameters['W{k}'] must have {width} columns to follow "
                f"W{k - 1} of shape {arrays[f'W{k - 1}'].shape}, got shape {W.shape}."
            )
            raise ShapeError(msg)
        if b.shape not in ((out_features, 1), (out_features,)):
            msg = (
                f"{where}: parameters['b{k}'] must have shape ({out_features}, 1) to match "
                f"W{k} of shape {W.shape}, got shape {b.shape}."
            )
            raise ShapeError(msg)
        if k == 3 and out_features != 1:
            msg = (
                f"{where}: parameters['W3'] must have 1 row (one output unit), got shape {W.shape}."
            )
            raise ShapeError(msg)
        arrays[f"W{k}"], arrays[f"b{k}"] = W, b
        width = out_features
    return arrays


def check_X(X: ArrayLike, features: int, where: str) -> Array:
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


def check_Y(Y: ArrayLike, m: int, where: str) -> Array:
    """Labels `(1, m)` (or the seed's 1-D `(m,)`) in [0, 1], as `(1, m)`."""
    array = as_float_array(Y, name="Y", dtype=np.float64)
    if array.shape not in ((1, m), (m,)):
        msg = f"{where}: 'Y' must have shape (1, {m}) (one label per column of X), got shape {array.shape}."
        raise ShapeError(msg)
    return check_targets(array.reshape(m, 1), (m, 1), owner=where).reshape(1, m)
