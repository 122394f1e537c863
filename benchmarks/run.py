"""How fast layerkit's gradient checks are, against the floor, the seed's loop and torch.

    python benchmarks/run.py            # full run: prints the tables and writes
                                        # docs/benchmarks.md and docs/img/benchmarks.png
                                        # (the page states the run's wall time)
    python benchmarks/run.py --quick    # a short smoke run (CI; under a minute): prints the
                                        # tables, writes nothing

For MLPs of growing size it measures, in one process: layerkit's ``check_model`` (exact,
sampled, fast) and ``check_layers`` (exact); the floor ``T_floor``, ``2P`` plain numpy
forward+loss evaluations of the same model; the seed notebook's copy-per-coordinate loop;
``torch.autograd.gradcheck`` (exact and ``fast_mode=True``) when torch is installed. Every
method runs once untimed per model (its first call, reported as the cold figure), then the
timed runs are warm and interleaved round by round; figures are medians of process CPU seconds
with BLAS and torch on one thread.

Then, per model, each method runs again in fresh processes (``--child``): one with
``MALLOC_MMAP_THRESHOLD_`` set and one without (layerkit's methods), giving the mmap column,
and the default one also gives the method's peak resident memory. Tables and targets are made
by ``tables.py`` from these measurements.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # not when a test imports this module
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"  # before numpy is imported: one BLAS thread

import argparse
import ctypes
import gc
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from baselines import (
    PlainMLP,
    load_torch,
    seed_loop,
    torch_gradcheck,
    torch_subset,
)
from tables import (
    BIG,
    BIG_TANH,
    FRAUD,
    HUGE,
    HUGE_TANH,
    LABEL,
    LAYERKIT,
    METHODS,
    MID,
    MMAP_THRESHOLD,
    Case,
    CaseResult,
    Isolated,
    Result,
    RunFacts,
    report,
    write_doc,
)

import layerkit as lk

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "img" / "benchmarks.png"

FORWARD_BUDGET = 0.05
"""CPU seconds of plain forwards timed per block (the per-forward time is their mean)."""

FULL_CASES = (
    Case(FRAUD, None, 3, repeats=25),
    Case("20-32-16-1", (20, 32, 16, 1), 64, repeats=5),
    Case(MID, (64, 128, 64, 1), 64, repeats=3, seed_coordinates=4000),
    Case(BIG, (256, 256, 128, 1), 128, repeats=1, seed_coordinates=2000, torch_coordinates=1000),
    Case(BIG_TANH, (256, 256, 128, 1), 128, exact=False, repeats=3, tanh=True),
    Case(HUGE, (512, 1024, 512, 1), 128, exact=False, repeats=3, memory_exact=True),
    Case(HUGE_TANH, (512, 1024, 512, 1), 128, exact=False, repeats=3, tanh=True),
)
QUICK_CASES = (
    Case(FRAUD, None, 3, repeats=3, cheap_repeats=3),
    Case("20-32-16-1", (20, 32, 16, 1), 64, repeats=1, cheap_repeats=1),
    Case(BIG, (256, 256, 128, 1), 128, exact=False, repeats=1, cheap_repeats=1, isolate=False),
    Case(HUGE, (512, 1024, 512, 1), 128, exact=False, repeats=1, cheap_repeats=1, isolate=False),
)
WARM_UP = Case(FRAUD, None, 3, repeats=1)
"""Each method runs once on it, untimed, before anything is measured (in every process)."""


@attrs.frozen
class Outcome:
    """What a measured call returns: ``verdict``; ``evaluations`` of the loss (None: not
    known); ``seconds`` the call's own estimate of the whole check's CPU time when it ran
    only part of it (None: the call's measured time is the figure)."""

    verdict: str
    evaluations: int | None = None
    seconds: float | None = None


Run = Callable[[], Outcome]


@attrs.frozen
class Prepared:
    """A case's model and data, and the calls that check it.

    **Fields:** ``runs`` by method key (plus ``forward``: one plain forward+loss);
    ``estimated`` by method key, how a partial check's time is extended to the whole one.
    """

    case: Case
    plain: PlainMLP
    runs: dict[str, Run]
    estimated: dict[str, str]


def prepare(case: Case, torch: Any | None, *, memory: bool = False) -> Prepared:
    """Build ``case`` and the calls of every method that runs on it (with ``memory``, in a
    memory-measuring child, also its ``memory_exact`` check)."""
    model, x, y = case.build()
    plain = PlainMLP.of(model, x, y)
    _, grads = model.loss_and_grad(x, y)
    grad = np.concatenate([np.ravel(grads[name]) for name in plain.names])
    params = plain.base_params()
    size = plain.size
    runs: dict[str, Run] = {}
    estimated: dict[str, str] = {}

    def check(mode: str) -> Run:
        def call() -> Outcome:
            result = lk.check_model(model, x, y, mode=mode)
            return Outcome(result.verdict, result.evaluations)

        return call

    def layers() -> Outcome:
        return Outcome(lk.check_layers(model, x).verdict)

    def forward() -> Outcome:
        plain.loss(params)
        return Outcome("")

    runs["forward"] = forward
    if case.exact or (memory and case.memory_exact):
        runs["exact"] = check("exact")
    if case.exact:
        runs["layers"] = layers
    runs["sampled"] = check("sampled")
    runs["fast"] = check("fast")
    if case.exact:
        count = min(case.seed_coordinates or size, size)

        def seed() -> Outcome:
            start = time.process_time()
            difference = seed_loop(plain, grad, coordinates=count)
            elapsed = time.process_time() - start
            verdict = "pass" if difference <= 1.2e-7 else "fail"
            return Outcome(verdict, 2 * count, None if count == size else elapsed * size / count)

        runs["seed"] = seed
        if count < size:
            estimated["seed"] = f"on its first {count:,} of {size:,} coordinates, x P / {count:,}"
    if torch is not None:
        if case.exact:
            runs["torch_exact"] = torch_exact(torch, plain, case.torch_coordinates)
            if case.torch_coordinates is not None:
                estimated["torch_exact"] = "on a subset of the tensors, extrapolated to P"

        def torch_fast() -> Outcome:
            return Outcome("pass" if torch_gradcheck(torch, plain, fast=True) else "fail")

        runs["torch_fast"] = torch_fast
    return Prepared(case, plain, runs, estimated)


def torch_exact(torch: Any, plain: PlainMLP, budget: int | None) -> Run:
    """torch's exact gradcheck; with a ``budget``, on the smallest tensor alone and on a subset
    of about ``budget`` entries, extrapolated to ``P`` as fixed cost + per-entry cost x P."""
    if budget is None:

        def whole() -> Outcome:
            return Outcome("pass" if torch_gradcheck(torch, plain, fast=False) else "fail")

        return whole
    small, subset = torch_subset(plain, budget)
    sizes = [int(np.prod(shape)) for shape in plain.shapes]
    k_small = sum(sizes[index] for index in small)
    k_subset = sum(sizes[index] for index in subset)

    def part() -> Outcome:
        start = time.process_time()
        passed = torch_gradcheck(torch, plain, fast=False, tensors=small)
        middle = time.process_time()
        passed &= torch_gradcheck(torch, plain, fast=False, tensors=subset)
        end = time.process_time()
        fixed = middle - start
        per_entry = max(0.0, (end - middle) - fixed) / (k_subset - k_small)
        estimate = fixed + per_entry * (plain.size - k_small)
        return Outcome("pass" if passed else "fail", None, estimate)

    return part


def timed(run: Run) -> tuple[float, Outcome]:
    """CPU seconds of ``run`` (its own estimate when it gives one) and its outcome."""
    start = time.process_time()
    outcome = run()
    elapsed = time.process_time() - start
    return (elapsed if outcome.seconds is None else outcome.seconds), outcome


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


def skip_reason(key: str, case: Case, torch: Any | None, quick: bool) -> str:
    """Why method ``key`` does not run on ``case``."""
    if key.startswith("torch") and torch is None:
        return "skipped (torch not installed)"
    if quick and key in ("exact", "layers", "seed", "torch_exact"):
        return "not run (--quick)"
    return "not run"


def measure_case(
    case: Case, torch: Any | None, quick: bool, log: Callable[[str], None]
) -> CaseResult:
    """Time every method on ``case`` in this process: one untimed first call each, then the
    timed runs, interleaved round by round with blocks of plain forwards."""
    prepared = prepare(case, torch)
    plain = prepared.plain
    result = CaseResult(case=case, size=plain.size)
    log(f"{case.name}: P = {plain.size:,}, batch {plain.x.shape[0]}")
    runs = {key: run for key, run in prepared.runs.items() if key != "forward"}
    for key, _ in METHODS:
        if key in runs:
            result.methods[key] = Result(estimated=prepared.estimated.get(key))
        else:
            result.methods[key] = Result(skipped=skip_reason(key, case, torch, quick))
    for key, run in runs.items():  # first calls: lazy set-up, caches; the cold figure
        record = result.methods[key]
        record.first, outcome = timed(run)
        record.verdict, record.evaluations = outcome.verdict, outcome.evaluations
    repeats = {key: case.repeats_of(key) for key in runs}
    for round_index in range(max(repeats.values())):
        result.forward.append(time_forward(plain))
        for key, run in runs.items():
            if round_index >= repeats[key]:
                continue
            record = result.methods[key]
            seconds, outcome = timed(run)
            record.seconds.append(seconds)
            record.verdict, record.evaluations = outcome.verdict, outcome.evaluations
            if not quick:
                log(f"  {LABEL[key]:<20} {seconds:9.4f} s  {outcome.verdict}")
    result.forward.append(time_forward(plain))
    return result


# -- fresh processes: the mmap column and peak memory ------------------------------------------


def child_env(mmap: bool) -> dict[str, str]:
    """The environment of a child: one BLAS thread; glibc's malloc left alone, or with
    ``MALLOC_MMAP_THRESHOLD_`` set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"
    }
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = "1"
    if mmap:
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    return env


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def start_peak() -> tuple[int, str]:
    """Reset the resident-set high-water mark: ``(baseline kB, kind)``; kind ``hwm`` when the
    kernel allows the reset, else ``maxrss`` (the process's peak so far as the baseline)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _status_kb("VmRSS")
        if rss is not None and _status_kb("VmHWM") is not None:
            return rss, "hwm"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "maxrss"


def peak_since(baseline: int, kind: str) -> int:
    """Bytes the high-water mark rose since :func:`start_peak`."""
    if kind == "hwm":
        high = _status_kb("VmHWM") or baseline
    else:
        high = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, high - baseline) * 1024


def trim_heap() -> bool:
    """Give free heap memory back to the kernel (glibc's ``malloc_trim(0)``), so that a later
    peak counts every page a call touches, not only those beyond what earlier frees left
    resident. False where the C library has no such function."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


def child_main(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: one untimed call of the method on the fraud net, the model built,
    free heap memory returned to the kernel and the memory high-water mark reset, then
    ``calls`` timed calls on the case's model; the peak after the first call (one check's
    memory) and after all of them (what the calls keep alive until the garbage collector
    runs adds up)."""
    cases = QUICK_CASES if spec["quick"] else FULL_CASES
    case = next(case for case in cases if case.name == spec["case"])
    key = str(spec["method"])
    torch = load_torch() if key.startswith("torch") else None
    prepare(WARM_UP, torch).runs[key]()
    prepared = prepare(case, torch, memory=True)
    run = prepared.runs[key]
    gc.collect()
    trim_heap()
    baseline, kind = start_peak()
    seconds: list[float] = []
    verdicts: list[str] = []
    first = 0
    for _ in range(int(spec["calls"])):
        elapsed, outcome = timed(run)
        seconds.append(elapsed)
        verdicts.append(outcome.verdict)
        if len(seconds) == 1:
            first = peak_since(baseline, kind)
    return {
        "seconds": seconds,
        "peak": first,
        "peak_all": peak_since(baseline, kind),
        "kind": kind,
        "verdicts": verdicts,
    }


def run_child(case: Case, key: str, calls: int, quick: bool, mmap: bool) -> dict[str, Any]:
    """One child process; its JSON answer, or ``{"error": ...}``."""
    spec = {"case": case.name, "method": key, "calls": calls, "quick": quick}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(command, env=child_env(mmap), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    try:
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"no answer: {done.stdout[-500:]!r}"}
    if key in LAYERKIT and "fail" in answer["verdicts"]:
        answer["error"] = "a layerkit check failed the correct model"
    return answer


def isolate_case(
    result: CaseResult, torch: Any | None, quick: bool, log: Callable[[str], None]
) -> None:
    """Fresh-process measurements of every method run on ``result``'s model: layerkit's with
    and without the mmap threshold (the pair back to back, in alternating order), the others
    (and one plain forward) for their peak memory. ``--quick`` runs torch's in fresh processes
    on the fraud net only (its import alone takes seconds)."""
    case = result.case
    keys = ["forward"] + [key for key, _ in METHODS if result.methods[key].verdict is not None]
    if quick and case.name != FRAUD:
        keys = [key for key in keys if not key.startswith("torch")]
    order = 0
    for key in keys:
        layerkit = key in LAYERKIT
        calls = case.repeats_of(key) if layerkit else 1
        sides = (False, True) if layerkit else (False,)
        if layerkit and order % 2 == 1:
            sides = (True, False)
        order += layerkit
        iso = Isolated()
        for mmap in sides:
            answer = run_child(case, key, calls, quick, mmap)
            if "error" in answer:
                iso.error = answer["error"]
                log(f"  child {key} (mmap {mmap}): {iso.error}")
                break
            if mmap:
                iso.mmap_seconds = [float(s) for s in answer["seconds"]]
            else:
                iso.seconds = [float(s) for s in answer["seconds"]]
                iso.peak, iso.peak_kind = int(answer["peak"]), str(answer["kind"])
                iso.peak_all = int(answer["peak_all"])
        result.isolated[key] = iso
        _log_isolated(key, iso, quick, log)
    if case.memory_exact and not quick:  # one exact check, for its memory only
        answer = run_child(case, "exact", 1, quick, False)
        iso = Isolated()
        if "error" in answer:
            iso.error = answer["error"]
            log(f"  child exact (memory only): {iso.error}")
        else:
            iso.seconds = [float(s) for s in answer["seconds"]]
            iso.peak, iso.peak_kind = int(answer["peak"]), str(answer["kind"])
            iso.peak_all = int(answer["peak_all"])
            result.methods["exact"].verdict = answer["verdicts"][0]
        result.isolated["exact"] = iso
        _log_isolated("exact", iso, quick, log)


def _log_isolated(key: str, iso: Isolated, quick: bool, log: Callable[[str], None]) -> None:
    if not quick and iso.error is None:
        slowdown = iso.slowdown
        log(
            f"  isolated {key:<12} peak {(iso.peak or 0) / 1e6:8.1f} MB"
            + ("" if slowdown is None else f"  mmap slowdown {slowdown:.2f}x")
        )


# -- facts -------------------------------------------------------------------------------------


def machine(torch: Any | None) -> str:
    """Where the numbers were measured, in one line."""
    cpu = platform.processor() or "unknown CPU"
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1e6:.1f} GB RAM"
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    config: Any = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    libc = " ".join(platform.libc_ver()).strip() or "unknown libc"
    torch_version = "not installed" if torch is None else str(torch.__version__)
    return (
        f"{cpu}, {os.cpu_count()} cores ({usable} usable by this process){memory}; "
        f"{platform.system()} {platform.release()}, {libc}; Python "
        f"{platform.python_version()}, numpy {np.__version__} (BLAS: "
        f"{blas.get('name', '?')} {blas.get('version', '')}), torch {torch_version}, "
        f"layerkit {lk.__version__}; one BLAS/torch thread."
    )


