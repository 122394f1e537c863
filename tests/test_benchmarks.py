"""The benchmark: its --quick run works, and its reference implementations compute the right
things (timings are never asserted)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import layerkit as lk

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MODELS = ("fraud net 4-5-3-1", "20-32-16-1", "64-128-64-1", "256-256-128-1", "1024-896-128-1")
HEADERS = (
    "### Targets",
    "### Median CPU time",
    "### Ratios",
    "### Verdicts",
    "### Peak extra memory",
)


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
def quick_run() -> subprocess.CompletedProcess[str]:
    """One ``python benchmarks/run.py --quick`` run, shared by the tests that read it."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


class TestQuickRun:
    """``benchmarks/run.py --quick`` runs and prints every table for every model."""

    def test_exits_zero(self, quick_run: subprocess.CompletedProcess[str]) -> None:
        """Exit status 0 (no layerkit check failed a correct model)."""
        assert quick_run.returncode == 0, quick_run.stderr[-3000:]

    def test_prints_every_table_and_model(
        self, quick_run: subprocess.CompletedProcess[str]
    ) -> None:
        """Each table header once, and each model in each of the four per-model tables."""
        for header in HEADERS:
            assert quick_run.stdout.count(header) == 1, header
        for name in MODELS:
            assert quick_run.stdout.count(f"| {name} |") == 4, name

    def test_every_layerkit_check_has_a_verdict(
        self, quick_run: subprocess.CompletedProcess[str]
    ) -> None:
        """Sampled and fast mode run on every model, even in the quick run."""
        verdicts = quick_run.stdout.split("### Verdicts", 1)[1].split("###", 1)[0]
        rows = [
            line for line in verdicts.splitlines() if line.startswith("| ") and "---" not in line
        ]
        assert len(rows) == len(MODELS) + 1  # header and one row per model
        for row in rows[1:]:
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            sampled, fast = cells[3], cells[4]
            assert sampled in ("pass", "inconclusive"), row
            assert fast in ("pass", "inconclusive"), row

    def test_says_when_torch_is_missing(self, quick_run: subprocess.CompletedProcess[str]) -> None:
        """Without torch the torch columns read 'skipped (torch not installed)'."""
        if torch_installed():
            assert "skipped (torch not installed)" not in quick_run.stdout
        else:
            assert "skipped (torch not installed)" in quick_run.stdout

    def test_writes_nothing(self, quick_run: subprocess.CompletedProcess[str]) -> None:
        """The quick run only prints (the doc is written by full runs)."""
        assert "wrote docs/benchmarks.md" not in quick_run.stderr


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
