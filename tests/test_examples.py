"""Every script in examples/ runs to the end and prints the verdicts it promises."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 300  # seconds; each runs in about one, but the machine is shared

# Lines (regular expressions) each example must print, in this order.
EXPECTED: dict[str, list[str]] = {
    "01_one_dimensional_check.py": [
        r"^The gradient is correct!$",
        r"^difference = 2\.9193\d*e-10 ",
        r"^gradient check of function: PASS",
        r"^verdict: pass$",
        r"^gradient check of function: FAIL",
        r"^  theta\[\]: analytic \+3\.0+e\+00  numeric \+2\.0+e\+00",
        r"^verdict: fail$",
        r"^The gradient is wrong!$",
        r"^difference = nan$",
        r"^layerkit verdict at x = 0: pass$",
    ],
    "02_fraud_net_bug_hunt.py": [
        r"^There is a mistake in the backward propagation! difference = 0\.2850931",
        r"^gradient check of function: FAIL",
        r"^failing tensors: b1, W2$",
        r"^gradient check of model \(6 layers\): FAIL",
        r"^culprit layer\(s\): layer 0 \(SeedStyleLinear\(4->5\)\), layer 2 \(SeedStyleLinear\(5->3\)\)$",
        r"^failing tensors: b1, W2$",
        r"^per-layer check: fail; first faulty layer: layer 0 \(SeedStyleLinear\(4->5\)\)$",
        r"^check_model, fixed layers: pass ",
        r"^check_function, fixed backward, cost from logits: pass$",
        r"^check_function, fixed backward, the seed's cost: (pass|inconclusive)$",
    ],
    "03_custom_layer_debugging.py": [
        r"^check_model: pass  <- beta = 1",
        r"^gradient check of model \(4 layers\): FAIL",
        r"^W1 .* fail \[\d+ failing\]",
        r"^beta2 .* pass",
        r"^culprit layer\(s\): layer 1 \(Swish\(6\)\)$",
        r"^check_layers: fail; first faulty layer: layer 1 \(Swish\(6\)\)$",
        r"^x .* fail \[\d+ failing\]",
        r"^check_model: pass \(difference",
        r"^check_layers: pass$",
    ],
    "04_fraud_detector.py": [
        r"^2000 transactions, 5\.0% fraud; train 1400, test 600$",
        r"^gradient check on 32 rows: pass ",
        r"^training loss: epoch 1 ",
        r"^ROC-AUC: ",
    ],
    "05_dropout_checked.py": [
        r"^seed 0: \d+% of hidden units dropped -> pass$",
        r"^seed 1: \d+% of hidden units dropped -> pass$",
        r"^a dropout whose backward forgets the mask: fail; failing tensors W1, b1; "
        r"culprit layer 2 \(Dropout\(0\.3\)\)$",
        r"^fixed masks: pass ",
        r"^NondeterministicError: the loss gave .* nondeterministic",
    ],
    "06_regression_mse.py": [
        r"^  loss: MSELoss\(\)   total params: 721$",
        r"^training MSE: epoch 1 0\.\d+, epoch 80 0\.00\d+$",
        r"^test MSE 0\.0\d+ vs 0\.7\d+ for always predicting the mean$",
        r"^gradient check of the trained net on 32 rows: pass ",
    ],
    "07_three_class_softmax.py": [
        r"^  loss: SoftmaxCrossEntropyLoss\(\)   total params: 747$",
        r"^labels and one-hot rows give the same loss: True$",
        r"^training loss: epoch 1 1\.\d+, epoch 60 0\.0\d+$",
        r"^test accuracy: 9\d\.\d%|^test accuracy: 100\.0%",
        r"^gradient check of the trained net on 30 rows: pass ",
    ],
}


def run_example(name: str) -> str:
    """Run ``examples/<name>`` in a fresh interpreter; fail with its output unless it exits 0."""
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=EXAMPLES.parent,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>`` as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{name[:2]}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestExamples:
    """Each example exits 0 and prints its key lines in order."""

    def test_every_example_is_covered(self) -> None:
        """No script in examples/ escapes this file."""
        assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_runs_and_prints(self, name: str) -> None:
        """Exit code 0; every expected line appears, in order."""
        lines = run_example(name).splitlines()
        position = 0
        for pattern in EXPECTED[name]:
            found = next(
                (i for i in range(position, len(lines)) if re.search(pattern, lines[i])), None
            )
            assert found is not None, f"{name}: no line matching {pattern!r} after line {position}"
            position = found + 1

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_has_main(self, name: str) -> None:
        """A typed main() behind the __main__ guard, and a docstring saying how to run it."""
        source = (EXAMPLES / name).read_text()
        assert "\ndef main() -> None:\n" in source
        assert source.rstrip().endswith('if __name__ == "__main__":\n    main()')
        assert f"python examples/{name}" in source


class TestFraudDetectorMetrics:
    """The metrics example 04 computes by hand, and the quality it reaches."""

    @staticmethod
    def brute_force_auc(scores: npt.NDArray[np.float64], labels: npt.NDArray[np.float64]) -> float:
        """P(score of a positive > score of a negative), ties counting half, over all pairs."""
        pos, neg = scores[labels == 1], scores[labels == 0]
        wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
        return wins / (len(pos) * len(neg))

    def test_roc_auc_matches_pairs(self) -> None:
        """roc_auc equals the pairwise definition, with and without ties."""
        roc_auc: Callable[..., float] = load_example("04_fraud_detector.py").roc_auc
        rng = np.random.default_rng(11)
        for size in (7, 40):
            labels = (rng.random(size) < 0.3).astype(np.float64)
            labels[:2] = (0.0, 1.0)
            continuous = rng.standard_normal(size)
            tied = np.round(rng.standard_normal(size))  # many ties
            for scores in (continuous, tied):
                expected = self.brute_force_auc(scores, labels)
                assert roc_auc(scores, labels) == pytest.approx(expected, abs=1e-12)
        labels = np.array([0.0, 0.0, 1.0, 1.0])
        assert roc_auc(np.array([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
        assert roc_auc(np.array([0.4, 0.3, 0.2, 0.1]), labels) == 0.0

    def test_precision_recall(self) -> None:
        """Precision and recall from counts; nothing flagged gives NaN precision."""
        precision_recall: Callable[..., tuple[float, float]] = load_example(
            "04_fraud_detector.py"
        ).precision_recall
        labels = np.array([[1.0], [1.0], [0.0], [0.0], [1.0]])
        flagged = np.array([True, False, True, False, True])
        assert precision_recall(flagged, labels) == (2 / 3, 2 / 3)
        precision, recall = precision_recall(np.zeros(5, dtype=bool), labels)
        assert np.isnan(precision) and recall == 0.0

    def test_data_and_learning(self) -> None:
        """5% fraud, reproducible data; the trained model ranks held-out fraud well (AUC > 0.85)."""
        module = load_example("04_fraud_detector.py")
        x, y = module.make_transactions()
        x_again, _ = module.make_transactions()
        assert x.shape == (2000, 6) and y.shape == (2000, 1)
        assert y.mean() == pytest.approx(0.05, abs=0.002)
        np.testing.assert_array_equal(x, x_again)
        output = run_example("04_fraud_detector.py")
        auc = float(re.findall(r"^ROC-AUC: ([0-9.]+)$", output, flags=re.MULTILINE)[0])
        assert 0.85 < auc <= 1.0
        for precision, recall in re.findall(r"precision ([0-9.]+)  recall ([0-9.]+)", output):
            assert 0.0 < float(precision) <= 1.0 and 0.0 < float(recall) <= 1.0
