"""The gradient checker's acceptance: seed case, seed bugs, small bugs, kinks, noise, modes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layerkit as lk
from layerkit import notebook as nb
from layerkit._typing import Array, Float64Array
from layerkit.errors import ConfigError, NondeterministicError, UserCodeError
from layerkit.gradcheck import check_function, check_layer, check_layers, check_model
from layerkit.gradcheck.probes import DEFAULT_STEP
from layerkit.layers import Dropout, Linear, ReLU, Sigmoid, Tanh
from layerkit.losses import BCELoss, MSELoss
from layerkit.testing import ScaledGradLinear, assert_gradients_ok, inject_seed_bugs

LossFn = Callable[[dict[str, Float64Array]], float]
GradFn = Callable[[dict[str, Float64Array]], dict[str, Array]]


def seed_model_with(bugs: Mapping[int, ScaledGradLinear]) -> lk.Sequential:
    """The seed's fraud net with the Linear at each given position replaced."""
    case = lk.fraud_net_seed_case()
    layers = [bugs.get(i, layer) for i, layer in enumerate(case.model.layers)]
    return lk.Sequential(layers, loss=BCELoss())


def seed_bugged() -> lk.Sequential:
    """The seed notebook's two planted bugs: dW2 doubled, db1 times four."""
    return inject_seed_bugs(lk.fraud_net_seed_case().model)


def notebook_functions(bugged: bool) -> tuple[LossFn, GradFn, dict[str, Array]]:
    """The seed's dict-based loss and gradient, as check_function takes them."""
    X, Y, params = nb.gradient_check_n_test_case()
    backward = nb.backward_propagation_n_with_seed_bugs if bugged else nb.backward_propagation_n

    def loss(p: dict[str, Float64Array]) -> float:
        return float(nb.forward_propagation_n(X, Y, p)[0])

    def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
        _, cache = nb.forward_propagation_n(X, Y, p)
        g = backward(X, Y, cache)
        return {name: g["d" + name] for name in p}

    return loss, grad, params


class TestSeedCase:
    """The seed's fraud net with a correct backward."""

    def test_passes_with_difference_1000x_below_the_seed(self) -> None:
        """Pass, and the seed's formula (3) gives <= 1e-10 (the seed's own check: 1.19e-7)."""
        case = lk.fraud_net_seed_case()
        report = check_model(case.model, case.x, case.y)
        assert report.verdict == "pass"
        assert report.difference <= 1e-10
        assert [t.name for t in report.tensors] == ["W1", "b1", "W2", "b2", "W3", "b3"]
        assert all(t.verdict == "pass" and t.checked == t.size for t in report.tensors)

    def test_about_two_evaluations_per_parameter(self) -> None:
        """Correct code costs about 2 loss evaluations per parameter (no escalation)."""
        case = lk.fraud_net_seed_case()
        report = check_model(case.model, case.x, case.y)
        assert report.evaluations <= 2 * 47 + 10

    def test_per_layer_passes(self) -> None:
        """Each layer in isolation passes, including input gradients."""
        case = lk.fraud_net_seed_case()
        layers = check_layers(case.model, case.x)
        assert layers.verdict == "pass"
        assert layers.first_faulty is None
        assert all("x" in [t.name for t in r.report.tensors] for r in layers.layers)


class TestSeedBugs:
    """The seed's planted bugs are found and named."""

    def test_model_names_exactly_w2_and_b1(self) -> None:
        """check_model fails on W2 and b1 and on nothing else."""
        case = lk.fraud_net_seed_case()
        report = check_model(seed_bugged(), case.x, case.y)
        assert report.verdict == "fail"
        assert set(report.failed) == {"W2", "b1"}
        assert report["W2"].worst_index is not None
        assert report.culprits == ("layer 0 (Linear(4->5))", "layer 2 (Linear(5->3))")

    def test_layers_names_the_first_faulty_layer(self) -> None:
        """check_layers names layer 0 first, and flags layers 0 and 2 only."""
        case = lk.fraud_net_seed_case()
        layers = check_layers(seed_bugged(), case.x)
        assert layers.first_faulty == "layer 0 (Linear(4->5))"
        assert layers.faulty == ("layer 0 (Linear(4->5))", "layer 2 (Linear(5->3))")
        assert layers.layers[0].report.failed == ("b",)
        assert layers.layers[2].report.failed == ("W",)

    def test_function_on_the_seed_dict_code(self) -> None:
        """check_function on the notebook's own dict code names W2 and b1 only."""
        loss, grad, params = notebook_functions(bugged=True)
        report = check_function(loss, grad, params)
        assert report.verdict == "fail"
        assert set(report.failed) == {"W2", "b1"}
        assert report.difference == pytest.approx(0.285, abs=0.01)

    def test_function_on_the_fixed_seed_dict_code_never_fails(self) -> None:
        """The fixed dict code never fails; its naive cost may leave noisy entries."""
        loss, grad, params = notebook_functions(bugged=False)
        report = check_function(loss, grad, params)
        assert report.verdict in ("pass", "inconclusive")
        assert report.failed == ()
        for tensor in report.tensors:
            assert set(tensor.reasons) <= {"noisy"}


