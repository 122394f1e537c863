"""What the checker differentiates: a scalar loss over named float64 tensors it may perturb.

Two kinds: :class:`FunctionObjective` wraps any ``loss_fn(params)`` / ``grad_fn(params)``;
:class:`ChainObjective` runs a chain of layers (a model body with its loss, or one layer with a
random projection) and evaluates many perturbations in one stacked forward. Both work on
private float64 copies: the caller's arrays are never written.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import numpy as np

from layerkit._backward import checked_backward, layer_label
from layerkit._typing import Array, ArrayLike, Float64Array, IntArray
from layerkit._validate import as_float_array
from layerkit.errors import (
    ConfigError,
    GradientSpecError,
    LayerkitError,
    LossValueError,
    NondeterministicError,
    UserCodeError,
    describe_array,
)
from layerkit.gradcheck.numeric import EPS64
from layerkit.gradcheck.shortcuts import shortcut_for, verified_samplewise
from layerkit.layers.base import Layer, run_layer
from layerkit.params import ParamSpec

Losses = tuple[Float64Array, Float64Array]
"""``(losses, kink margins)``, both ``(n,)``."""

CHUNK_ELEMENTS = 1 << 19
"""Largest stacked activation (in float64 entries) one batched evaluation may build."""


@functools.cache
def _prime_allocator() -> None:
    """Allocate and free one block of twice the chunk size, once per process.

    glibc's malloc serves blocks above a threshold (128 kB at first) with freshly mapped pages
    and returns them on free, until a freed block raises that threshold (to its size, up to
    32 MB). Before that, every stacked chunk costs a round of page faults: about half the time
    of an exact check on a 256-256-128-1 net. After it, chunks reuse heap memory, as they
    would anyway once the process had freed any array this large. Harmless elsewhere.
    """
    block = np.empty(2 * CHUNK_ELEMENTS)
    del block


def _as_private(value: ArrayLike, name: str, owner: str | None = None) -> Float64Array:
    """A finite float64 copy of a user's array (never a view of it)."""
    array = as_float_array(value, name=name, owner=owner)
    return np.array(array, dtype=np.float64, copy=True)


