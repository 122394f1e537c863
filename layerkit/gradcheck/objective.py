"""What the checker differentiates: a scalar loss over named float64 tensors it may perturb.

Two kinds: `FunctionObjective` here wraps any `loss_fn(params)` / `grad_fn(params)`;
`ChainObjective` (in `layerkit.gradcheck.chain`) runs a chain of layers. Both work on private
float64 copies: the caller's arrays are never written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from functools import partial

import numpy as np

from layerkit._typing import ArrayLike, Float64Array, IntArray
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
from layerkit.gradcheck.probes import EPS64
from layerkit.params import ParamSpec

Losses = tuple[Float64Array, Float64Array]
"""`(losses, kink margins)`, both `(n,)`."""


def as_private(value: ArrayLike, name: str, owner: str | None = None) -> Float64Array:
    """A finite float64 copy of a user's array (never a view of it)."""
    array = as_float_array(value, name=name, owner=owner)
    return np.array(array, dtype=np.float64, copy=True)


def random_scaled_signs(values: Float64Array, rng: np.random.Generator) -> Float64Array:
    """Random signs times `max(1, |values|)`, shaped like `values`: a step that moves every
    entry by about its own size. One random byte per entry; its sign is the entry's."""
    scale = np.asarray(np.maximum(np.abs(values), 1.0), dtype=np.float64)
    signs = np.frombuffer(rng.bytes(values.size), dtype=np.int8).reshape(values.shape)
    return np.copysign(scale, signs, out=scale)


class Objective(ABC):
    """A scalar loss over named float64 tensors, with its analytic gradient."""

    names: tuple[str, ...]
    values: dict[str, Float64Array]
    evaluations: int = 0
    loss_eps: float = EPS64
    grad_eps: float = EPS64
    merges_tensors: bool = False
    """True when `entry_losses` gains from mixing tensors (the engine then probes every
    tensor's entries together); False keeps one tensor at a time, in order."""
    own_code: bool = False
    """True when every function the loss runs is layerkit's own deterministic code (no user
    layer, loss or callback): the determinism guard, which exists to catch user code, is
    then not evaluated."""

    @abstractmethod
    def analytic(self) -> dict[str, Float64Array]:
        """The analytic gradient at the point, by tensor name, float64."""

    @abstractmethod
    def loss_at(self, point: Mapping[str, Float64Array]) -> float:
        """The loss with every tensor replaced by `point` (same names and shapes)."""

    @abstractmethod
    def coordinate_losses(self, name: str, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        """Losses with `name.flat[flat_indices[k]] += offsets[k]`, one move at a time.

        Returns:
            The losses `(n,)` and each move's kink margin `(n,)` (see
                `layerkit.gradcheck.numeric.Evaluate`).
        """

    def entry_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses with `names[tensors[k]].flat[flat_indices[k]] += offsets[k]`, one at a
        time `(n,)`: entries of several tensors mixed (by default, one tensor at a time);
        and their kink margins."""
        result = np.empty(tensors.shape[0])
        margins = np.full(tensors.shape[0], np.inf)
        for tensor in np.unique(tensors):
            where = np.flatnonzero(tensors == tensor)
            result[where], margins[where] = self.coordinate_losses(
                self.names[int(tensor)], flat_indices[where], offsets[where]
            )
        return result, margins

    def array_bytes(self, entries: int) -> int:
        """About how many bytes of short-lived arrays a check probing `entries` entries
        allocates and frees (0: unknown); it decides whether a heap reserve pays."""
        return 0

    def base_loss(self) -> float:
        """The loss at the point, evaluated twice: the two must agree (determinism guard;
        once for `own_code`)."""
        first = self.first_loss()
        if self.own_code:
            return first
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

    def first_loss(self) -> float:
        """The loss at the point, from whatever the objective already computed there (by
        default, a new evaluation)."""
        return self.loss_at(self.values)

    def input_line(self, rng: np.random.Generator) -> Callable[[Float64Array], Losses] | None:
        """A random line through the inputs, `offsets -> (losses, margins)`, evaluated in one
        stacked forward, for measuring noise cheaply; None (the default) when there is none."""
        return None

    def direction_losses(
        self, direction: Mapping[str, Float64Array], offsets: Float64Array
    ) -> Losses:
        """Losses at `values + t * direction` for each `t` in `offsets`, and their kink
        margins (none reported here: `inf`)."""
        result = np.empty(offsets.shape[0])
        for k, t in enumerate(offsets):
            point = {name: self.values[name] + t * direction[name] for name in self.names}
            result[k] = self.loss_at(point)
        return result, np.full(offsets.shape[0], np.inf)


def as_loss_value(value: object, *, owner: str) -> tuple[float, float]:
    """A user's loss as `(float, eps of its precision)`; refuses non-scalars with a message."""
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
    """The error that aborts a check when the user's `function` raised `exc`."""
    msg = (
        f"check_function: {function} raised {type(exc).__name__}: {exc} ({where}); the check "
        "was aborted, the caller's arrays are unchanged."
    )
    return UserCodeError(msg)


def _moved_entry(name: str, index: int, offset: float) -> str:
    """Where a perturbed evaluation was, for an error message."""
    return f"params['{name}'] flat entry {index} moved by {offset:+.3g}"


def _assign(array: Float64Array, values: float | Float64Array, index: int | None = None) -> None:
    """`array[...] = values` (or `array.flat[index] = values`) on an array kept read-only
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
    """`loss_fn(params) -> float` and `grad_fn(params) -> {name: array}` over named arrays.

    Both functions receive private float64 copies; `loss_fn` is called at perturbed points.
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
            name: as_private(v, f"params['{name}']", "check_function") for name, v in params.items()
        }
        self.names = tuple(self.values)
        self._loss_fn = loss_fn
        self._grad_fn = grad_fn
        self._scratch = {name: v.copy() for name, v in self.values.items()}
        for array in self._scratch.values():
            array.flags.writeable = False

    def _call(self, where: Callable[[], str]) -> float:
        """The user's loss at the scratch point; `where()` describes it, for errors only.

        `loss_fn` gets a fresh dict of read-only arrays: it can neither corrupt later
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