class TestSmallBugs:
    """Bugs far below the seed's threshold are caught and located."""

    @pytest.mark.parametrize("name", ["W1", "b1", "W2", "W3", "b3"])
    def test_relative_1e6_scale_bug(self, name: str) -> None:
        """One tensor's gradient off by a relative 1e-6 fails on that tensor only."""
        case = lk.fraud_net_seed_case()
        position = {"1": 0, "2": 2, "3": 4}[name[1]]
        base = case.model[position]
        assert isinstance(base, Linear)
        model = seed_model_with({position: ScaledGradLinear(base, scale={name[0]: 1 + 1e-6})})
        report = check_model(model, case.x, case.y)
        assert report.failed == (name,)

    def test_single_wrong_entry_is_located(self) -> None:
        """A single entry off by 1e-4 fails, and worst_index is that entry."""
        case = lk.fraud_net_seed_case()
        base = case.model[2]
        assert isinstance(base, Linear)
        model = seed_model_with({2: ScaledGradLinear(base, poke=("W", (1, 3), 1e-4))})
        report = check_model(model, case.x, case.y)
        assert report.failed == ("W2",)
        assert report["W2"].worst_index == (1, 3)
        assert report["W2"].n_fail == 1


def relu_net_with_zero_preactivation(offset: float) -> tuple[lk.Sequential, Array, Array]:
    """A small ReLU net whose unit 2 sits at ``offset`` from its kink for sample 1."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    model = lk.Sequential(
        Linear(3, 4, seed=1), ReLU(), Linear(4, 1, seed=2), Sigmoid(), loss=BCELoss()
    )
    first = model[0]
    assert isinstance(first, Linear)
    z = x @ first.W.T + first.b
    first.b[2] += offset - z[1, 2]
    return model, x, y


class TestKinks:
    """A ReLU kink inside the stencil is inconclusive, never a failure."""

    @pytest.mark.parametrize("offset", [0.0, 1e-9, -1e-9])
    def test_relu_at_kink_is_inconclusive(self, offset: float) -> None:
        """Pre-activation at (or within 1e-9 of) 0: inconclusive with reason kink (at 1e-9
        the step that stays on one side is too small to resolve the slope above noise)."""
        model, x, y = relu_net_with_zero_preactivation(offset)
        z = x @ model[0].params()["W"].T + model[0].params()["b"]
        assert abs(z[1, 2] - offset) < 1e-15
        report = check_model(model, x, y)
        assert report.verdict == "inconclusive"
        assert report.failed == ()
        assert report["W1"].reasons.get("kink", 0) >= 1

    def test_near_kink_the_step_stays_on_one_side(self) -> None:
        """Pre-activation 3e-7 from 0 (inside the default step 6e-6): ReLU reports the kink,
        the step is cut to stay on one side of it, and the correct backward passes there."""
        model, x, y = relu_net_with_zero_preactivation(3e-7)
        report = check_model(model, x, y)
        assert report.verdict == "pass", str(report)
        steps = [entry.step for entry in report["W1"].worst]
        assert min(steps) < 3e-7 < DEFAULT_STEP

    def test_kink_with_a_real_bug_still_fails(self) -> None:
        """A kink elsewhere does not hide a real bug on another tensor."""
        model, x, y = relu_net_with_zero_preactivation(0.0)
        second = model[2]
        assert isinstance(second, Linear)
        buggy = lk.Sequential(
            model[0],
            ReLU(),
            ScaledGradLinear(second, scale={"W": 1.001}),
            Sigmoid(),
            loss=BCELoss(),
        )
        report = check_model(buggy, x, y)
        assert report.verdict == "fail"
        assert report.failed == ("W2",)


def naive_bce(logit: float) -> tuple[LossFn, GradFn, dict[str, Array]]:
    """A logistic unit with the naive BCE (log of probabilities) at a saturated logit."""
    x = np.array([[1.0], [0.5], [-1.0]])
    y = np.array([0.0, 1.0, 1.0])

    def probabilities(p: Mapping[str, Float64Array]) -> Float64Array:
        z = (x @ p["W"].T + p["b"])[:, 0]
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def loss(p: dict[str, Float64Array]) -> float:
        prob = probabilities(p)
        with np.errstate(divide="ignore"):
            return float(np.mean(-(y * np.log(prob) + (1 - y) * np.log(1 - prob))))

    def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
        d = (probabilities(p) - y) / 3
        return {"W": (d[:, None] * x).sum(axis=0)[None, :], "b": np.array([d.sum()])}

    return loss, grad, {"W": np.array([[logit]]), "b": np.array([0.0])}


class TestNoisyLoss:
    """A loss too imprecise to differentiate is inconclusive (noisy), not failed."""

    @pytest.mark.parametrize("logit", [15.0, 20.0, 25.0, 30.0])
    def test_naive_bce_on_saturated_sigmoid_does_not_fail(self, logit: float) -> None:
        """Correct backward, naive BCE, saturated sigmoid: pass or inconclusive, never fail."""
        loss, grad, params = naive_bce(logit)
        report = check_function(loss, grad, params)
        assert report.verdict != "fail", str(report)

    def test_saturated_naive_bce_says_noisy(self) -> None:
        """At logit 25 the reason given is noise."""
        loss, grad, params = naive_bce(25.0)
        report = check_function(loss, grad, params)
        assert report.verdict == "inconclusive"
        assert any("noisy" in t.reasons for t in report.tensors)

    def test_stable_bce_at_saturation_never_fails(self) -> None:
        """The same unit with layerkit's logits BCE at logit 30: W passes; b's slope (1e-7)
        is 1e-8 of the loss (about 20), below what its round-off lets any step resolve to
        rtol 1e-7, so b is 'unresolved' with the numbers, not a pass nor a fail."""
        model = lk.Sequential(Linear.from_arrays([[30.0]], [0.0]), Sigmoid(), loss=BCELoss())
        x = np.array([[1.0], [0.5], [-1.0]])
        y = np.array([[0.0], [1.0], [1.0]])
        report = check_model(model, x, y)
        assert report["W1"].verdict == "pass", str(report)
        assert report["b1"].reasons == {"unresolved": 1}, str(report)
        entry = report["b1"].worst[0]
        assert abs(entry.analytic) < 2e-7 and entry.numeric_error * 3 > 1e-7 * abs(entry.analytic)
        assert any("unresolved" in note for note in report.notes)
        assert check_model(model, x, y, rtol=1e-4).verdict == "pass"


class TestNonFinite:
    """NaN or Inf never passes."""

    def test_nan_loss(self) -> None:
        """A loss returning NaN is inconclusive with reason non-finite."""
        report = check_function(
            lambda p: float("nan"), lambda p: {"a": np.ones(2)}, {"a": np.zeros(2)}
        )
        assert report.verdict == "inconclusive"
        assert report["a"].reasons == {"non-finite": 2}

    def test_nan_gradient_entry(self) -> None:
        """One NaN in the analytic gradient where the loss is smooth and finite: a fail on
        that entry, with the reason, never a pass."""

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            g = 2 * p["a"]
            g[1] = np.nan
            return {"a": g}

        report = check_function(lambda p: float(np.sum(p["a"] ** 2)), grad, {"a": np.ones(3)})
        assert report.verdict == "fail"
        assert report["a"].n_fail == 1 and report["a"].worst_index == (1,)
        assert report["a"].worst[0].reason == "backward returned NaN/Inf where the loss is smooth"

    def test_inf_away_from_the_point(self) -> None:
        """A loss that overflows at perturbed points is never pass."""

        def loss(p: dict[str, Float64Array]) -> float:
            return float(np.inf) if p["a"][0] != 1.0 else 1.0

        report = check_function(loss, lambda p: {"a": np.zeros(1)}, {"a": np.ones(1)})
        assert report.verdict != "pass"


class TestOverflowInsideTheModel:
    """An activation overflowing at a perturbed point is judged, not a crash."""

    def test_overflow_midway_is_never_a_fail(self) -> None:
        """exp() overflowing at W1 + h: the step shrinks inside the boundary and W1 passes;
        W2 (slope 2.6e307, loss moving by 1e300 per ulp) stays inconclusive; b2 passes."""

        class Exp(lk.layers.Activation):
            def function(self, x: Array) -> Array:
                return np.exp(x)

            def derivative(self, x: Array, y: Array) -> Array:
                return y

        model = lk.Sequential(
            Linear.from_arrays([[709.78]], [0.0]), Exp(), Linear.from_arrays([[1e-308]], [0.0]),
            Sigmoid(), loss=BCELoss(),
        )  # fmt: skip
        with np.errstate(over="ignore"):
            report = check_model(model, [[1.0]], [[1.0]])
        assert report.verdict == "inconclusive"
        assert report.failed == ()
        assert report["W1"].verdict == "pass"
        assert report["W1"].worst[0].step < 709.78 * DEFAULT_STEP
        assert report["W2"].verdict == "inconclusive"
        assert report["b2"].verdict == "pass"


class TestDtypes:
    """Models of any float dtype are checked on float64 copies."""

    def test_float32_model_passes(self) -> None:
        """A float32 model with correct backward passes."""
        case = lk.fraud_net_seed_case()
        model = case.model.astype(np.float32)
        report = check_model(model, case.x.astype(np.float32), case.y)
        assert report.verdict == "pass"
        assert model.dtype == np.float32

    def test_float32_function_gradient(self) -> None:
        """check_function with a float32 gradient allows for its precision and passes."""
        report = check_function(
            lambda p: float(np.sum(np.sin(p["a"]))),
            lambda p: {"a": np.cos(p["a"]).astype(np.float32)},
            {"a": np.linspace(-1, 1, 5)},
        )
        assert report.verdict == "pass"


class TestModes:
    """Exact, sampled and fast modes."""

    def test_sampled_covers_every_tensor(self) -> None:
        """Sampled mode checks k seeded entries of every tensor, biases included."""
        model = lk.mlp([6, 8, 4, 1], seed=3)
        x = np.random.default_rng(1).standard_normal((5, 6))
        y = np.array([[1], [0], [1], [1], [0]])
        report = check_model(model, x, y, mode="sampled", samples=3)
        assert [t.checked for t in report.tensors] == [3, 3, 3, 3, 3, 1]
        again = check_model(model, x, y, mode="sampled", samples=3)
        assert [t.worst_index for t in again.tensors] == [t.worst_index for t in report.tensors]

    def test_sampled_finds_the_bug(self) -> None:
        """Sampled mode still names the seed's bugs."""
        case = lk.fraud_net_seed_case()
        report = check_model(seed_bugged(), case.x, case.y, mode="sampled", samples=4)
        assert set(report.failed) == {"W2", "b1"}

    def test_fast_passes_correct_code_cheaply(self) -> None:
        """Fast mode: a pass in at most 20 loss evaluations."""
        model = lk.mlp([20, 32, 16, 1], seed=0)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 20))
        y = (rng.random((64, 1)) > 0.5).astype(float)
        report = check_model(model, x, y, mode="fast")
        assert report.verdict == "pass"
        assert report.evaluations <= 20

    def test_fast_localises_the_bug(self) -> None:
        """Fast mode fails and localises the seed's bugs to W2 and b1."""
        case = lk.fraud_net_seed_case()
        report = check_model(seed_bugged(), case.x, case.y, mode="fast")
        assert report.verdict == "fail"
        assert set(report.failed) == {"W2", "b1"}

    def test_global_rng_untouched(self) -> None:
        """No mode touches numpy's global RNG."""
        np.random.seed(123)
        state = np.random.get_state()
        case = lk.fraud_net_seed_case()
        for mode in ("exact", "sampled", "fast"):
            check_model(case.model, case.x, case.y, mode=mode)
        after_checks = np.random.random(4)
        np.random.set_state(state)
        assert np.array_equal(np.random.random(4), after_checks)

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("mode", "nope"),
            ("samples", 0),
            ("step", -1e-6),
            ("rtol", -1.0),
            ("directions", 0),
            ("tolerance", 1e-3),
        ],
    )
    def test_bad_options(self, option: str, value: object) -> None:
        """Out-of-range options raise ConfigError naming the option."""
        case = lk.fraud_net_seed_case()
        with pytest.raises(ConfigError, match=option):
            check_model(case.model, case.x, case.y, **{option: value})  # type: ignore[arg-type]


