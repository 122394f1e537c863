"""The benchmark's measurements and the markdown made from them (no measuring here).

:mod:`run` measures and fills :class:`CaseResult` objects; everything in this module is a pure
function of them, so the tables, and above all the targets table with its met/missed column,
are computed from the run's own numbers and can be tested on fake measurements.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit import Sequential
from layerkit.gradcheck.lowrank import DENSE_ELEMENTS as CHUNK_ELEMENTS
from layerkit.models import fraud_net_seed_case, mlp

Vector = npt.NDArray[np.float64]

BEGIN, END = "<!-- BEGIN GENERATED RESULTS -->", "<!-- END GENERATED RESULTS -->"
COMMAND = "python benchmarks/run.py"

MMAP_THRESHOLD = 131072
"""``MALLOC_MMAP_THRESHOLD_`` of the mmap column: glibc's default 128 KiB, fixed. Setting it at
all turns off glibc's dynamic threshold, so every freed block above it goes back to the kernel
and every new one is freshly mapped, page-faulted memory."""

CHUNK_BYTES = 8 * CHUNK_ELEMENTS
"""One stacked-activation chunk of the checker (its `CHUNK_ELEMENTS` float64 entries)."""
CHUNK_BUFFERS = 4
"""Chunks a stacked layer may hold at once (its input, its output, the activation's output
and its kink margins): the memory target's allowance is this many chunks."""
MEMORY_BUDGET = 50e6
"""Bytes the memory target allows at ~1M parameters, beyond the chunk buffers."""

FRAUD = "fraud net 4-5-3-1"
MID = "64-128-64-1"
BIG = "256-256-128-1"
BIG_TANH = "256-256-128-1 tanh"
HUGE = "512-1024-512-1"
HUGE_TANH = "512-1024-512-1 tanh"

METHODS: tuple[tuple[str, str], ...] = (
    ("exact", "check_model exact"),
    ("layers", "check_layers exact"),
    ("sampled", "check_model sampled"),
    ("fast", "check_model fast"),
    ("seed", "seed's loop"),
    ("torch_exact", "torch exact"),
    ("torch_fast", "torch fast"),
)
LABEL = dict(METHODS)
LAYERKIT = ("exact", "layers", "sampled", "fast")
"""The methods that also run with ``MALLOC_MMAP_THRESHOLD_`` set."""
CHEAP = frozenset({"sampled", "fast", "torch_fast"})


@attrs.frozen
class Case:
    """One model of the benchmark.

    **Fields:** ``name``; ``widths`` of the MLP (None: the seed's fraud net and batch);
    ``batch``; ``exact`` whether the exact checks, the seed's loop and torch's exact check run;
    ``repeats`` timed runs of each expensive method; ``cheap_repeats`` of the cheap ones
    (sampled, fast, torch fast: at least ``repeats``);
    ``seed_coordinates`` the seed's loop runs on this many coordinates and its time is scaled
    to ``P`` (None: all); ``torch_coordinates`` torch's exact gradcheck runs on a subset of
    the tensors with about this many entries and its time is extrapolated to ``P`` (None:
    all); ``tanh`` Tanh instead of ReLU between the layers (the same He-initialised weights;
    a smooth loss); ``isolate`` whether the fresh-process measurements (memory, mmap column)
    run on this model; ``memory_exact`` whether the exact check, not timed on this model,
    runs once in a fresh process for its peak memory (the full run only).
    """

    name: str
    widths: tuple[int, ...] | None
    batch: int
    exact: bool = True
    repeats: int = 3
    cheap_repeats: int = 5
    seed_coordinates: int | None = None
    torch_coordinates: int | None = None
    tanh: bool = False
    isolate: bool = True
    memory_exact: bool = False

    def build(self) -> tuple[Sequential, Vector, Vector]:
        """The model and a batch ``(x (m, in), y (m, 1))``, seeded."""
        if self.widths is None:
            case = fraud_net_seed_case()
            return case.model, np.asarray(case.x, np.float64), np.asarray(case.y, np.float64)
        model = mlp(self.widths, seed=0)  # He-initialised weights, zero biases
        if self.tanh:  # the same weights with Tanh between: smooth, no kinks
            layers = [lk.Tanh() if isinstance(layer, lk.ReLU) else layer for layer in model.layers]
            model = Sequential(layers, loss=model.loss)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((self.batch, self.widths[0]))
        y = (rng.random((self.batch, 1)) > 0.5).astype(np.float64)
        return model, x, y

    def repeats_of(self, key: str) -> int:
        """Timed runs of method ``key`` on this model."""
        return max(self.repeats, self.cheap_repeats) if key in CHEAP else self.repeats


