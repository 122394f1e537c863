"""How fast layerkit's gradient checks are, against the floor, the seed's loop and torch.

    python benchmarks/run.py            # full run (~10 min): prints the tables and writes
                                        # docs/benchmarks.md and docs/img/benchmarks.png
    python benchmarks/run.py --quick    # a short run (~20 s) that proves the benchmark works;
                                        # prints the tables, writes nothing

For MLPs of growing size it measures, in one process and run: layerkit's ``check_model``
(exact, sampled, fast) and ``check_layers`` (exact); the floor ``T_floor``, ``2P`` plain numpy
forward+loss evaluations of the same model; the seed notebook's copy-per-coordinate loop;
``torch.autograd.gradcheck`` (exact and ``fast_mode=True``) when torch is installed; and the
peak extra memory of each. Times are medians of process CPU seconds (``time.process_time``)
with BLAS and torch pinned to one thread: on a shared machine CPU time is steadier than wall
time, and every ratio compares methods measured side by side in the same run.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy is imported: one BLAS thread, comparable times

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import attrs  # noqa: E402
import numpy as np  # noqa: E402
from baselines import PlainMLP, Vector, load_torch, seed_loop, torch_gradcheck  # noqa: E402

import layerkit as lk  # noqa: E402
from layerkit import Sequential  # noqa: E402
from layerkit.models import fraud_net_seed_case, mlp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "img" / "benchmarks.png"
BEGIN, END = "<!-- BEGIN GENERATED RESULTS -->", "<!-- END GENERATED RESULTS -->"
COMMAND = "python benchmarks/run.py"

FORWARD_BUDGET = 0.05
"""CPU seconds of plain forwards timed per block (the per-forward time is their mean)."""
CHEAP_REPEATS = 5
"""Timed runs, at least, of the cheap methods (sampled, fast, torch fast)."""

Run = Callable[[], tuple[str, int | None]]
"""A measured call: returns (verdict, loss evaluations or None)."""


@attrs.frozen
class Case:
    """One model of the benchmark.

    **Fields:** ``widths`` of the MLP (None: the seed's fraud net and batch); ``batch``;
    ``exact`` whether the exact checks, the seed's loop and torch's exact check run;
    ``repeats`` timed runs of each expensive method; ``seed_coordinates`` the seed's loop runs
    on this many coordinates and is scaled to ``P`` (None: all of them); ``torch_exact``;
    ``tanh``: Tanh
    instead of ReLU between the layers (a smooth loss: no kinks for fast mode's directions).
    """

    name: str
    widths: tuple[int, ...] | None
    batch: int
    exact: bool = True
    repeats: int = 3
    seed_coordinates: int | None = None
    torch_exact: bool = True
    tanh: bool = False

    def build(self) -> tuple[Sequential, Vector, Vector]:
        """The model and a batch ``(x (m, in), y (m, 1))``, seeded."""
        if self.widths is None:
            case = fraud_net_seed_case()
            return case.model, np.asarray(case.x, np.float64), np.asarray(case.y, np.float64)
        model = mlp(self.widths, seed=0)
        if self.tanh:  # the same weights with Tanh between: smooth, no kinks
            layers = [lk.Tanh() if isinstance(layer, lk.ReLU) else layer for layer in model.layers]
            model = Sequential(layers, loss=model.loss)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((self.batch, self.widths[0]))
        y = (rng.random((self.batch, 1)) > 0.5).astype(np.float64)
        return model, x, y


FULL_CASES = (
    Case("fraud net 4-5-3-1", None, 3, repeats=25),
    Case("20-32-16-1", (20, 32, 16, 1), 64, repeats=5),
    Case("64-128-64-1", (64, 128, 64, 1), 64, repeats=3),
    Case(
        "256-256-128-1",
        (256, 256, 128, 1),
        128,
        repeats=1,
        seed_coordinates=2000,
        torch_exact=False,
    ),
    Case("256-256-128-1 tanh", (256, 256, 128, 1), 128, exact=False, repeats=3, tanh=True),
    Case("1024-896-128-1", (1024, 896, 128, 1), 128, exact=False, repeats=3),
)
QUICK_CASES = (
    Case("fraud net 4-5-3-1", None, 3, repeats=3),
    Case("20-32-16-1", (20, 32, 16, 1), 64, repeats=1),
    Case("64-128-64-1", (64, 128, 64, 1), 64, exact=False, repeats=1),
    Case("256-256-128-1", (256, 256, 128, 1), 128, exact=False, repeats=1),
    Case("1024-896-128-1", (1024, 896, 128, 1), 128, exact=False, repeats=1),
)

WARM_UP = Case("warm-up", None, 3, repeats=1)
"""Run once, untimed, before the measured cases."""

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


@attrs.define
class Result:
    """Measurements of one method on one model.

    **Fields:** ``seconds`` of each timed run; ``scale`` the factor from the runs to the whole
    check (the seed's loop on a subset of coordinates); ``memory`` peak extra bytes and
    ``memory_kind`` (``traced``: tracemalloc, ``rss``: resident-set high-water mark);
    ``verdict``; ``evaluations``; ``skipped`` why it did not run.
    """

    seconds: list[float] = attrs.Factory(list)
    scale: float = 1.0
    memory: int | None = None
    memory_kind: str = "traced"
    verdict: str | None = None
    evaluations: int | None = None
    skipped: str | None = None

    @property
    def median(self) -> float | None:
        """Median CPU seconds of the whole check (None if not run)."""
        if not self.seconds:
            return None
        return statistics.median(self.seconds) * self.scale

    @property
    def estimated(self) -> bool:
        """True when the time is scaled from a part of the check."""
        return self.scale != 1.0


@attrs.define
class CaseResult:
    """Every measurement on one model; ``forward`` the plain forward+loss time per call."""

    case: Case
    size: int
    forward: list[float] = attrs.Factory(list)
    forward_memory: int | None = None
    methods: dict[str, Result] = attrs.Factory(dict)
    seed_difference: float | None = None

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


def time_forward(plain: PlainMLP) -> float:
    """Mean CPU seconds of one plain forward+loss, over a block of about FORWARD_BUDGET s."""
    params = plain.base_params()
    count = 1
    while True:
        start = time.process_time()
        for _ in range(count):
            plain.loss(params)
        elapsed = time.process_time() - start
        if elapsed >= FORWARD_BUDGET:
            return elapsed / count
        count *= 2


def traced_peak(run: Run) -> tuple[int, tuple[str, int | None]]:
    """Peak bytes allocated (tracemalloc; numpy reports its buffers) above the start."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        outcome = run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before, outcome


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def rss_peak(run: Run) -> tuple[int | None, tuple[str, int | None]]:
    """Peak resident memory above the start (Linux: VmHWM after resetting it), for torch,
    whose buffers tracemalloc does not see; None where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None, run()
    before = _status_kb("VmRSS")
    outcome = run()
    peak = _status_kb("VmHWM")
    if before is None or peak is None:
        return None, outcome
    return max(0, peak - before) * 1024, outcome


def layerkit_runs(case: Case, model: Sequential, x: Vector, y: Vector) -> dict[str, Run]:
    """The layerkit checks this case measures."""

    def check(mode: str) -> Run:
        def call() -> tuple[str, int | None]:
            report = lk.check_model(model, x, y, mode=mode)
            return report.verdict, report.evaluations

        return call

    def layers() -> tuple[str, int | None]:
        return lk.check_layers(model, x).verdict, None

    runs: dict[str, Run] = {}
    if case.exact:
        runs["exact"] = check("exact")
        runs["layers"] = layers
    runs["sampled"] = check("sampled")
    runs["fast"] = check("fast")
    return runs


def measure_case(
    case: Case, torch: Any | None, quick: bool, log: Callable[[str], None]
) -> CaseResult:
    """Time every method on ``case``, interleaved run by run, then measure memory."""
    model, x, y = case.build()
    plain = PlainMLP.of(model, x, y)
    result = CaseResult(case=case, size=plain.size)
    log(f"{case.name}: P = {plain.size:,}, batch {x.shape[0]}")
    _, grads = model.loss_and_grad(x, y)
    grad = np.concatenate([np.ravel(grads[name]) for name in plain.names])

    runs = layerkit_runs(case, model, x, y)
    rss_runs: set[str] = set()
    scales: dict[str, float] = {}
    if case.exact:
        coordinates = case.seed_coordinates

        def seed() -> tuple[str, int | None]:
            result.seed_difference = seed_loop(plain, grad, coordinates=coordinates)
            verdict = "pass" if result.seed_difference <= 1.2e-7 else "fail"
            return verdict, 2 * min(coordinates or plain.size, plain.size)

        runs["seed"] = seed
        if coordinates is not None and coordinates < plain.size:
            scales["seed"] = plain.size / coordinates
    if torch is not None:

        def torch_run(fast: bool) -> Run:
            def call() -> tuple[str, int | None]:
                return ("pass" if torch_gradcheck(torch, plain, fast=fast) else "fail"), None

            return call

        if case.exact and case.torch_exact:
            runs["torch_exact"] = torch_run(False)
            rss_runs.add("torch_exact")
        runs["torch_fast"] = torch_run(True)
        rss_runs.add("torch_fast")

    for key in runs:
        result.methods[key] = Result(scale=scales.get(key, 1.0))
        if key in rss_runs:
            result.methods[key].memory_kind = "rss"
    for key, _ in METHODS:
        if key not in result.methods:
            result.methods[key] = Result(skipped=_skip_reason(key, case, torch, quick))

    def seed_few() -> tuple[str, int | None]:
        seed_loop(plain, grad, coordinates=min(case.seed_coordinates or 200, 200))
        return "", None

    # Memory first: each method's first run on this model (torch's caching allocator would
    # hide a later one's rise), which also keeps first-run effects out of the timed runs.
    for key, run in runs.items():
        record = result.methods[key]
        if key in rss_runs:
            record.memory, _ = rss_peak(run)
        elif key == "seed":  # on 200 coordinates: its peak does not grow with them
            record.memory, _ = traced_peak(seed_few)
        else:
            record.memory, _ = traced_peak(run)

    cheap = {"sampled", "fast", "torch_fast"}
    repeats = {
        key: max(case.repeats, CHEAP_REPEATS) if key in cheap else case.repeats for key in runs
    }
    for round_index in range(max(repeats.values())):
        result.forward.append(time_forward(plain))
        for key, run in runs.items():
            if round_index >= repeats[key]:
                continue
            record = result.methods[key]
            start = time.process_time()
            outcome = run()
            record.seconds.append(time.process_time() - start)
            record.verdict, record.evaluations = outcome
            if not quick:
                log(f"  {LABEL[key]:<20} {record.seconds[-1]:9.4f} s  {outcome[0]}")
    result.forward.append(time_forward(plain))
    params = plain.base_params()
    result.forward_memory, _ = traced_peak(lambda: (str(plain.loss(params)), None))
    return result


def _skip_reason(key: str, case: Case, torch: Any | None, quick: bool) -> str:
    if key.startswith("torch") and torch is None:
        return "skipped (torch not installed)"
    if quick and key in ("exact", "layers", "seed", "torch_exact"):
        return "not run (--quick)"
    return "not run"


# -- tables ------------------------------------------------------------------------------------


def fmt_time(seconds: float | None, estimated: bool = False) -> str:
    """``12.3 ms``-style time; ``~`` marks a time scaled from part of the check."""
    if seconds is None:
        return "—"
    mark = "~" if estimated else ""
    if seconds < 1e-3:
        return f"{mark}{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{mark}{seconds * 1e3:.1f} ms"
    return f"{mark}{seconds:.2f} s"


def fmt_ratio(value: float | None) -> str:
    """A ratio with 2 decimals (3 significant digits when small)."""
    if value is None:
        return "—"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def fmt_bytes(value: int | None, kind: str = "traced") -> str:
    """Megabytes; ``†`` marks a resident-set measure (torch)."""
    if value is None:
        return "—"
    mark = "†" if kind == "rss" else ""
    return f"{value / 1e6:.2f}{mark}"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are known."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def times_table(results: list[CaseResult]) -> str:
    """Median CPU time of each method, per model."""
    header = ["model", "P", "forward+loss", "T_floor", *[label for _, label in METHODS]]
    rows = []
    for r in results:
        cells = [r.case.name, f"{r.size:,}", fmt_time(r.forward_time), fmt_time(r.floor)]
        for key, _ in METHODS:
            m = r.methods[key]
            cells.append(fmt_time(m.median, m.estimated) if m.seconds else "—")
        rows.append(cells)
    return table(header, rows)


def ratios_table(results: list[CaseResult]) -> str:
    """The ratios the targets are stated in, per model."""
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
        rows.append(
            [
                r.case.name,
                fmt_ratio(ratio(exact, r.floor)),
                fmt_ratio(ratio(r.time("layers"), r.floor)),
                fmt_ratio(ratio(exact, r.time("seed"))),
                fmt_ratio(ratio(r.time("torch_exact"), exact)),
                fmt_ratio(ratio(fast, r.time("torch_fast"))),
                str(r.methods["fast"].evaluations),
                fmt_ratio(ratio(fast, r.forward_time)),
                "—" if per_param is None else f"{per_param:.1f}",
            ]
        )
    return table(header, rows)


def verdicts_table(results: list[CaseResult]) -> str:
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


def memory_table(results: list[CaseResult]) -> str:
    """Peak extra memory (MB) of each method, and the exact check's bytes per parameter."""
    header = ["model", "P", "one forward", *[label for _, label in METHODS], "exact: bytes / P"]
    rows = []
    for r in results:
        cells = [r.case.name, f"{r.size:,}", fmt_bytes(r.forward_memory)]
        for key, _ in METHODS:
            m = r.methods[key]
            cells.append(fmt_bytes(m.memory, m.memory_kind))
        exact_memory = r.methods["exact"].memory
        cells.append("—" if exact_memory is None else f"{exact_memory / r.size:.0f}")
        rows.append(cells)
    return table(header, rows)


def targets_table(results: list[CaseResult]) -> str:
    """Each target of the issue, the measured value, and whether it is met."""
    by_name = {r.case.name: r for r in results}
    rows: list[list[str]] = []

    def add(target: str, value: float | None, shown: str, met: bool | None) -> None:
        verdict = "not measured" if value is None or met is None else ("met" if met else "missed")
        rows.append([target, shown if value is not None else "—", verdict])

    mid = by_name.get("64-128-64-1")
    if mid is not None:
        value = ratio(mid.time("exact"), mid.floor)
        add(
            "exact check_model <= 0.8 x T_floor (64-128-64-1)",
            value,
            f"{fmt_ratio(value)} x",
            None if value is None else value <= 0.8,
        )
        value = ratio(mid.time("torch_exact"), mid.time("exact"))
        add(
            "exact check_model >= 2x faster than torch exact (64-128-64-1)",
            value,
            f"{fmt_ratio(value)}x faster",
            None if value is None else value >= 2,
        )
        value = ratio(mid.time("layers"), mid.floor)
        add(
            "check_layers exact <= 0.5 x T_floor (64-128-64-1)",
            value,
            f"{fmt_ratio(value)} x",
            None if value is None else value <= 0.5,
        )
    evaluations = [r.methods["fast"].evaluations for r in results]
    known = [e for e in evaluations if e is not None]
    worst = max(known) if known else None
    add(
        "fast mode: <= 20 loss evaluations, every size",
        None if worst is None else float(worst),
        f"max {worst}",
        None if worst is None else worst <= 20,
    )
    equivalents = [ratio(r.time("fast"), r.forward_time) for r in results]
    known_eq = [e for e in equivalents if e is not None]
    worst_eq = max(known_eq) if known_eq else None
    add(
        "fast mode: <= 20 forward-equivalents of CPU time, every size",
        worst_eq,
        f"max {fmt_ratio(worst_eq)}",
        None if worst_eq is None else worst_eq <= 20,
    )
    big = by_name.get("256-256-128-1")
    if big is not None:
        value = ratio(big.time("fast"), big.time("torch_fast"))
        add(
            "fast mode faster than torch fast (256-256-128-1)",
            value,
            f"{fmt_ratio(value)} x torch's time",
            None if value is None else value < 1,
        )
    huge = by_name.get("1024-896-128-1")
    if huge is not None:
        value = huge.time("fast")
        add(
            "fast mode under 1 s (~1M parameters)",
            value,
            fmt_time(value),
            None if value is None else value < 1,
        )
    fraud = by_name.get("fraud net 4-5-3-1")
    if fraud is not None:
        value = ratio(fraud.time("exact"), fraud.time("seed"))
        add(
            "fraud net exact <= 0.5 x the seed's loop",
            value,
            f"{fmt_ratio(value)} x",
            None if value is None else value <= 0.5,
        )
    scaling = [
        (r.size, ratio(r.time("exact"), r.floor)) for r in results if 1000 <= r.size <= 200_000
    ]
    measured = [(size, value) for size, value in scaling if value is not None]
    if len(measured) >= 2:
        values = [value for _, value in measured]
        spread = max(values) / min(values)
        shown = ", ".join(f"{value:.2f} at P={size:,}" for size, value in measured)
        add(
            "exact / T_floor flat from P~1k to P~100k (max/min <= 2)",
            spread,
            f"{shown} (max/min {spread:.2f})",
            spread <= 2,
        )
    else:
        add("exact / T_floor flat from P~1k to P~100k (max/min <= 2)", None, "", None)
    per_param = [(r.size, r.methods["exact"].memory) for r in results]
    memory_known = [(size, memory / size) for size, memory in per_param if memory is not None]
    if memory_known:
        shown = ", ".join(f"{value:.0f} B at P={size:,}" for size, value in memory_known)
        no_square = all(value < 8 * size / 10 for size, value in memory_known if size >= 10_000)
        add(
            "peak extra memory O(P), never P x P (exact check, bytes per parameter)",
            1.0,
            shown,
            no_square,
        )
    return table(["target", "measured", ""], rows)


def environment(torch: Any | None) -> str:
    """Where the numbers were measured."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    config: Any = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    torch_version = "not installed" if torch is None else str(torch.__version__)
    return (
        f"Python {platform.python_version()}, numpy {np.__version__} "
        f"({blas.get('name', '?')} {blas.get('version', '')}), torch {torch_version}, layerkit "
        f"{lk.__version__}; {cpu}, {os.cpu_count()} cores; one BLAS/torch thread."
    )


def report(results: list[CaseResult], torch: Any | None, quick: bool) -> str:
    """All tables as markdown."""
    mode = "quick run (`--quick`)" if quick else "full run"
    return "\n\n".join(
        [
            f"Measured by `{COMMAND}{' --quick' if quick else ''}` ({mode}) on "
            f"{time.strftime('%Y-%m-%d')}. {environment(torch)}",
            "### Targets\n\n" + targets_table(results),
            "### Median CPU time\n\n"
            "`~` marks a time scaled from part of the check (the seed's loop on its first "
            "coordinates, times P / coordinates).\n\n" + times_table(results),
            "### Ratios (measured side by side in the same run)\n\n" + ratios_table(results),
            "### Verdicts on the (correct) models\n\n" + verdicts_table(results),
            "### Peak extra memory (MB)\n\n"
            "tracemalloc peak above the start of the call (numpy reports its buffers to it), "
            "measured on each method's first run on the model; `†`: torch's buffers are "
            "invisible to tracemalloc, so its rows are the rise of the process's resident-set "
            "high-water mark, a lower bound (torch reuses memory it already holds). The seed's "
            "loop is measured on 200 coordinates (its peak does not grow with them).\n\n"
            + memory_table(results),
        ]
    )


# -- outputs -----------------------------------------------------------------------------------


SERIES: tuple[tuple[str, str, str], ...] = (
    ("floor", "T_floor (2P plain forwards)", "k--"),
    ("exact", "check_model exact", "o-"),
    ("layers", "check_layers exact", "s-"),
    ("sampled", "check_model sampled", "^-"),
    ("fast", "check_model fast", "v-"),
    ("seed", "seed's loop", "x:"),
    ("torch_exact", "torch gradcheck exact", "D:"),
    ("torch_fast", "torch gradcheck fast", "d:"),
)


def plot(results: list[CaseResult], path: Path) -> None:
    """Time against P, log-log, one line per method (hollow markers: scaled estimates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    smooth = [r for r in results if r.case.tanh]
    results = [r for r in results if not r.case.tanh]
    for key, label, style in SERIES:
        sizes, times, estimated = [], [], []
        for r in results:
            value = r.floor if key == "floor" else r.time(key)
            if value is None:
                continue
            sizes.append(r.size)
            times.append(value)
            estimated.append(key != "floor" and r.methods[key].estimated)
        if not sizes:
            continue
        (line,) = ax.loglog(sizes, times, style, label=label)
        for size, value, hollow in zip(sizes, times, estimated, strict=True):
            if hollow:
                ax.plot([size], [value], "o", markerfacecolor="white", color=line.get_color())
    for r in smooth:
        for key, label, marker in (
            ("fast", "check_model fast", "*"),
            ("torch_fast", "torch fast", "P"),
        ):
            value = r.time(key)
            if value is not None:
                ax.plot([r.size], [value], marker, markersize=10, label=f"{label}, {r.case.name}")
    ax.set_xlabel("parameters P")
    ax.set_ylabel("median CPU seconds (one thread)")
    ax.set_title("Gradient check time vs model size (hollow: scaled estimate)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a layerkit check fails a correct model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run, prints only")
    parser.add_argument("--only", default=None, help="run the models whose name contains this")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc and plot")
    args = parser.parse_args(argv)
    torch = load_torch()
    if torch is None:
        print("torch: skipped (torch not installed)", file=sys.stderr)
    cases: tuple[Case, ...] = QUICK_CASES if args.quick else FULL_CASES
    if args.only:
        cases = tuple(case for case in cases if args.only in case.name)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    measure_case(WARM_UP, torch, args.quick, lambda line: None)  # imports, lazy set-up, caches
    results = [measure_case(case, torch, args.quick, log) for case in cases]
    markdown = report(results, torch, args.quick)
    print(markdown)
    if not args.quick and not args.no_write and not args.only:
        write_doc(markdown, DOC)
        plot(results, PLOT)
        log(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    failed = [
        f"{r.case.name}: {LABEL[key]}"
        for r in results
        for key in ("exact", "layers", "sampled", "fast")
        if r.methods[key].verdict == "fail"
    ]
    if failed:
        print("layerkit failed a correct model: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
