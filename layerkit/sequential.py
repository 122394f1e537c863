"""Composition of layers into a model with a loss; names parameters W1, b1, W2, ..."""

from __future__ import annotations

import copy as _copy
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, overload

import attrs
import numpy as np

from layerkit import _layer_stack as stack
from layerkit._backward import checked_backward, layer_label
from layerkit._layer_stack import Noise, ParamRef
from layerkit._typing import Array, ArrayLike, Integer, SeedLike
from layerkit._validate import as_batch, as_float_array, as_float_dtype, as_rng
from layerkit.errors import CacheError, ConfigError
from layerkit.layers.base import Layer, run_layer
from layerkit.losses import Loss, fused_loss
from layerkit.params import ParamSpec

__all__ = ["Noise", "ParamRef", "Sequential", "SequentialCache"]


@attrs.frozen(eq=False)
class SequentialCache:
    """What [`Sequential.forward`][layerkit.Sequential.forward] hands to its `backward`.

    Attributes:
        owner: The model that ran the forward.
        caches: What each layer's forward returned (any objects).
        inputs: Each layer's input `x`, `(m, in)`.
        outputs: Each layer's output `y`, `(m, out)`.
        noise: The mask each layer used (None for deterministic layers), one per layer.
    """

    owner: Sequential
    caches: tuple[Any, ...]
    inputs: tuple[Array, ...]
    outputs: tuple[Array, ...]
    noise: tuple[Array | None, ...]


