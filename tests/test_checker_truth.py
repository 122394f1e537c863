"""Checker truth (issue 9): a pass only where the numbers resolve the gradient.

Each class is one kind of hard case. On each: correct code never fails; a wrong gradient
never passes (it fails, or is inconclusive with a reason where the loss genuinely cannot
resolve it, which the test shows with the report's own numbers); where the loss resolves
it, a bug of relative size 1e-6 fails on exactly its tensor.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gradcheck import notebook_functions

import layerkit as lk
from layerkit import check_function, check_layer, check_model
from layerkit._typing import Array, Float64Array
from layerkit.errors import LossValueError, UserCodeError
from layerkit.gradcheck.report import REASONS, GradCheckReport
from layerkit.layers import Linear, ReLU, Sigmoid
from layerkit.layers.linear import LinearCache
from layerkit.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from layerkit.testing import ScaledGradLinear

Loss = Callable[[dict[str, Float64Array]], object]
Grad = Callable[[dict[str, Float64Array]], Mapping[str, Array]]

RESOLVED_BUG = 1e-6
"""The smallest relative bug the checker must catch wherever the loss resolves it."""


def never_passes_wrong(report: GradCheckReport, name: str, relative_bug: float) -> None:
    """A wrong gradient on ``name``: fail, or inconclusive only where the report's own error
    bound is larger than the bug (the loss cannot resolve it there)."""
    tensor = report[name]
    assert tensor.verdict != "pass", str(report)
    if tensor.verdict == "inconclusive":
        for entry in tensor.worst:
            if entry.verdict == "inconclusive" and entry.reason == "unresolved":
                size = max(abs(entry.analytic), abs(entry.numeric))
                assert 3 * entry.numeric_error > relative_bug * size / 2, str(report)


def never_fails(report: GradCheckReport) -> None:
    """Correct code: no tensor fails."""
    assert report.failed == (), str(report)


def quadratic(offset: float, scale: float, bug: float = 1.0) -> tuple[Loss, Grad]:
    """``offset + scale * sum(sin(w))``-like smooth loss with gradient times ``bug``."""

    def loss(p: dict[str, Float64Array]) -> float:
        return float(offset + scale * np.sum(np.sin(p["w"]) + 0.5 * p["w"] ** 2))

    def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
        return {"w": bug * scale * (np.cos(p["w"]) + p["w"])}

    return loss, grad


W = np.random.default_rng(11).uniform(0.3, 1.2, 8)


class TestFloat32Loss:
    """A loss returned as np.float32 carries float32 noise: measured, never a false pass."""

    def f32(self, bug: float) -> GradCheckReport:
        return check_function(
            lambda p: np.float32(np.sum(p["w"] ** 2)), lambda p: {"w": bug * 2 * p["w"]}, {"w": W}
        )

    def test_correct_is_never_a_fail_and_says_why_not_a_pass(self) -> None:
        report = self.f32(1.0)
        never_fails(report)
        assert report.noise > 1e-8 * report.loss  # measured: float32 round-off, not 8 ulps f64
        if report.verdict == "inconclusive":
            assert set(report["w"].reasons) == {"unresolved"}
            assert any("float64" in note for note in report.notes)

    @pytest.mark.parametrize("bug", [-1.0, 2.0, 1.001])
    def test_wrong_gradients_fail(self, bug: float) -> None:
        """Sign flip (the issue's example passed with an allowance of 8.06), x2, 1e-3."""
        report = self.f32(bug)
        assert report.verdict == "fail", str(report)

    def test_rtol_matching_float32_passes(self) -> None:
        assert self.f32(1.0).verdict != "pass"
        report = check_function(
            lambda p: np.float32(np.sum(p["w"] ** 2)), lambda p: {"w": 2 * p["w"]}, {"w": W},
            rtol=1e-3,
        )  # fmt: skip
        assert report.verdict == "pass", str(report)


class TestLossMagnitudeAndOffsets:
    """Loss values from 1e-8 to 1e8, with constant offsets up to 1e10."""

    @pytest.mark.parametrize("scale", [1e-8, 1e-4, 1.0, 1e4, 1e8])
    def test_magnitudes(self, scale: float) -> None:
        loss, grad = quadratic(0.0, scale)
        assert check_function(loss, grad, {"w": W}).verdict == "pass"
        loss, grad = quadratic(0.0, scale, bug=1 + RESOLVED_BUG)
        report = check_function(loss, grad, {"w": W})
        assert report.verdict == "fail", str(report)

    @pytest.mark.parametrize("offset", [1e-8, 1.0, 1e4, 1e8, 1e10])
    def test_offsets(self, offset: float) -> None:
        loss, grad = quadratic(offset, 0.5)
        never_fails(check_function(loss, grad, {"w": W}))
        for bug in (-1.0, -3.0, 1 + RESOLVED_BUG):
            loss, grad = quadratic(offset, 0.5, bug=bug)
            report = check_function(loss, grad, {"w": W})
            never_passes_wrong(report, "w", abs(bug - 1))
            if bug < 0:
                assert report.verdict == "fail", str(report)

    def test_offset_1e10_is_unresolved_with_the_numbers(self) -> None:
        """1e10 + 0.5|w|^2: the loss's ulp (2e-6) hides 1e-7 of a slope of 1; the report
        says so and how to fix it, instead of a pass."""
        loss, grad = quadratic(1e10, 0.5)
        report = check_function(loss, grad, {"w": W})
        assert report["w"].reasons.get("unresolved", 0) >= 1, str(report)
        assert report.noise >= 1e-6
        (note,) = [n for n in report.notes if "unresolved" in n]
        assert "constant offsets" in note and "best error bound reached" in note

    def test_seed_net_with_huge_inputs_fails_a_flipped_b1(self) -> None:
        """The issue's case: the seed net on inputs x 1e10 passed a sign-flipped b1."""
        case = lk.fraud_net_seed_case()
        first = case.model[0]
        assert isinstance(first, Linear)
        model = lk.Sequential(
            [ScaledGradLinear(first, scale={"b": -1.0}), *case.model.layers[1:]], loss=BCELoss()
        )
        report = check_model(model, case.x * 1e10, case.y)
        assert report["b1"].verdict != "pass", str(report)


class TestParameterScales:
    """Parameters from 1e-6 to 1e4 (steps follow the function, not |theta| alone)."""

    @pytest.mark.parametrize("size", [1e-6, 1e-3, 1e2, 1e4])
    def test_scales(self, size: float) -> None:
        def loss(p: dict[str, Float64Array]) -> float:
            return float(np.sum(np.log1p((p["w"] / size) ** 2)))

        def grad(bug: float) -> Grad:
            return lambda p: {"w": bug * 2 * (p["w"] / size) / (1 + (p["w"] / size) ** 2) / size}

        params = {"w": W * size}
        assert check_function(loss, grad(1.0), params).verdict == "pass"
        for bug in (1e-3, RESOLVED_BUG):
            report = check_function(loss, grad(1 + bug), params)
            assert report.verdict == "fail", (bug, str(report))


class TestUncentredInputs:
    """Raw inputs of 1e4-1e5: the loss curves on a scale finer than |theta|."""

    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1e5, (20, 3))
    y = (rng.random(20) > 0.5).astype(float)
    w0 = rng.standard_normal(3) * 1e-5

    def logistic(self, bug: float) -> tuple[Loss, Grad]:
        x, y = self.x, self.y

        def loss(p: dict[str, Float64Array]) -> float:
            z = x @ p["w"] + p["c"]
            return float(np.mean(np.logaddexp(0, z) - y * z))

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            z = x @ p["w"] + p["c"]
            s = 1 / (1 + np.exp(-z))
            return {"w": bug * x.T @ (s - y) / len(y), "c": np.array([np.mean(s - y)])}

        return loss, grad

    def test_correct_passes_and_is_not_a_kink(self) -> None:
        loss, grad = self.logistic(1.0)
        report = check_function(loss, grad, {"w": self.w0, "c": np.array([0.1])})
        assert report.verdict == "pass", str(report)

    @pytest.mark.parametrize("bug", [1e-3, 1e-5, RESOLVED_BUG])
    def test_bugs_fail_on_their_tensor(self, bug: float) -> None:
        loss, grad = self.logistic(1 + bug)
        report = check_function(loss, grad, {"w": self.w0, "c": np.array([0.1])})
        assert report.failed == ("w",), str(report)

    def test_tanh_model(self) -> None:
        x = self.x

        def loss(p: dict[str, Float64Array]) -> float:
            return float(np.sum(np.tanh(x @ p["w"]) ** 2))

        def grad(bug: float) -> Grad:
            def g(p: dict[str, Float64Array]) -> dict[str, Array]:
                t = np.tanh(x @ p["w"])
                return {"w": bug * x.T @ (2 * t * (1 - t**2))}

            return g

        assert check_function(loss, grad(1.0), {"w": self.w0}).verdict == "pass"
        report = check_function(loss, grad(1 + 1e-5), {"w": self.w0})
        assert report.verdict == "fail", str(report)


