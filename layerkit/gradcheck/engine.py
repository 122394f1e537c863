"""Running a check: choose what to probe (exact, sampled, fast), probe it, build the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict, Unpack

import attrs
import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.errors import ConfigError, NonFiniteError
from layerkit.gradcheck.numeric import (
    DEFAULT_STEP,
    REASONS,
    Evaluate,
    ProbeResult,
    Status,
    Tolerance,
    probe,
)
from layerkit.gradcheck.objective import Objective
from layerkit.gradcheck.report import (
    EntryResult,
    GradCheckReport,
    TensorResult,
    Verdict,
    combine,
)

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
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not np.isfinite(float(value)) or float(value) < 0 or float(value) > upper:  # type: ignore[arg-type]
        msg = f"gradient check: '{name}' must be a finite number >= 0 (got {value!r})."
        raise ConfigError(msg)
    if positive and float(value) == 0:  # type: ignore[arg-type]
        msg = f"gradient check: '{name}' must be > 0 (got {value!r})."
        raise ConfigError(msg)
    return float(value)  # type: ignore[arg-type]


@attrs.frozen
class CheckOptions:
    """Options shared by every check (validated at construction).

    **Fields:** ``mode`` ``exact`` (every entry), ``sampled`` (``samples`` seeded entries from
    every tensor) or ``fast`` (``directions`` seeded random directions over all parameters,
    localised per tensor on failure); ``seed`` for every random choice (the global RNG is never
    used); ``rtol``/``atol`` the tolerance ``atol + rtol * max(|g|, |n|)`` added to the numeric
    error estimate times ``safety``; ``step`` the relative step (default ``eps**(1/3)``);
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


def _nan_where_nonfinite(losses: Evaluate) -> Evaluate:
    """``losses``, except that a perturbation whose forward overflows (a layer refuses the
    NaN/Inf activation it is handed) gets a NaN loss, judged non-finite, instead of aborting
    the check; the other perturbations of the batch are evaluated one by one."""

    def evaluate(ids: IntArray, offsets: Float64Array) -> Float64Array:
        try:
            return losses(ids, offsets)
        except NonFiniteError:
            if ids.shape[0] == 1:
                return np.array([np.nan])
            return np.concatenate(
                [evaluate(ids[k : k + 1], offsets[k : k + 1]) for k in range(ids.shape[0])]
            )

    return evaluate


_VERDICT: dict[int, Verdict] = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.KINK: "inconclusive",
    Status.NOISY: "inconclusive",
    Status.NONFINITE: "inconclusive",
}


@attrs.frozen(eq=False)
class _Checked:
    """Probe results of some entries of one tensor (for the report and ``difference``)."""

    result: TensorResult
    analytic: Float64Array
    numeric: Float64Array


_PASS, _FAIL, _KINK = int(Status.PASS), int(Status.FAIL), int(Status.KINK)
_REASON_OF: dict[int, str] = {int(status): reason for status, reason in REASONS.items()}
"""Reasons by plain status code (enum lookups are slow in per-entry loops)."""


def _entry_reason(status: int, numeric: float) -> str | None:
    """Why an entry is not a pass: kink/noisy/non-finite, or, for a failure whose numeric
    slope is exactly 0 (the loss did not move at any step), that the loss ignores it."""
    if status == _FAIL and numeric == 0.0:
        return "loss ignores entry"
    return _REASON_OF.get(status)