@attrs.define
class Result:
    """In-process measurements of one method on one model.

    **Fields:** ``seconds`` CPU seconds of each timed (warm) run, for the whole check;
    ``first`` CPU seconds of the untimed warm-up call (the method's first on this model);
    ``estimated`` how a time was derived from part of the check (None: measured whole);
    ``verdict``; ``evaluations``; ``skipped`` why it did not run.
    """

    seconds: list[float] = attrs.Factory(list)
    first: float | None = None
    estimated: str | None = None
    verdict: str | None = None
    evaluations: int | None = None
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        """Median CPU seconds of the whole check (None if not run)."""
        return statistics.median(self.seconds) if self.seconds else None


@attrs.define
class Isolated:
    """One method on one model in fresh processes (one per environment).

    **Fields:** ``seconds`` CPU seconds of each call, default environment; ``mmap_seconds``
    the same with ``MALLOC_MMAP_THRESHOLD_`` set (None: not run); ``peak`` bytes, the rise of
    the resident-set high-water mark over the first call, default environment; ``peak_all``
    the same over all its calls; ``peak_kind``
    ``hwm`` (VmHWM reset before the calls) or ``maxrss`` (ru_maxrss, not resettable: a lower
    bound); ``error`` what went wrong in a child.
    """

    seconds: list[float] = attrs.Factory(list)
    mmap_seconds: list[float] | None = None
    peak: int | None = None
    peak_all: int | None = None
    peak_kind: str = "hwm"
    error: str | None = None

    @property
    def slowdown(self) -> float | None:
        """Median time with the threshold set over the median without."""
        if not self.seconds or not self.mmap_seconds:
            return None
        return ratio(statistics.median(self.mmap_seconds), statistics.median(self.seconds))


@attrs.define
class CaseResult:
    """Every measurement on one model; ``forward`` the plain forward+loss time per block."""

    case: Case
    size: int
    forward: list[float] = attrs.Factory(list)
    methods: dict[str, Result] = attrs.Factory(dict)
    isolated: dict[str, Isolated] = attrs.Factory(dict)
    """By method key, and ``forward`` for one plain forward+loss."""

    @property
    def forward_time(self) -> float:
        """Median seconds of one plain forward+loss."""
        return statistics.median(self.forward)

    @property
    def floor(self) -> float:
        """``T_floor``: ``2P`` plain forward+loss evaluations."""
        return 2 * self.size * self.forward_time

    def time(self, key: str) -> float | None:
        """Median seconds of ``key``, or None."""
        result = self.methods.get(key)
        return None if result is None else result.median

    def estimated(self, key: str) -> bool:
        """True when ``key``'s time is derived from part of the check."""
        result = self.methods.get(key)
        return result is not None and result.estimated is not None


@attrs.frozen
class RunFacts:
    """How and where a run was made (for the page's header).

    **Fields:** ``quick``; ``date``; ``wall`` seconds from start to the report;
    ``machine`` one line of machine and library facts; ``load`` 1-minute load averages at the
    start and the end (None where unknown).
    """

    quick: bool
    date: str
    wall: float
    machine: str
    load: tuple[float, float] | None = None


# -- formatting --------------------------------------------------------------------------------


def fmt_time(seconds: float | None, estimated: bool = False) -> str:
    """``12.3 ms``-style time; ``~`` marks a time derived from part of the check."""
    if seconds is None:
        return "—"
    mark = "~" if estimated else ""
    if seconds < 1e-3:
        return f"{mark}{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{mark}{seconds * 1e3:.1f} ms"
    if seconds < 600:
        return f"{mark}{seconds:.2f} s"
    return f"{mark}{seconds / 60:.1f} min"