class TestMixedGradientScales:
    """Two tensors whose gradients differ by 1e12 inside one loss of about 1e3."""

    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(5), rng.standard_normal(5)

    def loss(self, p: dict[str, Float64Array]) -> float:
        return float(1e3 + 0.5e-10 * np.sum(p["a"] ** 2) + 50.0 * np.sum(p["b"] ** 2))

    def grad(self, flip_small: float) -> Grad:
        return lambda p: {"a": flip_small * 1e-10 * p["a"], "b": 1e2 * p["b"]}

    def test_sign_flip_in_the_small_tensor_never_passes(self) -> None:
        """At the default step the loss does not move with 'a' at all (the issue's case):
        the step grows until the small slope is measured, and the flip fails."""
        report = check_function(self.loss, self.grad(-1.0), {"a": self.a, "b": self.b})
        assert report["a"].verdict == "fail", str(report)
        assert report["b"].verdict == "pass"

    def test_correct_never_fails(self) -> None:
        report = check_function(self.loss, self.grad(1.0), {"a": self.a, "b": self.b})
        never_fails(report)
        assert report["b"].verdict == "pass"


class TestDomainBoundaries:
    """Positive parameters near a log or sqrt boundary: the step never crosses it."""

    @pytest.mark.parametrize("sigma", [3e-6, 1e-8])
    def test_log_sigma(self, sigma: float) -> None:
        data = np.random.default_rng(4).standard_normal(50)

        def loss(p: dict[str, Float64Array]) -> float:
            s = p["s"][0]
            return float(np.sum(data**2) / (2 * s * s) + len(data) * np.log(s))

        def grad(bug: float) -> Grad:
            return lambda p: {
                "s": np.array([bug * (-np.sum(data**2) / p["s"][0] ** 3 + len(data) / p["s"][0])])
            }

        report = check_function(loss, grad(1.0), {"s": np.array([sigma])})
        assert report.verdict == "pass", str(report)
        assert report["s"].worst[0].step < sigma
        assert check_function(loss, grad(1 + RESOLVED_BUG), {"s": np.array([sigma])}).failed

    @pytest.mark.parametrize("v", [3e-6, 1e-8])
    def test_sqrt(self, v: float) -> None:
        report = check_function(
            lambda p: float(np.sum(np.sqrt(p["v"]))),
            lambda p: {"v": 0.5 / np.sqrt(p["v"])},
            {"v": np.full(3, v)},
        )
        assert report.verdict == "pass", str(report)


