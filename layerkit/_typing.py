"""Array aliases shared across layerkit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
"""A floating-point array of any precision (float64 unless a model chose float32)."""

Float64Array = npt.NDArray[np.float64]
"""A float64 array: what the checker always differentiates on."""

IntArray = npt.NDArray[np.intp]
"""An integer index array."""

Int8Array = npt.NDArray[np.int8]
"""Small integer codes (verdicts, stages)."""

BoolArray = npt.NDArray[np.bool_]
"""A boolean mask."""

ArrayLike = npt.ArrayLike
"""Anything numpy can turn into an array (lists, ints, arrays)."""

ParamDict = Mapping[str, Array]
"""Named parameter (or gradient) arrays, in a stable order."""

SeedLike = int | np.random.Generator | None
"""A seed for ``numpy.random.default_rng``, or a ready generator."""