class TestGuards:
    """Nondeterministic losses and nonlinear backwards are caught."""

    def test_nondeterministic_loss(self) -> None:
        """A loss that draws fresh noise each call raises NondeterministicError."""
        rng = np.random.default_rng(0)
        with pytest.raises(NondeterministicError, match="nondeterministic"):
            check_function(
                lambda p: float(np.sum(p["a"]) + rng.standard_normal()),
                lambda p: {"a": np.ones(2)},
                {"a": np.zeros(2)},
            )

    @pytest.mark.parametrize("mode", ["exact", "fast"])
    def test_nondeterministic_layer_in_a_model(self, mode: str) -> None:
        """A user layer whose forward drifts between calls stops check_model, in every mode:
        the guard is skipped only for models made of layerkit's own layers and loss."""

        class Drifting(Tanh):
            calls = 0

            def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, Any]:
                Drifting.calls += 1
                y, cache = super().forward(x, noise=noise)
                return y * (1 + 1e-9 * Drifting.calls), cache

        case = lk.fraud_net_seed_case()
        layers = [Drifting() if type(la) is lk.ReLU else la for la in case.model.layers]
        model = lk.Sequential(layers, loss=case.model.loss)
        with pytest.raises(NondeterministicError, match="nondeterministic"):
            check_model(model, case.x, case.y, mode=mode)

    def test_the_guard_costs_one_evaluation_only_for_user_code(self) -> None:
        """layerkit's own layers and loss: one evaluation at the point; a user loss: two."""

        class MyMSE(MSELoss):
            pass

        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
        own = lk.mlp([3, 4, 1], seed=0, loss=MSELoss())
        user = lk.Sequential(list(own.layers), loss=MyMSE())
        counts = [check_model(m, x, y, mode="fast").evaluations for m in (own, user)]
        assert counts[1] == counts[0] + 1

    def test_nonlinear_backward(self) -> None:
        """A backward that squares grad_out fails the layer check with a note."""

        class SquaringTanh(Tanh):
            def backward(
                self, cache: tuple[Array, Array], grad_out: Array
            ) -> tuple[Array, dict[str, Array]]:
                grad, _ = super().backward(cache, grad_out)
                return grad * np.abs(grad_out), {}

        x = np.random.default_rng(0).standard_normal((3, 4))
        report = check_layer(SquaringTanh(), x)
        assert report.verdict == "fail"
        assert any("not linear" in note for note in report.notes)


