"""Running a check: choose what to probe (exact, sampled, fast), probe it, build the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.errors import ConfigError
from layerkit.gradcheck.directions import check_noise, directions_probe, nan_where_nonfinite
from layerkit.gradcheck.numeric import probe
from layerkit.gradcheck.objective import Objective
from layerkit.gradcheck.options import CheckOptions, checker_rng
from layerkit.gradcheck.probes import Evaluate, Noise, ProbeResult, Status, gradient_scale
from layerkit.gradcheck.report import (
    GradCheckReport,
    TensorResult,
    combine,
)
from layerkit.gradcheck.results import (
    Checked,
    joint_result,
    relative_difference,
    tensor_result,
    unresolved_note,
)

PROGRESS_BLOCKS = 25
"""With a progress callback, the entries are probed in about this many blocks (one call each)."""

MIN_PROGRESS_BLOCK = 512
"""...but never in blocks of fewer entries than this, so that the objective still stacks many
evaluations per forward: progress costs nothing measurable. Each entry is judged on its own, so
the verdicts do not depend on the blocks."""

MAX_BLOCK = 1 << 16
"""Most entries probed at once: a probe keeps about 200 bytes per entry while it runs."""

Tick = Callable[[int], None]
"""Counts `k` more units of work done (reports progress)."""


def _uncounted(count: int) -> None:
    """A `Tick` that counts nothing (entries inside a unit counted elsewhere)."""


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
    tick: Tick,
) -> Checked:
    values = objective.values[name]
    base = values.reshape(-1)[indices]
    slopes = analytic.reshape(-1)[indices]

    @nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return objective.coordinate_losses(name, indices[ids], offsets)

    gscale = np.full(slopes.shape[0], gradient_scale(analytic))
    probed = _probe_blocks(objective, evaluate, slopes, base, gscale, f0, noise, options, tick)
    return tensor_result(
        name, values.shape, indices, slopes, probed, layer=layer, worst=options.worst, note=note
    )


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
    """Probe entries at values `base` with analytic `slopes`; steps scale with `|base|`."""
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


def _probe_blocks(
    objective: Objective,
    evaluate: Evaluate,
    slopes: Float64Array,
    base: Float64Array,
    gscale: Float64Array,
    f0: float,
    noise: Noise,
    options: CheckOptions,
    tick: Tick,
) -> ProbeResult:
    """`_probe_entries`, in blocks of at most `MAX_BLOCK` entries (the probe's bookkeeping
    is per block), smaller when progress is reported (one `tick` per block)."""
    n = slopes.shape[0]
    size = MAX_BLOCK
    if options.progress is not None:
        size = min(size, max(MIN_PROGRESS_BLOCK, -(-n // PROGRESS_BLOCKS)))
    if n <= size:
        probed = _probe_entries(objective, evaluate, slopes, base, gscale, f0, noise, options)
        tick(n)
        return probed
    parts: list[ProbeResult] = []
    for lo in range(0, n, size):
        hi = min(n, lo + size)

        def block(ids: IntArray, offsets: Float64Array, lo: int = lo) -> tuple[Any, Any]:
            return evaluate(ids + lo, offsets)

        parts.append(
            _probe_entries(
                objective, block, slopes[lo:hi], base[lo:hi], gscale[lo:hi], f0, noise, options
            )
        )
        tick(hi - lo)
    return ProbeResult(
        numeric=np.concatenate([p.numeric for p in parts]),
        error=np.concatenate([p.error for p in parts]),
        allowed=np.concatenate([p.allowed for p in parts]),
        step=np.concatenate([p.step for p in parts]),
        status=np.concatenate([p.status for p in parts]),
        noise=parts[0].noise,
    )


def _check_all_entries(
    objective: Objective,
    chosen: list[tuple[str, IntArray, str]],
    analytic: Mapping[str, Float64Array],
    f0: float,
    noise: Noise,
    options: CheckOptions,
    layers: Mapping[str, str],
    tick: Tick,
) -> list[Checked]:
    """Probe the `(name, indices, note)` entries of every tensor together, in one probe.

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

    @nan_where_nonfinite
    def evaluate(ids: IntArray, offsets: Float64Array) -> tuple[Float64Array, Float64Array]:
        return objective.entry_losses(tensor_ids[ids], flat[ids], offsets)

    probed = _probe_blocks(objective, evaluate, slopes, base, gscale, f0, noise, options, tick)
    checked = []
    lo = 0
    for name, indices, note in chosen:
        hi = lo + indices.shape[0]
        checked.append(
            tensor_result(
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


def run_check(
    objective: Objective,
    options: CheckOptions,
    *,
    subject: str,
    layer_of: Mapping[str, str] | None = None,
) -> GradCheckReport:
    """Check every tensor of `objective` as `options` say; the report names `subject`."""
    layers = dict(layer_of or {})
    if not objective.names:
        msg = f"gradient check of {subject}: it has no parameters, so there is nothing to check."
        raise ConfigError(msg)
    f0 = objective.base_loss()
    analytic = objective.analytic()
    rng = checker_rng(options.seed)
    done, total = 0, 1

    def tick(count: int) -> None:
        nonlocal done
        done += count
        options.report_progress(done, total)

    def check_entries(name: str, indices: IntArray, note: str, counted: Tick = tick) -> Checked:
        return _check_entries(
            objective, name, indices, analytic[name], f0, noise, options, layers.get(name), note,
            counted,
        )  # fmt: skip

    checked: list[Checked] = []
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
        total = sum(indices.shape[0] for _, indices, _ in chosen)
        options.report_progress(0, total)
        noise = check_noise(objective, analytic, f0, options, rng)
        if objective.merges_tensors:
            checked = _check_all_entries(
                objective, chosen, analytic, f0, noise, options, layers, tick
            )
        else:
            checked = [check_entries(name, indices, note) for name, indices, note in chosen]
        results = [entry.result for entry in checked]
    else:
        options.report_progress(0, total)
        joint, noise = directions_probe(
            objective, objective.names, analytic, f0, None, options, rng
        )
        k = options.directions
        if not np.any(joint.status == Status.FAIL):
            note = f"judged jointly by {k} direction(s)"
            results = [
                joint_result(n, objective.values[n].shape, joint, layers.get(n), note)
                for n in objective.names
            ]
            tick(1)
        else:
            notes.append(
                f"{int(np.count_nonzero(joint.status == Status.FAIL))} of {k} "
                "direction(s) over all parameters fail; localised per tensor"
            )
            total += len(objective.names)
            tick(1)
            for name in objective.names:
                alone, _ = directions_probe(objective, (name,), analytic, f0, noise, options, rng)
                if np.any(alone.status == Status.FAIL):
                    indices = _sample(objective.values[name].size, options.samples, rng)
                    note = f"its directions fail; {indices.shape[0]} seeded entries checked"
                    entry = check_entries(name, indices, note, _uncounted)
                    if entry.result.verdict != "fail":
                        entry = attrs.evolve(
                            entry, result=attrs.evolve(entry.result, verdict="fail")
                        )
                    checked.append(entry)
                    results.append(entry.result)
                else:
                    note = f"judged by {k} direction(s) within this tensor"
                    results.append(
                        joint_result(
                            name, objective.values[name].shape, alone, layers.get(name), note
                        )
                    )
                tick(1)  # a localised tensor is one unit
    verdict = combine([r.verdict for r in results])
    if options.mode == "fast" and not checked:
        difference = 0.0 if verdict == "pass" else float("nan")
    else:
        difference = relative_difference(checked)
    if not np.isfinite(f0):
        notes.append(f"the loss itself is {f0!r} at the point")
    unresolved = unresolved_note(checked, noise, options)
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