def load_average() -> float | None:
    """The 1-minute load average, where the platform has one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# -- the plot ----------------------------------------------------------------------------------


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
            estimated.append(key != "floor" and r.estimated(key))
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


def writes_doc(*, quick: bool, no_write: bool, only: str | None) -> bool:
    """Only a full run of every model writes docs/benchmarks.md and the plot."""
    return not quick and not no_write and not only


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a layerkit check fails a correct model or a child
    process fails."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run, prints only")
    parser.add_argument("--only", default=None, help="run the models whose name contains this")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc and plot")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child_main(json.loads(args.child))))
        return 0
    started = time.perf_counter()
    load_start = load_average()
    torch = load_torch()
    if torch is None:
        print("torch: skipped (torch not installed)", file=sys.stderr)
    cases: tuple[Case, ...] = QUICK_CASES if args.quick else FULL_CASES
    if args.only:
        cases = tuple(case for case in cases if args.only in case.name)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    for run in prepare(WARM_UP, torch).runs.values():  # imports, lazy set-up, caches
        run()
    results = []
    for case in cases:
        result = measure_case(case, torch, args.quick, log)
        if case.isolate:
            isolate_case(result, torch, args.quick, log)
        results.append(result)
    load_end = load_average()
    facts = RunFacts(
        quick=args.quick,
        date=time.strftime("%Y-%m-%d"),
        wall=time.perf_counter() - started,
        machine=machine(torch),
        load=None if load_start is None or load_end is None else (load_start, load_end),
    )
    markdown = report(results, facts)
    print(markdown)
    if writes_doc(quick=args.quick, no_write=args.no_write, only=args.only):
        write_doc(markdown, DOC)
        plot(results, PLOT)
        log(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    failed = [
        f"{r.case.name}: {LABEL[key]}"
        for r in results
        for key in LAYERKIT
        if r.methods[key].verdict == "fail"
    ]
    failed += [
        f"{r.case.name}: {key} in a fresh process ({iso.error})"
        for r in results
        for key, iso in r.isolated.items()
        if iso.error is not None
    ]
    if failed:
        print("benchmark failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