class Sequential:
    """Layers applied in order, with an optional loss.

    Parameters are named by local name and the 1-based index of the parameterised layer
    (`W1, b1, W2, b2, ...`, as in the seed notebook). A [`BCELoss`][layerkit.BCELoss] after a
    final Sigmoid is computed from the logits (by [`fused_loss`][layerkit.losses.fused_loss]);
    `forward` and `predict` still return probabilities.

    Args:
        *layers: Layers, or sequences of layers, in order.
        loss: Any [`Loss`][layerkit.Loss], or None for a model without one.

    Raises:
        ConfigError: No layers, an item that is not a layer, a layer given twice, or a loss
            that is not a `Loss`.
        ShapeError: Two neighbouring layers state widths that do not chain.
    """

    def __init__(self, *layers: Layer | Sequence[Layer], loss: Loss | None = None) -> None:
        flat = stack.flat_layers(layers, loss)
        self.layers: tuple[Layer, ...] = flat
        self.loss: Loss | None = loss
        self._body_loss: Loss | None = None if loss is None else fused_loss(loss, flat[-1]) or loss
        self._refs: dict[str, ParamRef] = stack.param_refs(flat)
        stack.check_widths(flat)

    # -- structure ---------------------------------------------------------------------------

    @property
    def in_features(self) -> int | None:
        """Input width of the first layer that states one (None if none does)."""
        return stack.input_width(self.layers)

    @property
    def fused_logits(self) -> bool:
        """True when the loss reads the input of the last layer (a final Sigmoid's logits)."""
        return self._body_loss is not self.loss

    @property
    def body(self) -> tuple[Layer, ...]:
        """The layers whose output the loss reads (all but a final Sigmoid when fused)."""
        return self.layers[:-1] if self.fused_logits else self.layers

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @overload
    def __getitem__(self, item: int) -> Layer: ...
    @overload
    def __getitem__(self, item: slice) -> Sequential: ...
    def __getitem__(self, item: int | slice) -> Layer | Sequential:
        if isinstance(item, slice):
            chosen = self.layers[item]
            keeps_end = bool(chosen) and chosen[-1] is self.layers[-1]
            return Sequential(chosen, loss=self.loss if keeps_end else None)
        return self.layers[item]

    # -- parameters --------------------------------------------------------------------------

    @property
    def param_spec(self) -> ParamSpec:
        """Ordered `(name, shape)` of all parameters under their model names."""
        return ParamSpec.of(self.params())

    def params(self) -> dict[str, Array]:
        """The live parameter arrays by model name (`W1`, `b1`, ...)."""
        return {n: self.layers[r.index].params()[r.local] for n, r in self._refs.items()}

    def param_ref(self, name: str) -> ParamRef:
        """Which layer holds the parameter `name`, and its local name there.

        Raises:
            ConfigError: The model has no parameter `name`.
        """
        try:
            return self._refs[name]
        except KeyError:
            msg = f"Sequential: no parameter named {name!r}; the model has {list(self._refs)}."
            raise ConfigError(msg) from None

    def layer_label(self, index: int) -> str:
        """A readable label for layer `index`: `layer 2 (Linear(5->3))`."""
        return layer_label(index, self.layers[index])

    def flatten(self) -> Array:
        """All parameters as one flat vector, in the order of `param_spec`."""
        return self.param_spec.flatten(self.params())

    def set_params(self, arrays: Mapping[str, Array]) -> None:
        """Rebind every parameter to `arrays[name]` (model names; not copied)."""
        self.param_spec.check_arrays(arrays, what="Sequential.set_params: 'arrays'")
        for index, layer in enumerate(self.layers):
            local = {r.local: arrays[n] for n, r in self._refs.items() if r.index == index}
            if local:
                layer.set_params(local)

    def unflatten(self, vector: ArrayLike) -> None:
        """Rebind all parameters to copies of a flat vector's pieces (dtypes kept; all or none).

        Raises:
            ShapeError: The vector's length is not the number of parameters.
            NonFiniteError: The vector holds NaN or Inf.
        """
        new = self.param_spec.unflatten(vector, owner="Sequential", finite=True)
        self.set_params({n: np.array(new[n], dtype=a.dtype) for n, a in self.params().items()})

    def rebound(self, arrays: Mapping[str, ArrayLike]) -> Sequential:
        """A copy of the model whose parameters are `arrays` (model names, real numbers)."""
        self.param_spec.check_arrays(arrays, what="Sequential: 'params'")
        real = {
            n: as_float_array(arrays[n], name=n, allow_nonfinite=True, owner="Sequential")
            for n in self._refs
        }
        model = Sequential([_copy.copy(layer) for layer in self.layers], loss=self.loss)
        model.set_params(real)
        return model

    def astype(self, dtype: type[np.floating] | np.dtype[np.floating]) -> Sequential:
        """A copy of the model with parameters of the floating `dtype`."""
        real = as_float_dtype(dtype, owner="Sequential.astype")
        return Sequential([layer.astype(real) for layer in self.layers], loss=self.loss)

    def copy(self) -> Sequential:
        """An independent deep copy (parameters copied)."""
        return _copy.deepcopy(self)

    @property
    def dtype(self) -> np.dtype[np.floating]:
        """The parameters' dtype (float64 for a parameter-free model)."""
        arrays = list(self.params().values())
        return arrays[0].dtype if arrays else np.dtype(np.float64)

    # -- computation -------------------------------------------------------------------------

    def check_input(self, x: ArrayLike) -> Array:
        """Validate a batch `(m, in_features)`: rank, width, finite; integers converted."""
        array = as_batch(x, name="x", features=self.in_features, owner="Sequential")
        return array.astype(self.dtype, copy=False)

    @overload
    def forward(
        self,
        x: ArrayLike,
        *,
        noise: Noise = None,
        rng: SeedLike = None,
        layers: Integer | None = None,
        intermediates: Literal[False] = False,
    ) -> tuple[Array, SequentialCache]: ...
    @overload
    def forward(
        self,
        x: ArrayLike,
        *,
        noise: Noise = None,
        rng: SeedLike = None,
        layers: Integer | None = None,
        intermediates: Literal[True],
    ) -> tuple[Array, SequentialCache, tuple[Array, ...]]: ...
    def forward(
        self,
        x: ArrayLike,
        *,
        noise: Noise = None,
        rng: SeedLike = None,
        layers: Integer | None = None,
        intermediates: bool = False,
    ) -> tuple[Array, SequentialCache] | tuple[Array, SequentialCache, tuple[Array, ...]]:
        """Run a batch through the layers (`x` copied in, `y` out: callers may reuse buffers).

        Args:
            x: The batch, `(m, in)`.
            noise: One mask (or None) per layer, e.g. an earlier cache's `noise`.
            rng: A seed or generator drawing fresh masks (training); with neither `noise` nor
                `rng`, stochastic layers are the identity.
            layers: Stop after this many layers.
            intermediates: Also return a copy of every layer's output `(m, out_i)`.

        Returns:
            `(y, cache)`, `y` `(m, out)`; with `intermediates`, `(y, cache, outputs)`.

        Raises:
            ConfigError: A bad `layers`, `noise` or `rng`.
            NonFiniteError: A parameter holds NaN or Inf.
        """
        stop = stack.check_forward_options(len(self.layers), layers, noise)
        use_rng = noise is None and rng is not None
        generator = as_rng(rng, owner="Sequential.forward", name="rng") if use_rng else None
        stack.check_finite_params(self)
        out = np.array(self.check_input(x), copy=True)
        caches: list[Any] = []
        inputs: list[Array] = []
        outputs: list[Array] = []
        used: list[Array | None] = [None] * len(self.layers)
        for index, layer in enumerate(self.layers[:stop]):
            mask = noise[index] if noise is not None else None
            if generator is not None and layer.stochastic:
                mask = layer.sample_noise(out, generator)
            inputs.append(out)
            out, cache = run_layer(layer, out, mask)
            caches.append(cache)
            outputs.append(out)
            used[index] = mask
        cache = SequentialCache(self, tuple(caches), tuple(inputs), tuple(outputs), tuple(used))
        if intermediates:
            return np.array(out, copy=True), cache, tuple(np.array(y) for y in outputs)
        return np.array(out, copy=True), cache

    @overload
    def backward(
        self, cache: SequentialCache, grad_out: ArrayLike, *, intermediates: Literal[False] = False
    ) -> tuple[Array, dict[str, Array]]: ...
    @overload
    def backward(
        self, cache: SequentialCache, grad_out: ArrayLike, *, intermediates: Literal[True]
    ) -> tuple[Array, dict[str, Array], tuple[Array, ...]]: ...
    def backward(
        self, cache: SequentialCache, grad_out: ArrayLike, *, intermediates: bool = False
    ) -> tuple[Array, dict[str, Array]] | tuple[Array, dict[str, Array], tuple[Array, ...]]:
        """Back-propagate `grad_out` through the layers that made `cache`, checking each
        layer's result (keys, shapes) and naming the layer on error.

        Args:
            cache: From this model's [`forward`][layerkit.Sequential.forward].
            grad_out: Gradient with respect to the forward's output `(m, out)`.
            intermediates: Also return the gradient with respect to every layer's output.

        Returns:
            `(grad_x, grads)`, `grads` by model name; with `intermediates`, `(grad_x, grads,
                grad_outputs)`, `grad_outputs[i]` for layer `i`'s output (the last: `grad_out`).

        Raises:
            CacheError: `cache` does not come from this model's forward.
            ShapeError: `grad_out` does not have the output's shape.
            GradientSpecError: A layer's backward returned something malformed.
        """
        if not isinstance(cache, SequentialCache) or cache.owner is not self:
            msg = "Sequential.backward: the cache does not come from this model's forward."
            raise CacheError(msg)
        grad = stack.check_grad_out(grad_out, cache.outputs[-1])
        local: dict[int, dict[str, Array]] = {}
        grad_outputs: list[Array] = []
        for index in reversed(range(len(cache.caches))):
            layer = self.layers[index]
            grad_outputs.append(grad)
            grad, local[index] = checked_backward(
                layer.backward(cache.caches[index], grad),
                label=functools.partial(self.layer_label, index),
                x_shape=cache.inputs[index].shape,
                params=layer.params(),
            )
        named = {n: local[r.index][r.local] for n, r in self._refs.items() if r.index in local}
        if intermediates:
            return grad, named, tuple(reversed(grad_outputs))
        return grad, named

    def _require_loss(self) -> Loss:
        """The loss applied to the body's output (BCEWithLogitsLoss when fused)."""
        if self._body_loss is None:
            msg = (
                "Sequential: this model has no loss; build it with one, e.g. loss=BCELoss() "
                "or loss=MSELoss()."
            )
            raise ConfigError(msg)
        return self._body_loss

    @property
    def _loss_owner(self) -> str:
        return f"Sequential ({self.loss!r})"

    def sample_losses(self, body_out: Array, y: Array) -> Array:
        """Per-sample losses from the body's output `(..., m, k)`, shape `(..., m)`.

        `y` as returned by [`check_targets`][layerkit.Sequential.check_targets] (not re-checked).
        """
        return self._require_loss().sample_losses(body_out, y)

    def loss_grad(self, body_out: Array, y: Array) -> Array:
        """Gradient of the mean loss with respect to the body's output `(m, k)`."""
        return self._require_loss().grad(body_out, y, owner=self._loss_owner)

    def check_targets(self, y: ArrayLike, m: int, *, width: int | None = None) -> Array:
        """Validate targets for a batch of `m` against the model's output width, as the loss
        accepts them. Without a stated width (elementwise layers only), `y` `(m, k)` sets `k`.

        Args:
            y: The targets.
            m: The batch size.
            width: The predictions' width if known (from a forward); else the layers' own.

        Returns:
            The targets as the loss uses them, `(m, k)` in the model's dtype.

        Raises:
            ConfigError: The model has no loss.
            TargetError: Targets the loss refuses.
        """
        loss = self._require_loss()
        out_width = width if width is not None else stack.output_width(self.layers)
        if out_width is None:
            target = as_float_array(y, name="y", owner="Sequential")
            out_width = target.shape[1] if target.ndim == 2 and target.shape[0] == m else 1
        checked = loss.check_targets(y, (m, out_width), owner=self._loss_owner)
        return checked.astype(self.dtype, copy=False)

    def loss_and_grad(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        noise: Noise = None,
        rng: SeedLike = None,
        params: Mapping[str, Array] | None = None,
    ) -> tuple[float, dict[str, Array]]:
        """Mean loss on `(x, y)` and its gradient for every parameter.

        Args:
            x: The batch, `(m, in)`.
            y: Its targets.
            noise: As in [`forward`][layerkit.Sequential.forward].
            rng: As in [`forward`][layerkit.Sequential.forward].
            params: All parameters by model name, evaluated on a copy of the model.

        Returns:
            `(loss, grads)`, `grads` by model name, each of its parameter's shape.
        """
        body_out, cache = self._body_forward(x, noise, rng, params)
        value, grad_out = self._require_loss().value_and_grad(body_out, y, owner=self._loss_owner)
        _, grads = cache.owner.backward(cache, grad_out)
        return value, grads

    def loss_value(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        noise: Noise = None,
        rng: SeedLike = None,
        params: Mapping[str, Array] | None = None,
    ) -> float:
        """Mean loss on `(x, y)`; arguments as in [`loss_and_grad`][layerkit.Sequential.loss_and_grad]."""
        body_out, _ = self._body_forward(x, noise, rng, params)
        return self._require_loss().value(body_out, y, owner=self._loss_owner)

    def _body_forward(
        self, x: ArrayLike, noise: Noise, rng: SeedLike, params: Mapping[str, Array] | None
    ) -> tuple[Array, SequentialCache]:
        """Forward through the layers the loss reads (the loss then checks outputs, targets)."""
        self._require_loss()
        model = self if params is None else self.rebound(params)
        return model.forward(x, noise=noise, rng=rng, layers=len(self.body))

    def predict(self, x: ArrayLike) -> Array:
        """The model's output for `x` `(m, in)` in evaluation mode (no dropout)."""
        out, _ = self.forward(x)
        return out

    def __repr__(self) -> str:
        return stack.summary(self)
