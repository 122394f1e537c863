"""Verdicts and reports: per entry, per tensor, per check; tables and JSON-ready dicts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import attrs

Verdict = Literal["pass", "fail", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "inconclusive")

REASONS: dict[str, str] = {
    "kink": "inconclusive: the stencil straddles a kink (a layer reported an input on it, or "
    "the slope jumps between steps)",
    "noisy": "inconclusive: the loss is too noisy or quantized to differentiate there",
    "unresolved": "inconclusive: smooth, but no step makes the numeric error bound smaller "
    "than the tolerance (noise too large for the gradient)",
    "non-finite": "inconclusive: the loss is NaN/Inf at the point or at every step tried",
    "no entries": "inconclusive: the tensor has no entries, so nothing was measured",
    "loss ignores entry": "fail: the loss did not move at any step, but the analytic slope "
    "is not 0",
    "backward returned NaN/Inf where the loss is smooth": "fail: the numeric slope is "
    "finite and resolved, the analytic one is not",
}
"""Every reason an entry or tensor can carry, with what it means."""


def combine(verdicts: list[Verdict]) -> Verdict:
    """Fail if any fails; else inconclusive if any is; else pass (an empty list passes)."""
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def _number(value: float) -> float | str:
    """A float for JSON: NaN and infinities become strings (JSON has no literal for them)."""
    return value if math.isfinite(value) else str(value)


@attrs.frozen
class EntryResult:
    """One checked entry of a tensor.

    Attributes:
        index: Its index in the tensor's own shape.
        analytic: The analytic slope.
        numeric: The numeric slope.
        numeric_error: The numeric slope's error bound (truncation plus noise).
        allowed: The largest `|analytic - numeric|` that passes there.
        verdict: `pass`, `fail` or `inconclusive`.
        reason: Why it is not a plain pass or fail (a key of `REASONS`), or None.
        step: The last half-width used (absolute).
        noise: The loss's measured noise.
    """

    index: tuple[int, ...]
    analytic: float
    numeric: float
    numeric_error: float
    allowed: float
    verdict: Verdict
    reason: str | None = None
    step: float = math.nan
    noise: float = math.nan

    @property
    def abs_error(self) -> float:
        """`|analytic - numeric|`."""
        return abs(self.analytic - self.numeric)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "index": list(self.index),
            "analytic": _number(self.analytic),
            "numeric": _number(self.numeric),
            "abs_error": _number(self.abs_error),
            "numeric_error": _number(self.numeric_error),
            "allowed": _number(self.allowed),
            "verdict": self.verdict,
            "reason": self.reason,
            "step": _number(self.step),
            "noise": _number(self.noise),
        }


@attrs.frozen
class TensorResult:
    """The verdict on one named tensor (a parameter, or `x` for an input gradient).

    Attributes:
        name: The tensor's name (`W1`, `b1`, ..., or `x`).
        shape: Its shape.
        verdict: `pass`, `fail` or `inconclusive`.
        checked: Entries checked (0 in fast mode when judged by directions only).
        n_fail: Entries that fail.
        n_inconclusive: Entries that are inconclusive.
        reasons: Reason -> number of entries that carry it.
        max_abs_error: The largest `|analytic - numeric|` over checked entries.
        max_rel_error: The largest relative error over checked entries.
        worst: The entries that most exceed their tolerance, the worst first.
        layer: The model layer holding it, or None.
        note: How it was judged.
    """

    name: str
    shape: tuple[int, ...]
    verdict: Verdict
    checked: int
    n_fail: int
    n_inconclusive: int
    reasons: dict[str, int]
    max_abs_error: float
    max_rel_error: float
    worst: tuple[EntryResult, ...]
    layer: str | None = None
    note: str = ""

    @property
    def size(self) -> int:
        """Number of entries in the tensor."""
        return math.prod(self.shape)

    @property
    def worst_index(self) -> tuple[int, ...] | None:
        """Index (in the tensor's shape) of the entry that most exceeds its tolerance."""
        return self.worst[0].index if self.worst else None

    @property
    def analytic(self) -> float:
        """Analytic slope at [`worst_index`][layerkit.TensorResult.worst_index] (NaN if
        nothing was checked)."""
        return self.worst[0].analytic if self.worst else math.nan

    @property
    def numeric(self) -> float:
        """Numeric slope at [`worst_index`][layerkit.TensorResult.worst_index] (NaN if
        nothing was checked)."""
        return self.worst[0].numeric if self.worst else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "layer": self.layer,
            "verdict": self.verdict,
            "checked": self.checked,
            "size": self.size,
            "n_fail": self.n_fail,
            "n_inconclusive": self.n_inconclusive,
            "reasons": dict(self.reasons),
            "max_abs_error": _number(self.max_abs_error),
            "max_rel_error": _number(self.max_rel_error),
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "analytic": _number(self.analytic),
            "numeric": _number(self.numeric),
            "worst": [entry.to_dict() for entry in self.worst],
            "note": self.note,
        }


