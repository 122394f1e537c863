"""The benchmark harness: its tables and targets from fake measurements, its fresh-process
protocol, and its reference implementations (timings are never asserted).

The benchmark itself does not run here: ``.ci/run`` runs ``benchmarks/run.py --quick``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import numpy as np
import pytest

import layerkit as lk

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_baselines() -> ModuleType:
    """benchmarks/baselines.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("baselines", BENCHMARKS / "baselines.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    """``(tables, run)``: the harness's modules, imported with benchmarks/ on the path (run.py
    sets no environment variable when imported)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("tables"), importlib.import_module("run")
    finally:
        sys.path.remove(str(BENCHMARKS))


def fake(
    tables: ModuleType,
    name: str,
    *,
    size: int = 1000,
    forward: float = 1e-3,
    times: dict[str, float] | None = None,
    verdicts: dict[str, str] | None = None,
    estimated: dict[str, str] | None = None,
    isolated: dict[str, Any] | None = None,
) -> Any:
    """A CaseResult with made-up numbers: ``T_floor = 2 * size * forward``."""
    result = tables.CaseResult(case=tables.Case(name, None, 3), size=size, forward=[forward])
    for key, _ in tables.METHODS:
        result.methods[key] = tables.Result(skipped="not run")
    for key, seconds in (times or {}).items():
        result.methods[key] = tables.Result(
            seconds=[seconds],
            first=seconds,
            verdict=(verdicts or {}).get(key, "pass"),
            evaluations=8,
            estimated=(estimated or {}).get(key),
        )
    result.isolated.update(isolated or {})
    return result


def status(tables: ModuleType, results: list[Any], starts: str) -> tuple[str, str]:
    """``(measured, status)`` of the one target whose text starts with ``starts``."""
    rows = [t for t in tables.targets(results) if t.target.startswith(starts)]
    assert len(rows) == 1, [t.target for t in tables.targets(results)]
    return rows[0].measured, rows[0].status