class TestDropout:
    """Dropout is checked with its masks held fixed."""

    def test_model_with_dropout_passes(self) -> None:
        """A model with dropout passes check_model (masks drawn once from the seed)."""
        model = lk.Sequential(
            Linear(5, 8, seed=0), Tanh(), Dropout(0.4), Linear(8, 1, seed=1), Sigmoid(),
            loss=BCELoss(),
        )  # fmt: skip
        rng = np.random.default_rng(2)
        x = rng.standard_normal((6, 5))
        y = (rng.random((6, 1)) > 0.5).astype(float)
        report = check_model(model, x, y)
        assert report.verdict == "pass"
        assert check_layers(model, x).verdict == "pass"

    def test_dropout_does_not_hide_a_bug(self) -> None:
        """A scale bug behind dropout still fails."""
        first = Linear(5, 8, seed=0)
        model = lk.Sequential(
            ScaledGradLinear(first, scale={"W": 1.0001}), Tanh(), Dropout(0.4), Linear(8, 1, seed=1),
            Sigmoid(), loss=BCELoss(),
        )  # fmt: skip
        rng = np.random.default_rng(2)
        x = rng.standard_normal((6, 5))
        y = (rng.random((6, 1)) > 0.5).astype(float)
        assert check_model(model, x, y).failed == ("W1",)


