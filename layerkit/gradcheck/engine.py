"""Running a check: choose what to probe (exact, sampled, fast), probe it, build the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, TypedDict, Unpack

import attrs
import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.errors import ConfigError, NonFiniteError
from layerkit.gradcheck import noise as loss_noise
from layerkit.gradcheck.numeric import (
    DEFAULT_STEP,
    REASONS,
    Evaluate,
    Noise,
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
    every tensor) or ``fast`` (``directions`` directions over all parameters, the first
    balanced per tensor, the others seeded random, localised per tensor on failure); ``seed`` for every random choice (the global RNG is never
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


def _nan_where_nonfinite(losses: Evaluate) -> Evaluate:
    """``losses``, except that a perturbation whose forward overflows (a layer refuses the
    NaN/Inf activation it is handed) gets a NaN loss, judged non-finite, instead of aborting
    the check; the other perturbations of the batch are evaluated one by one."""

    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        try:
            return losses(ids, offsets)
        except NonFiniteError:
            if ids.shape[0] == 1:
                return np.array([np.nan]), np.array([np.inf])
            parts = [evaluate(ids[k : k + 1], offsets[k : k + 1]) for k in range(ids.shape[0])]
            return (
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
            )

    return evaluate


_VERDICT: dict[int, Verdict] = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.KINK: "inconclusive",
    Status.NOISY: "inconclusive",
    Status.NONFINITE: "inconclusive",
    Status.UNRESOLVED: "inconclusive",
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


BAD_BACKWARD = "backward returned NaN/Inf where the loss is smooth"
"""The reason of a failure whose analytic slope is NaN/Inf while the numeric one is resolved."""


def _entry_reason(status: int, analytic: float, numeric: float) -> str | None:
    """Why an entry is not a pass: kink/noisy/non-finite/unresolved; for a failure, a NaN/Inf
    analytic slope, or a numeric slope of exactly 0 (the loss did not move at any step)."""
    if status == _FAIL and not np.isfinite(analytic):
        return BAD_BACKWARD
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
            reason=_entry_reason(int(status[k]), float(analytic[k]), float(probed.numeric[k])),
            step=float(probed.step[k]),
            noise=probed.noise,
        )
        for k, index in zip(order, _entry_indices(indices[order], shape), strict=True)
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
    return _Checked(result, analytic, probed.numeric)


EMPTY = "no entries"
"""The reason of a tensor with 0 entries checked: an empty check is not a pass."""


def _check_entries(
    objective: Objective,
    name: str,
    indices: IntArray,
    analytic: Float64Array,
    f0: float,
    noise: Noise,
    options: CheckOptions,
    layer: str | None,
    note: str,
) -> _Checked:
    values = objective.values[name]
    base = values.reshape(-1)[indices]
    slopes = analytic.reshape(-1)[indices]

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return objective.coordinate_losses(name, indices[ids], offsets)

    gscale = np.full(slopes.shape[0], gradient_scale(analytic))
    probed = _probe_entries(objective, evaluate, slopes, base, gscale, f0, noise, options)
    return _tensor_result(
        name, values.shape, indices, slopes, probed, layer=layer, worst=options.worst, note=note
    )


def gradient_scale(analytic: Float64Array) -> float:
    """A tensor's gradient scale: its largest finite analytic slope in magnitude (0 if none)."""
    finite = np.abs(analytic[np.isfinite(analytic)])
    return float(np.max(finite, initial=0.0))


def _probe_entries(
    objective: Objective,
    evaluate: Evaluate,
    slopes: Float64Array,
    base: Float64Array,
    gscale: Float64Array,
    f0: float,
    noise: Noise,
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
        noise,
        gradient_scale=gscale,
        grad_eps=objective.grad_eps,
    )