class TestTargets:
    """The targets table is computed from the measurements, met or missed by the numbers."""

    def test_nothing_measured(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Without results every target says 'not measured' (never 'met')."""
        tables, _ = bench
        rows = tables.targets([])
        assert len(rows) == 12
        assert {row.status for row in rows} == {"not measured"}

    def test_exact_against_the_floor(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """exact / T_floor against 0.08 (64-128-64-1) and 0.05 (256-256-128-1)."""
        tables, _ = bench
        mid = fake(tables, tables.MID, times={"exact": 0.1})  # floor 2 s: 0.05x
        big = fake(tables, tables.BIG, times={"exact": 0.2})  # 0.1x
        results = [mid, big]
        assert status(tables, results, "Exact check_model, 64-128-64-1") == ("0.050x", "met")
        assert status(tables, results, "Exact check_model, 256-256-128-1 (batch") == (
            "0.10x",
            "missed",
        )

    def test_torch_exact_ratio_marks_an_estimate(
        self, bench: tuple[ModuleType, ModuleType]
    ) -> None:
        """torch exact / exact >= 30; '~' when torch's time was extrapolated."""
        tables, _ = bench
        big = fake(
            tables,
            tables.BIG,
            times={"exact": 1.0, "torch_exact": 31.0},
            estimated={"torch_exact": "on a subset"},
        )
        assert status(tables, [big], "Exact check_model, 256-256-128-1: ≥ 30x") == (
            "~31.00x faster",
            "met",
        )

    def test_check_layers_needs_both_models(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """check_layers is judged on 64-128-64-1 and 256-256-128-1 together."""
        tables, _ = bench
        mid = fake(tables, tables.MID, times={"layers": 0.09})  # 0.045x
        big = fake(tables, tables.BIG, times={"layers": 0.11})  # 0.055x
        assert status(tables, [mid], "check_layers")[1] == "not measured"
        measured, verdict = status(tables, [mid, big], "check_layers")
        assert verdict == "missed"
        assert "0.045x on 64-128-64-1" in measured and "0.055x on 256-256-128-1" in measured
        big.methods["layers"].seconds = [0.1]
        assert status(tables, [mid, big], "check_layers")[1] == "met"

    def test_fraud_net(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Fraud net exact against its floor (0.35) and the seed's loop (0.25)."""
        tables, _ = bench
        fraud = fake(tables, tables.FRAUD, size=47, times={"exact": 0.03, "seed": 0.1})
        # floor: 2 * 47 * 1 ms = 94 ms
        assert status(tables, [fraud], "Fraud net, exact: ≤ 0.35x") == ("0.32x", "met")
        assert status(tables, [fraud], "Fraud net, exact: ≤ 0.25x") == ("0.30x", "missed")

    def test_fast_mode_needs_a_pass(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Fast within 0.7x of torch fast is met only with the verdict pass."""
        tables, _ = bench
        good = fake(tables, tables.HUGE, times={"fast": 0.3, "torch_fast": 0.5})
        unsure = fake(
            tables,
            tables.BIG_TANH,
            times={"fast": 0.3, "torch_fast": 0.5},
            verdicts={"fast": "inconclusive"},
        )
        slow = fake(tables, tables.BIG, times={"fast": 0.4, "torch_fast": 0.5})
        results = [good, unsure, slow]
        assert status(tables, results, "Fast mode, 512-1024-512-1:") == ("0.60x, pass", "met")
        assert status(tables, results, "Fast mode, 256-256-128-1 tanh") == (
            "0.60x, inconclusive",
            "missed",
        )
        assert status(tables, results, "Fast mode, 256-256-128-1:") == ("0.80x, pass", "missed")
        assert status(tables, results, "Fast mode, 512-1024-512-1 tanh")[1] == "not measured"

    def test_mmap_worst_slowdown(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """The worst slowdown over every method and model, named; 1.3x is the limit."""
        tables, _ = bench
        small = tables.Isolated(seconds=[1.0, 1.0], mmap_seconds=[1.1, 1.1])
        bad = tables.Isolated(seconds=[1.0], mmap_seconds=[1.4])
        memory_only = tables.Isolated(seconds=[1.0], peak=10)
        results = [
            fake(tables, "a", isolated={"fast": small, "seed": memory_only}),
            fake(tables, "b", isolated={"exact": bad}),
        ]
        measured, verdict = status(tables, results, "Any check with MALLOC_MMAP_THRESHOLD_")
        assert verdict == "missed"
        assert measured == "worst 1.40x (check_model exact, b; 2 checks measured)"
        results[1].isolated["exact"].mmap_seconds = [1.2]
        assert status(tables, results, "Any check with")[1] == "met"

    def test_memory_at_a_million_parameters(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """The sampled check's peak on the ~1M net against 50 MB plus the chunk buffers."""
        tables, _ = bench
        allowance = tables.MEMORY_BUDGET + tables.CHUNK_BUFFERS * tables.CHUNK_BYTES
        huge = fake(
            tables,
            tables.HUGE,
            isolated={"sampled": tables.Isolated(seconds=[1.0], peak=int(allowance) - 1)},
        )
        measured, verdict = status(tables, [huge], "Memory:")
        assert verdict == "met"
        assert measured == f"check_model sampled: {(allowance - 1) / 1e6:.1f} MB one check"
        huge.isolated["sampled"].seconds = [1.0, 1.0]
        huge.isolated["sampled"].peak_all = 2 * int(allowance)  # judged on one check's peak
        measured, verdict = status(tables, [huge], "Memory:")
        assert verdict == "met"
        assert measured.endswith(f"({2 * allowance / 1e6:.1f} MB over 2 calls)")
        huge.isolated["sampled"].peak = int(allowance) + 1
        assert status(tables, [huge], "Memory:")[1] == "missed"

    def test_memory_of_the_exact_check_counts_too(
        self, bench: tuple[ModuleType, ModuleType]
    ) -> None:
        """An exact check run for its memory only is judged beside the sampled one, and the
        page says it was run that way."""
        tables, _ = bench
        allowance = tables.MEMORY_BUDGET + tables.CHUNK_BUFFERS * tables.CHUNK_BYTES
        huge = fake(
            tables,
            tables.HUGE,
            isolated={
                "sampled": tables.Isolated(seconds=[1.0], peak=int(allowance) - 1),
                "exact": tables.Isolated(seconds=[80.0], peak=int(allowance) + 1),
            },
        )
        huge.case = attrs.evolve(huge.case, memory_exact=True)
        measured, verdict = status(tables, [huge], "Memory:")
        assert verdict == "missed"
        assert measured.startswith(f"check_model exact: {(allowance + 1) / 1e6:.1f} MB")
        note = tables._memory_exact_note([huge])
        assert "exact check ran once" in note and "80.00 s" in note


class TestPage:
    """The generated page states how it was measured and has every table and model."""

    def results(self, tables: ModuleType) -> list[Any]:
        iso = tables.Isolated(seconds=[0.01, 0.012], mmap_seconds=[0.011, 0.013], peak=2_500_000)
        return [
            fake(
                tables,
                tables.FRAUD,
                size=47,
                times={"exact": 0.006, "seed": 0.015, "fast": 0.007, "torch_fast": 0.009},
                isolated={"exact": iso, "forward": tables.Isolated(seconds=[1e-4], peak=0)},
            ),
            fake(
                tables,
                tables.BIG,
                size=98_817,
                times={"exact": 120.0, "seed": 450.0, "torch_exact": 700.0},
                estimated={"seed": "part", "torch_exact": "part"},
            ),
        ]

    def test_states_the_protocol(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Command, date, wall time, machine, load, runs, warm and interleaved are stated."""
        tables, _ = bench
        facts = tables.RunFacts(
            quick=False, date="2026-12-03", wall=754.0, machine="MACHINE FACTS.", load=(1.5, 2.0)
        )
        text = tables.report(self.results(tables), facts)
        assert "Measured by `python benchmarks/run.py` (full run) on 2026-12-03" in text
        assert "the run took 12.6 min of wall time" in text
        assert "MACHINE FACTS." in text and "1.50 at the start, 2.00 at the end" in text
        assert "**warm**" in text and "**interleaved**" in text and "cold" in text
        assert "fraud net 4-5-3-1 3 / 5; 256-256-128-1 3 / 5" in text  # timed runs per model
        quick = tables.report([], tables.RunFacts(True, "2026-12-03", 30.0, "M.", None))
        assert "`python benchmarks/run.py --quick` (quick run)" in quick

    def test_every_table_and_model(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Each header once; each model in the six per-model tables."""
        tables, _ = bench
        facts = tables.RunFacts(False, "2026-12-03", 1.0, "M.", None)
        text = tables.report(self.results(tables), facts)
        for header in (
            "### Targets",
            "### Median CPU time (warm)",
            "### Ratios",
            "### First call on each model (cold)",
            "### Verdicts",
            "### With MALLOC_MMAP_THRESHOLD_=131072",
            "### Peak memory (MB)",
        ):
            assert text.count(header) == 1, header
        for name in (tables.FRAUD, tables.BIG):
            assert text.count(f"| {name} |") == 6, name

    def test_cells(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """Estimates carry '~'; the mmap cell gives ratio, medians and calls; peaks in MB, with
        the peak over all calls when it is more than one call's."""
        tables, _ = bench
        results = self.results(tables)
        assert "| ~450.00 s | ~11.7 min |" in tables.times_table(results)
        ratios = tables.ratios_table(results)
        assert "| ~0.27 | ~5.83 | — | — |" in ratios  # exact / seed's loop, torch exact / exact
        assert "1.09x (11.0 ms → 12.0 ms, 2 + 2 calls)" in tables.mmap_table(results)
        memory = tables.memory_table(results)
        assert "| fraud net 4-5-3-1 | 47 | 0.0 | 2.5 |" in memory
        growing = tables.Isolated(seconds=[1.0] * 3, peak=10_000_000, peak_all=40_000_000)
        steady = tables.Isolated(seconds=[1.0] * 3, peak=10_000_000, peak_all=11_000_000)
        results[1].isolated.update(fast=growing, sampled=steady)
        assert "| 10.0 | 10.0 (40.0 over 3 calls) |" in tables.memory_table(results)
        failed = tables.Isolated(error="exit 1")
        results[1].isolated["exact"] = failed
        assert "| error |" in tables.mmap_table(results)
        assert "| error |" in tables.memory_table(results)

    def test_formatting(self, bench: tuple[ModuleType, ModuleType]) -> None:
        tables, _ = bench
        assert tables.fmt_time(None) == "—"
        assert tables.fmt_time(5e-5) == "50 µs"
        assert tables.fmt_time(0.0123, estimated=True) == "~12.3 ms"
        assert tables.fmt_time(12.345) == "12.35 s"
        assert tables.fmt_time(900.0) == "15.0 min"
        assert tables.fmt_ratio(0.05) == "0.050"
        assert tables.fmt_ratio(1.234) == "1.23"
        assert tables.ratio(1.0, 0.0) is None
        assert tables.ratio(None, 1.0) is None

    def test_write_doc_replaces_only_the_generated_block(
        self, bench: tuple[ModuleType, ModuleType], tmp_path: Path
    ) -> None:
        """Text before and after the markers is kept; a missing page is created."""
        tables, _ = bench
        page = tmp_path / "b.md"
        page.write_text(f"# Title\n\nprose\n\n{tables.BEGIN}\nold\n{tables.END}\n\ntail\n")
        tables.write_doc("NEW", page)
        text = page.read_text()
        assert text.startswith("# Title\n\nprose\n\n") and text.endswith("\n\ntail\n")
        assert "old" not in text and f"{tables.BEGIN}\n\nNEW\n\n{tables.END}" in text
        fresh = tmp_path / "new.md"
        tables.write_doc("NEW", fresh)
        assert "NEW" in fresh.read_text()


class TestHarness:
    """What run.py decides and the one fresh-process call it makes per method and side."""

    def test_only_a_full_run_writes_the_page(self, bench: tuple[ModuleType, ModuleType]) -> None:
        _, run = bench
        assert run.writes_doc(quick=False, no_write=False, only=None)
        assert not run.writes_doc(quick=True, no_write=False, only=None)
        assert not run.writes_doc(quick=False, no_write=True, only=None)
        assert not run.writes_doc(quick=False, no_write=False, only="fraud")

    def test_child_environments(
        self, bench: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One BLAS thread on both sides; the threshold only on the mmap side, and no inherited
        malloc setting on the default side."""
        tables, run = bench
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
        monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1")
        default, mmap = run.child_env(False), run.child_env(True)
        for env in (default, mmap):
            assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
            assert "MALLOC_TRIM_THRESHOLD_" not in env and "GLIBC_TUNABLES" not in env
        assert "MALLOC_MMAP_THRESHOLD_" not in default
        assert mmap["MALLOC_MMAP_THRESHOLD_"] == str(tables.MMAP_THRESHOLD)

    def test_a_child_answers(self, bench: tuple[ModuleType, ModuleType]) -> None:
        """A fresh process with the threshold set times the fraud net's sampled check and
        reports its verdict and a peak."""
        tables, run = bench
        case = next(case for case in run.QUICK_CASES if case.name == tables.FRAUD)
        answer = run.run_child(case, "sampled", 2, True, True)
        assert "error" not in answer, answer
        assert len(answer["seconds"]) == 2 and all(s > 0 for s in answer["seconds"])
        assert answer["verdicts"] == ["pass", "pass"]
        assert answer["peak"] >= 0 and answer["kind"] in ("hwm", "maxrss")


class TestBaselines:
    """The floor's forward, the seed's loop and the torch function are the model's own."""

    def test_plain_forward_is_the_models_loss(self) -> None:
        """PlainMLP.loss at the point equals Sequential.loss_value (to rounding)."""
        baselines = load_baselines()
        model = lk.mlp((20, 32, 16, 1), seed=3)
        rng = np.random.default_rng(4)
        x = rng.standard_normal((9, 20))
        y = (rng.random((9, 1)) > 0.5).astype(float)
        plain = baselines.PlainMLP.of(model, x, y)
        assert plain.size == model.param_spec.size
        assert plain.loss(plain.base_params()) == pytest.approx(model.loss_value(x, y), rel=1e-13)

    def test_unroll_matches_the_model_parameters(self) -> None:
        """unroll(theta) gives back every parameter array, in the model's order."""
        baselines = load_baselines()
        case = lk.fraud_net_seed_case()
        plain = baselines.PlainMLP.of(case.model, case.x, case.y)
        unrolled = plain.unroll(plain.theta.reshape(-1, 1))
        assert list(unrolled) == list(case.model.params())
        for name, array in case.model.params().items():
            np.testing.assert_array_equal(unrolled[name], array)

    def test_seed_loop_passes_the_correct_gradient(self) -> None:
        """The seed's difference on the fraud net's true gradient is far below its 1.2e-7."""
        baselines = load_baselines()
        case = lk.fraud_net_seed_case()
        plain = baselines.PlainMLP.of(case.model, case.x, case.y)
        _, grads = case.model.loss_and_grad(case.x, case.y)
        grad = np.concatenate([np.ravel(grads[name]) for name in plain.names])
        assert baselines.seed_loop(plain, grad) < 1e-7

    def test_seed_loop_flags_a_wrong_entry(self) -> None:
        """One gradient entry off by 0.1 gives a difference well above the threshold."""
        baselines = load_baselines()
        case = lk.fraud_net_seed_case()
        plain = baselines.PlainMLP.of(case.model, case.x, case.y)
        _, grads = case.model.loss_and_grad(case.x, case.y)
        grad = np.concatenate([np.ravel(grads[name]) for name in plain.names])
        grad[7] += 0.1
        assert baselines.seed_loop(plain, grad) > 1e-3
        assert baselines.seed_loop(plain, grad, coordinates=5) < 1e-7  # entry 7 not checked

    def test_tanh_forward_is_the_models_loss(self) -> None:
        """With Tanh between the layers, PlainMLP.loss is still the model's loss."""
        baselines = load_baselines()
        model = lk.Sequential(
            lk.Linear(5, 4, seed=1),
            lk.Tanh(),
            lk.Linear(4, 1, seed=2),
            lk.Sigmoid(),
            loss=lk.BCELoss(),
        )
        x = np.random.default_rng(5).standard_normal((6, 5))
        y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0]])
        plain = baselines.PlainMLP.of(model, x, y)
        assert plain.activation == "tanh"
        assert plain.loss(plain.base_params()) == pytest.approx(model.loss_value(x, y), rel=1e-13)

    def test_refuses_other_architectures(self) -> None:
        """Mixed activations, or a layer it does not know, are refused, not mis-measured."""
        baselines = load_baselines()
        mixed = lk.Sequential(
            lk.Linear(3, 4),
            lk.ReLU(),
            lk.Linear(4, 2),
            lk.Tanh(),
            lk.Linear(2, 1),
            lk.Sigmoid(),
            loss=lk.BCELoss(),
        )
        dropout = lk.Sequential(
            lk.Linear(3, 2), lk.Dropout(0.5), lk.Linear(2, 1), lk.Sigmoid(), loss=lk.BCELoss()
        )
        for model in (mixed, dropout):
            with pytest.raises(ValueError, match="PlainMLP"):
                baselines.PlainMLP.of(model, np.zeros((2, 3)), np.zeros((2, 1)))

    def test_torch_is_optional_and_computes_the_same_loss(self) -> None:
        """Without torch, load_torch() is None; with it, the torch loss equals the model's and
        torch's gradcheck (exact and fast) passes it."""
        baselines = load_baselines()
        torch = baselines.load_torch()
        if not torch_installed():
            assert torch is None
            return
        case = lk.fraud_net_seed_case()
        plain = baselines.PlainMLP.of(case.model, case.x, case.y)
        loss, inputs = baselines.torch_loss(torch, plain)
        assert float(loss(*inputs).item()) == pytest.approx(
            case.model.loss_value(case.x, case.y), rel=1e-13
        )
        assert baselines.torch_gradcheck(torch, plain, fast=False)
        assert baselines.torch_gradcheck(torch, plain, fast=True)

    def test_torch_subset(self) -> None:
        """The smallest tensor alone, and the smallest tensors within the budget (two at least)."""
        baselines = load_baselines()
        model = lk.mlp((256, 256, 128, 1), seed=0)
        plain = baselines.PlainMLP.of(model, np.zeros((2, 256)), np.zeros((2, 1)))
        small, subset = baselines.torch_subset(plain, 1000)
        assert small == (5,)  # b3
        assert subset == (1, 3, 4, 5)  # b1, b2, W3, b3: 513 entries; W2 would pass 1000
        assert baselines.torch_subset(plain, 1) == ((5,), (3, 5))

    def test_torch_on_a_subset(self) -> None:
        """With some tensors held constant, the torch loss is unchanged and gradcheck passes."""
        baselines = load_baselines()
        torch = baselines.load_torch()
        if not torch_installed():
            return
        case = lk.fraud_net_seed_case()
        plain = baselines.PlainMLP.of(case.model, case.x, case.y)
        loss, inputs = baselines.torch_loss(torch, plain, (1, 4))
        assert len(inputs) == 2
        assert float(loss(*inputs).item()) == pytest.approx(
            case.model.loss_value(case.x, case.y), rel=1e-13
        )
        assert baselines.torch_gradcheck(torch, plain, fast=False, tensors=(1, 4))
