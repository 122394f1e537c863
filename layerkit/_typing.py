"""Array aliases shared across layerkit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

Integer = int | np.integer[Any]
"""A Python or numpy integer (booleans are refused where a count is meant)."""

Real = float | np.floating[Any] | np.integer[Any]
"""A Python or numpy real number (`int` is accepted where `float` is)."""

SeedLike = int | np.integer[Any] | np.random.Generator | None
"""A seed for `numpy.random.default_rng` (a non-negative integer), or a ready generator."""