def _check_all_entries(
    objective: Objective,
    chosen: list[tuple[str, IntArray, str]],
    analytic: Mapping[str, Float64Array],
    f0: float,
    noise: Noise,
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
    gscale = np.concatenate(
        [np.full(indices.shape[0], gradient_scale(analytic[name])) for name, indices, _ in chosen]
    )

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return objective.entry_losses(tensor_ids[ids], flat[ids], offsets)

    probed = _probe_entries(objective, evaluate, slopes, base, gscale, f0, noise, options)
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
                probed.subset(lo, hi),
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


def _random_direction(
    objective: Objective, names: tuple[str, ...], rng: np.random.Generator
) -> dict[str, Float64Array]:
    """Random signs times ``max(1, |theta|)`` over the tensors ``names``, zero elsewhere."""
    direction: dict[str, Float64Array] = {}
    for name in objective.names:
        values = objective.values[name]
        if name in names:
            signs = np.asarray(_SIGNS[rng.integers(0, 2, size=values.shape)])
            direction[name] = np.multiply(signs, np.maximum(np.abs(values), 1.0), out=signs)
        else:
            direction[name] = np.zeros_like(values)
    return direction


def _balanced_direction(
    objective: Objective, names: tuple[str, ...], analytic: Mapping[str, Float64Array]
) -> dict[str, Float64Array]:
    """``sign(g_i) / sum_T |g|`` on each tensor ``T`` of ``names``: every tensor adds exactly
    1 to the analytic slope, with no cancellation, so a relative error ``e`` in any one
    tensor's gradient moves the slope by ``e`` out of ``len(names)``, however small or large
    that tensor is (with random signs a big tensor would drown a small one's bug)."""
    direction: dict[str, Float64Array] = {}
    for name in objective.names:
        g = np.nan_to_num(analytic[name], nan=0.0, posinf=0.0, neginf=0.0)
        total = float(np.sum(np.abs(g)))
        if name in names and total > 0 and np.isfinite(total):
            direction[name] = np.sign(g) / total
        else:
            direction[name] = np.zeros_like(objective.values[name])
    return direction


def _slope_along(
    analytic: Mapping[str, Float64Array], direction: Mapping[str, Float64Array]
) -> float:
    """The analytic directional derivative ``sum(g * d)``."""
    return sum(float(np.sum(analytic[n] * direction[n])) for n in direction if np.any(direction[n]))


MIN_SPACING = 1e-10
"""Smallest relative spacing of a noise line or first directional step."""


def _spacing(slope: float, sigma: float, options: CheckOptions) -> float:
    """A first step along a direction of analytic slope ``slope``: the loss must move by many
    times its noise ``sigma`` for the slope to be resolved at ``rtol``, and no more, so that
    the step stays small (inside kinks, away from curvature)."""
    resolution = options.rtol * abs(slope) + options.atol
    if not resolution > 0 or not np.isfinite(resolution):
        return options.step
    wanted = 4 * options.safety * sigma / resolution
    if not np.isfinite(wanted) or wanted <= 0:
        return options.step
    return float(np.clip(wanted, MIN_SPACING, options.step))


def measure_noise(
    objective: Objective,
    along: Callable[[Float64Array], tuple[Float64Array, Float64Array]],
    f0: float,
    spacing: float,
    *,
    points: int,
) -> tuple[Noise, float]:
    """The loss's noise from ``along(offsets) -> (losses, margins)`` on one line, first at
    ``spacing``; and the spacing finally used."""
    floor = objective.loss_eps * abs(f0)
    used = [spacing]

    def traced(offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        used.append(float(np.min(np.abs(offsets))))
        return along(offsets)

    sigma, how = loss_noise.measure(traced, f0, spacing, floor, points=points)
    relative = sigma / abs(f0) if f0 != 0 and np.isfinite(f0) else 0.0
    return Noise(sigma=sigma, relative=relative, source=how), used[-1]


def _directions_evaluate(
    objective: Objective, directions: list[dict[str, Float64Array]]
) -> Evaluate:
    """Losses along ``directions``, each ``(direction, offset)`` evaluated once (memoised:
    the noise line and the probe share their points)."""
    memo: dict[tuple[int, float], tuple[float, float]] = {}

    @_nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        keys = [(int(i), float(t)) for i, t in zip(ids, offsets, strict=True)]
        for key in dict.fromkeys(k for k in keys if k not in memo):
            loss, margin = objective.direction_losses(directions[key[0]], np.array([key[1]]))
            memo[key] = (float(loss[0]), float(margin[0]))
        return (
            np.array([memo[k][0] for k in keys]),
            np.array([memo[k][1] for k in keys]),
        )

    return evaluate


def _directions_probe(
    objective: Objective,
    names: tuple[str, ...],
    analytic: Mapping[str, Float64Array],
    f0: float,
    noise: Noise | None,
    options: CheckOptions,
    rng: np.random.Generator,
) -> tuple[ProbeResult, Noise]:
    """Probe ``options.directions`` directions over the tensors ``names``: the first
    balanced (see :func:`_balanced_direction`), the others random; without a ``noise``,
    measure it first along the first direction (whose points the probe reuses)."""
    directions = [_balanced_direction(objective, names, analytic)] + [
        _random_direction(objective, names, rng) for _ in range(options.directions - 1)
    ]
    slopes = np.array([_slope_along(analytic, d) for d in directions])
    evaluate = _directions_evaluate(objective, directions)
    if noise is None and not np.isfinite(f0):
        noise = Noise(sigma=float("nan"), source="not measured: the loss is not finite")
    spacing0 = None
    if noise is None:  # measured on direction 0's own stencil (+-w, +-2w): no extra cost
        floor = objective.loss_eps * abs(f0)
        noise, spacing0 = measure_noise(
            objective,
            lambda offsets: evaluate(np.zeros(offsets.shape[0], dtype=np.intp), offsets),
            f0,
            _spacing(slopes[0], floor, options),
            points=2,
        )
    first = np.array([_spacing(slope, noise.sigma, options) for slope in slopes])
    if spacing0 is not None:
        first[0] = spacing0
    probed = probe(
        evaluate,
        slopes,
        np.zeros(options.directions),
        np.ones(options.directions),
        f0,
        options.tolerance,
        noise,
        first=first,
        grad_eps=objective.grad_eps,
    )
    return probed, noise


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


def _noise_of(
    objective: Objective,
    analytic: Mapping[str, Float64Array],
    f0: float,
    options: CheckOptions,
    rng: np.random.Generator,
) -> Noise:
    """The loss's noise, measured on one random line at the probes' own relative step (noise
    from a quantized term shows only at the scale where steps are taken): through the inputs
    where the objective can run the points as one stacked forward, else through every tensor
    (a tensor whose slopes would move the loss faster than ``|f0|`` per unit step is scaled
    down, so that no single tensor's curvature drowns the noise)."""
    if not np.isfinite(f0):
        return Noise(sigma=float("nan"), source="not measured: the loss is not finite")
    line = objective.input_line(rng)
    if line is not None:
        evaluate = _nan_where_nonfinite(lambda _, offsets: line(offsets))
    else:
        direction = _random_direction(objective, objective.names, rng)
        for name, part in direction.items():  # no tensor may move the loss much faster
            speed = gradient_scale(analytic[name]) * float(np.max(np.abs(part), initial=0.0))
            if speed > abs(f0) > 0:
                part *= abs(f0) / speed
        evaluate = _directions_evaluate(objective, [direction])

    def along(offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return evaluate(np.zeros(offsets.shape[0], dtype=np.intp), offsets)

    noise, _ = measure_noise(objective, along, f0, options.step, points=3)
    return noise


def _unresolved_note(checked: list[_Checked], noise: Noise, options: CheckOptions) -> str | None:
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
        f"; the best error bound reached is {min(reached):.1e} of the gradient" if reached else ""
    )
    return (
        f"{count} entr{'y' if count == 1 else 'ies'} unresolved: the loss's noise "
        f"({noise.sigma:.2e}, {noise.source}) is too large for the gradient there at any step "
        f"(rtol {options.rtol:g}{best}). Return the loss in float64, drop constant offsets "
        "from it, scale or centre the inputs, or pass a larger rtol/atol."
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
    if not objective.names:
        msg = f"gradient check of {subject}: it has no parameters, so there is nothing to check."
        raise ConfigError(msg)
    f0 = objective.base_loss()
    analytic = objective.analytic()
    rng = checker_rng(options.seed)

    def check_entries(name: str, indices: IntArray, note: str) -> _Checked:
        return _check_entries(
            objective, name, indices, analytic[name], f0, noise, options, layers.get(name), note
        )

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
        noise = _noise_of(objective, analytic, f0, options, rng)
        if objective.merges_tensors:
            checked = _check_all_entries(objective, chosen, analytic, f0, noise, options, layers)
        else:
            checked = [check_entries(name, indices, note) for name, indices, note in chosen]
        results = [entry.result for entry in checked]
    else:
        joint, noise = _directions_probe(
            objective, objective.names, analytic, f0, None, options, rng
        )
        k = options.directions
        if not np.any(joint.status == Status.FAIL):
            note = f"judged jointly by {k} direction(s)"
            results = [
                _joint_result(n, objective.values[n].shape, joint, layers.get(n), note)
                for n in objective.names
            ]
        else:
            notes.append(
                f"{int(np.count_nonzero(joint.status == Status.FAIL))} of {k} "
                "direction(s) over all parameters fail; localised per tensor"
            )
            for name in objective.names:
                alone, _ = _directions_probe(objective, (name,), analytic, f0, noise, options, rng)
                if np.any(alone.status == Status.FAIL):
                    indices = _sample(objective.values[name].size, options.samples, rng)
                    note = f"its directions fail; {indices.shape[0]} seeded entries checked"
                    entry = check_entries(name, indices, note)
                    if entry.result.verdict != "fail":
                        entry = attrs.evolve(
                            entry, result=attrs.evolve(entry.result, verdict="fail")
                        )
                    checked.append(entry)
                    results.append(entry.result)
                else:
                    note = f"judged by {k} direction(s) within this tensor"
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
    unresolved = _unresolved_note(checked, noise, options)
    if unresolved is not None:
        notes.append(unresolved)
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
        noise=noise.sigma,
        noise_source=noise.source,
    )
