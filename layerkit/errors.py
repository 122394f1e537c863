"""Exception types users catch.

Every error layerkit raises for bad input is a [`LayerkitError`][layerkit.errors.LayerkitError], and also a
`ValueError` or `TypeError` so that generic handlers keep working.
Messages name the layer or argument, what was expected and what came.
"""

from __future__ import annotations


class LayerkitError(Exception):
    """Base class of every error layerkit raises on purpose."""


class ShapeError(LayerkitError, ValueError):
    """An array has the wrong rank, width or length."""


class DTypeError(LayerkitError, TypeError):
    """An array has a dtype layerkit cannot use (object, complex, string...)."""


class NonFiniteError(LayerkitError, ValueError):
    """An input holds NaN or Inf where finite numbers are required."""


class TargetError(LayerkitError, ValueError):
    """Targets (labels), or probabilities given to a loss, are outside the range it accepts."""


class ConfigError(LayerkitError, ValueError):
    """An option or argument is out of range or unknown."""


class CacheError(LayerkitError, ValueError):
    """A backward was given a cache that does not belong to this layer's forward."""


class GradientSpecError(LayerkitError, ValueError):
    """A user's gradient mapping does not match the parameters (keys, shapes)."""


class LossValueError(LayerkitError, TypeError):
    """A user's loss function returned something that is not a real scalar."""


class UserCodeError(LayerkitError, ValueError):
    """A function the user handed to a check (`loss_fn`, `grad_fn`) raised; the check was
    aborted. The original exception is the `__cause__`."""


class ParamFileError(LayerkitError, ValueError):
    """A parameter file is not layerkit's, or was saved from another architecture."""


class NondeterministicError(LayerkitError, ValueError):
    """The loss gave two different values at the same point: it cannot be differentiated."""


def describe_array(value: object) -> str:
    """A short description of what came: its type, and shape and dtype for arrays."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and not isinstance(value, type):
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(value).__name__} {value!r}"[:120]