class TestReport:
    """Reports are readable and machine-readable."""

    def test_to_dict_is_json(self) -> None:
        """to_dict round-trips through JSON, with verdicts and worst entries."""
        case = lk.fraud_net_seed_case()
        report = check_model(seed_bugged(), case.x, case.y)
        data = json.loads(json.dumps(report.to_dict()))
        assert data["verdict"] == "fail"
        assert {t["name"] for t in data["tensors"] if t["verdict"] == "fail"} == {"W2", "b1"}

    def test_table_names_tensors_and_worst_entries(self) -> None:
        """str() is a table with one row per tensor and the worst failing entries."""
        case = lk.fraud_net_seed_case()
        text = str(check_model(seed_bugged(), case.x, case.y))
        assert "FAIL" in text.splitlines()[0]
        for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
            assert f"\n{name} " in text
        assert "W2[" in text and "b1[" in text

    def test_assert_gradients_ok(self) -> None:
        """The pytest helper passes on correct code and raises with the table on bugs."""
        case = lk.fraud_net_seed_case()
        assert_gradients_ok(case.model, case.x, case.y)
        with pytest.raises(AssertionError, match="W2"):
            assert_gradients_ok(seed_bugged(), case.x, case.y)


class TestNoMutation:
    """Checks never write to the caller's arrays."""

    def test_model_and_data_bitwise_unchanged(self) -> None:
        """Parameters, x and y are bitwise identical after a failing check."""
        case = lk.fraud_net_seed_case()
        model = seed_bugged()
        before = {n: a.copy() for n, a in model.params().items()}
        x, y = case.x.copy(), case.y.copy()
        check_model(model, case.x, case.y)
        check_layers(model, case.x)
        for name, array in model.params().items():
            assert array.tobytes() == before[name].tobytes()
        assert case.x.tobytes() == x.tobytes() and case.y.tobytes() == y.tobytes()

    def test_function_params_unchanged_when_loss_raises(self) -> None:
        """A loss raising on its 5th call leaves the caller's params untouched."""
        params = {"a": np.array([0.3, -1.2, 2.5])}
        before = params["a"].copy()
        calls = {"n": 0}

        def loss(p: dict[str, Float64Array]) -> float:
            calls["n"] += 1
            if calls["n"] == 5:
                raise RuntimeError("user code failed")
            return float(np.sum(p["a"] ** 3))

        with pytest.raises(UserCodeError, match="user code failed") as raised:
            check_function(loss, lambda p: {"a": 3 * p["a"] ** 2}, params)
        assert isinstance(raised.value.__cause__, RuntimeError)
        assert params["a"].tobytes() == before.tobytes()