def fmt_ratio(value: float | None) -> str:
    """A ratio with 2 decimals (3 significant digits when small)."""
    if value is None:
        return "—"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def fmt_bytes(value: int | None) -> str:
    """Megabytes (10**6 bytes), 1 decimal."""
    return "—" if value is None else f"{value / 1e6:.1f}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are known."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- tables ------------------------------------------------------------------------------------


def times_table(results: Sequence[CaseResult]) -> str:
    """Median warm CPU time of each method, per model, with the number of timed runs."""
    header = [
        "model",
        "P",
        "runs",
        "forward+loss",
        "T_floor",
        *[label for _, label in METHODS],
    ]
    rows = []
    for r in results:
        runs = f"{r.case.repeats_of('exact')} / {r.case.repeats_of('fast')}"
        cells = [r.case.name, f"{r.size:,}", runs, fmt_time(r.forward_time), fmt_time(r.floor)]
        for key, _ in METHODS:
            m = r.methods[key]
            cells.append(fmt_time(m.median, m.estimated is not None) if m.seconds else "—")
        rows.append(cells)
    return table(header, rows)


def first_call_table(results: Sequence[CaseResult]) -> str:
    """CPU time of each layerkit method's first call on each model (its untimed warm-up),
    and that over its warm median."""
    header = ["model", *[f"{LABEL[key]}: first (x warm)" for key in LAYERKIT]]
    rows = []
    for r in results:
        cells = [r.case.name]
        for key in LAYERKIT:
            m = r.methods[key]
            if m.first is None:
                cells.append("—")
            else:
                cells.append(f"{fmt_time(m.first)} ({fmt_ratio(ratio(m.first, m.median))})")
        rows.append(cells)
    return table(header, rows)


def ratios_table(results: Sequence[CaseResult]) -> str:
    """The ratios the targets are stated in, per model (all from the same run)."""
    header = [
        "model",
        "exact / T_floor",
        "layers / T_floor",
        "exact / seed's loop",
        "torch exact / exact",
        "fast / torch fast",
        "fast: evaluations",
        "fast: forward-equivalents",
        "exact: µs per parameter",
    ]
    rows = []
    for r in results:
        exact, fast = r.time("exact"), r.time("fast")
        per_param = None if exact is None else exact / r.size * 1e6
        seed = "~" if r.estimated("seed") else ""
        torch = "~" if r.estimated("torch_exact") else ""
        rows.append(
            [
                r.case.name,
                fmt_ratio(ratio(exact, r.floor)),
                fmt_ratio(ratio(r.time("layers"), r.floor)),
                _marked(seed, ratio(exact, r.time("seed"))),
                _marked(torch, ratio(r.time("torch_exact"), exact)),
                fmt_ratio(ratio(fast, r.time("torch_fast"))),
                _count(r.methods["fast"].evaluations),
                fmt_ratio(ratio(fast, r.forward_time)),
                "—" if per_param is None else f"{per_param:.1f}",
            ]
        )
    return table(header, rows)


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _marked(mark: str, value: float | None) -> str:
    return "—" if value is None else mark + fmt_ratio(value)


def verdicts_table(results: Sequence[CaseResult]) -> str:
    """Each check's verdict on the (correct) model."""
    header = ["model", *[label for _, label in METHODS]]
    rows = []
    for r in results:
        cells = [r.case.name]
        for key, _ in METHODS:
            m = r.methods[key]
            cells.append(m.verdict if m.verdict is not None else (m.skipped or "—"))
        rows.append(cells)
    return table(header, rows)