class TestSaturatedNaiveBCE:
    """A naive BCE on a saturated sigmoid loses digits: never a false fail."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(st.floats(8.0, 36.0), st.integers(0, 2**16))
    def test_never_fails(self, logit: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        x = np.array([[1.0], [0.5], [-1.0]]) * rng.uniform(0.5, 1.5)
        y = np.array([0.0, 1.0, 1.0])

        def probabilities(p: Mapping[str, Float64Array]) -> Float64Array:
            return np.asarray(1.0 / (1.0 + np.exp(-(x @ p["W"].T + p["b"])[:, 0])))

        def loss(p: dict[str, Float64Array]) -> float:
            s = probabilities(p)
            with np.errstate(divide="ignore"):
                return float(np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s))))

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            d = (probabilities(p) - y) / 3
            return {"W": (d @ x).reshape(1, 1), "b": np.array([d.sum()])}

        params = {"W": np.array([[logit / float(x[0, 0])]]), "b": np.array([0.0])}
        never_fails(check_function(loss, grad, params))


class TestFloat32Backward:
    """float32 analytic gradients are judged at float32 accumulation over the tensor."""

    rng = np.random.default_rng(9)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    r = rng.standard_normal((256, 4)).astype(np.float32)
    w = rng.standard_normal((4, 8)).astype(np.float32)

    def loss(self, p: dict[str, Float64Array]) -> float:
        return float(np.sum(self.r.astype(float) * (self.x.astype(float) @ p["W"].T)))

    def test_correct_float32_backward_of_a_batch_256_passes(self) -> None:
        report = check_function(self.loss, lambda p: {"W": self.r.T @ self.x}, {"W": self.w})
        assert report.verdict == "pass", str(report)

    def test_flip_fails(self) -> None:
        report = check_function(self.loss, lambda p: {"W": -(self.r.T @ self.x)}, {"W": self.w})
        assert report.verdict == "fail"

    def test_float32_forward_and_backward_never_fail(self) -> None:
        x, r = self.x, self.r
        report = check_function(
            lambda p: np.float32(np.sum(r * (x @ p["W"].astype(np.float32).T))),
            lambda p: {"W": r.T @ x},
            {"W": self.w},
        )
        never_fails(report)

    def test_float32_model_passes(self) -> None:
        """check_model differentiates float64 copies of a float32 model."""
        model = lk.mlp([6, 8, 1], seed=1).astype(np.float32)
        x = self.x[:32, :6]
        y = (self.r[:32, :1] > 0).astype(np.float32)
        assert check_model(model, x, y).verdict == "pass"


class TestKinks:
    """Tutorial ReLU nets (integer weights, zero biases): kinks everywhere, 0 false fails."""

    def test_two_hundred_integer_weight_nets(self) -> None:
        rng = np.random.default_rng(2024)
        outcomes: dict[str, int] = {}
        for _ in range(200):
            widths = [int(w) for w in rng.integers(1, 5, size=int(rng.integers(2, 5)))] + [1]
            layers: list[lk.layers.Layer] = []
            for fan_in, fan_out in itertools.pairwise(widths):
                weights = rng.integers(-1, 2, size=(fan_out, fan_in)).astype(float)
                layers += [Linear.from_arrays(weights, np.zeros(fan_out)), ReLU()]
            layers[-1] = Sigmoid()
            model = lk.Sequential(layers, loss=BCELoss())
            x = rng.integers(-2, 3, size=(int(rng.integers(1, 5)), widths[0])).astype(float)
            y = rng.integers(0, 2, size=(x.shape[0], 1)).astype(float)
            report = check_model(model, x, y, localise=False)
            never_fails(report)
            outcomes[report.verdict] = outcomes.get(report.verdict, 0) + 1
        assert outcomes.get("pass", 0) > 0 and outcomes.get("inconclusive", 0) > 0

    def test_kink_report_names_the_reason(self) -> None:
        """An input exactly on ReLU's kink that a probe moves: 'kink', never pass or fail."""
        model = lk.Sequential(
            Linear.from_arrays([[1.0, -1.0]], [0.0]), ReLU(), Linear.from_arrays([[2.0]], [0.5]),
            Sigmoid(), loss=BCELoss(),
        )  # fmt: skip
        report = check_model(model, np.array([[1.0, 1.0], [2.0, 0.5]]), np.array([[1.0], [0.0]]))
        assert report["W1"].reasons.get("kink", 0) >= 1, str(report)
        assert report.failed == ()


