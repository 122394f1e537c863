"""The checker's vocabulary for probes: evaluations, verdicts, tolerances, noise, results.

A *probe* is a 1-D slice `phi(t) = f(theta + t * direction)` of the loss: one coordinate of a
tensor, or a random direction over all parameters. How a probe is judged is
`layerkit.gradcheck.numeric`'s business; what it produces is defined here.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

import attrs
import numpy as np

from layerkit._typing import Float64Array, Int8Array, IntArray

EPS64 = float(np.finfo(np.float64).eps)
DEFAULT_STEP = EPS64 ** (1.0 / 3.0)
"""Relative step `eps^(1/3)` (about 6.06e-6): balances truncation and round-off for a
central difference."""

Evaluate = Callable[[IntArray, Float64Array], tuple[Float64Array, Float64Array]]
"""`evaluate(probe_ids, offsets) -> (losses, margins)`: the loss with probe `probe_ids[k]`
moved by `offsets[k]`, for each `k`, and how far that move stayed from every reported kink
(`margins[k] > 1`: on the same side of each; `0`: an input sat on a kink; `inf`: no kink
reported)."""


class Status(IntEnum):
    """Verdict of one probe."""

    PASS = 0
    FAIL = 1
    KINK = 2
    NOISY = 3
    NONFINITE = 4
    UNRESOLVED = 5


REASONS: dict[Status, str] = {
    Status.KINK: "kink",
    Status.NOISY: "noisy",
    Status.NONFINITE: "non-finite",
    Status.UNRESOLVED: "unresolved",
}


@attrs.frozen(eq=False)
class Tolerance:
    """How close analytic and numeric slopes must be: `atol + rtol * max(|g|, |n|)`, plus
    `safety` times the numeric error bound; `step` the first relative half-width."""

    rtol: float = 1e-7
    atol: float = 0.0
    safety: float = 3.0
    step: float = DEFAULT_STEP


@attrs.frozen(eq=False)
class Noise:
    """The loss's measured noise: `sigma` at the point, `relative` to `|f0|` (used for
    evaluations where `|f|` is larger), and how it was obtained (`source`)."""

    sigma: float
    relative: float = 0.0
    source: str = "measured"

    def at(self, values: Float64Array) -> Float64Array:
        """Noise level over the evaluated `values` `(p, n)` -> `(n,)`."""
        biggest = np.max(np.abs(np.nan_to_num(values, posinf=0.0, neginf=0.0)), axis=0)
        return np.asarray(np.maximum(self.sigma, self.relative * biggest), dtype=np.float64)


@attrs.frozen(eq=False)
class ProbeResult:
    """Per-probe outcome, arrays of shape `(n,)`.

    Attributes:
        numeric: The best numeric slope `(n,)`.
        error: Its error bound `(n,)`.
        allowed: The largest `|analytic - numeric|` that passes `(n,)`.
        step: The last half-width used, absolute `(n,)`.
        status: A `Status` per probe `(n,)`.
        noise: The loss noise used.
    """

    numeric: Float64Array
    error: Float64Array
    allowed: Float64Array
    step: Float64Array
    status: Int8Array
    noise: float


def gradient_scale(analytic: Float64Array) -> float:
    """A tensor's gradient scale: its largest finite analytic slope in magnitude (0 if none)."""
    finite = np.abs(analytic[np.isfinite(analytic)])
    return float(np.max(finite, initial=0.0))
