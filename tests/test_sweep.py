"""The step-size sweep: a fixed-step central difference's error against its step."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import layerkit as lk
from layerkit._typing import Array
from layerkit.errors import ConfigError
from layerkit.gradcheck import DEFAULT_STEP
from layerkit.layers import Linear, ReLU, Sigmoid
from layerkit.losses import BCELoss
from layerkit.sweep import SweepResult, default_steps, step_sweep
from layerkit.testing import inject_seed_bugs


def brute_force_difference(model: lk.Sequential, x: Array, y: Array, h: float) -> float:
    """The seed's gradient_check_n on a model, written out: flat vector, one entry at a time."""
    theta = model.flatten().astype(np.float64)
    work = model.copy()
    numeric = np.empty_like(theta)
    for i in range(theta.shape[0]):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += h
        minus[i] -= h
        work.unflatten(plus)
        f_plus = work.loss_value(x, y)
        work.unflatten(minus)
        f_minus = work.loss_value(x, y)
        numeric[i] = (f_plus - f_minus) / (2 * h)
    _, grads = model.loss_and_grad(x, y)
    grad = np.concatenate([grads[n].reshape(-1) for n in model.param_spec.names])
    return float(np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric)))


@pytest.fixture(scope="module")
def seed_sweep() -> SweepResult:
    """The sweep of the seed's fraud-net case over the default steps."""
    case = lk.fraud_net_seed_case()
    return step_sweep(case.model, case.x, case.y)


class TestDefaultSteps:
    def test_log_spaced_from_1e_1_to_1e_13_with_the_default_step(self) -> None:
        """25 log-spaced steps, decreasing, plus eps^(1/3)."""
        steps = default_steps()
        assert len(steps) == 26
        assert steps[0] == pytest.approx(1e-1) and steps[-1] == pytest.approx(1e-13)
        assert list(steps) == sorted(steps, reverse=True)
        assert DEFAULT_STEP in steps
        grid = [h for h in steps if h != DEFAULT_STEP]
        ratios = np.diff(np.log10(grid))
        np.testing.assert_allclose(ratios, -0.5)

    @pytest.mark.parametrize("count", [1, 0, 2.5, True])
    def test_refuses_fewer_than_two_points(self, count: int) -> None:
        """A grid needs two or more points; the message names 'count'."""
        with pytest.raises(ConfigError, match="'count'"):
            default_steps(count)


