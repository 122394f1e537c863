"""From probe results to the report: per-tensor results, worst entries, the difference."""

from __future__ import annotations

import attrs
import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.gradcheck.options import CheckOptions
from layerkit.gradcheck.probes import REASONS, Noise, ProbeResult, Status
from layerkit.gradcheck.report import EntryResult, TensorResult, Verdict, combine

VERDICT: dict[int, Verdict] = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.KINK: "inconclusive",
    Status.NOISY: "inconclusive",
    Status.NONFINITE: "inconclusive",
    Status.UNRESOLVED: "inconclusive",
}


@attrs.frozen(eq=False)
class Checked:
    """Probe results of some entries of one tensor (for the report and `difference`)."""

    result: TensorResult
    analytic: Float64Array
    numeric: Float64Array


_PASS, _FAIL, _KINK = int(Status.PASS), int(Status.FAIL), int(Status.KINK)
_REASON_OF: dict[int, str] = {int(status): reason for status, reason in REASONS.items()}
"""Reasons by plain status code (enum lookups are slow in per-entry loops)."""


BAD_BACKWARD = "backward returned NaN/Inf where the loss is smooth"
"""The reason of a failure whose analytic slope is NaN/Inf while the numeric one is resolved."""


def entry_reason(status: int, analytic: float, numeric: float) -> str | None:
    """Why an entry is not a pass: kink/noisy/non-finite/unresolved; for a failure, a NaN/Inf
    analytic slope, or a numeric slope of exactly 0 (the loss did not move at any step)."""
    if status == _FAIL and not np.isfinite(analytic):
        return BAD_BACKWARD
    if status == _FAIL and numeric == 0.0:
        return "loss ignores entry"
    return _REASON_OF.get(status)


def entry_indices(indices: IntArray, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Flat `indices` as index tuples of `shape` (`()` for a 0-d tensor)."""
    if not shape:
        return [() for _ in range(indices.shape[0])]
    coords = np.unravel_index(indices, shape)
    return [tuple(int(c[j]) for c in coords) for j in range(indices.shape[0])]


def tensor_result(
    name: str,
    shape: tuple[int, ...],
    indices: IntArray,
    analytic: Float64Array,
    probed: ProbeResult,
    *,
    layer: str | None,
    worst: int,
    note: str,
) -> Checked:
    abs_error = np.abs(analytic - probed.numeric)
    denominator = np.maximum(np.abs(analytic), np.abs(probed.numeric))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_error = np.where(denominator > 0, abs_error / denominator, 0.0)
        excess = np.where(probed.allowed > 0, abs_error / probed.allowed, np.inf * abs_error)
    excess = np.where(np.isnan(excess), np.inf, excess)
    # Worst first: failing, then inconclusive, then passing entries; within, by excess.
    status = probed.status
    rank = np.where(status == _FAIL, 2.0, np.where(status != _PASS, 1.0, 0.0))
    order = np.lexsort((-excess, -rank))[:worst]
    entries = tuple(
        EntryResult(
            index=index,
            analytic=float(analytic[k]),
            numeric=float(probed.numeric[k]),
            numeric_error=float(probed.error[k]),
            allowed=float(probed.allowed[k]),
            verdict=VERDICT[int(status[k])],
            reason=entry_reason(int(status[k]), float(analytic[k]), float(probed.numeric[k])),
            step=float(probed.step[k]),
            noise=probed.noise,
        )
        for k, index in zip(order, entry_indices(indices[order], shape), strict=True)
    )
    counts = np.bincount(status.astype(np.intp), minlength=len(Status))
    n_fail = int(counts[_FAIL])
    n_inconclusive = int(counts[_KINK:].sum())
    reasons = {reason: int(counts[code]) for code, reason in _REASON_OF.items() if counts[code]}
    verdict: Verdict = "fail" if n_fail else ("inconclusive" if n_inconclusive else "pass")
    if indices.shape[0] == 0:  # nothing was measured: no claim either way
        verdict, reasons = "inconclusive", {EMPTY: 1}
    result = TensorResult(
        name=name,
        shape=shape,
        verdict=verdict,
        checked=int(indices.shape[0]),
        n_fail=n_fail,
        n_inconclusive=n_inconclusive,
        reasons=reasons,
        max_abs_error=float(np.max(abs_error)) if abs_error.size else 0.0,
        max_rel_error=float(np.max(rel_error)) if rel_error.size else 0.0,
        worst=entries,
        layer=layer,
        note=note,
    )
    return Checked(result, analytic, probed.numeric)


EMPTY = "no entries"
"""The reason of a tensor with 0 entries checked: an empty check is not a pass."""


def relative_difference(checked: list[Checked]) -> float:
    if not checked:
        return 0.0
    analytic = np.concatenate([c.analytic for c in checked])
    numeric = np.concatenate([c.numeric for c in checked])
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    numerator = float(np.linalg.norm(analytic - numeric))
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else float("nan")
    return numerator / denominator


def joint_result(
    name: str, shape: tuple[int, ...], probed: ProbeResult, layer: str | None, note: str
) -> TensorResult:
    """A tensor judged only through directions: no entries, the directions' verdict."""
    statuses = [int(s) for s in probed.status]
    verdicts: list[Verdict] = [VERDICT[s] for s in statuses]
    reasons: dict[str, int] = {}
    for s in statuses:
        if Status(s) in REASONS:
            reasons[REASONS[Status(s)]] = reasons.get(REASONS[Status(s)], 0) + 1
    return TensorResult(
        name=name,
        shape=shape,
        verdict=combine(verdicts),
        checked=0,
        n_fail=0,
        n_inconclusive=0,
        reasons=reasons,
        max_abs_error=float("nan"),
        max_rel_error=float("nan"),
        worst=(),
        layer=layer,
        note=note,
    )


def unresolved_note(checked: list[Checked], noise: Noise, options: CheckOptions) -> str | None:
    """What the numbers were, and what to do, when some entries could not be resolved."""
    count = sum(c.result.reasons.get("unresolved", 0) for c in checked)
    if not count:
        return None
    reached = [
        options.safety * e.numeric_error / max(abs(e.analytic), abs(e.numeric), 1e-300)
        for c in checked
        for e in c.result.worst
        if e.reason == "unresolved"
    ]
    best = (
        f"; the best error bound reached among the reported entries is {min(reached):.1e} of "
        "the gradient"
        if reached
        else ""
    )
    return (
        f"{count} entr{'y' if count == 1 else 'ies'} unresolved: the loss's noise "
        f"({noise.sigma:.2e}, {noise.source}) is too large for the gradient there at any step "
        f"(rtol {options.rtol:g}{best}). Return the loss in float64, drop constant offsets "
        "from it, scale or centre the inputs, or pass a larger rtol/atol."
    )