def _entry_indices(indices: IntArray, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Flat ``indices`` as index tuples of ``shape`` (``()`` for a 0-d tensor)."""
    if not shape:
        return [() for _ in range(indices.shape[0])]
    coords = np.unravel_index(indices, shape)
    return [tuple(int(c[j]) for c in coords) for j in range(indices.shape[0])]


def _tensor_result(
    name: str,
    shape: tuple[int, ...],
    indices: IntArray,
    analytic: Float64Array,
    probed: ProbeResult,
    *,
    layer: str | None,
    worst: int,
    note: str,
) -> _Checked:
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
            verdict=_VERDICT[int(status[k])],
            reason=_entry_reason(int(status[k]), float(probed.numeric[k])),
        )
        for k, index in zip(order, _entry_indices(indices[order], shape), strict=True)
    )
    counts = np.bincount(status.astype(np.intp), minlength=len(Status))
    n_fail = int(counts[_FAIL])
    n_inconclusive = int(counts[_KINK:].sum())
    reasons = {reason: int(counts[code]) for code, reason in _REASON_OF.items() if counts[code]}
    verdict: Verdict = "fail" if n_fail else ("inconclusive" if n_inconclusive else "pass")
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
    return _Checked(result, analytic, probed.numeric)


def _check_entries(
    objective: Objective,
    name: str,
    indices: IntArray,
    analytic: Float64Array,
    f0: float,
    options: CheckOptions,
    layer: str | None,
    note: str,
) -> _Checked:
    values = objective.values[name]
    base = values.reshape(-1)[indices]
    slopes = analytic.reshape(-1)[indices]

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> Float64Array:
        return objective.coordinate_losses(name, indices[ids], offsets)

    probed = _probe_entries(objective, evaluate, slopes, base, f0, options)
    return _tensor_result(
        name, values.shape, indices, slopes, probed, layer=layer, worst=options.worst, note=note
    )


def _probe_entries(
    objective: Objective,
    evaluate: Evaluate,
    slopes: Float64Array,
    base: Float64Array,
    f0: float,
    options: CheckOptions,
) -> ProbeResult:
    """Probe entries at values ``base`` with analytic ``slopes``; steps scale with ``|base|``."""
    return probe(
        evaluate,
        slopes,
        base,
        np.maximum(1.0, np.abs(base)),
        f0,
        options.tolerance,
        loss_eps=objective.loss_eps,
        grad_eps=objective.grad_eps,
    )


def _probe_slice(probed: ProbeResult, lo: int, hi: int) -> ProbeResult:
    """The probes ``lo:hi`` of ``probed`` (``evaluations``: those they cost)."""
    stage = probed.stage[lo:hi]
    evaluations = 2 * (hi - lo) + int(
        2 * np.count_nonzero(stage >= 2)
        + 4 * np.count_nonzero(stage >= 3)
        + 2 * np.count_nonzero(stage == 4)
    )
    return ProbeResult(
        numeric=probed.numeric[lo:hi],
        error=probed.error[lo:hi],
        allowed=probed.allowed[lo:hi],
        status=probed.status[lo:hi],
        stage=stage,
        evaluations=evaluations,
    )


def _check_all_entries(
    objective: Objective,
    chosen: list[tuple[str, IntArray, str]],
    analytic: Mapping[str, Float64Array],
    f0: float,
    options: CheckOptions,
    layers: Mapping[str, str],
) -> list[_Checked]:
    """Probe the ``(name, indices, note)`` entries of every tensor together, in one probe.

    Each probe is judged on its own, so the verdicts are those of one probe per tensor; one
    probe lets the objective evaluate entries of several tensors in one stacked forward.
    """
    position = {name: k for k, name in enumerate(objective.names)}
    tensor_ids = np.concatenate(
        [np.full(indices.shape[0], position[name], dtype=np.intp) for name, indices, _ in chosen]
    )
    flat = np.concatenate([indices for _, indices, _ in chosen]).astype(np.intp)
    base = np.concatenate(
        [objective.values[name].reshape(-1)[indices] for name, indices, _ in chosen]
    )
    slopes = np.concatenate([analytic[name].reshape(-1)[indices] for name, indices, _ in chosen])

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> Float64Array:
        return objective.entry_losses(tensor_ids[ids], flat[ids], offsets)

    probed = _probe_entries(objective, evaluate, slopes, base, f0, options)
    checked = []
    lo = 0
    for name, indices, note in chosen:
        hi = lo + indices.shape[0]
        checked.append(
            _tensor_result(
                name,
                objective.values[name].shape,
                indices,
                slopes[lo:hi],
                _probe_slice(probed, lo, hi),
                layer=layers.get(name),
                worst=options.worst,
                note=note,
            )
        )
        lo = hi
    return checked


def _sample(size: int, count: int, rng: np.random.Generator) -> IntArray:
    if size <= count:
        return np.arange(size)
    return np.sort(rng.choice(size, size=count, replace=False)).astype(np.intp)


def _difference(checked: list[_Checked]) -> float:
    if not checked:
        return 0.0
    analytic = np.concatenate([c.analytic for c in checked])
    numeric = np.concatenate([c.numeric for c in checked])
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    numerator = float(np.linalg.norm(analytic - numeric))
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else float("nan")
    return numerator / denominator


_SIGNS = np.array([-1.0, 1.0])


def _directions_probe(
    objective: Objective,
    names: tuple[str, ...],
    analytic: Mapping[str, Float64Array],
    f0: float,
    options: CheckOptions,
    rng: np.random.Generator,
) -> tuple[ProbeResult, Float64Array]:
    """Probe ``options.directions`` random directions over the tensors ``names``."""
    directions: list[dict[str, Float64Array]] = []
    slopes = np.empty(options.directions)
    scales = {name: np.maximum(np.abs(objective.values[name]), 1.0) for name in names}
    for k in range(options.directions):
        direction: dict[str, Float64Array] = {}
        for name in objective.names:
            values = objective.values[name]
            if name in names:
                # rng.choice(SIGNS, size) draws exactly these integers; indexing directly
                # skips its overhead (same stream, same signs).
                signs = _SIGNS[rng.integers(0, 2, size=values.shape)]
                direction[name] = np.multiply(signs, scales[name], out=signs)
            else:
                direction[name] = np.zeros_like(values)
        directions.append(direction)
        slopes[k] = sum(float(np.sum(analytic[n] * direction[n])) for n in names)

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> Float64Array:
        return np.array(
            [
                objective.direction_losses(directions[int(i)], np.array([t]))[0]
                for i, t in zip(ids, offsets, strict=True)
            ]
        )

    zeros = np.zeros(options.directions)
    probed = probe(
        evaluate,
        slopes,
        zeros,
        np.ones(options.directions),
        f0,
        options.tolerance,
        loss_eps=objective.loss_eps,
        grad_eps=objective.grad_eps,
    )
    return probed, slopes


def _joint_result(
    name: str, shape: tuple[int, ...], probed: ProbeResult, layer: str | None, note: str
) -> TensorResult:
    """A tensor judged only through directions: no entries, the directions' verdict."""
    statuses = [int(s) for s in probed.status]
    verdicts: list[Verdict] = [_VERDICT[s] for s in statuses]
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


def run_check(
    objective: Objective,
    options: CheckOptions,
    *,
    subject: str,
    layer_of: Mapping[str, str] | None = None,
) -> GradCheckReport:
    """Check every tensor of ``objective`` as ``options`` say; the report names ``subject``."""
    layers = dict(layer_of or {})
    f0 = objective.base_loss()
    analytic = objective.analytic()
    rng = np.random.default_rng(options.seed)
    checked: list[_Checked] = []
    results: list[TensorResult] = []
    notes: list[str] = []
    if options.mode in ("exact", "sampled"):
        chosen: list[tuple[str, IntArray, str]] = []
        for name in objective.names:
            size = objective.values[name].size
            if options.mode == "exact":
                indices, note = np.arange(size), "every entry"
            else:
                indices = _sample(size, options.samples, rng)
                note = f"{indices.shape[0]} seeded entries"
            chosen.append((name, indices, note))
        if objective.merges_tensors:
            checked = _check_all_entries(objective, chosen, analytic, f0, options, layers)
        else:
            checked = [
                _check_entries(
                    objective, name, indices, analytic[name], f0, options, layers.get(name), note
                )
                for name, indices, note in chosen
            ]
        results = [entry.result for entry in checked]
    else:
        joint, _ = _directions_probe(objective, objective.names, analytic, f0, options, rng)
        k = options.directions
        if not np.any(joint.status == Status.FAIL):
            note = f"judged jointly by {k} random direction(s)"
            results = [
                _joint_result(n, objective.values[n].shape, joint, layers.get(n), note)
                for n in objective.names
            ]
        else:
            notes.append(
                f"{int(np.count_nonzero(joint.status == Status.FAIL))} of {k} random "
                "direction(s) over all parameters fail; localised per tensor"
            )
            for name in objective.names:
                alone, _ = _directions_probe(objective, (name,), analytic, f0, options, rng)
                if np.any(alone.status == Status.FAIL):
                    indices = _sample(objective.values[name].size, options.samples, rng)
                    note = f"its directions fail; {indices.shape[0]} seeded entries checked"
                    entry = _check_entries(
                        objective,
                        name,
                        indices,
                        analytic[name],
                        f0,
                        options,
                        layers.get(name),
                        note,
                    )
                    if entry.result.verdict != "fail":
                        entry = attrs.evolve(
                            entry, result=attrs.evolve(entry.result, verdict="fail")
                        )
                    checked.append(entry)
                    results.append(entry.result)
                else:
                    note = f"judged by {k} random direction(s) within this tensor"
                    results.append(
                        _joint_result(
                            name, objective.values[name].shape, alone, layers.get(name), note
                        )
                    )
    verdict = combine([r.verdict for r in results])
    if options.mode == "fast" and not checked:
        difference = 0.0 if verdict == "pass" else float("nan")
    else:
        difference = _difference(checked)
    if not np.isfinite(f0):
        notes.append(f"the loss itself is {f0!r} at the point")
    return GradCheckReport(
        verdict=verdict,
        tensors=tuple(results),
        mode=options.mode,
        difference=difference,
        step=options.step,
        rtol=options.rtol,
        atol=options.atol,
        evaluations=objective.evaluations,
        loss=f0,
        subject=subject,
        notes=tuple(notes),
    )