class TestNaNBackward:
    """A backward returning NaN/Inf where the loss is smooth is a bug: fail, with the reason."""

    @pytest.mark.parametrize("value", [np.nan, np.inf])
    def test_fails_with_reason(self, value: float) -> None:
        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            g = np.cos(p["w"])
            g[3] = value
            return {"w": g}

        report = check_function(lambda p: float(np.sum(np.sin(p["w"]))), grad, {"w": W})
        assert report.verdict == "fail"
        assert report["w"].worst_index == (3,)
        assert report["w"].worst[0].reason == "backward returned NaN/Inf where the loss is smooth"

    def test_nan_loss_at_the_point_stays_inconclusive(self) -> None:
        report = check_function(lambda p: float("nan"), lambda p: {"w": np.ones(2)}, {"w": W[:2]})
        assert report.verdict == "inconclusive"
        assert report["w"].reasons == {"non-finite": 2}


class TestModelsOfManyShapes:
    """Softmax CE, MSE, L1/L2 terms, layer norm, residual, weight sharing: correct code
    passes, a 1e-6 relative bug fails on its tensor only."""

    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))

    def functions(self, kind: str, bug: float) -> tuple[Loss, Grad, dict[str, Float64Array]]:
        x, rng = self.x, np.random.default_rng(8)
        params = {"A": rng.standard_normal((4, 4)) * 0.5, "c": rng.standard_normal(4) * 0.1}
        labels = rng.integers(0, 4, size=6)
        target = rng.standard_normal((6, 4))

        def forward(p: Mapping[str, Array]) -> tuple[Array, Array]:
            h = x @ p["A"].T + p["c"]
            if kind == "residual":
                return h, x + np.tanh(h)
            if kind == "shared":
                return h, np.tanh(h) @ p["A"]  # the same A used twice
            if kind == "layernorm":
                mu = h.mean(axis=1, keepdims=True)
                var = h.var(axis=1, keepdims=True)
                return h, (h - mu) / np.sqrt(var + 1e-5)
            return h, h

        def loss(p: dict[str, Float64Array]) -> float:
            _, out = forward(p)
            if kind == "softmax":
                z = out - out.max(axis=1, keepdims=True)
                logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
                return float(-logp[np.arange(6), labels].mean())
            base = float(np.mean((out - target) ** 2))
            if kind == "l1l2":
                return (
                    base + 0.1 * float(np.sum(np.abs(p["A"]))) + 0.05 * float(np.sum(p["c"] ** 2))
                )
            return base

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            h, out = forward(p)
            if kind == "softmax":
                z = np.exp(out - out.max(axis=1, keepdims=True))
                d_out = z / z.sum(axis=1, keepdims=True)
                d_out[np.arange(6), labels] -= 1
                d_out /= 6
            else:
                d_out = 2 * (out - target) / out.size
            extra_a = np.zeros_like(p["A"])
            if kind == "residual":
                d_h = d_out * (1 - np.tanh(h) ** 2)
            elif kind == "shared":
                extra_a = np.tanh(h).T @ d_out
                d_h = (d_out @ p["A"].T) * (1 - np.tanh(h) ** 2)
            elif kind == "layernorm":
                n = h.shape[1]
                var = h.var(axis=1, keepdims=True) + 1e-5
                xhat = (h - h.mean(axis=1, keepdims=True)) / np.sqrt(var)
                d_h = (n * d_out - d_out.sum(1, keepdims=True) - xhat * (d_out * xhat).sum(1, keepdims=True)) / (n * np.sqrt(var))  # fmt: skip
            else:
                d_h = d_out
            grads = {"A": d_h.T @ x + extra_a, "c": d_h.sum(axis=0)}
            if kind == "l1l2":
                grads["A"] = grads["A"] + 0.1 * np.sign(p["A"])
                grads["c"] = grads["c"] + 0.1 * p["c"]
            grads["A"] = grads["A"] * bug
            return grads

        return loss, grad, params

    @pytest.mark.parametrize("kind", ["softmax", "mse", "l1l2", "layernorm", "residual", "shared"])
    def test_correct_passes_and_bug_fails_on_its_tensor(self, kind: str) -> None:
        loss, grad, params = self.functions(kind, 1.0)
        assert check_function(loss, grad, params).verdict == "pass"
        loss, grad, params = self.functions(kind, 1 + RESOLVED_BUG)
        assert check_function(loss, grad, params).failed == ("A",)

    @pytest.mark.parametrize("loss", [MSELoss(), SoftmaxCrossEntropyLoss()], ids=["mse", "softmax"])
    def test_model_losses(self, loss: lk.losses.Loss) -> None:
        classes = 3
        model = lk.mlp([4, 6, classes], loss=loss, seed=2)
        y: Array = (
            np.random.default_rng(1).integers(0, classes, size=6).astype(float)
            if isinstance(loss, SoftmaxCrossEntropyLoss)
            else np.random.default_rng(1).standard_normal((6, classes))
        )
        assert check_model(model, self.x, y).verdict == "pass"