def mmap_table(results: Sequence[CaseResult]) -> str:
    """Each layerkit method's median in a fresh process without and with the threshold set,
    and the slowdown."""
    header = ["model", *[LABEL[key] for key in LAYERKIT]]
    rows = []
    for r in results:
        cells = [r.case.name]
        for key in LAYERKIT:
            iso = r.isolated.get(key)
            if iso is None:
                cells.append("—")
            elif iso.error is not None:
                cells.append("error")
            elif iso.mmap_seconds is None or not iso.seconds:
                cells.append("—")
            else:
                without = statistics.median(iso.seconds)
                with_ = statistics.median(iso.mmap_seconds)
                cells.append(
                    f"{fmt_ratio(iso.slowdown)}x ({fmt_time(without)} → {fmt_time(with_)}, "
                    f"{len(iso.seconds)} + {len(iso.mmap_seconds)} calls)"
                )
        rows.append(cells)
    return table(header, rows)


def memory_table(results: Sequence[CaseResult]) -> str:
    """Peak resident-memory rise (MB) of each method in its own process."""
    header = ["model", "P", "one forward+loss", *[label for _, label in METHODS]]
    rows = []
    for r in results:
        cells = [r.case.name, f"{r.size:,}", _peak(r.isolated.get("forward"))]
        cells += [_peak(r.isolated.get(key)) for key, _ in METHODS]
        rows.append(cells)
    return table(header, rows)


def _peak(iso: Isolated | None) -> str:
    if iso is None:
        return "—"
    if iso.error is not None:
        return "error"
    if iso.peak is None:
        return "—"
    mark = "" if iso.peak_kind == "hwm" else "≥"
    text = mark + fmt_bytes(iso.peak)
    calls = len(iso.seconds)
    if iso.peak_all is not None and calls > 1 and iso.peak_all > 1.2 * iso.peak + 1e6:
        text += f" ({mark}{fmt_bytes(iso.peak_all)} over {calls} calls)"
    return text


# -- targets -----------------------------------------------------------------------------------


@attrs.frozen
class Target:
    """One row of the targets table: ``status`` is ``met``, ``missed`` or ``not measured``."""

    target: str
    measured: str
    status: str


def _judge(target: str, value: float | None, shown: str, ok: bool) -> Target:
    """``shown`` is used only when ``value`` was measured."""
    if value is None:
        return Target(target, "—", "not measured")
    return Target(target, shown, "met" if ok else "missed")