class Objective(ABC):
    """A scalar loss over named float64 tensors, with its analytic gradient."""

    names: tuple[str, ...]
    values: dict[str, Float64Array]
    evaluations: int = 0
    loss_eps: float = EPS64
    grad_eps: float = EPS64
    merges_tensors: bool = False
    """True when :meth:`entry_losses` gains from mixing tensors (the engine then probes every
    tensor's entries together); False keeps one tensor at a time, in order."""

    @abstractmethod
    def analytic(self) -> dict[str, Float64Array]:
        """The analytic gradient at the point, by tensor name, float64."""

    @abstractmethod
    def loss_at(self, point: Mapping[str, Float64Array]) -> float:
        """The loss with every tensor replaced by ``point`` (same names and shapes)."""

    @abstractmethod
    def coordinate_losses(self, name: str, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        """Losses with ``name.flat[flat_indices[k]] += offsets[k]``, one at a time ``(n,)``,
        and each move's kink margin ``(n,)`` (see :data:`~layerkit.gradcheck.numeric.Evaluate`)."""

    def entry_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses with ``names[tensors[k]].flat[flat_indices[k]] += offsets[k]``, one at a
        time ``(n,)``: entries of several tensors mixed (by default, one tensor at a time);
        and their kink margins."""
        result = np.empty(tensors.shape[0])
        margins = np.full(tensors.shape[0], np.inf)
        for tensor in np.unique(tensors):
            where = np.flatnonzero(tensors == tensor)
            result[where], margins[where] = self.coordinate_losses(
                self.names[int(tensor)], flat_indices[where], offsets[where]
            )
        return result, margins

    def base_loss(self) -> float:
        """The loss at the point, evaluated twice: the two must agree (determinism guard)."""
        first = self.loss_at(self.values)
        second = self.loss_at(self.values)
        same = first == second or (np.isnan(first) and np.isnan(second))
        close = abs(first - second) <= 4 * self.loss_eps * max(abs(first), abs(second))
        if not same and not (close and np.isfinite(first) and np.isfinite(second)):
            msg = (
                f"the loss gave {first!r} and then {second!r} at the same point: it is "
                "nondeterministic (random noise such as dropout must be held fixed during a check; "
                "layerkit's check_model does so for Dropout layers)."
            )
            raise NondeterministicError(msg)
        return first

    def input_line(self, rng: np.random.Generator) -> Callable[[Float64Array], Losses] | None:
        """A random line through the inputs, ``offsets -> (losses, margins)``, evaluated in one
        stacked forward, for measuring noise cheaply; None (the default) when there is none."""
        return None

    def direction_losses(
        self, direction: Mapping[str, Float64Array], offsets: Float64Array
    ) -> Losses:
        """Losses at ``values + t * direction`` for each ``t`` in ``offsets``, and their kink
        margins (none reported here: ``inf``)."""
        result = np.empty(offsets.shape[0])
        for k, t in enumerate(offsets):
            point = {name: self.values[name] + t * direction[name] for name in self.names}
            result[k] = self.loss_at(point)
        return result, np.full(offsets.shape[0], np.inf)


def as_loss_value(value: object, *, owner: str) -> tuple[float, float]:
    """A user's loss as ``(float, eps of its precision)``; refuses non-scalars with a message."""
    if isinstance(value, bool | str | bytes) or value is None:
        msg = f"{owner} must return a real scalar, got {describe_array(value)}."
        raise LossValueError(msg)
    if isinstance(value, np.ma.MaskedArray) or value is np.ma.masked:
        msg = (
            f"{owner} must return a real scalar, got a masked value ({value!r}): a masked "
            "loss has no number to differentiate; fill or drop the mask first."
        )
        raise LossValueError(msg)
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        msg = f"{owner} must return a real scalar, got {describe_array(value)}."
        raise LossValueError(msg)
    if array.size != 1:
        msg = f"{owner} must return a scalar, got an array of shape {array.shape}."
        raise LossValueError(msg)
    eps = float(np.finfo(array.dtype).eps) if array.dtype.kind == "f" else EPS64
    return float(array.reshape(())), max(eps, EPS64)


def _user_error(function: str, exc: Exception, where: str) -> UserCodeError:
    """The error that aborts a check when the user's ``function`` raised ``exc``."""
    msg = (
        f"check_function: {function} raised {type(exc).__name__}: {exc} ({where}); the check "
        "was aborted, the caller's arrays are unchanged."
    )
    return UserCodeError(msg)


def _moved_entry(name: str, index: int, offset: float) -> str:
    """Where a perturbed evaluation was, for an error message."""
    return f"params['{name}'] flat entry {index} moved by {offset:+.3g}"


def _assign(array: Float64Array, values: float | Float64Array, index: int | None = None) -> None:
    """``array[...] = values`` (or ``array.flat[index] = values``) on an array kept read-only
    for the user's code."""
    array.flags.writeable = True
    try:
        if index is None:
            array[...] = values
        else:
            array.flat[index] = values
    finally:
        array.flags.writeable = False


class FunctionObjective(Objective):
    """``loss_fn(params) -> float`` and ``grad_fn(params) -> {name: array}`` over named arrays.

    Both functions receive private float64 copies; ``loss_fn`` is called at perturbed points.
    """

    def __init__(
        self,
        loss_fn: Callable[[dict[str, Float64Array]], object],
        grad_fn: Callable[[dict[str, Float64Array]], Mapping[str, ArrayLike]],
        params: Mapping[str, ArrayLike],
    ) -> None:
        if not callable(loss_fn) or not callable(grad_fn):
            msg = "check_function: 'loss_fn' and 'grad_fn' must be callables."
            raise ConfigError(msg)
        if not isinstance(params, Mapping) or not params:
            msg = f"check_function: 'params' must be a non-empty mapping name -> array, got {describe_array(params)}."
            raise ConfigError(msg)
        for key in params:
            if not isinstance(key, str):
                msg = f"check_function: parameter names must be strings, got {key!r}."
                raise ConfigError(msg)
        self.values = {
            name: _as_private(v, f"params['{name}']", "check_function")
            for name, v in params.items()
        }
        self.names = tuple(self.values)
        self._loss_fn = loss_fn
        self._grad_fn = grad_fn
        self._scratch = {name: v.copy() for name, v in self.values.items()}
        for array in self._scratch.values():
            array.flags.writeable = False

    def _call(self, where: Callable[[], str]) -> float:
        """The user's loss at the scratch point; ``where()`` describes it, for errors only.

        ``loss_fn`` gets a fresh dict of read-only arrays: it can neither corrupt later
        evaluations by writing into them nor by popping or replacing keys."""
        self.evaluations += 1
        try:
            returned = self._loss_fn(dict(self._scratch))
        except LayerkitError:
            raise
        except ValueError as exc:
            if "read-only" not in str(exc):
                raise _user_error("loss_fn", exc, f"call {self.evaluations}, {where()}") from exc
            msg = (
                f"check_function: loss_fn wrote into its argument (call {self.evaluations}, "
                f"{where()}): the arrays it gets are read-only, so that a write cannot corrupt "
                "later evaluations; compute on copies (p['w'] * 2, not p['w'] *= 2)."
            )
            raise UserCodeError(msg) from exc
        except Exception as exc:
            raise _user_error("loss_fn", exc, f"call {self.evaluations}, {where()}") from exc
        value, eps = as_loss_value(returned, owner="loss_fn")
        self.loss_eps = max(self.loss_eps, eps)
        return value

    def loss_at(self, point: Mapping[str, Float64Array]) -> float:
        for name in self.names:
            _assign(self._scratch[name], point[name])
        return self._call(lambda: "at the checked point or along a direction")

    def coordinate_losses(self, name: str, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        for other in self.names:
            _assign(self._scratch[other], self.values[other])
        array = self._scratch[name]
        result = np.empty(flat_indices.shape[0])
        for k, (index, offset) in enumerate(zip(flat_indices, offsets, strict=True)):
            old = float(array.flat[index])
            _assign(array, old + offset, int(index))
            try:
                result[k] = self._call(partial(_moved_entry, name, int(index), float(offset)))
            finally:
                _assign(array, old, int(index))
        return result, np.full(flat_indices.shape[0], np.inf)

    def analytic(self) -> dict[str, Float64Array]:
        try:
            grads = self._grad_fn({name: v.copy() for name, v in self.values.items()})
        except LayerkitError:
            raise
        except Exception as exc:
            raise _user_error("grad_fn", exc, "at the checked point") from exc
        if not isinstance(grads, Mapping):
            msg = f"grad_fn must return a mapping name -> array, got {describe_array(grads)}."
            raise GradientSpecError(msg)
        ParamSpec.of(self.values).check_arrays(grads, what="grad_fn(...)")
        result: dict[str, Float64Array] = {}
        for name in self.names:
            grad = as_float_array(
                grads[name],
                name=f"grad_fn(...)['{name}']",
                allow_nonfinite=True,
                owner="check_function",
            )
            self.grad_eps = max(self.grad_eps, float(np.finfo(grad.dtype).eps))
            result[name] = np.array(grad, dtype=np.float64)
        return result


class Head(ABC):
    """The scalar end of a chain: a loss over the last output, summed per sample."""

    @abstractmethod
    def values(self, out: Float64Array) -> Float64Array:
        """Loss for each stacked output ``(n, m, k)`` -> ``(n,)``."""

    @abstractmethod
    def grad(self, out: Float64Array) -> Float64Array:
        """Gradient of the loss w.r.t. one output ``(m, k)``."""

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        """Loss of ``base`` ``(m, k)`` with row ``rows[j]`` replaced by ``new_rows[j]`` ``(n, k)``,
        for each ``j`` -> ``(n,)``; equal to :meth:`values` on the full outputs."""
        n = rows.shape[0]
        stacked = np.repeat(base[np.newaxis], n, axis=0)
        stacked[np.arange(n), rows] = new_rows
        return self.values(stacked)


def _replace_and_reduce(
    per_row: Float64Array, rows: IntArray, new_values: Float64Array, *, mean: bool
) -> Float64Array:
    """Per-row terms ``(m,)`` with entry ``rows[j]`` set to ``new_values[j]``, reduced over rows
    for each ``j`` -> ``(n,)`` (the same reduction as on a full ``(n, m)`` stack)."""
    n = rows.shape[0]
    stacked = np.repeat(per_row[np.newaxis], n, axis=0)
    stacked[np.arange(n), rows] = new_values
    return np.asarray(stacked.mean(axis=-1) if mean else stacked.sum(axis=-1))


@attrs.frozen(eq=False)
class ProjectionHead(Head):
    """``L = sum(r * y)`` for a fixed random ``r`` ``(m, k)``: checks a layer in isolation.

    Summed per row, then over rows, so that a change confined to one row costs ``O(m + k)``.
    """

    weights: Float64Array

    def values(self, out: Float64Array) -> Float64Array:
        return np.asarray((out * self.weights).sum(axis=-1).sum(axis=-1))

    def grad(self, out: Float64Array) -> Float64Array:
        return self.weights

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        per_row = np.asarray((base * self.weights).sum(axis=-1))
        new_values = np.asarray((new_rows * self.weights[rows]).sum(axis=-1))
        return _replace_and_reduce(per_row, rows, new_values, mean=False)


@attrs.frozen(eq=False)
class ModelLossHead(Head):
    """The model's mean loss on targets ``y`` (from logits when a Sigmoid feeds BCE)."""

    sample_losses: Callable[[Array, Array], Array]
    loss_grad: Callable[[Array, Array], Array]
    targets: Float64Array

    def values(self, out: Float64Array) -> Float64Array:
        return np.asarray(self.sample_losses(out, self.targets).mean(axis=-1), dtype=np.float64)

    def grad(self, out: Float64Array) -> Float64Array:
        return np.asarray(self.loss_grad(out, self.targets), dtype=np.float64)

    def replaced_rows(
        self, base: Float64Array, rows: IntArray, new_rows: Float64Array
    ) -> Float64Array:
        per_row = np.asarray(self.sample_losses(base, self.targets), dtype=np.float64)
        new_values = np.asarray(self.sample_losses(new_rows, self.targets[rows]), dtype=np.float64)
        return _replace_and_reduce(per_row, rows, new_values, mean=True)


@attrs.frozen
class TensorRef:
    """Where a checked tensor lives in a chain: ``layer`` index (-1 for the input ``x``)."""

    layer: int
    local: str


class ChainObjective(Objective):
    """Layers applied in order to ``x`` then a :class:`Head`, on private float64 copies.

    The layers run are shallow copies of ``layers`` rebound to the private arrays; a perturbed
    entry is written into those arrays (never the caller's) and restored.

    **Arguments:** ``layers``; ``params`` one dict per layer (local name -> array; copied);
    ``names`` model name -> :class:`TensorRef` for every tensor to check (``x`` included if
    wanted); ``x`` ``(m, in)``; ``noise`` one mask or None per layer; ``head``; ``labels``
    how errors name each layer (default ``layer i (name)``, as in a model).
    """

    merges_tensors = True

    def __init__(
        self,
        layers: Sequence[Layer],
        params: Sequence[Mapping[str, ArrayLike]],
        names: Mapping[str, TensorRef],
        x: ArrayLike,
        noise: Sequence[Array | None],
        head: Head,
        *,
        labels: Sequence[str] | None = None,
    ) -> None:
        _prime_allocator()
        self.layers = tuple(layers)
        self.labels = (
            tuple(labels)
            if labels is not None
            else tuple(layer_label(i, layer) for i, layer in enumerate(self.layers))
        )
        self.layer_params = [
            {local: _as_private(v, f"{layer.name}.{local}") for local, v in p.items()}
            for layer, p in zip(self.layers, params, strict=True)
        ]
        self.layers = tuple(
            layer.rebound(p) for layer, p in zip(self.layers, self.layer_params, strict=True)
        )
        self.x = _as_private(x, "x")
        self.noise = [None if n is None else np.asarray(n, dtype=np.float64) for n in noise]
        self.head = head
        self.refs = dict(names)
        self.names = tuple(self.refs)
        self.values = {name: self._array(ref) for name, ref in self.refs.items()}
        self._caches, self._inputs, self._outputs = self._forward_from(0, self.x)
        self._out = np.asarray(self._outputs[-1], dtype=np.float64)
        self._kinks = [self._kinks_of(index, x_in) for index, x_in in enumerate(self._inputs)]
        self._sides = [None if k is None else k > 0 for k in self._kinks]
        self._on_kink = [k is not None and bool(np.any(k == 0)) for k in self._kinks]
        self._tiled: dict[int, Array] = {}
        self._scratch: dict[str, Float64Array] = {}
        self._samplewise: dict[int, bool] = {}

    def base_cache(self, index: int) -> tuple[Any, Array]:
        """The cache and the output ``(m, out)`` of layer ``index`` at the unperturbed point."""
        return self._caches[index], self._outputs[index]

    def _array(self, ref: TensorRef) -> Float64Array:
        return self.x if ref.layer < 0 else self.layer_params[ref.layer][ref.local]

    def _forward_from(
        self, start: int, x: Float64Array
    ) -> tuple[list[Any], list[Array], list[Array]]:
        """Run layers ``start..`` on a batch ``(m, in)``: their caches, inputs and outputs."""
        caches: list[Any] = []
        inputs: list[Array] = []
        outputs: list[Array] = []
        out: Array = x
        for index in range(start, len(self.layers)):
            inputs.append(out)
            out, cache = run_layer(self.layers[index], out, self.noise[index])
            caches.append(cache)
            outputs.append(out)
        return caches, inputs, outputs

    def _tiled_noise(self, index: int, n: int) -> Array | None:
        """Layer ``index``'s mask repeated for ``n`` stacked batches ``(n * m, k)`` (a prefix
        of one cached tiling: chunks reuse it instead of tiling again)."""
        mask = self.noise[index]
        if mask is None:
            return None
        tiled = self._tiled.get(index)
        if tiled is None or tiled.shape[0] < n * mask.shape[0]:
            tiled = np.tile(mask, (n, 1))
            self._tiled[index] = tiled
        return tiled[: n * mask.shape[0]]

    def _kinks_of(self, index: int, inputs: Array) -> Float64Array | None:
        """Layer ``index``'s signed kink distances for ``inputs`` (None: a smooth layer)."""
        distance = self.layers[index].kink_distance(inputs)
        if distance is None:
            return None
        result = np.asarray(distance, dtype=np.float64)
        if result.shape != np.shape(inputs):
            msg = (
                f"{self.layers[index].name}.kink_distance returned shape {result.shape} for an "
                f"input of shape {np.shape(inputs)}; it must return one distance per input."
            )
            raise GradientSpecError(msg)
        return result

    def _margin(
        self, index: int, inputs: Array, n: int, rows: IntArray | None = None
    ) -> Float64Array:
        """Kink margins ``(n,)`` of ``n`` perturbed inputs of layer ``index`` (stacked batches
        ``(n * m, k)``, or moved ``rows`` ``(n, k)``) against the checked point's inputs."""
        base = self._kinks[index]
        if base is None:
            return np.full(n, np.inf)
        moved = self._kinks_of(index, inputs)
        assert moved is not None
        moved = moved.reshape(n, -1)
        flat_base = base.reshape(1, -1) if rows is None else base[rows].reshape(n, -1)
        side = self._sides[index]
        assert side is not None
        flat_side = side.reshape(1, -1) if rows is None else side[rows].reshape(n, -1)
        # Cheap test first (one comparison per entry): the rows where an entry changed side,
        # or moved off a kink it sat on; only those need the exact margin.
        suspect = np.any(np.not_equal(moved > 0, flat_side), axis=1)
        if self._on_kink[index]:
            suspect |= np.any((flat_base == 0) & (moved != flat_base), axis=1)
        margins = np.full(n, np.inf)
        if np.any(suspect):
            chosen = np.flatnonzero(suspect)
            reference = flat_base if rows is None else flat_base[chosen]
            margins[chosen] = kink_margins(reference, moved[chosen])
        return margins

    def _stacked_from(self, start: int, stacked: Float64Array) -> Losses:
        """Run layers ``start..`` on ``n`` stacked batches ``(n, m, k)``; head values ``(n,)``
        and kink margins."""
        n, m = stacked.shape[:2]
        margins = np.full(n, np.inf)
        out: Array = stacked.reshape(n * m, -1)
        for index in range(start, len(self.layers)):
            if self._kinks[index] is not None:
                np.minimum(margins, self._margin(index, out, n), out=margins)
            out, _ = run_layer(self.layers[index], out, self._tiled_noise(index, n))
        return self.head.values(np.asarray(out, dtype=np.float64).reshape(n, m, -1)), margins

    def _run(self, start: int, x: Array, *, margins: bool = True) -> tuple[float, float]:
        """One forward of layers ``start..`` on ``x`` ``(m, k)``: the loss and the kink
        margin (``inf`` without ``margins``)."""
        margin = np.inf
        out: Array = x
        for index in range(start, len(self.layers)):
            if margins and self._kinks[index] is not None:
                margin = min(margin, float(self._margin(index, out, 1)[0]))
            out, _ = run_layer(self.layers[index], out, self.noise[index])
        self.evaluations += 1
        return float(self.head.values(np.asarray(out, dtype=np.float64)[np.newaxis])[0]), margin

    def _stackable_from(self, start: int) -> bool:
        """True when every layer from ``start`` passed :func:`verified_samplewise` on its input
        at the checked point (tested once per layer): only then are batches stacked."""
        for index in range(start, len(self.layers)):
            if index not in self._samplewise:
                self._samplewise[index] = verified_samplewise(
                    self.layers[index], self._inputs[index], self._outputs[index], self.noise[index]
                )
            if not self._samplewise[index]:
                return False
        return True

    def loss_at(self, point: Mapping[str, Float64Array]) -> float:
        if point is self.values:  # the point itself (base_loss): nothing to swap in
            return self._run(0, self.x, margins=False)[0]
        saved = {name: self.values[name].copy() for name in self.names}
        try:
            for name in self.names:
                self.values[name][...] = point[name]
            return self._run(0, self.x)[0]
        finally:
            for name in self.names:
                self.values[name][...] = saved[name]

    def input_line(self, rng: np.random.Generator) -> Callable[[Float64Array], Losses] | None:
        """The inputs ``x`` moved along random signs times ``max(1, |x|)``: all points of the
        line run as one stacked forward (None if a layer mixes samples)."""
        if not self._stackable_from(0):
            return None
        signs = np.where(rng.integers(0, 2, size=self.x.shape) == 1, 1.0, -1.0)
        direction = signs * np.maximum(np.abs(self.x), 1.0)

        def along(offsets: Float64Array) -> Losses:
            stacked = self.x[np.newaxis] + offsets[:, np.newaxis, np.newaxis] * direction
            self.evaluations += offsets.shape[0]
            return self._stacked_from(0, stacked)

        return along

    def direction_losses(
        self, direction: Mapping[str, Float64Array], offsets: Float64Array
    ) -> Losses:
        """Losses at ``values + t * direction`` for each ``t`` in ``offsets``, built in reused
        scratch arrays (the checked point is never written); and their kink margins."""
        if not self._scratch:
            self._scratch = {name: np.empty_like(self.values[name]) for name in self.names}
        params = [dict(p) for p in self.layer_params]
        x = self.x
        for name, ref in self.refs.items():
            if ref.layer < 0:
                x = self._scratch[name]
            else:
                params[ref.layer][ref.local] = self._scratch[name]
        result = np.empty(offsets.shape[0])
        margins = np.empty(offsets.shape[0])
        try:
            self._bind(params)
            for k, t in enumerate(offsets):
                for name in self.names:
                    moved = self._scratch[name]
                    np.multiply(direction[name], t, out=moved)
                    np.add(self.values[name], moved, out=moved)
                result[k], margins[k] = self._run(0, x)
        finally:
            self._bind(self.layer_params)
        return result, margins

    def _bind(self, params: Sequence[Mapping[str, Float64Array]]) -> None:
        """Rebind each layer's parameters to ``params`` (one dict per layer)."""
        for layer, arrays in zip(self.layers, params, strict=True):
            if arrays:
                layer.set_params(arrays)

    def analytic(self) -> dict[str, Float64Array]:
        grad: Array = self.head.grad(self._out)
        local: dict[int, dict[str, Array]] = {}
        for index in reversed(range(len(self.layers))):
            cache = self._caches[index]
            grad, local[index] = checked_backward(
                self.layers[index].backward(cache, grad),
                label=partial(self.labels.__getitem__, index),
                x_shape=self._inputs[index].shape,
                params=self.layer_params[index],
            )
        return {
            name: np.array(grad if ref.layer < 0 else local[ref.layer][ref.local], np.float64)
            for name, ref in self.refs.items()
        }

    def coordinate_losses(self, name: str, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        ref = self.refs[name]
        start = max(ref.layer, 0)
        result = np.empty(flat_indices.shape[0])
        margins = np.empty(flat_indices.shape[0])
        if not self._stackable_from(start):
            for k, (index, offset) in enumerate(zip(flat_indices, offsets, strict=True)):
                result[k], margins[k] = self._one_perturbation(ref, int(index), float(offset))
            return result, margins
        m = self.x.shape[0]
        widest = max([self.x.shape[1]] + [y.shape[1] for y in self._outputs] + [1])
        if ref.layer < 0:  # an entry of x moves one row only: run the chain on moved rows
            chunk = max(1, CHUNK_ELEMENTS // max(widest, m))
            for lo in range(0, flat_indices.shape[0], chunk):
                hi = min(lo + chunk, flat_indices.shape[0])
                result[lo:hi], margins[lo:hi] = self._row_losses(
                    flat_indices[lo:hi], offsets[lo:hi]
                )
        else:
            chunk = max(1, CHUNK_ELEMENTS // (m * widest))
            for lo in range(0, flat_indices.shape[0], chunk):
                hi = min(lo + chunk, flat_indices.shape[0])
                stacked = self._perturbed_outputs(ref, flat_indices[lo:hi], offsets[lo:hi])
                result[lo:hi], margins[lo:hi] = self._stacked_from(start + 1, stacked)
        self.evaluations += flat_indices.shape[0]
        return result, margins

    def entry_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses for entries of several tensors: entries of ``x`` run on their moved rows;
        parameter entries are sorted by layer and chunked, and each chunk runs the layers once,
        the outputs perturbed at each layer joining the stack there."""
        n = tensors.shape[0]
        result = np.empty(n)
        margins = np.empty(n)
        refs = [self.refs[name] for name in self.names]
        layer_of = np.array([ref.layer for ref in refs], dtype=np.intp)[tensors]
        stackable = np.array([self._stackable_from(max(ref.layer, 0)) for ref in refs])[tensors]
        alone = np.flatnonzero(~stackable | (layer_of < 0))
        if alone.size:  # x entries, and tensors whose chain mixes samples
            result[alone], margins[alone] = super().entry_losses(
                tensors[alone], flat_indices[alone], offsets[alone]
            )
        chosen = np.flatnonzero(stackable & (layer_of >= 0))
        if chosen.size == 0:
            return result, margins
        order = chosen[np.lexsort((tensors[chosen], layer_of[chosen]))]
        m = self.x.shape[0]
        widest = max([self.x.shape[1]] + [y.shape[1] for y in self._outputs] + [1])
        chunk = max(1, CHUNK_ELEMENTS // (m * widest))
        for lo in range(0, order.shape[0], chunk):
            part = order[lo : lo + chunk]
            result[part], margins[part] = self._merged_losses(
                tensors[part], flat_indices[part], offsets[part]
            )
        self.evaluations += chosen.shape[0]
        return result, margins

    def _merged_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses for parameter entries sorted by (layer, tensor): one stacked run of the layers
        from the first perturbed one; row ``k`` of the stack is entry ``k``'s forward."""
        layer_of = np.array([self.refs[name].layer for name in self.names], dtype=np.intp)
        layers = layer_of[tensors]
        carry: Float64Array | None = None
        margins = np.empty(0)
        for index in range(int(layers[0]), len(self.layers)):
            if carry is not None:
                n, m = carry.shape[:2]
                np.minimum(margins, self._margin(index, carry.reshape(n * m, -1), n), out=margins)
                carry = self._stacked_layer(index, carry)
            parts = [] if carry is None else [carry]
            for tensor in np.unique(tensors[layers == index]):
                where = tensors == tensor
                ref = self.refs[self.names[int(tensor)]]
                parts.append(self._perturbed_outputs(ref, flat_indices[where], offsets[where]))
            if parts:
                carry = parts[0] if len(parts) == 1 else np.concatenate(parts)
                margins = np.concatenate(
                    [margins, np.full(carry.shape[0] - margins.shape[0], np.inf)]
                )
        assert carry is not None
        return self.head.values(carry), margins

    def _stacked_layer(self, index: int, stacked: Float64Array) -> Float64Array:
        """Layer ``index`` on ``n`` stacked batches ``(n, m, in)`` -> ``(n, m, out)``."""
        n, m = stacked.shape[:2]
        out, _ = run_layer(
            self.layers[index], stacked.reshape(n * m, -1), self._tiled_noise(index, n)
        )
        return np.asarray(out, dtype=np.float64).reshape(n, m, -1)

    def _row_losses(self, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        """Losses with ``x.flat[flat_indices[k]] += offsets[k]``: every layer is samplewise, so
        only that entry's row changes; the layers run on the ``n`` moved rows ``(n, in)`` and
        the head replaces one row of the base output each (``O(m)`` per perturbation)."""
        n = flat_indices.shape[0]
        rows, cols = np.divmod(flat_indices, self.x.shape[1])
        moved = self.x[rows]
        moved[np.arange(n), cols] += offsets
        out: Array = moved
        margins = np.full(n, np.inf)
        for index, layer in enumerate(self.layers):
            np.minimum(margins, self._margin(index, out, n, rows), out=margins)
            mask = self.noise[index]
            out, _ = run_layer(layer, out, None if mask is None else mask[rows])
        losses = self.head.replaced_rows(self._out, rows, np.asarray(out, dtype=np.float64))
        return losses, margins

    def _perturbed_outputs(
        self, ref: TensorRef, flat_indices: IntArray, offsets: Float64Array
    ) -> Float64Array:
        """Outputs of the perturbed tensor's layer for each perturbation ``(n, m, out)``."""
        layer = self.layers[ref.layer]
        x_in, noise = self._inputs[ref.layer], self.noise[ref.layer]
        fast = shortcut_for(layer)
        if fast is not None:
            y = self._outputs[ref.layer]
            return fast(layer, x_in, y, ref.local, flat_indices, offsets)
        outputs = []
        array = self.layer_params[ref.layer][ref.local].reshape(-1)
        for index, offset in zip(flat_indices, offsets, strict=True):
            old = array[index]
            array[index] = old + offset
            try:
                y, _ = run_layer(layer, x_in, noise)
            finally:
                array[index] = old
            outputs.append(np.asarray(y, dtype=np.float64))
        return np.stack(outputs)

    def _one_perturbation(self, ref: TensorRef, index: int, offset: float) -> tuple[float, float]:
        """The loss with one entry moved, run unstacked (for layers that mix samples); and
        its kink margin."""
        array = self._array(ref).reshape(-1)
        old = array[index]
        array[index] = old + offset
        try:
            start = max(ref.layer, 0)
            x_in = self.x if ref.layer < 0 else self._inputs[start]
            return self._run(start, np.asarray(x_in, dtype=np.float64))
        finally:
            array[index] = old


def kink_margins(base: Float64Array, moved: Float64Array) -> Float64Array:
    """Per row of ``moved`` ``(n, k)``, the smallest ``|base| / |moved - base|`` over its
    entries (``base`` ``(n, k)`` or ``(1, k)``): above 1, each entry moved less than its
    distance from its kink (to first order, it stayed on its side); 0, an entry on a kink
    moved; ``inf``, nothing moved."""
    delta = np.abs(moved - base)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(base) / delta
    ratio[delta == 0] = np.inf
    return np.asarray(np.min(ratio, axis=1, initial=np.inf))