@st.composite
def small_nets(draw: st.DrawFn) -> tuple[lk.Sequential, Array, Array, int]:
    """A random small Sequential (ReLU/Tanh/Sigmoid), data, and a Linear index to bug."""
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 8)) for _ in range(depth)] + [1]
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    layers: list[lk.Layer] = []
    n_in = draw(st.integers(1, 6))
    first_in = n_in
    for n_out in widths:
        layers.append(Linear(n_in, n_out, init="xavier", seed=rng))
        layers.append(draw(st.sampled_from([ReLU, Tanh, Sigmoid]))())
        n_in = n_out
    layers[-1] = Sigmoid()
    batch = draw(st.integers(1, 8))
    x = rng.standard_normal((batch, first_in))
    y = (rng.random((batch, 1)) > 0.5).astype(float)
    return lk.Sequential(layers, loss=BCELoss()), x, y, draw(st.integers(0, depth))


class TestProperties:
    """Random nets: correct never fails; a 1e-5 scale bug always fails where planted."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(small_nets())
    def test_correct_nets_never_fail(self, net: tuple[lk.Sequential, Array, Array, int]) -> None:
        """Correct layers: verdict pass or inconclusive, never fail."""
        model, x, y, _ = net
        assert check_model(model, x, y).failed == ()

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(small_nets())
    def test_scale_bug_fails_on_that_tensor(
        self, net: tuple[lk.Sequential, Array, Array, int]
    ) -> None:
        """W of one Linear scaled by 1 + 1e-5 fails on that W and nowhere else."""
        model, x, y, which = net
        linear_positions = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear)]
        position = linear_positions[which % len(linear_positions)]
        _, grads = model.loss_and_grad(x, y)
        name = f"W{linear_positions.index(position) + 1}"
        if np.max(np.abs(grads[name])) < 1e-3:  # a bug of 1e-5 * 1e-3 is below any noise floor
            return
        base = model.layers[position]
        assert isinstance(base, Linear)
        layers = list(model.layers)
        layers[position] = ScaledGradLinear(base, scale={"W": 1 + 1e-5})
        report = check_model(lk.Sequential(layers, loss=BCELoss()), x, y)
        assert report.failed == (name,), str(report)


def net_for(
    loss_name: str, *, bug: Mapping[str, float] | None = None
) -> tuple[lk.Sequential, Array, Array]:
    """Linear(3->5) -> Tanh -> Linear(5->k) (-> Sigmoid for BCELoss) with ``loss_name`` and
    data it accepts; ``bug`` scales gradients of the second Linear (a planted bug)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 3))
    k = {"MSELoss": 2, "SoftmaxCrossEntropyLoss": 3}.get(loss_name, 2)
    targets: dict[str, Array] = {
        "BCELoss": (rng.random((6, k)) < 0.5).astype(np.float64),
        "BCEWithLogitsLoss": rng.uniform(0.0, 1.0, (6, k)),
        "MSELoss": rng.standard_normal((6, k)),
        "SoftmaxCrossEntropyLoss": rng.integers(0, k, 6).astype(np.float64),
    }
    second = Linear(5, k, seed=2)
    end: list[lk.Layer] = [ScaledGradLinear(second, scale=bug) if bug else second]
    if loss_name == "BCELoss":
        end.append(Sigmoid())
    loss = getattr(lk, loss_name)()
    return lk.Sequential([Linear(3, 5, seed=1), Tanh(), *end], loss=loss), x, targets[loss_name]