def targets(results: Sequence[CaseResult]) -> list[Target]:
    """Issue 11's targets, each judged from ``results`` (a model that was not in the run, or a
    method that did not run on it, gives ``not measured``)."""
    by_name = {r.case.name: r for r in results}
    rows: list[Target] = []

    def floor_ratio(name: str, key: str) -> float | None:
        r = by_name.get(name)
        return None if r is None else ratio(r.time(key), r.floor)

    def x(value: float | None) -> str:
        return f"{fmt_ratio(value)}x"

    for name, batch, limit in ((MID, 64, 0.08), (BIG, 128, 0.05)):
        value = floor_ratio(name, "exact")
        rows.append(
            _judge(
                f"Exact check_model, {name} (batch {batch}): ≤ {limit}x T_floor",
                value,
                x(value),
                value is not None and value <= limit,
            )
        )
    big = by_name.get(BIG)
    faster = None if big is None else ratio(big.time("torch_exact"), big.time("exact"))
    mark = "~" if big is not None and big.estimated("torch_exact") else ""
    rows.append(
        _judge(
            f"Exact check_model, {BIG}: ≥ 30x faster than torch exact gradcheck",
            faster,
            f"{mark}{fmt_ratio(faster)}x faster",
            faster is not None and faster >= 30,
        )
    )
    layers = [(name, floor_ratio(name, "layers")) for name in (MID, BIG)]
    known = [(name, value) for name, value in layers if value is not None]
    rows.append(
        Target(
            f"check_layers ({MID} and {BIG}): ≤ 0.05x T_floor",
            ", ".join(f"{x(value)} on {name}" for name, value in known) or "—",
            "not measured"
            if len(known) < len(layers)
            else ("met" if all(value <= 0.05 for _, value in known) else "missed"),
        )
    )
    value = floor_ratio(FRAUD, "exact")
    rows.append(
        _judge(
            "Fraud net, exact: ≤ 0.35x its T_floor (warm, interleaved)",
            value,
            x(value),
            value is not None and value <= 0.35,
        )
    )
    fraud = by_name.get(FRAUD)
    value = None if fraud is None else ratio(fraud.time("exact"), fraud.time("seed"))
    rows.append(
        _judge(
            "Fraud net, exact: ≤ 0.25x the seed's loop (warm, interleaved)",
            value,
            x(value),
            value is not None and value <= 0.25,
        )
    )
    for name in (BIG, BIG_TANH, HUGE, HUGE_TANH):
        r = by_name.get(name)
        value = None if r is None else ratio(r.time("fast"), r.time("torch_fast"))
        verdict = None if r is None else r.methods["fast"].verdict
        rows.append(
            _judge(
                f"Fast mode, {name}: ≤ 0.7x torch fast's time, verdict pass",
                value,
                f"{fmt_ratio(value)}x, {verdict}",
                value is not None and value <= 0.7 and verdict == "pass",
            )
        )
    slowdowns = [
        (iso.slowdown, r.case.name, key)
        for r in results
        for key, iso in r.isolated.items()
        if iso.slowdown is not None
    ]
    worst = max(slowdowns) if slowdowns else None
    rows.append(
        _judge(
            f"Any check with MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}: ≤ 1.3x slower than without",
            None if worst is None else worst[0],
            ""
            if worst is None
            else f"worst {fmt_ratio(worst[0])}x ({LABEL[worst[2]]}, {worst[1]}; "
            f"{len(slowdowns)} checks measured)",
            worst is not None and worst[0] <= 1.3,
        )
    )
    allowance = MEMORY_BUDGET + CHUNK_BUFFERS * CHUNK_BYTES
    peaks = [
        (LABEL[key], r.isolated[key])
        for r in results
        if r.case.name == HUGE
        for key in ("exact", "sampled")
        if key in r.isolated and r.isolated[key].peak is not None
    ]
    rows.append(
        Target(
            f"Memory: exact or sampled check at ~1M parameters ({HUGE}), one check's peak: "
            "≤ 50 MB + "
            f"{CHUNK_BUFFERS} chunk buffers of {CHUNK_BYTES / 1e6:.1f} MB "
            f"= {allowance / 1e6:.1f} MB",
            ", ".join(f"{label}: {_one_check(iso)}" for label, iso in peaks) or "—",
            "not measured"
            if not peaks
            else (
                "met"
                if all(iso.peak is not None and iso.peak <= allowance for _, iso in peaks)
                else "missed"
            ),
        )
    )
    return rows


def _one_check(iso: Isolated) -> str:
    text = f"{fmt_bytes(iso.peak)} MB one check"
    if iso.peak_all is not None and len(iso.seconds) > 1:
        text += f" ({fmt_bytes(iso.peak_all)} MB over {len(iso.seconds)} calls)"
    return text


def targets_table(results: Sequence[CaseResult]) -> str:
    """The targets as a markdown table."""
    rows = [[t.target, t.measured, t.status] for t in targets(results)]
    return table(["target", "measured", ""], rows)


# -- the page ----------------------------------------------------------------------------------


def protocol(results: Sequence[CaseResult], facts: RunFacts) -> str:
    """How the numbers were taken: command, machine, runs, warm/cold, interleaving."""
    command = COMMAND + (" --quick" if facts.quick else "")
    load = (
        ""
        if facts.load is None
        else f" 1-minute load average {facts.load[0]:.2f} at the start, {facts.load[1]:.2f} "
        "at the end (other work shares the machine)."
    )
    runs = "; ".join(
        f"{r.case.name} {r.case.repeats_of('exact')} / {r.case.repeats_of('fast')}" for r in results
    )
    return "\n\n".join(
        [
            f"Measured by `{command}` ({'quick run' if facts.quick else 'full run'}) on "
            f"{facts.date}; the run took {fmt_time(facts.wall)} of wall time from start to "
            f"this report. {facts.machine}{load}",
            "**In-process times (all tables but the last two):** one process, BLAS and torch on "
            "one thread. Per model, every method first runs once untimed (its *first call*, "
            "reported below, is the cold figure); then the timed runs are **warm** and "
            "**interleaved**: in each round every method runs once in turn, after a block of "
            "plain forwards for `T_floor`. Each figure is the median of the process CPU "
            "seconds (`time.process_time`: user + system) of its timed runs. Timed runs per "
            f"model (expensive methods / sampled, fast, torch fast): {runs}. `~` marks a time "
            "derived from part of the check: the seed's loop on its first coordinates "
            "(scaled by P / coordinates); torch's exact gradcheck on a subset of the tensors "
            "(its fixed cost measured on the smallest tensor alone, its per-entry cost "
            "extrapolated to P). Only ratios within this run are meaningful: the machine is "
            "shared and absolute times move between runs.",
        ]
    )


