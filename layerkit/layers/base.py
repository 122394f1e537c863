"""The layer contract: what every layer (built-in or your own) provides.

A layer maps a batch-first input ``x`` of shape ``(m, in_features)`` to an output of shape
``(m, out_features)``. ``forward`` is a pure function of (parameters, input, noise): it never
stores state on ``self``; everything ``backward`` needs travels in the returned :class:`Cache`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, IntArray
from layerkit._validate import as_batch, as_float_array, nonfinite_summary
from layerkit.errors import CacheError, DTypeError, NonFiniteError, ShapeError
from layerkit.params import ParamSpec, assign_arrays

_DISPOSABLE: ContextVar[bool] = ContextVar("layerkit_disposable_caches", default=False)


@contextmanager
def disposable_caches() -> Iterator[None]:
    """Within this block every cache that ``forward`` returns is dropped unused, and the
    parameter arrays are not written while ``forward`` runs: a layer may then skip defensive
    copies (``Linear`` keeps its parameters uncopied). Used by the checker's throw-away
    evaluations; never needed in user code."""
    token = _DISPOSABLE.set(True)
    try:
        yield
    finally:
        _DISPOSABLE.reset(token)


def caches_are_disposable() -> bool:
    """True inside :func:`disposable_caches` (a hint; ignoring it is always safe)."""
    return _DISPOSABLE.get()


def _private(value: Array) -> Array:
    """The cache's own copy of an array, so that the caller writing into the input it passed
    or the output it got back cannot change a later backward (no copy inside
    :func:`disposable_caches`, whose caches are never used)."""
    return value if caches_are_disposable() else np.array(value, copy=True)


def _private_or_none(value: Array | None) -> Array | None:
    return None if value is None else _private(value)


@attrs.frozen(eq=False)
class Cache:
    """What one ``forward`` call hands to its ``backward``.

    **Fields:** ``owner`` the layer that made it; ``x`` the input ``(m, in)``; ``y`` the output
    ``(m, out)``; ``params`` the parameter arrays used; ``noise`` the random mask used (or None).
    ``x``, ``y`` and ``noise`` are copied in: the arrays a caller passed to ``forward`` or got
    back from it may be reused freely before ``backward``.
    """

    owner: Layer
    x: Array = attrs.field(converter=_private)
    y: Array = attrs.field(converter=_private)
    params: Mapping[str, Array] = attrs.field()
    noise: Array | None = attrs.field(default=None, converter=_private_or_none)


class Layer(ABC):
    """Base class of layers. Subclasses implement ``forward`` and ``backward``.

    Parameters are named and ordered by :attr:`param_spec`; ``params()`` gives the live arrays.
    Parameter-free layers keep the defaults (an empty spec).
    """

    in_features: int | None = None
    """Input width, or None for a layer that keeps any width (elementwise)."""

    out_features: int | None = None
    """Output width, or None for a layer whose output width equals its input width."""

    stochastic: bool = False
    """True for layers that draw noise (dropout): checks hold that noise fixed."""

    samplewise: bool = False
    """True when output row ``i`` depends on input row ``i`` only (no batch statistics). The
    checker then evaluates many perturbed copies of the batch in one stacked forward; leave it
    False for a layer that mixes samples, and each perturbation is run on its own."""

    @property
    def name(self) -> str:
        """A short readable name, e.g. ``Linear(4->5)``."""
        return type(self).__name__

    @property
    def param_spec(self) -> ParamSpec:
        """The ordered ``(name, shape)`` of each parameter (empty for parameter-free layers)."""
        return ParamSpec.of(self.params())

    def params(self) -> dict[str, Array]:
        """The live parameter arrays, by local name (``{"W": ..., "b": ...}``)."""
        return {}

    @abstractmethod
    def forward(
        self, x: Array, params: Mapping[str, Array] | None = None, noise: Array | None = None
    ) -> tuple[Array, Cache]:
        """Compute the output for ``x`` of shape ``(m, in)``.

        **Arguments:** ``params`` replaces the layer's own parameters for this call (the checker
        evaluates perturbed copies this way); ``noise`` is a mask from :meth:`sample_noise`.

        **Returns:** ``(y, cache)`` with ``y`` of shape ``(m, out)``.
        """

    @abstractmethod
    def backward(self, cache: Cache, grad_out: Array) -> tuple[Array, dict[str, Array]]:
        """Propagate ``grad_out`` (shape of ``y``) back through the forward that made ``cache``.

        **Returns:** ``(grad_x, grads)``: ``grad_x`` of the shape of ``x``, and one gradient per
        parameter, by local name, each of the parameter's shape.
        """

    def sample_noise(self, x: Array, rng: np.random.Generator) -> Array | None:
        """Draw the random mask a stochastic layer would use on ``x`` (None: deterministic)."""
        return None

    def kink_distance(self, x: Array) -> Array | None:
        """Optional, for layers whose output has kinks in ``x`` (ReLU at 0): the signed
        distance of each entry of ``x`` ``(m, in)`` from its nearest kink, same shape; entries
        on opposite sides of a kink have opposite signs, an entry on it has 0. Return None
        (the default) for a smooth layer.

        The checker compares it at the checked and at perturbed inputs: a perturbation that
        moves an entry across a kink gets a smaller step, and an entry exactly on a kink that
        moves makes that probe inconclusive (``kink``), never a false pass or fail.
        """
        return None

    def perturbed_outputs(
        self, cache: Cache, param: str, flat_indices: IntArray, deltas: Array
    ) -> Array | None:
        """Optional fast path for the checker: outputs for ``n`` one-entry perturbations.

        Row ``k`` of the result ``(n, m, out)`` is the output of the forward that made ``cache``
        with ``params[param].flat[flat_indices[k]] += deltas[k]``. Return None (the default)
        and the checker runs ``forward`` once per perturbation instead.
        """
        return None

    def output_width(self, in_width: int) -> int:
        """The output width for an input of width ``in_width``."""
        return self.out_features if self.out_features is not None else in_width

    # -- helpers shared by all layers -------------------------------------------------------

    def check_input(self, x: ArrayLike, name: str = "x") -> Array:
        """Validate a batch ``(m, in_features)`` for this layer; converts integers to float."""
        array = as_batch(x, name=name, features=self.in_features, owner=self.name)
        return array

    def check_cache(self, cache: Cache, grad_out: ArrayLike) -> Array:
        """Refuse a cache made by another layer, and a ``grad_out`` of the wrong shape."""
        if not isinstance(cache, Cache) or cache.owner is not self:
            if not isinstance(cache, Cache):
                origin = f"a {type(cache).__name__}, not a Cache"
            elif cache.owner.name == self.name:
                origin = f"another {self.name} object"
            else:
                origin = cache.owner.name
            msg = (
                f"{self.name}.backward: the cache comes from {origin}, not from this layer's "
                "forward; pass the cache returned by this layer's own forward."
            )
            raise CacheError(msg)
        grad = as_float_array(
            grad_out, name="grad_out", allow_nonfinite=True, owner=f"{self.name}.backward"
        )
        if grad.shape != cache.y.shape:
            msg = (
                f"{self.name}.backward: 'grad_out' must have the output's shape "
                f"{cache.y.shape}, got {grad.shape}."
            )
            raise ShapeError(msg)
        return grad.astype(cache.y.dtype, copy=False)

    def resolve_params(self, params: Mapping[str, Array] | None) -> Mapping[str, Array]:
        """``params`` if given (keys, shapes and dtypes checked; integers converted to float),
        else the layer's own arrays, which must be finite (a NaN parameter is named here, not
        in whatever the next layer receives)."""
        if params is None:
            own = self.params()
            for name, array in own.items():
                problem = nonfinite_summary(np.asarray(array))
                if problem:
                    msg = f"{self.name}: parameter '{name}' holds {problem}; parameters must be finite."
                    raise NonFiniteError(msg)
            return own
        spec = self.param_spec
        if set(params) != set(spec.names):
            msg = (
                f"{self.name}.forward: 'params' must have the keys {list(spec.names)}, "
                f"got {list(params)}."
            )
            raise ShapeError(msg)
        arrays: dict[str, Array] = {}
        for tensor in spec:
            value = np.asarray(params[tensor.name])
            if value.shape != tensor.shape:
                msg = (
                    f"{self.name}.forward: params['{tensor.name}'] must have shape "
                    f"{tensor.shape}, got {value.shape}."
                )
                raise ShapeError(msg)
            if value.dtype.kind != "f":
                if value.dtype.kind not in "iub":
                    msg = (
                        f"{self.name}.forward: params['{tensor.name}'] must hold real numbers, "
                        f"got dtype {value.dtype}."
                    )
                    raise DTypeError(msg)
                value = value.astype(np.float64)
            arrays[tensor.name] = value
        return arrays

    def flatten(self) -> Array:
        """This layer's parameters as one flat vector (order of :attr:`param_spec`)."""
        return self.param_spec.flatten(self.params())

    def unflatten(self, vector: ArrayLike) -> None:
        """Load parameters from a flat vector of length ``param_spec.size`` (copied in; finite
        values only; on any error nothing is written)."""
        new = self.param_spec.unflatten(vector, owner=self.name, finite=True)
        assign_arrays(self.params(), new, owner=f"{self.name}.unflatten")

    def astype(self, dtype: type[np.floating] | np.dtype[np.floating]) -> Layer:
        """A copy of this layer with parameters of ``dtype`` (parameter-free layers: itself)."""
        return self

    def __repr__(self) -> str:
        return self.name