class TestStepSweep:
    def test_v_shape_on_the_seed_case(self, seed_sweep: SweepResult) -> None:
        """Truncation on the large side, round-off on the small side, a floor in between."""
        d = seed_sweep.difference
        best = seed_sweep.best_index
        assert best is not None and 0 < best < len(d) - 1
        assert d[best] < 1e-4 * d[0] and d[best] < 1e-4 * d[-1]
        # Theory puts the floor near eps^(1/3), within a couple of decades.
        assert 1e-8 < seed_sweep.steps[best] < 1e-3

    def test_truncation_error_falls_as_h_squared(self, seed_sweep: SweepResult) -> None:
        """Central differences: 10x smaller h, about 100x smaller error (forward ones: 10x)."""
        by_step = dict(zip(seed_sweep.steps, seed_sweep.difference, strict=True))
        large = next(h for h in seed_sweep.steps if math.isclose(h, 1e-3))
        small = next(h for h in seed_sweep.steps if math.isclose(h, 1e-4))
        assert 30 < by_step[large] / by_step[small] < 300

    def test_roundoff_grows_as_h_shrinks(self, seed_sweep: SweepResult) -> None:
        """Below the floor the error grows as the step shrinks (about eps / h)."""
        by_step = dict(zip(seed_sweep.steps, seed_sweep.difference, strict=True))
        at = {e: next(v for h, v in by_step.items() if math.isclose(h, 10.0**e)) for e in (-7, -13)}
        assert at[-13] > 1e3 * at[-7]

    def test_difference_is_the_seeds_formula(self) -> None:
        """Each difference equals the seed's algorithm written out, at that step."""
        case = lk.fraud_net_seed_case()
        steps = [1e-2, 1e-5, 1e-9]
        result = step_sweep(case.model, case.x, case.y, steps)
        assert result.steps == tuple(steps)
        for h, value in zip(steps, result.difference, strict=True):
            assert value == pytest.approx(brute_force_difference(case.model, case.x, case.y, h))

    def test_max_rel_error_bounds_the_difference(self, seed_sweep: SweepResult) -> None:
        """The worst entry is never better than the norm-wide difference."""
        for diff, worst in zip(seed_sweep.difference, seed_sweep.max_rel_error, strict=True):
            assert worst >= diff

    def test_the_seed_bugs_keep_the_error_high_at_every_step(self) -> None:
        """A wrong gradient is no step-size problem: no step brings it near zero."""
        case = lk.fraud_net_seed_case()
        result = step_sweep(inject_seed_bugs(case.model), case.x, case.y, default_steps(6))
        assert min(result.difference) > 0.1

    def test_entries_with_zero_gradient_give_zero_relative_error(self) -> None:
        """A dead unit's entries (analytic and numeric both exactly 0) do not read as NaN."""
        first = Linear.from_arrays([[1.0, 0.5], [0.3, -0.2]], [-100.0, 0.1])
        model = lk.Sequential(
            first, ReLU(), Linear.from_arrays([[0.7, -0.4]]), Sigmoid(), loss=BCELoss()
        )
        x = np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]])
        y = np.array([[1.0], [0.0], [1.0]])
        result = step_sweep(model, x, y, [1e-2, 1e-6])
        assert all(math.isfinite(r) for r in result.max_rel_error)
        assert max(result.max_rel_error) < 1e-3

    def test_model_is_left_untouched(self) -> None:
        """The sweep runs on a float64 copy: parameters and dtype stay as they were."""
        case = lk.fraud_net_seed_case()
        model = case.model.astype(np.float32)
        before = {n: a.copy() for n, a in model.params().items()}
        step_sweep(model, case.x, case.y, [1e-3])
        for name, array in model.params().items():
            assert array.dtype == np.float32
            np.testing.assert_array_equal(array, before[name])

    def test_counts_every_parameter(self, seed_sweep: SweepResult) -> None:
        """The seed's net has 47 parameters; the loss is the seed's cost at its point."""
        assert seed_sweep.parameters == 47
        assert seed_sweep.loss == pytest.approx(2.407833389834357, rel=1e-12)

    @pytest.mark.parametrize("steps", [[], [0.0], [-1e-3], [math.nan], [math.inf], ["abc"]])
    def test_refuses_bad_steps(self, steps: list[float]) -> None:
        """Steps must be positive finite numbers; the message names 'steps'."""
        case = lk.fraud_net_seed_case()
        with pytest.raises(ConfigError, match="'steps'"):
            step_sweep(case.model, case.x, case.y, steps)

    def test_refuses_a_non_model(self) -> None:
        """Only a Sequential can be swept; the message says what came."""
        case = lk.fraud_net_seed_case()
        with pytest.raises(ConfigError, match="Sequential, got Linear"):
            step_sweep(case.model[0], case.x, case.y)  # type: ignore[arg-type]


class TestSweepResult:
    def make(self, difference: tuple[float, ...]) -> SweepResult:
        return SweepResult(
            steps=(1e-1, 1e-5, 1e-9)[: len(difference)],
            difference=difference,
            max_rel_error=difference,
            parameters=3,
            loss=1.0,
            analytic_norm=2.0,
        )

    def test_best_step_skips_nan(self) -> None:
        """The minimum is over finite values only."""
        result = self.make((1e-3, math.nan, 1e-6))
        assert result.best_index == 2 and result.best_step == 1e-9

    def test_no_finite_value_has_no_best_step(self) -> None:
        """All-NaN: no minimum, and JSON still valid."""
        result = self.make((math.nan, math.nan))
        assert result.best_index is None and result.best_step is None
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert data["best_step"] is None and data["points"][0]["difference"] == "nan"

    def test_to_dict_has_one_point_per_step(self, seed_sweep: SweepResult) -> None:
        """JSON-ready: one point per step, the default step and the best step."""
        data = json.loads(json.dumps(seed_sweep.to_dict(), allow_nan=False))
        assert [p["step"] for p in data["points"]] == list(seed_sweep.steps)
        assert data["default_step"] == DEFAULT_STEP
        assert data["best_step"] == seed_sweep.best_step
        assert data["parameters"] == 47