class TestSeedAndSpecificCases:
    """The issue's named cases."""

    def test_seed_dict_code_through_check_function(self) -> None:
        """The seed's own naive cost carries ~30 ulps of noise: measured, then a pass."""
        loss, grad, params = notebook_functions(bugged=False)
        report = check_function(loss, grad, params)
        assert report.verdict == "pass", str(report)
        assert report.difference <= 1e-9

    def test_seed_case_through_check_model(self) -> None:
        case = lk.fraud_net_seed_case()
        report = check_model(case.model, case.x, case.y)
        assert report.verdict == "pass" and report.difference <= 1e-10
        assert report.evaluations <= 2.2 * 47

    def test_check_layer_with_data_from_default_rng_0_catches_a_transposed_dw(self) -> None:
        """The projection is salted: it never equals x drawn from default_rng(0)."""

        class TransposedLinear(Linear):
            def backward(
                self, cache: LinearCache, grad_out: Array
            ) -> tuple[Array, dict[str, Array]]:
                grad_x, grads = super().backward(cache, grad_out)
                return grad_x, {**grads, "W": grads["W"].T.copy()}

        x = np.random.default_rng(0).standard_normal((4, 4))
        plain = Linear(4, 4, seed=0)
        layer = TransposedLinear.from_arrays(plain.W, plain.b)
        report = check_layer(layer, x)
        assert report.failed == ("W",), str(report)
        model = lk.Sequential(layer, ReLU(), Linear(4, 1, seed=1), Sigmoid(), loss=BCELoss())
        y = np.array([[1.0], [0.0], [1.0], [0.0]])
        report = check_model(model, x, y)
        assert report.failed == ("W1",)
        assert report.culprits == ("layer 0 (Linear(4->4))",), str(report)