def report(results: Sequence[CaseResult], facts: RunFacts) -> str:
    """The whole generated block as markdown."""
    return "\n\n".join(
        [
            protocol(results, facts),
            "### Targets\n\n"
            "Judged by `benchmarks/run.py` from this run's numbers (ratios in one run, one "
            "thread, medians of warm runs; tests never assert a time).\n\n"
            + targets_table(results),
            "### Median CPU time (warm)\n\n" + times_table(results),
            "### Ratios (measured side by side in the same run)\n\n" + ratios_table(results),
            "### First call on each model (cold)\n\n"
            "The untimed call before the timed runs, and its time over the warm median. The "
            "process has already run every method once on the fraud net.\n\n"
            + first_call_table(results),
            "### Verdicts on the (correct) models\n\n" + verdicts_table(results),
            f"### With MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}\n\n"
            "Each layerkit method on each model in two fresh processes, one with "
            f"`MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}` in its environment and one without, "
            "one BLAS thread each; the pair runs back to back, in alternating order from one "
            "method to the next. In each process: imports, one untimed call of the method on "
            "the fraud net, then the timed calls on the model (the first included); the cell "
            "is the median with the threshold over the median without, then the two medians "
            "and the number of calls. Setting the variable disables glibc's dynamic mmap "
            "threshold, so large freed arrays are unmapped and new ones page-fault again.\n\n"
            + mmap_table(results),
            "### Peak memory (MB) of each method, in its own process\n\n"
            "The rise of the resident-set high-water mark over the first timed call of the "
            "previous table's default-environment process (one check), in MB of 10^6 bytes: "
            "after the warm-up call on the fraud net and the model's set-up, free heap memory "
            "goes back to the kernel (glibc's `malloc_trim`) and `VmHWM` is reset "
            "(`/proc/self/clear_refs`), so every page the call touches counts. In brackets, "
            "where it is more, the rise over all that process's calls: memory the earlier "
            "calls left for the garbage collector, still held when the next one ran. "
            "Resident memory rather than tracemalloc: it is what the machine must provide, it "
            "sees torch's buffers as well as numpy's, and it costs nothing while timing; it "
            "also counts memory malloc keeps after a free. `≥`: `ru_maxrss` instead (no reset, "
            "a lower bound). The sampled check draws 10 entries per tensor (the default); "
            "torch's exact gradcheck runs on the same subset as in the time tables."
            + _memory_exact_note(results)
            + "\n\n"
            + memory_table(results),
        ]
    )


def _memory_exact_note(results: Sequence[CaseResult]) -> str:
    """Where an exact check ran only for its memory: which model, and how long it took."""
    notes = [
        f" On {r.case.name} the exact check ran once, in a process of its own, for its memory "
        f"only ({fmt_time(statistics.median(iso.seconds))} of CPU time, not in the time tables)."
        for r in results
        if r.case.memory_exact and (iso := r.isolated.get("exact")) is not None and iso.seconds
    ]
    return "".join(notes)


def write_doc(markdown: str, path: Path) -> None:
    """Put ``markdown`` between the generated-results markers of ``path`` (kept text around)."""
    block = f"{BEGIN}\n\n{markdown}\n\n{END}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail, encoding="utf-8")
            return
    path.write_text(f"# Benchmarks\n\nRegenerate with `{COMMAND}`.\n\n{block}\n", encoding="utf-8")