LOSS_NAMES = ["BCELoss", "BCEWithLogitsLoss", "MSELoss", "SoftmaxCrossEntropyLoss"]


class TestEveryLoss:
    """check_model works with every loss: correct nets pass, planted bugs fail where planted."""

    @pytest.mark.parametrize("loss_name", LOSS_NAMES)
    def test_correct_net_passes(self, loss_name: str) -> None:
        """A correct net with this loss passes."""
        model, x, y = net_for(loss_name)
        report = check_model(model, x, y)
        assert report.verdict == "pass", str(report)

    @pytest.mark.parametrize("loss_name", LOSS_NAMES)
    def test_planted_bug_in_a_layer_fails_there(self, loss_name: str) -> None:
        """dW2 off by 0.1%: fail, on W2 only, and the per-layer check blames layer 2."""
        model, x, y = net_for(loss_name, bug={"W": 1.001})
        report = check_model(model, x, y)
        assert report.verdict == "fail"
        assert report.failed == ("W2",)
        assert report.culprits == (model.layer_label(2),)

    @pytest.mark.parametrize("loss_name", LOSS_NAMES)
    def test_planted_bug_in_the_loss_fails_every_tensor(self, loss_name: str) -> None:
        """sample_grads off by 1%: every tensor fails; no layer fails in isolation."""
        base = type(getattr(lk, loss_name)())

        class OffByOnePercent(base):  # type: ignore[valid-type, misc]
            def sample_grads(self, out: Array, y: Array) -> Array:
                return np.asarray(1.01 * super().sample_grads(out, y))

        model, x, y = net_for(loss_name)
        report = check_model(lk.Sequential(list(model.layers), loss=OffByOnePercent()), x, y)
        assert report.verdict == "fail"
        assert report.failed == ("W1", "b1", "W2", "b2")
        assert "no layer fails in isolation" in report.notes[-1]

    def test_softmax_saturated_logits_pass(self) -> None:
        """Logits near +-60 (softmax probabilities ~1e-52): the check still passes."""
        model, x, y = net_for("SoftmaxCrossEntropyLoss")
        last = model[2]
        assert isinstance(last, Linear)
        last.W *= 40.0
        report = check_model(model, x, y)
        assert report.verdict == "pass", str(report)