@functools.cache
def big_relu_net() -> tuple[lk.Sequential, Array, Array]:
    """A He-initialised 512-1024-512-1 ReLU net (about 1M parameters), zero biases."""
    rng = np.random.default_rng(0)
    model = lk.mlp([512, 1024, 512, 1], seed=0)
    for layer in model.layers:
        if isinstance(layer, Linear):
            layer.b[...] = 0.0
    x = rng.standard_normal((64, 512))
    y = (rng.random((64, 1)) > 0.5).astype(float)
    return model, x, y


class TestFastModeOnABigReLUNet:
    """Fast mode on a He-initialised ReLU net of about 1M parameters, zero biases."""

    def test_passes_in_at_most_8_evaluations(self) -> None:
        model, x, y = big_relu_net()
        assert sum(a.size for a in model.params().values()) > 1_000_000
        report = check_model(model, x, y, mode="fast")
        assert report.verdict == "pass", str(report)
        assert report.evaluations <= 8

    @pytest.mark.parametrize(
        ("position", "name", "key"), [(0, "W1", "W"), (0, "b1", "b"), (4, "b3", "b")]
    )
    def test_1e6_relative_bugs_are_caught_and_localised(
        self, position: int, name: str, key: str
    ) -> None:
        model, x, y = big_relu_net()
        layers = list(model.layers)
        base = layers[position]
        assert isinstance(base, Linear)
        layers[position] = ScaledGradLinear(base, scale={key: 1 + RESOLVED_BUG})
        report = check_model(
            lk.Sequential(layers, loss=BCELoss()), x, y, mode="fast", localise=False
        )
        assert report.failed == (name,), str(report)