@attrs.frozen
class GradCheckReport:
    """The outcome of one gradient check.

    Iterate it for its tensors, or index it by name (`report["W1"]`).

    Attributes:
        verdict: `pass`, `fail` or `inconclusive`.
        tensors: One [`TensorResult`][layerkit.TensorResult] per named tensor.
        mode: `exact`, `sampled` or `fast`.
        difference: The seed notebook's formula (3), `||g - n|| / (||g|| + ||n||)` over the
            checked entries.
        step: The first relative step.
        rtol: The relative tolerance.
        atol: The absolute tolerance.
        evaluations: Loss evaluations.
        loss: The loss at the point.
        subject: What was checked.
        notes: Findings beyond single entries (nondeterminism, nonlinear backward...).
        layer_culprits: The layers failing in isolation, when a per-layer check ran.
        noise: The loss's noise level.
        noise_source: How the noise level was obtained.
    """

    verdict: Verdict
    tensors: tuple[TensorResult, ...]
    mode: str
    difference: float
    step: float
    rtol: float
    atol: float
    evaluations: int
    loss: float
    subject: str = "function"
    notes: tuple[str, ...] = ()
    layer_culprits: tuple[str, ...] = ()
    noise: float = math.nan
    noise_source: str = ""

    def __iter__(self) -> Iterator[TensorResult]:
        return iter(self.tensors)

    def __getitem__(self, name: str) -> TensorResult:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        msg = f"GradCheckReport: no tensor named {name!r}; it has {[t.name for t in self.tensors]}."
        raise KeyError(msg)

    @property
    def passed(self) -> bool:
        """True only for a `pass` verdict."""
        return self.verdict == "pass"

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the tensors that fail."""
        return tuple(t.name for t in self.tensors if t.verdict == "fail")

    @property
    def culprits(self) -> tuple[str, ...]:
        """The layers to blame: those failing in isolation when a per-layer check ran, else
        the layers holding failing tensors, in model order (empty for functions)."""
        if self.layer_culprits:
            return self.layer_culprits
        seen: list[str] = []
        for tensor in self.tensors:
            if tensor.verdict == "fail" and tensor.layer is not None and tensor.layer not in seen:
                seen.append(tensor.layer)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN and infinities as strings)."""
        return {
            "verdict": self.verdict,
            "subject": self.subject,
            "mode": self.mode,
            "difference": _number(self.difference),
            "step": self.step,
            "rtol": self.rtol,
            "atol": self.atol,
            "evaluations": self.evaluations,
            "loss": _number(self.loss),
            "noise": _number(self.noise),
            "noise_source": self.noise_source,
            "culprits": list(self.culprits),
            "notes": list(self.notes),
            "tensors": [tensor.to_dict() for tensor in self.tensors],
        }

    def __str__(self) -> str:
        return format_report(self)


def _cell(value: float) -> str:
    return f"{value:.2e}" if math.isfinite(value) else str(value)


def format_report(report: GradCheckReport, *, worst_entries: int = 3) -> str:
    """A compact aligned table: one row per tensor, then the worst entries of failing ones."""
    header = ("tensor", "shape", "checked", "max abs err", "max rel err", "worst", "verdict")
    rows = [header]
    for t in report.tensors:
        verdict: str = t.verdict
        if t.reasons:
            verdict += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(t.reasons.items())) + ")"
        if t.n_fail:
            verdict += f" [{t.n_fail} failing]"
        rows.append(
            (
                t.name,
                "x".join(map(str, t.shape)) or "scalar",
                f"{t.checked}/{t.size}",
                _cell(t.max_abs_error) if t.checked else "-",
                _cell(t.max_rel_error) if t.checked else "-",
                str(t.worst_index) if t.worst_index is not None else "-",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"gradient check of {report.subject}: {report.verdict.upper()}"
        f"  (mode {report.mode}, {report.evaluations} loss evaluations, "
        f"difference {_cell(report.difference)}, step {report.step:.2e}, rtol {report.rtol:g})"
    ]
    for position, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if position == 0:
            lines.append("  ".join("-" * width for width in widths))
    for t in report.tensors:
        if t.verdict == "pass" or not t.worst:
            continue
        where = f" in {t.layer}" if t.layer else ""
        lines.append(f"{t.name}{where}: worst entries")
        for entry in t.worst[:worst_entries]:
            why = f", {entry.reason}" if entry.reason else ""
            lines.append(
                f"  {t.name}{list(entry.index)}: analytic {entry.analytic:+.10e}  numeric "
                f"{entry.numeric:+.10e}  |diff| {_cell(entry.abs_error)}  allowed "
                f"{_cell(entry.allowed)}  -> {entry.verdict}{why}"
            )
    if report.culprits:
        lines.append("culprit layer(s): " + ", ".join(report.culprits))
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)


@attrs.frozen
class LayerReport:
    """One layer checked in isolation.

    Attributes:
        index: Its position in the model (0-based).
        label: Its label in messages (e.g. `layer 2 (ReLU)`).
        report: Its own check.
    """

    index: int
    label: str
    report: GradCheckReport


@attrs.frozen
class LayersReport:
    """Each layer of a model checked in isolation, at the activations it sees in the model.

    Attributes:
        verdict: The verdicts of the layers combined: `fail` if any fails, else
            `inconclusive` if any is, else `pass`.
        layers: One [`LayerReport`][layerkit.gradcheck.report.LayerReport] per layer.
    """

    verdict: Verdict
    layers: tuple[LayerReport, ...]

    @property
    def first_faulty(self) -> str | None:
        """Label of the first layer whose check fails (None if none does)."""
        for layer in self.layers:
            if layer.report.verdict == "fail":
                return layer.label
        return None

    @property
    def faulty(self) -> tuple[str, ...]:
        """Labels of every layer whose check fails."""
        return tuple(layer.label for layer in self.layers if layer.report.verdict == "fail")

    @property
    def evaluations(self) -> int:
        """Loss evaluations over all layer checks."""
        return sum(layer.report.evaluations for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "verdict": self.verdict,
            "first_faulty": self.first_faulty,
            "layers": [
                {"index": layer.index, "label": layer.label, **layer.report.to_dict()}
                for layer in self.layers
            ],
        }

    def __str__(self) -> str:
        lines = [f"per-layer gradient check: {self.verdict.upper()}"]
        for layer in self.layers:
            lines.append("")
            lines.append(str(layer.report))
        lines.append("")
        first = self.first_faulty
        lines.append(f"first faulty layer: {first}" if first else "no layer fails in isolation")
        return "\n".join(lines)
