"""Running a check: choose what to probe (exact, sampled, fast), probe it, build the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
from layerkit.gradcheck.reserve import heap_reserve
from layerkit.gradcheck.results import (
    Checked,
    Tally,
    joint_result,
    relative_difference,
    tally_block,
    unresolved_note,
)

PROGRESS_BLOCKS = 25
"""With a progress callback, the entries are probed in about this many blocks (one call each)."""

MIN_PROGRESS_BLOCK = 512
"""...but never in blocks of fewer entries than this, so that the objective still stacks many
evaluations per forward: progress costs nothing measurable. Each entry is judged on its own, so
the verdicts do not depend on the blocks."""

MAX_BLOCK = 1 << 14
"""Most entries probed at once: a probe keeps about 300 bytes per entry while it runs (arrays
of the escalation rounds; tracemalloc: 5 MB for a block of 16,384 entries of a 1M-parameter
net, 18 MB for one of 65,536), so a block's bookkeeping stays near 5 MB."""

Entries = IntArray | range
"""Flat indices of the entries to check in one tensor: every entry of a tensor is a `range`
(no `O(P)` index array is built for an exact check)."""


def _part(entries: Entries, lo: int, hi: int) -> IntArray:
    """`entries[lo:hi]` as an index array."""
    if isinstance(entries, range):
        return np.arange(entries.start + lo, entries.start + hi, dtype=np.intp)
    return entries[lo:hi]


Tick = Callable[[int], None]
"""Counts `k` more units of work done (reports progress)."""


def _uncounted(count: int) -> None:
    """A `Tick` that counts nothing (entries inside a unit counted elsewhere)."""


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


def _check_entries(
    objective: Objective,
    chosen: list[tuple[str, Entries, str]],
    analytic: Mapping[str, Float64Array],
    f0: float,
    noise: Noise,
    options: CheckOptions,
    layers: Mapping[str, str],
    tick: Tick,
) -> list[Checked]:
    """Probe the `(name, indices, note)` entries of the tensors in `chosen`, in order, in
    blocks of at most `MAX_BLOCK` entries (fewer with a progress callback: one `tick` each).

    A block may mix tensors: the objective then evaluates their entries in one stacked
    forward. Each entry is judged on its own, so the verdicts do not depend on the blocks;
    a block's bookkeeping is tallied per tensor and dropped.
    """
    position = {name: k for k, name in enumerate(objective.names)}
    sizes = [len(indices) for _, indices, _ in chosen]
    starts = np.cumsum([0, *sizes])
    total = int(starts[-1])
    size = MAX_BLOCK
    if options.progress is not None:
        size = min(size, max(MIN_PROGRESS_BLOCK, -(-total // PROGRESS_BLOCKS)))
    scales = [gradient_scale(analytic[name]) for name, _, _ in chosen]
    tallies = [
        Tally(name, objective.values[name].shape, layers.get(name), note, options.worst)
        for name, _, note in chosen
    ]
    for lo in range(0, total, size):
        hi = min(total, lo + size)
        parts = [
            (k, max(lo, starts[k]) - starts[k], min(hi, starts[k + 1]) - starts[k])
            for k in range(len(chosen))
            if max(lo, starts[k]) < min(hi, starts[k + 1])
        ]
        flat = np.concatenate([_part(chosen[k][1], a, b) for k, a, b in parts]).astype(np.intp)
        tensors = np.concatenate(
            [np.full(b - a, position[chosen[k][0]], dtype=np.intp) for k, a, b in parts]
        )
        base = np.concatenate(
            [
                objective.values[chosen[k][0]].reshape(-1)[_part(chosen[k][1], a, b)]
                for k, a, b in parts
            ]
        )
        slopes = np.concatenate(
            [analytic[chosen[k][0]].reshape(-1)[_part(chosen[k][1], a, b)] for k, a, b in parts]
        )
        gscale = np.concatenate([np.full(b - a, scales[k]) for k, a, b in parts])

        @nan_where_nonfinite
        def evaluate(
            ids: IntArray, offsets: Float64Array, tensors: IntArray = tensors, flat: IntArray = flat
        ) -> tuple[Float64Array, Float64Array]:
            return objective.entry_losses(tensors[ids], flat[ids], offsets)

        probed = _probe_entries(objective, evaluate, slopes, base, gscale, f0, noise, options)
        tally_block([(tallies[k], _part(chosen[k][1], a, b)) for k, a, b in parts], slopes, probed)
        tick(hi - lo)
    return [tally.result() for tally in tallies]


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
    sizes = [objective.values[name].size for name in objective.names]
    entries = {
        "exact": sum(sizes),
        "sampled": sum(min(size, options.samples) for size in sizes),
    }.get(options.mode, 0)
    with heap_reserve(objective.array_bytes(entries)):
        return _run_check(objective, options, subject=subject, layer_of=layer_of)


def _run_check(
    objective: Objective,
    options: CheckOptions,
    *,
    subject: str,
    layer_of: Mapping[str, str] | None,
) -> GradCheckReport:
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

    def check_entries(name: str, indices: Entries, note: str, counted: Tick = tick) -> Checked:
        return _check_entries(
            objective, [(name, indices, note)], analytic, f0, noise, options, layers, counted
        )[0]

    checked: list[Checked] = []
    results: list[TensorResult] = []
    notes: list[str] = []
    if options.mode in ("exact", "sampled"):
        chosen: list[tuple[str, Entries, str]] = []
        for name in objective.names:
            size = objective.values[name].size
            indices: Entries
            if options.mode == "exact":
                indices, note = range(size), "every entry"
            else:
                indices = _sample(size, options.samples, rng)
                note = f"{indices.shape[0]} seeded entries"
            chosen.append((name, indices, note))
        total = sum(len(indices) for _, indices, _ in chosen)
        options.report_progress(0, total)
        noise = check_noise(objective, analytic, f0, options, rng)
        if objective.merges_tensors:
            checked = _check_entries(objective, chosen, analytic, f0, noise, options, layers, tick)
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