class TestCallbacks:
    """check_function's callbacks cannot corrupt the check; odd losses are refused."""

    def test_loss_fn_writing_its_argument_is_refused(self) -> None:
        def loss(p: dict[str, Float64Array]) -> float:
            p["w"] *= 2
            return float(np.sum(p["w"]))

        with pytest.raises(UserCodeError, match="loss_fn wrote into its argument"):
            check_function(loss, lambda p: {"w": np.ones_like(p["w"])}, {"w": W})

    def test_loss_fn_popping_a_key_does_not_reach_later_calls(self) -> None:
        def loss(p: dict[str, Float64Array]) -> float:
            return float(np.sum(p.pop("w") ** 2))

        report = check_function(loss, lambda p: {"w": 2 * p["w"]}, {"w": W})
        assert report.verdict == "pass"

    @pytest.mark.parametrize(
        "value", [np.ma.masked, np.ma.masked_array([1.0], mask=[True]), None, np.ones(2)]
    )
    def test_odd_loss_values_are_refused(self, value: object) -> None:
        with pytest.raises(LossValueError):
            check_function(lambda p: value, lambda p: {"w": np.ones(1)}, {"w": np.ones(1)})

    def test_empty_tensor_is_not_a_pass(self) -> None:
        report = check_function(
            lambda p: float(np.sum(p["w"] ** 2)) + float(np.sum(p["v"] ** 2)),
            lambda p: {"w": 2 * p["w"], "v": 2 * p["v"]},
            {"w": np.zeros(0), "v": W},
        )
        assert report.verdict == "inconclusive"
        assert report["w"].checked == 0 and report["w"].reasons == {"no entries": 1}
        assert report["v"].verdict == "pass"


class TestReportFields:
    """Each entry carries its step, the measured noise, its error bound and its reason."""

    def test_entries_and_reasons(self) -> None:
        case = lk.fraud_net_seed_case()
        report = check_model(case.model, case.x, case.y)
        assert report.noise_source.startswith(("measured", "bounded above"))
        for tensor in report.tensors:
            for entry in tensor.worst:
                assert entry.step > 0 and entry.noise == report.noise
                assert 0 <= entry.numeric_error < entry.allowed
        data = report.to_dict()
        assert {"step", "noise"} <= set(data["tensors"][0]["worst"][0])

    def test_every_reason_is_documented(self) -> None:
        assert {"kink", "noisy", "unresolved", "non-finite", "no entries"} <= set(REASONS)


class TestRandomNetsWithSmallBugs:
    """Random ReLU/tanh nets, inputs of scale 0.1-100: wherever the correct net passes (the
    loss resolves its gradient), a 1e-6 relative bug in one tensor fails on that tensor only;
    the correct net never fails."""

    def test_a_hundred_and_fifty_nets(self) -> None:
        rng = np.random.default_rng(42)
        caught = 0
        for _ in range(150):
            depth = int(rng.integers(1, 4))
            widths = [int(rng.integers(1, 12)) for _ in range(depth + 1)] + [1]
            activation = [ReLU, lk.layers.Tanh][int(rng.integers(0, 2))]
            layers: list[lk.layers.Layer] = []
            for fan_in, fan_out in itertools.pairwise(widths):
                layers += [Linear(fan_in, fan_out, seed=int(rng.integers(0, 10**6))), activation()]
            layers[-1] = Sigmoid()
            x = rng.standard_normal((int(rng.integers(1, 16)), widths[0])) * 10 ** rng.uniform(
                -1, 2
            )
            y = (rng.random((x.shape[0], 1)) > 0.5).astype(float)
            linears = [i for i, layer in enumerate(layers) if isinstance(layer, Linear)]
            position = linears[int(rng.integers(0, len(linears)))]
            key = ["W", "b"][int(rng.integers(0, 2))]
            name = f"{key}{linears.index(position) + 1}"
            correct = check_model(lk.Sequential(layers, loss=BCELoss()), x, y, localise=False)
            never_fails(correct)
            base = layers[position]
            assert isinstance(base, Linear)
            layers[position] = ScaledGradLinear(base, scale={key: 1 + RESOLVED_BUG})
            buggy = check_model(lk.Sequential(layers, loss=BCELoss()), x, y, localise=False)
            assert buggy.failed in ((), (name,)), str(buggy)
            assert buggy[name].verdict != "pass", str(buggy)
            if correct.verdict == "pass":
                assert buggy.failed == (name,), str(buggy)
                caught += 1
        assert caught >= 100
