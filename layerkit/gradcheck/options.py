"""The options every check takes, validated once, and the checker's own random streams."""

from __future__ import annotations

from typing import Literal, TypedDict, Unpack

import attrs
import numpy as np

from layerkit.errors import ConfigError
from layerkit.gradcheck.numeric import DEFAULT_STEP, Tolerance

Mode = Literal["exact", "sampled", "fast"]
MODES: tuple[str, ...] = ("exact", "sampled", "fast")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        msg = f"gradient check: '{name}' must be a positive integer (got {value!r})."
        raise ConfigError(msg)
    return int(value)


def _nonnegative(
    value: object, name: str, *, positive: bool = False, upper: float = np.inf
) -> float:
    """``value`` as a float in ``[0, upper]`` (``(0, upper]`` if ``positive``); the error names
    the real range."""
    low = "(0" if positive else "[0"
    high = f"{upper:g}]" if np.isfinite(upper) else "inf)"
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    number = float(value) if ok else float("nan")  # type: ignore[arg-type]
    inside = np.isfinite(number) and number <= upper and (number > 0 if positive else number >= 0)
    if not inside:
        msg = f"gradient check: '{name}' must be a finite number in {low}, {high} (got {value!r})."
        raise ConfigError(msg)
    return number


@attrs.frozen
class CheckOptions:
    """Options shared by every check (validated at construction).

    **Fields:** ``mode`` ``exact`` (every entry), ``sampled`` (``samples`` seeded entries from
    every tensor) or ``fast`` (``directions`` directions over all parameters, the first
    balanced per tensor, the others seeded random, localised per tensor on failure); ``seed``
    for every random choice (salted; the global RNG is never used); ``rtol``/``atol`` the
    tolerance ``atol + rtol * max(|g|, |n|)``, which the numeric error bound times ``safety``
    must fit in for a pass; ``step`` the first relative step (default ``eps**(1/3)``);
    ``worst`` how many worst entries each tensor reports.
    """

    mode: str = "exact"
    samples: int = 10
    directions: int = 2
    seed: int = 0
    rtol: float = 1e-7
    atol: float = 0.0
    step: float = DEFAULT_STEP
    safety: float = 3.0
    worst: int = 5

    def __attrs_post_init__(self) -> None:
        if self.mode not in MODES:
            msg = f"gradient check: 'mode' must be one of {list(MODES)} (got {self.mode!r})."
            raise ConfigError(msg)
        _positive_int(self.samples, "samples")
        _positive_int(self.directions, "directions")
        _positive_int(self.worst, "worst")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int | np.integer)
            or self.seed < 0
        ):
            msg = f"gradient check: 'seed' must be a non-negative integer (got {self.seed!r})."
            raise ConfigError(msg)
        _nonnegative(self.rtol, "rtol", upper=1.0)
        _nonnegative(self.atol, "atol")
        _nonnegative(self.step, "step", positive=True, upper=0.1)
        _nonnegative(self.safety, "safety", positive=True)

    @property
    def tolerance(self) -> Tolerance:
        """The numeric tolerance these options describe."""
        return Tolerance(rtol=self.rtol, atol=self.atol, safety=self.safety, step=self.step)


class CheckKwargs(TypedDict, total=False):
    """The keyword options every check takes (see :class:`CheckOptions`)."""

    mode: str
    samples: int
    directions: int
    seed: int
    rtol: float
    atol: float
    step: float | None
    safety: float
    worst: int


def make_options(**options: Unpack[CheckKwargs]) -> CheckOptions:
    """:class:`CheckOptions` from a check's keyword options (``step=None``: the default);
    an unknown option raises :class:`ConfigError` listing the known ones."""
    known = CheckKwargs.__annotations__
    unknown = [name for name in options if name not in known]
    if unknown:
        msg = f"gradient check: unknown option(s) {unknown}; the options are {list(known)}."
        raise ConfigError(msg)
    values = dict(options)
    if values.get("step") is None:
        values.pop("step", None)
    return CheckOptions(**values)  # type: ignore[arg-type]


SALT = 0x6C6B_6772_6164
"""Mixed into every seed the checker draws from (projections, directions, samples), so that
``seed=0`` never reproduces data the user drew from ``default_rng(0)``."""


def checker_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """The checker's own random ``stream`` for ``seed``, salted away from the user's."""
    return np.random.default_rng([SALT, seed, stream])
