"""Named parameter specs, and flatten / unflatten between named arrays and one flat vector."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike
from layerkit._validate import as_float_array, nonfinite_summary
from layerkit.errors import (
    ConfigError,
    GradientSpecError,
    NonFiniteError,
    ShapeError,
    describe_array,
)


@attrs.frozen
class TensorSpec:
    """One named tensor: its `name` and `shape`."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of scalar entries."""
        return int(np.prod(self.shape, dtype=np.int64))


@attrs.frozen
class ParamSpec:
    """An ordered list of named tensors, and the layout of their flat vector.

    Tensors are laid out in order, each flattened row-major (C order), as the seed
    notebook's `dictionary_to_vector` does.
    """

    tensors: tuple[TensorSpec, ...] = ()

    @classmethod
    def of(cls, arrays: Mapping[str, Array]) -> ParamSpec:
        """The spec of a mapping of named arrays, in its iteration order."""
        return cls(tuple(TensorSpec(name, tuple(np.shape(a))) for name, a in arrays.items()))

    def __iter__(self) -> Iterator[TensorSpec]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def names(self) -> tuple[str, ...]:
        """Tensor names, in order."""
        return tuple(t.name for t in self.tensors)

    @property
    def size(self) -> int:
        """Total number of scalar entries (the flat vector's length)."""
        return sum(t.size for t in self.tensors)

    def offsets(self) -> dict[str, tuple[int, int]]:
        """`name -> (start, stop)` of each tensor in the flat vector."""
        result: dict[str, tuple[int, int]] = {}
        start = 0
        for tensor in self.tensors:
            result[tensor.name] = (start, start + tensor.size)
            start += tensor.size
        return result

    def check_arrays(self, arrays: Mapping[str, ArrayLike], *, what: str) -> None:
        """Refuse a mapping whose keys or shapes differ from the spec (names both)."""
        missing = [n for n in self.names if n not in arrays]
        extra = [n for n in arrays if n not in self.names]
        if missing or extra:
            msg = (
                f"{what} must have exactly the keys {list(self.names)}; "
                f"missing {missing}, unexpected {extra}."
            )
            raise GradientSpecError(msg)
        for tensor in self.tensors:
            shape = tuple(np.shape(arrays[tensor.name]))
            if shape != tensor.shape:
                msg = f"{what}['{tensor.name}'] must have shape {tensor.shape}, got {shape}."
                raise GradientSpecError(msg)

    def flatten(
        self,
        arrays: Mapping[str, ArrayLike],
        *,
        what: str = "parameters",
        dtype: type[np.floating] | np.dtype[np.floating] | None = None,
    ) -> Array:
        """Concatenate the named arrays into one flat vector of length `size`."""
        self.check_arrays(arrays, what=what)
        parts = [
            as_float_array(arrays[t.name], name=f"{what}['{t.name}']", allow_nonfinite=True)
            for t in self.tensors
        ]
        if dtype is None:
            dtype = np.result_type(*parts) if parts else np.dtype(np.float64)
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([p.reshape(-1) for p in parts]).astype(dtype, copy=False)

    def unflatten(
        self, vector: ArrayLike, *, owner: str = "ParamSpec", finite: bool = False
    ) -> dict[str, Array]:
        """Split a flat vector into named arrays (views into it), after checking its length.

        With `finite` (what loading into a model asks), a NaN or Inf is refused with a
        [`NonFiniteError`][layerkit.errors.NonFiniteError] naming the tensor it falls in.
        """
        array = as_float_array(vector, name="vector", allow_nonfinite=True, owner=owner)
        if array.ndim != 1:
            if array.ndim == 2 and 1 in array.shape:
                array = array.reshape(-1)
            else:
                msg = f"{owner}.unflatten: 'vector' must be 1-D, got {describe_array(vector)}."
                raise ShapeError(msg)
        if array.size != self.size:
            msg = (
                f"{owner}.unflatten: 'vector' must have length {self.size} "
                f"(parameters {list(self.names)}), got length {array.size}."
            )
            raise ShapeError(msg)
        result: dict[str, Array] = {}
        for tensor, (start, stop) in zip(self.tensors, self.offsets().values(), strict=True):
            result[tensor.name] = array[start:stop].reshape(tensor.shape)
            problem = nonfinite_summary(result[tensor.name]) if finite else ""
            if problem:
                msg = (
                    f"{owner}.unflatten: 'vector' holds NaN/Inf in {tensor.name} (entries "
                    f"{start}..{stop - 1} of the vector): {tensor.name} has {problem}; "
                    "parameters must be finite."
                )
                raise NonFiniteError(msg)
        return result


def assign_arrays(targets: Mapping[str, Array], values: Mapping[str, Array], *, owner: str) -> None:
    """Copy `values[name]` into each array `targets[name]`: all of them or none.

    Every target is checked first (see `check_writable`; and of the value's shape); the
    values are copied before the first write (so a value that aliases a target is read intact),
    and the targets already written are restored if a write fails, even on KeyboardInterrupt.
    """
    check_writable(targets, owner=owner)
    for name, target in targets.items():
        value = values[name]
        if np.shape(value) != target.shape:
            msg = (
                f"{owner}: {name} must have the model's shape {target.shape}, got "
                f"{np.shape(value)}; nothing was written."
            )
            raise ShapeError(msg)
    copies = {name: np.array(values[name], dtype=target.dtype) for name, target in targets.items()}
    saved = {name: target.copy() for name, target in targets.items()}
    written: list[str] = []
    try:
        for name, target in targets.items():
            written.append(name)
            target[...] = copies[name]
    except BaseException:
        for name in written:
            targets[name][...] = saved[name]
        raise


def check_writable(targets: Mapping[str, object], *, owner: str) -> None:
    """Refuse parameters that cannot be written in place: not a numpy float array, or
    read-only (names the first)."""
    for name, target in targets.items():
        if not isinstance(target, np.ndarray) or target.dtype.kind != "f":
            msg = (
                f"{owner}: the model's {name} is {describe_array(target)}, not a numpy float "
                "array; nothing was written."
            )
            raise ConfigError(msg)
        if not target.flags.writeable:
            msg = f"{owner}: the model's {name} is a read-only array; nothing was written."
            raise ConfigError(msg)
