"""Turning user input into clean float arrays, with errors that say what was wrong."""

from __future__ import annotations

from typing import Any, TypeGuard

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit.errors import ConfigError, DTypeError, NonFiniteError, ShapeError, describe_array


def as_float_array(
    value: ArrayLike,
    *,
    name: str,
    dtype: np.dtype[np.floating] | type[np.floating] | None = None,
    ndim: int | None = None,
    allow_nonfinite: bool = False,
    owner: str | None = None,
) -> Array:
    """Convert `value` to a real floating array, refusing what cannot be meant as numbers.

    Integers and booleans are converted (to `dtype`, float64 by default); object, complex,
    string and datetime data, and masked arrays (whose mask layerkit would otherwise ignore), are
    refused with a `DTypeError`. Floats other than float32 and float64 (float16,
    longdouble, non-native byte order) are converted to float64.

    Args:
        value: What came.
        name: Names the argument in messages.
        dtype: The dtype wanted; None keeps a float32 or float64 input's dtype.
        ndim: The rank required.
        allow_nonfinite: Let NaN/Inf through (the checker judges those itself).
        owner: A layer or function, prefixed to messages.

    Returns:
        An array of `dtype` (or the input's float dtype, else float64).
    """
    where = f"{owner}: " if owner else ""
    if isinstance(value, np.ma.MaskedArray):
        msg = (
            f"{where}'{name}' is a masked array; layerkit does not read masks. Pass "
            "value.filled(...) or drop the masked rows first."
        )
        raise DTypeError(msg)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        msg = f"{where}'{name}' must be a numeric array (got {describe_array(value)}: {exc})."
        raise DTypeError(msg) from exc
    kind = array.dtype.kind
    if kind not in "fiub":
        msg = (
            f"{where}'{name}' must hold real numbers (float, int or bool), "
            f"got dtype {array.dtype} ({describe_array(value)})."
        )
        raise DTypeError(msg)
    if dtype is not None:
        target = np.dtype(dtype)
    elif array.dtype in SUPPORTED_DTYPES:
        target = array.dtype
    else:
        target = np.dtype(np.float64)
    array = array.astype(target, copy=False)
    if ndim is not None and array.ndim != ndim:
        msg = f"{where}'{name}' must have {ndim} dimension(s), got shape {array.shape}."
        raise ShapeError(msg)
    if not allow_nonfinite:
        problem = nonfinite_summary(array)
        if problem:
            msg = f"{where}'{name}' holds {problem}; finite numbers are required."
            raise NonFiniteError(msg)
    return array


SUPPORTED_DTYPES: tuple[np.dtype[np.floating], ...] = (np.dtype(np.float32), np.dtype(np.float64))
"""The parameter dtypes layerkit computes in: float32 and float64."""


def nonfinite_summary(array: np.ndarray[Any, Any]) -> str:
    """How many NaN/Inf `array` holds and where the first is (empty string: none)."""
    finite = np.isfinite(array)
    if bool(np.all(finite)):
        return ""
    bad = int(np.size(array) - np.count_nonzero(finite))
    first = tuple(int(i) for i in np.argwhere(~finite)[0]) if array.ndim else ()
    at = f" at index {first}" if first else ""
    return f"{bad} NaN/Inf value(s) (first{at}: {float(array[first])})"


def as_float_dtype(dtype: object, *, name: str = "dtype", owner: str) -> np.dtype[np.floating]:
    """`dtype` as float32 or float64; anything else (float16, integers...) is refused."""
    try:
        result = np.dtype(dtype)  # type: ignore[call-overload]
    except Exception as exc:  # numpy's dtype parser raises TypeError, ValueError, SyntaxError...
        msg = f"{owner}: '{name}' must be a floating dtype, float32 or float64 (got {dtype!r})."
        raise DTypeError(msg) from exc
    if result.kind != "f" or result.newbyteorder("=") not in SUPPORTED_DTYPES:
        msg = f"{owner}: '{name}' must be a floating dtype, float32 or float64 (got {result})."
        raise DTypeError(msg)
    floating: np.dtype[np.floating] = result.newbyteorder("=")  # byte order is storage only
    return floating


def as_batch(value: ArrayLike, *, name: str, features: int | None, owner: str) -> Array:
    """Validate a batch-first input of shape `(m, features)` for `owner` (a layer's name)."""
    array = as_float_array(value, name=name, owner=owner)
    if array.ndim != 2:
        hint = " (a single sample needs shape (1, features))" if array.ndim == 1 else ""
        msg = f"{owner}: '{name}' must have shape (m, features), got shape {array.shape}{hint}."
        raise ShapeError(msg)
    if array.shape[0] == 0:
        msg = f"{owner}: '{name}' is an empty batch (shape {array.shape}); need m >= 1."
        raise ShapeError(msg)
    if features is not None and array.shape[1] != features:
        msg = (
            f"{owner}: '{name}' must have {features} features (shape (m, {features})), "
            f"got shape {array.shape}."
        )
        raise ShapeError(msg)
    return array


def is_integer(value: object) -> TypeGuard[int | np.integer[Any]]:
    """True for Python and numpy integers (not booleans)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def positive_int(value: object, *, name: str, owner: str) -> int:
    """`value` as an int if it is a positive Python or numpy integer, else a ConfigError."""
    if not is_integer(value) or int(value) < 1:
        msg = f"{owner}: '{name}' must be a positive integer (got {value!r})."
        raise ConfigError(msg)
    return int(value)


def is_real(value: object) -> bool:
    """True for Python and numpy integers and floats (not booleans)."""
    return is_integer(value) or isinstance(value, float | np.floating)


def as_rng(seed: object, *, owner: str, name: str = "seed") -> np.random.Generator:
    """A generator from `seed`: None, a non-negative integer (Python or numpy), a sequence of
    them, a `SeedSequence`, a `BitGenerator` or a `Generator` (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, list | tuple) and seed:
        ok = all(is_integer(item) and int(item) >= 0 for item in seed)
    else:
        ok = seed is None or isinstance(seed, np.random.SeedSequence | np.random.BitGenerator)
        ok = ok or (is_integer(seed) and int(seed) >= 0)
    if not ok:
        msg = (
            f"{owner}: '{name}' must be None, a non-negative integer or a numpy Generator "
            f"(got {describe_array(seed)})."
        )
        raise ConfigError(msg)
    return np.random.default_rng(seed)  # type: ignore[arg-type]
