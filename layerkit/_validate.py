"""Turning user input into clean float arrays, with errors that say what was wrong."""

from __future__ import annotations

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit.errors import DTypeError, NonFiniteError, ShapeError, describe_array


def as_float_array(
    value: ArrayLike,
    *,
    name: str,
    dtype: np.dtype[np.floating] | type[np.floating] | None = None,
    ndim: int | None = None,
    allow_nonfinite: bool = False,
    owner: str | None = None,
) -> Array:
    """Convert ``value`` to a real floating array, refusing what cannot be meant as numbers.

    Integers and booleans are converted (to ``dtype``, float64 by default); object, complex,
    string and datetime data are refused with a :class:`DTypeError`.

    **Arguments:** ``name`` names the argument in messages and ``owner`` (a layer or function)
    prefixes them; ``ndim`` the rank required; ``allow_nonfinite`` lets NaN/Inf through (the
    checker judges those itself).

    **Returns:** an array of ``dtype`` (or the input's float dtype, else float64).
    """
    where = f"{owner}: " if owner else ""
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
    elif kind == "f" and array.dtype.itemsize >= 4:
        target = array.dtype
    else:
        target = np.dtype(np.float64)
    array = array.astype(target, copy=False)
    if ndim is not None and array.ndim != ndim:
        msg = f"{where}'{name}' must have {ndim} dimension(s), got shape {array.shape}."
        raise ShapeError(msg)
    if not allow_nonfinite and not np.all(np.isfinite(array)):
        finite = np.isfinite(array)
        bad = int(np.size(array) - np.count_nonzero(finite))
        first = tuple(int(i) for i in np.argwhere(~finite)[0]) if array.ndim else ()
        at = f" at index {first}" if first else ""
        msg = (
            f"{where}'{name}' holds {bad} NaN/Inf value(s) (first{at}: {float(array[first])}); "
            "finite numbers are required."
        )
        raise NonFiniteError(msg)
    return array


def as_float_dtype(dtype: object, *, name: str = "dtype", owner: str) -> np.dtype[np.floating]:
    """``dtype`` as a numpy real floating dtype (float16/32/64...); anything else is refused."""
    try:
        result = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        msg = f"{owner}: '{name}' must be a floating dtype such as float64 (got {dtype!r})."
        raise DTypeError(msg) from exc
    if result.kind != "f":
        msg = f"{owner}: '{name}' must be a floating dtype such as float64 (got {result})."
        raise DTypeError(msg)
    floating: np.dtype[np.floating] = result
    return floating


def as_batch(value: ArrayLike, *, name: str, features: int | None, owner: str) -> Array:
    """Validate a batch-first input of shape ``(m, features)`` for ``owner`` (a layer's name)."""
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
