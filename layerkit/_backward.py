"""Checking what a layer's `backward` returned, wherever it is called (model, checker, training)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from layerkit._typing import Array
from layerkit.errors import GradientSpecError, describe_array
from layerkit.layers.base import Layer


def layer_label(index: int, layer: Layer) -> str:
    """How errors and reports name a layer of a model: `layer 2 (Scale(4))`."""
    return f"layer {index} ({layer.name})"


def _as_gradient(
    value: object, *, label: Callable[[], str], what: str, shape: tuple[int, ...]
) -> Array:
    """`value` as a real array of `shape`, else a GradientSpecError naming `what`."""
    array = None if value is None else np.asarray(value)
    if array is not None and array.dtype.kind in "fiub" and array.shape == shape:
        return array
    if array is None or array.dtype.kind not in "fiub":
        got = f"{describe_array(value)} for {what}"
    else:
        got = f"{what} of shape {array.shape}"
    msg = f"{label()}: backward returned {got}; expected a real array of shape {shape}."
    raise GradientSpecError(msg)


def checked_backward(
    returned: object,
    *,
    label: Callable[[], str],
    x_shape: tuple[int, ...],
    params: Mapping[str, Array],
) -> tuple[Array, dict[str, Array]]:
    """Validate a layer's `backward` result against the contract.

    Args:
        returned: what `backward` returned; must be `(grad_x, grads)`.
        label: gives the layer's label in the model, e.g. `layer 2 (Scale(4))` (called
            only to build an error message).
        x_shape: the shape of the layer's input `x` `(m, in)`: `grad_x`'s shape.
        params: the layer's parameters: `grads` needs exactly their keys and shapes.

    Returns:
        `(grad_x, grads)` as arrays (values unchanged; NaN/Inf pass, the checker judges them).

    Raises:
        GradientSpecError: not a pair, a missing or extra key, None, a non-numeric value or a
            wrong shape; the message names `label`, the key and what was expected.
    """
    if not isinstance(returned, tuple) or len(returned) != 2:
        got = "a dict" if isinstance(returned, Mapping) else describe_array(returned)
        msg = f"{label()}: backward must return a tuple (grad_x, grads), got {got}."
        raise GradientSpecError(msg)
    grad_x_value, grads_value = returned
    grad_x = _as_gradient(grad_x_value, label=label, what="grad_x", shape=x_shape)
    if not isinstance(grads_value, Mapping):
        msg = (
            f"{label()}: backward's grads must be a dict with the keys {list(params)}, "
            f"got {describe_array(grads_value)}."
        )
        raise GradientSpecError(msg)
    missing = [key for key in params if key not in grads_value]
    extra = [key for key in grads_value if key not in params]
    if missing or extra:
        problems = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {extra}"] if extra else []
        )
        msg = (
            f"{label()}: backward's grads must have the keys of params() {list(params)}; "
            f"{', '.join(problems)}."
        )
        raise GradientSpecError(msg)
    grads = {
        key: _as_gradient(
            grads_value[key], label=label, what=f"grads['{key}']", shape=np.shape(array)
        )
        for key, array in params.items()
    }
    return grad_x, grads
