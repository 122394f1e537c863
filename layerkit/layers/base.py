"""The layer contract: what every layer (built-in or your own) provides.

A layer maps a batch-first input `x` of shape `(m, in_features)` to an output of shape
`(m, out_features)`. A user writes three methods: `params`, `forward` and `backward`;
the base class derives the rest (param_spec, flatten/unflatten, astype, copy, repr) from
`params()`. Parameters are rebound, never written in place, so a cache may hold references.
"""

from __future__ import annotations

import copy as _copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_batch, as_float_dtype, nonfinite_summary
from layerkit.errors import ConfigError, NonFiniteError, ShapeError
from layerkit.params import ParamSpec


class Layer(ABC):
    """Base class of layers: implement `params`, `forward` and `backward`.

    Optional: `sample_noise` for stochastic layers, `in_features`/`out_features` for
    width errors when a model is built, `kink_distance` for layers with kinks (ReLU).
    """

    in_features: int | None = None
    """Input width, or None for a layer that keeps any width (elementwise)."""

    out_features: int | None = None
    """Output width, or None for a layer whose output width equals its input width."""

    @property
    def name(self) -> str:
        """A short readable name, e.g. `Linear(4->5)`."""
        return type(self).__name__

    @property
    def stochastic(self) -> bool:
        """True for layers that draw noise (they override `sample_noise`): checks fix it."""
        return type(self).sample_noise is not Layer.sample_noise

    @property
    def param_spec(self) -> ParamSpec:
        """The ordered `(name, shape)` of each parameter (empty for parameter-free layers)."""
        return ParamSpec.of(self.params())

    def params(self) -> dict[str, Array]:
        """The parameter arrays bound to this layer, by local name (`{"W": ..., "b": ...}`)."""
        return {}

    @abstractmethod
    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, Any]:
        """Compute the output for `x` `(m, in)`; `noise` is a mask from `sample_noise`.

        Returns:
            `(y, cache)`: `y` `(m, out)`; `cache` any object `backward` needs.
        """

    @abstractmethod
    def backward(self, cache: Any, grad_y: Array) -> tuple[Array, dict[str, Array]]:
        """Propagate `grad_y` (shape of `y`) back through the forward that made `cache`.

        Returns:
            `(grad_x, grads)`: `grad_x` of the shape of `x`, and one gradient per
            parameter, by local name, each of the parameter's shape.
        """

    def sample_noise(self, x: Array, rng: np.random.Generator) -> Array | None:
        """Draw the random mask a stochastic layer would use on `x` (None: deterministic)."""
        return None

    def kink_distance(self, x: Array) -> Array | None:
        """Optional, for layers whose output has kinks in `x` (ReLU at 0): the signed
        distance of each entry of `x` `(m, in)` from its nearest kink, same shape; entries
        on opposite sides of a kink have opposite signs, an entry on it has 0. Return None
        (the default) for a smooth layer.

        The checker compares it at the checked and at perturbed inputs: a perturbation that
        moves an entry across a kink gets a smaller step, and an entry exactly on a kink that
        moves makes that probe inconclusive (`kink`), never a false pass or fail.
        """
        return None

    def output_width(self, in_width: int) -> int:
        """The output width for an input of width `in_width`."""
        return self.out_features if self.out_features is not None else in_width

    def check_input(self, x: ArrayLike, name: str = "x") -> Array:
        """Validate a batch `(m, in_features)` for this layer; converts integers to float."""
        return as_batch(x, name=name, features=self.in_features, owner=self.name)

    def check_params(self) -> dict[str, Array]:
        """The parameters, refused if any holds NaN/Inf (named here, not in whatever the next
        layer receives)."""
        own = self.params()
        for name, array in own.items():
            problem = nonfinite_summary(np.asarray(array))
            if problem:
                msg = f"{self.name}: parameter '{name}' holds {problem}; parameters must be finite."
                raise NonFiniteError(msg)
        return own

    # -- derived from params() ----------------------------------------------------------------

    def set_params(self, arrays: Mapping[str, Array]) -> None:
        """Rebind the parameters to `arrays` (same keys and shapes; not copied).

        The default sets the attribute of each parameter's name; a layer that stores its
        parameters under other names overrides this.
        """
        spec = self.param_spec
        if set(arrays) != set(spec.names):
            msg = f"{self.name}.set_params: needs the keys {list(spec.names)}, got {list(arrays)}."
            raise ShapeError(msg)
        for tensor in spec:
            if np.shape(arrays[tensor.name]) != tensor.shape:
                msg = (
                    f"{self.name}.set_params: '{tensor.name}' must have shape {tensor.shape}, "
                    f"got {np.shape(arrays[tensor.name])}."
                )
                raise ShapeError(msg)
        for key, value in arrays.items():
            setattr(self, key, value)
        bound = self.params()
        if any(bound[key] is not value for key, value in arrays.items()):
            msg = (
                f"{self.name}: params() does not return the attributes named like its keys; "
                "override set_params(arrays) to rebind them."
            )
            raise ConfigError(msg)

    def rebound(self, arrays: Mapping[str, Array]) -> Self:
        """A shallow copy of this layer with its parameters rebound to `arrays`."""
        clone = _copy.copy(self)
        clone.set_params(arrays)
        return clone

    def flatten(self) -> Array:
        """This layer's parameters as one flat vector (in the order of `param_spec`)."""
        return self.param_spec.flatten(self.params())

    def unflatten(self, vector: ArrayLike) -> None:
        """Rebind the parameters to copies of a flat vector's pieces (length `param_spec.size`;
        finite values only; each keeps its dtype; on any error nothing changes)."""
        new = self.param_spec.unflatten(vector, owner=self.name, finite=True)
        current = self.params()
        self.set_params({k: np.array(new[k], dtype=current[k].dtype) for k in current})

    def astype(self, dtype: type[np.floating] | np.dtype[np.floating]) -> Self:
        """A copy of this layer with parameters of `dtype` (always new arrays)."""
        real = as_float_dtype(dtype, owner=f"{self.name}.astype")
        return self.rebound({k: np.array(v, dtype=real) for k, v in self.params().items()})

    def copy(self) -> Self:
        """A copy of this layer with copies of its parameters."""
        return self.rebound({k: np.array(v, copy=True) for k, v in self.params().items()})

    def __repr__(self) -> str:
        return self.name


def run_layer(layer: Layer, x: Array, noise: Array | None) -> tuple[Array, Any]:
    """`layer.forward(x, noise=noise)`, without the keyword when there is no noise (a
    deterministic layer may then define `forward(self, x)`)."""
    return layer.forward(x) if noise is None else layer.forward(x, noise=noise)
