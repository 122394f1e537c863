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
    """One tensor's result, and the sums of squares `(|g|^2, |n|^2, |g - n|^2)` of its checked
    entries' analytic and numeric slopes (for the report's relative `difference`)."""

    result: TensorResult
    squares: tuple[float, float, float]


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


FIELDS = ("index", "analytic", "numeric", "error", "allowed", "step", "status", "excess", "order")
"""The rows of a tally's candidate table `(len(FIELDS), k)`: one column per kept entry."""
_ROW = {field: row for row, field in enumerate(FIELDS)}


@attrs.define(eq=False)
class Tally:
    """One tensor's probe results, added block by block (`tally_block`): counts, largest
    errors, sums of squares and the `worst` entries so far; only those become
    `EntryResult`s, at the end.

    Worst first: failing, then inconclusive, then passing entries; within, by how far the
    error exceeds what passes; ties in the order the entries were added.
    """

    name: str
    shape: tuple[int, ...]
    layer: str | None
    note: str
    worst: int
    noise: float = 0.0
    checked: int = 0
    counts: IntArray = attrs.Factory(lambda: np.zeros(len(Status), dtype=np.intp))
    max_abs: float = 0.0
    max_rel: float = 0.0
    squares: tuple[float, ...] = (0.0, 0.0, 0.0)
    candidates: Float64Array = attrs.Factory(lambda: np.empty((len(FIELDS), 0)))

    def _keep(self, fresh: Float64Array) -> None:
        """Merge candidate columns `fresh` (worst first) into the kept ones."""
        if not self.candidates.shape[1]:
            self.candidates = fresh
            return
        merged = np.concatenate([self.candidates, fresh], axis=1)
        keep = np.lexsort((merged[_ROW["order"]], -merged[_ROW["excess"]], -_rank(merged)))
        self.candidates = merged[:, keep[: self.worst]]

    def result(self) -> Checked:
        """The tensor's `TensorResult` (with its `worst` entries) and its sums of squares."""
        c = self.candidates
        statuses = [int(v) for v in c[_ROW["status"]]]
        analytic, numeric = c[_ROW["analytic"]].tolist(), c[_ROW["numeric"]].tolist()
        error, allowed, step = (c[_ROW[f]].tolist() for f in ("error", "allowed", "step"))
        indices = c[_ROW["index"]].astype(np.intp)
        entries = tuple(
            EntryResult(
                index=index,
                analytic=analytic[k],
                numeric=numeric[k],
                numeric_error=error[k],
                allowed=allowed[k],
                verdict=VERDICT[statuses[k]],
                reason=entry_reason(statuses[k], analytic[k], numeric[k]),
                step=step[k],
                noise=self.noise,
            )
            for k, index in enumerate(entry_indices(indices, self.shape))
        )
        counts = self.counts.tolist()
        n_fail = counts[_FAIL]
        n_inconclusive = sum(counts[_KINK:])
        reasons = {r: counts[code] for code, r in _REASON_OF.items() if counts[code]}
        verdict: Verdict = "fail" if n_fail else ("inconclusive" if n_inconclusive else "pass")
        if self.checked == 0:  # nothing was measured: no claim either way
            verdict, reasons = "inconclusive", {EMPTY: 1}
        result = TensorResult(
            name=self.name,
            shape=self.shape,
            verdict=verdict,
            checked=self.checked,
            n_fail=n_fail,
            n_inconclusive=n_inconclusive,
            reasons=reasons,
            max_abs_error=self.max_abs,
            max_rel_error=self.max_rel,
            worst=entries,
            layer=self.layer,
            note=self.note,
        )
        return Checked(result, (self.squares[0], self.squares[1], self.squares[2]))


def _rank(table: Float64Array) -> Float64Array:
    """2 for failing, 1 for inconclusive, 0 for passing columns of a candidate table."""
    code = table[_ROW["status"]]
    return np.where(code == _FAIL, 2.0, np.where(code != _PASS, 1.0, 0.0))


def tally_block(
    parts: list[tuple[Tally, IntArray]], analytic: Float64Array, probed: ProbeResult
) -> None:
    """Add a probed block to the tallies: `parts` are `(tally, flat indices)` in the
    block's order, together as long as `analytic` `(n,)` and `probed` `(n,)`. Every
    sum, count and ranking runs once over the whole block, cut by tensor."""
    numeric, status = probed.numeric, probed.status
    lengths = np.array([indices.shape[0] for _, indices in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
    segment = np.repeat(np.arange(len(parts)), lengths)
    abs_error = np.abs(analytic - numeric)
    denominator = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel_error = np.where(denominator > 0, abs_error / denominator, 0.0)
        excess = np.where(probed.allowed > 0, abs_error / probed.allowed, np.inf * abs_error)
        squares = np.add.reduceat(
            np.stack([analytic, numeric, analytic - numeric]) ** 2, starts, axis=1
        )
    n_status = len(Status)
    counts = np.bincount(segment * n_status + status, minlength=len(parts) * n_status)
    table = np.stack(
        [
            np.concatenate([indices for _, indices in parts]).astype(np.float64),
            analytic,
            numeric,
            probed.error,
            probed.allowed,
            probed.step,
            status.astype(np.float64),
            np.where(np.isnan(excess), np.inf, excess),
            np.arange(analytic.shape[0]) - starts[segment],  # position in its tensor's part
        ]
    )
    order = np.lexsort((table[_ROW["order"]], -table[_ROW["excess"]], -_rank(table), segment))
    bounds = np.searchsorted(segment[order], np.arange(len(parts) + 1)).tolist()
    largest = zip(
        np.maximum.reduceat(abs_error, starts).tolist(),
        np.maximum.reduceat(rel_error, starts).tolist(),
        strict=True,
    )
    per_tensor = zip(
        parts, squares.T.tolist(), counts.reshape(len(parts), n_status), largest, strict=True
    )
    for k, ((tally, indices), sums, counted, (max_abs, max_rel)) in enumerate(per_tensor):
        fresh = table[:, order[bounds[k] : min(bounds[k] + tally.worst, bounds[k + 1])]]
        fresh[_ROW["order"]] += tally.checked
        tally.checked += indices.shape[0]
        tally.squares = tuple(a + b for a, b in zip(tally.squares, sums, strict=True))
        tally.counts += counted
        tally.max_abs = _nan_max(tally.max_abs, max_abs)
        tally.max_rel = _nan_max(tally.max_rel, max_rel)
        tally.noise = probed.noise
        tally._keep(fresh)


def _nan_max(a: float, b: float) -> float:
    """The larger of `a` and `b`; NaN if either is NaN (a NaN error is never hidden)."""
    return a + b if a != a or b != b else max(a, b)


EMPTY = "no entries"
"""The reason of a tensor with 0 entries checked: an empty check is not a pass."""


def relative_difference(checked: list[Checked]) -> float:
    """`|g - n| / (|g| + |n|)` over every checked entry of every tensor (the seed's number)."""
    if not checked:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        g2, n2, d2 = (sum(c.squares[k] for c in checked) for k in range(3))
        denominator = float(np.sqrt(g2) + np.sqrt(n2))
        numerator = float(np.sqrt(d2))
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
