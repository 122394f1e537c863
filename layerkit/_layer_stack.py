"""Sequential's helpers: checks of its layers and arguments, parameter names `W1, b1, ...`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from layerkit._backward import layer_label
from layerkit._typing import Array, ArrayLike, Integer
from layerkit._validate import as_float_array, is_integer, nonfinite_summary
from layerkit.errors import ConfigError, NonFiniteError, ShapeError, describe_array
from layerkit.layers.base import Layer
from layerkit.losses import Loss

if TYPE_CHECKING:
    from layerkit.sequential import Sequential

Noise = Sequence[Array | None] | None
"""Masks for a forward's stochastic layers: one entry (or None) per layer."""


@attrs.frozen
class ParamRef:
    """Where a model parameter lives: layer `index` (0-based) and its `local` name there."""

    index: int
    local: str


def flat_layers(items: Sequence[Layer | Sequence[Layer]], loss: object) -> tuple[Layer, ...]:
    """The layers of `Sequential(*items, loss=loss)`, flattened and checked (see its Raises)."""
    flat: list[Layer] = []
    for item in items:
        if isinstance(item, Layer):
            flat.append(item)
        elif isinstance(item, Sequence) and not isinstance(item, str):
            flat.extend(item)
        else:
            msg = f"Sequential: expected layers, got {type(item).__name__} {item!r}."
            raise ConfigError(msg)
    for position, layer in enumerate(flat):
        if not isinstance(layer, Layer):
            msg = (
                f"Sequential: item {position} must be a layerkit Layer, got {type(layer).__name__}."
            )
            raise ConfigError(msg)
        first = next(i for i, other in enumerate(flat) if other is layer)
        if first != position and layer.param_spec.names:
            msg = (
                f"Sequential: layer {position} ({layer.name}) is the same object as layer "
                f"{first}; its parameters would be named twice and their gradients not "
                "summed. Use two separate layers (or a copy)."
            )
            raise ConfigError(msg)
    if not flat:
        raise ConfigError("Sequential: needs at least one layer (got none).")
    if loss is not None and not isinstance(loss, Loss):
        msg = (
            "Sequential: 'loss' must be a layerkit Loss (BCELoss, BCEWithLogitsLoss, "
            f"MSELoss, SoftmaxCrossEntropyLoss or a Loss subclass) or None, got "
            f"{type(loss).__name__}."
        )
        raise ConfigError(msg)
    return tuple(flat)


def param_refs(layers: Sequence[Layer]) -> dict[str, ParamRef]:
    """Model names by local name and the 1-based index of the parameterised layer."""
    refs: dict[str, ParamRef] = {}
    counter = 0
    for index, layer in enumerate(layers):
        counter += bool(layer.param_spec.names)
        for local in layer.param_spec.names:
            refs[f"{local}{counter}"] = ParamRef(index, local)
    return refs


def check_widths(layers: Sequence[Layer]) -> None:
    """Refuse neighbouring layers whose stated widths do not chain (a ShapeError)."""
    width: int | None = None
    previous = "input"
    for index, layer in enumerate(layers):
        label = layer_label(index, layer)
        if layer.in_features is not None and width is not None and layer.in_features != width:
            msg = (
                f"Sequential: {label} expects {layer.in_features} input features but "
                f"{previous} gives {width}."
            )
            raise ShapeError(msg)
        width = layer.in_features if layer.in_features is not None else width
        width = layer.output_width(width) if width is not None else layer.out_features
        previous = label


def input_width(layers: Sequence[Layer]) -> int | None:
    """Input width of the first layer that states one (None if none does)."""
    for layer in layers:
        if layer.in_features is not None:
            return layer.in_features
        if layer.out_features is not None:
            return None
    return None


def output_width(layers: Sequence[Layer]) -> int | None:
    """The width the layers state for their output (None if the input's width is unknown)."""
    width = input_width(layers)
    for layer in layers:
        width = None if width is None else layer.output_width(width)
    return width


def check_forward_options(count: int, layers: Integer | None, noise: Noise) -> int:
    """How many of `count` layers a forward runs; refuses a bad `layers` or `noise`."""
    if layers is not None and (not is_integer(layers) or not 0 <= layers <= count):
        msg = (
            f"Sequential.forward: 'layers' must be an integer in [0, {count}] "
            f"or None, got {describe_array(layers)}."
        )
        raise ConfigError(msg)
    if noise is not None and (isinstance(noise, str) or not isinstance(noise, Sequence)):
        msg = (
            "Sequential.forward: 'noise' must be a list with one mask (or None) per layer, "
            f"got {describe_array(noise)}."
        )
        raise ConfigError(msg)
    if noise is not None and len(noise) != count:
        msg = f"Sequential.forward: 'noise' needs one entry per layer ({count}), got {len(noise)}."
        raise ConfigError(msg)
    return count if layers is None else int(layers)


def check_grad_out(grad_out: ArrayLike, out: Array) -> Array:
    """`grad_out` for a backward whose forward gave `out`: of its shape, in its dtype."""
    grad = as_float_array(
        grad_out, name="grad_out", allow_nonfinite=True, owner="Sequential.backward"
    )
    if grad.shape != out.shape:
        msg = (
            f"Sequential.backward: 'grad_out' must have the output's shape {out.shape}, "
            f"got {grad.shape}."
        )
        raise ShapeError(msg)
    return grad.astype(out.dtype, copy=False)


def check_finite_params(model: Sequential) -> None:
    """Refuse NaN/Inf in a parameter, naming it (not a later activation that inherits it)."""
    for name, array in model.params().items():
        problem = nonfinite_summary(array)
        if problem:
            msg = (
                f"Sequential: parameter {name} of "
                f"{model.layer_label(model.param_ref(name).index)} "
                f"holds {problem}; parameters must be finite."
            )
            raise NonFiniteError(msg)


def summary(model: Sequential) -> str:
    """The model's `repr`: a row per layer (widths, parameter count and shapes), then the loss."""
    lines = ["Sequential("]
    width = model.in_features
    params = model.params()
    refs = {name: model.param_ref(name) for name in params}
    for index, layer in enumerate(model.layers):
        shapes = ", ".join(f"{n}{params[n].shape}" for n, r in refs.items() if r.index == index)
        out = layer.output_width(width) if width is not None else layer.out_features
        io = f"{width if width is not None else '?'} -> {out if out is not None else '?'}"
        lines.append(
            f"  ({index}) {layer.name:<18} {io:<10} params: {layer.param_spec.size:>7}"
            + (f"  [{shapes}]" if shapes else "")
        )
        width = out
    loss = f"{model.loss!r}" + (" (from logits)" if model.fused_logits else "")
    total = sum(layer.param_spec.size for layer in model.layers)
    lines += [f"  loss: {loss}   total params: {total}", ")"]
    return "\n".join(lines)
