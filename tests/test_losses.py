"""Tests for layerkit.losses: the four losses, their gradients, targets, and the fusion rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit._typing import Array
from layerkit.errors import ConfigError, DTypeError, NonFiniteError, ShapeError, TargetError
from layerkit.layers import Linear, Sigmoid
from layerkit.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    Loss,
    MSELoss,
    SoftmaxCrossEntropyLoss,
    check_targets,
    fused_loss,
)

FloatArray = npt.NDArray[np.floating[Any]]


def logit_bce(z: FloatArray, y: FloatArray) -> FloatArray:
    """softplus(z) - y z per entry, written independently of layerkit with numpy's logaddexp.

    Rewritten on each branch so that no large terms cancel: for z >= 0 it is
    softplus(-z) + (1 - y) z, for z < 0 softplus(z) - y z; logaddexp(0, t) with t <= 0 is
    log1p(e^t), accurate to the last bit even when e^t is ~1e-304.
    """
    return np.where(z >= 0, np.logaddexp(0.0, -z) + (1.0 - y) * z, np.logaddexp(0.0, z) - y * z)


def sigmoid_minus_label(z: FloatArray, y: FloatArray) -> FloatArray:
    """sigmoid(z) - y without cancellation for binary labels: on each branch compute
    e = exp(-|z|) (never overflows), then 1 - y - e / (1 + e) for z >= 0, e / (1 + e) - y
    for z < 0."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, (1.0 - y) - e / (1.0 + e), e / (1.0 + e) - y)


class TestBCEOnProbabilities:
    """Mean over samples of the summed cross-entropy of each column."""

    def test_value(self, rng: np.random.Generator) -> None:
        """Matches -(y log p + (1 - y) log(1 - p)), summed over columns, averaged over rows."""
        p = rng.uniform(0.05, 0.95, size=(6, 2))
        y = rng.uniform(0.0, 1.0, size=(6, 2))
        expected = np.mean(np.sum(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1))
        assert BCELoss().value(p, y) == pytest.approx(expected, rel=1e-12)

    def test_one_sample_by_hand(self) -> None:
        """p = 0.5, y = 1 costs log 2; p = 0.25, y = 0 costs log(4 / 3)."""
        loss = BCELoss()
        assert loss.value(np.array([[0.5]]), np.array([[1.0]])) == pytest.approx(
            np.log(2), rel=1e-15
        )
        assert loss.value(np.array([[0.25]]), np.array([[0.0]])) == pytest.approx(
            np.log(4 / 3), rel=1e-15
        )

    def test_grad(self, rng: np.random.Generator) -> None:
        """The gradient w.r.t. p is (p - y) / (p (1 - p)) / m."""
        p = rng.uniform(0.05, 0.95, size=(5, 1))
        y = (rng.random((5, 1)) > 0.5).astype(float)
        expected = (-y / p + (1 - y) / (1 - p)) / 5
        np.testing.assert_allclose(BCELoss().grad(p, y), expected, rtol=1e-12, atol=1e-12)

    def test_sample_losses_shape(self) -> None:
        """Per-sample losses have one entry per row."""
        assert BCELoss().sample_losses(np.full((4, 3), 0.5), np.ones((4, 3))).shape == (4,)


class TestBCEWithLogits:
    """The logit form is exact and finite for any finite logit."""

    def test_value_matches_softplus_form(self, rng: np.random.Generator) -> None:
        """softplus(z) - y z, summed over columns, averaged over rows."""
        z = rng.normal(0.0, 5.0, size=(7, 3))
        y = rng.uniform(0.0, 1.0, size=(7, 3))
        expected = np.mean(np.sum(logit_bce(z, y), axis=1))
        assert BCEWithLogitsLoss().value(z, y) == pytest.approx(expected, rel=1e-12)

    def test_agrees_with_probability_form(self, rng: np.random.Generator) -> None:
        """Where the sigmoid is not saturated, both forms give the same value."""
        z = rng.uniform(-6, 6, size=(8, 1))
        y = (rng.random((8, 1)) > 0.5).astype(float)
        p = 1.0 / (1.0 + np.exp(-z))
        assert BCEWithLogitsLoss().value(z, y) == pytest.approx(BCELoss().value(p, y), rel=1e-12)

    def test_grad_moderate(self, rng: np.random.Generator) -> None:
        """The gradient w.r.t. z is (sigmoid(z) - y) / m."""
        z = rng.uniform(-6, 6, size=(8, 2))
        y = rng.uniform(0.0, 1.0, size=(8, 2))
        expected = (1.0 / (1.0 + np.exp(-z)) - y) / 8
        np.testing.assert_allclose(BCEWithLogitsLoss().grad(z, y), expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("magnitude", [40.0, 700.0])
    def test_saturated(self, magnitude: float) -> None:
        """At +-40 and +-700, with right and wrong labels: finite value, exact gradient."""
        z = np.array([[magnitude], [magnitude], [-magnitude], [-magnitude]])
        y = np.array([[1.0], [0.0], [1.0], [0.0]])
        loss = BCEWithLogitsLoss()
        value = loss.value(z, y)
        assert np.isfinite(value)
        expected_value = float(np.mean(logit_bce(z, y)))
        assert value == pytest.approx(expected_value, rel=1e-12, abs=0)
        grad = loss.grad(z, y)
        expected = sigmoid_minus_label(z, y) / 4
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=0)
        # The right labels give a tiny but non-zero gradient of the right sign.
        assert grad[0, 0] < 0.0 < grad[3, 0]

    def test_each_saturated_sample_exact(self) -> None:
        """A correctly labelled sample at z = 700 costs exactly log1p(e^-700) ~ 9.86e-305."""
        z = np.array([[700.0]])
        y = np.array([[1.0]])
        loss = BCEWithLogitsLoss()
        assert loss.value(z, y) == pytest.approx(np.exp(-700.0), rel=1e-12, abs=0)
        assert loss.value(-z, y) == pytest.approx(700.0, rel=1e-15)
        assert loss.grad(z, y)[0, 0] == pytest.approx(-np.exp(-700.0), rel=1e-12, abs=0)


class TestCheckTargets:
    """Targets must match the predictions' shape and lie in [0, 1]."""

    @pytest.mark.parametrize("shape", [(4, 1), (4,), (1, 4)])
    def test_accepted_layouts_for_one_column(self, shape: tuple[int, ...]) -> None:
        """(m, 1), (m,) and the seed's (1, m) row all become (m, 1), keeping the order."""
        y = np.array([1.0, 0.0, 0.0, 1.0]).reshape(shape)
        np.testing.assert_array_equal(check_targets(y, (4, 1)), [[1.0], [0.0], [0.0], [1.0]])

    @pytest.mark.parametrize("shape", [(2, 2), (4, 2), (3, 1), (5,), (1, 1, 4)])
    def test_wrong_shape_refused(self, shape: tuple[int, ...]) -> None:
        """Any other shape is refused, naming both shapes, even when the size matches."""
        with pytest.raises(ShapeError) as info:
            check_targets(np.zeros(shape), (4, 1))
        message = str(info.value)
        assert "(4, 1)" in message
        assert str(shape) in message

    def test_multi_column_needs_exact_shape(self) -> None:
        """With k > 1 columns, only (m, k) is accepted."""
        assert check_targets(np.zeros((3, 2)), (3, 2)).shape == (3, 2)
        with pytest.raises(ShapeError):
            check_targets(np.zeros(6), (3, 2))

    @pytest.mark.parametrize("bad", [-0.5, 1.5, 2.0, -1e-9])
    def test_outside_unit_interval_refused(self, bad: float) -> None:
        """Values outside [0, 1] are refused, saying how many and showing one."""
        y = np.array([[0.0], [bad], [1.0]])
        with pytest.raises(TargetError) as info:
            check_targets(y, (3, 1), owner="MyModel")
        message = str(info.value)
        assert message.startswith("MyModel")
        assert "[0, 1]" in message
        assert "1 value(s) outside" in message
        assert f"e.g. {bad!r}." in message

    def test_probabilities_accepted(self) -> None:
        """Soft labels in [0, 1] are fine, ends included."""
        y = np.array([[0.0], [0.3], [1.0]])
        np.testing.assert_array_equal(check_targets(y, (3, 1)), y)

    def test_non_finite_refused(self) -> None:
        """NaN labels are refused."""
        with pytest.raises(NonFiniteError, match="'y'"):
            check_targets(np.array([[np.nan]]), (1, 1))

    @pytest.mark.parametrize("dtype", [complex, object])
    def test_bad_dtype_refused(self, dtype: type) -> None:
        """Complex and object labels are refused as TypeErrors."""
        with pytest.raises(DTypeError, match="'y'"):
            check_targets(np.zeros((2, 1)).astype(dtype), (2, 1))

    def test_integers_and_booleans_converted(self) -> None:
        """0/1 integers and booleans are converted to float."""
        out = check_targets(np.array([[1], [0]]), (2, 1))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(check_targets(np.array([True, False]), (2, 1)), out)


# -- every loss: the protocol ------------------------------------------------------------------

LOSSES: dict[str, Loss] = {
    "BCELoss": BCELoss(),
    "BCEWithLogitsLoss": BCEWithLogitsLoss(),
    "MSELoss": MSELoss(),
    "SoftmaxCrossEntropyLoss": SoftmaxCrossEntropyLoss(),
}


def valid_case(
    name: str, rng: np.random.Generator, m: int, k: int
) -> tuple[FloatArray, FloatArray]:
    """Outputs ``(m, k)`` and targets each loss accepts (probabilities away from 0 and 1 for
    BCE on probabilities, so that a numeric step stays inside (0, 1))."""
    if name == "BCELoss":
        return rng.uniform(0.05, 0.95, (m, k)), rng.uniform(0.0, 1.0, (m, k))
    if name == "BCEWithLogitsLoss":
        return rng.normal(0.0, 3.0, (m, k)), rng.uniform(0.0, 1.0, (m, k))
    if name == "MSELoss":
        return rng.normal(0.0, 2.0, (m, k)), rng.normal(0.0, 2.0, (m, k))
    return rng.normal(0.0, 3.0, (m, k)), rng.integers(0, k, m).astype(np.float64)


def numeric_grad(loss: Loss, out: FloatArray, y: FloatArray, step: float = 1e-5) -> FloatArray:
    """Central differences of ``loss.value`` at each entry of ``out``."""
    result = np.empty_like(out)
    for index in np.ndindex(out.shape):
        up, down = out.copy(), out.copy()
        up[index] += step
        down[index] -= step
        result[index] = (loss.value(up, y) - loss.value(down, y)) / (2 * step)
    return result


class TestEveryLoss:
    """What the checker and Sequential rely on, for each shipped loss."""

    @pytest.mark.parametrize("name", sorted(LOSSES))
    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 5), k=st.integers(2, 4))
    def test_grad_matches_numeric_derivative(self, name: str, seed: int, m: int, k: int) -> None:
        """grad equals the central difference of value (error ~ step^2 |f'''| + eps |f| / step,
        both below 1e-8 for these inputs), entry by entry."""
        loss = LOSSES[name]
        out, y = valid_case(name, np.random.default_rng(seed), m, k)
        np.testing.assert_allclose(
            loss.grad(out, y), numeric_grad(loss, out, y), rtol=1e-6, atol=1e-8
        )

    @pytest.mark.parametrize("name", sorted(LOSSES))
    def test_value_is_mean_of_sample_losses(self, name: str, rng: np.random.Generator) -> None:
        """value is the mean over samples of sample_losses, one per row."""
        loss = LOSSES[name]
        out, y = valid_case(name, rng, 6, 3)
        target = loss.check_targets(y, (6, 3), owner="test")
        per_sample = loss.sample_losses(out, target)
        assert per_sample.shape == (6,)
        assert loss.value(out, y) == pytest.approx(float(per_sample.mean()), rel=1e-15)

    @pytest.mark.parametrize("name", sorted(LOSSES))
    def test_stacked_copies_match_one_by_one(self, name: str, rng: np.random.Generator) -> None:
        """sample_losses on (n, m, k) equals each (m, k) copy on its own (the checker stacks)."""
        loss = LOSSES[name]
        out, y = valid_case(name, rng, 4, 3)
        target = loss.check_targets(y, (4, 3), owner="test")
        stacked = np.stack([out, out[::-1], 0.5 * out])
        together = loss.sample_losses(stacked, target)
        assert together.shape == (3, 4)
        for copy_index in range(3):
            np.testing.assert_array_equal(
                together[copy_index], loss.sample_losses(stacked[copy_index], target)
            )

    @pytest.mark.parametrize("name", sorted(LOSSES))
    def test_wrong_output_rank_names_the_loss(self, name: str) -> None:
        """A 1-D output is refused with a ShapeError naming the loss, the method and (m, k)."""
        with pytest.raises(ShapeError, match=rf"^{name}\.value: '.+' must have shape \(m, k\)"):
            LOSSES[name].value(np.zeros(3), np.zeros(3))

    def test_repr_and_name(self) -> None:
        """A loss shows as its class name with empty parentheses."""
        assert repr(MSELoss()) == "MSELoss()"
        assert SoftmaxCrossEntropyLoss().name == "SoftmaxCrossEntropyLoss"


class TestBCESaturated:
    """BCE on probabilities is exact at p = 0 and p = 1: no NaN where the loss is finite."""

    def test_right_answers_at_the_ends(self) -> None:
        """p = 1, y = 1 and p = 0, y = 0 cost 0, with gradients -1/m and +1/m exactly."""
        p = np.array([[1.0], [0.0]])
        y = np.array([[1.0], [0.0]])
        assert BCELoss().value(p, y) == 0.0
        np.testing.assert_array_equal(BCELoss().grad(p, y), [[-0.5], [0.5]])

    def test_single_sample(self) -> None:
        """BCELoss().grad(p=1, y=1) is -1 for one sample (-1/m, m = 1)."""
        assert BCELoss().grad(np.array([[1.0]]), np.array([[1.0]]))[0, 0] == -1.0

    def test_wrong_answers_at_the_ends_are_infinite(self) -> None:
        """p = 1, y = 0 costs +inf with gradient +inf: infinite, never NaN."""
        p = np.array([[1.0], [0.0]])
        y = np.array([[0.0], [1.0]])
        assert BCELoss().value(p, y) == np.inf
        np.testing.assert_array_equal(BCELoss().grad(p, y), [[np.inf], [-np.inf]])


class TestMSE:
    """Mean over every entry of the squared difference."""

    def test_value_and_grad(self, rng: np.random.Generator) -> None:
        """value = mean((out - y)^2), grad = 2 (out - y) / (m k)."""
        out, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
        assert MSELoss().value(out, y) == pytest.approx(float(np.mean((out - y) ** 2)), rel=1e-14)
        np.testing.assert_allclose(MSELoss().grad(out, y), 2 * (out - y) / 15, rtol=1e-14)

    @pytest.mark.parametrize("shape", [(4,), (4, 1), (1, 4)])
    def test_one_column_layouts(self, shape: tuple[int, ...]) -> None:
        """For one output column, targets (m,), (m, 1) and (1, m) give the same loss."""
        out = np.arange(4.0).reshape(4, 1)
        y = np.array([0.5, 1.0, -2.0, 3.0])
        assert MSELoss().value(out, y.reshape(shape)) == MSELoss().value(out, y.reshape(4, 1))

    def test_any_real_target(self) -> None:
        """Targets outside [0, 1] are fine for regression."""
        assert MSELoss().value([[100.0]], [[-100.0]]) == 40000.0

    def test_shape_mismatch(self) -> None:
        """Targets (3, 2) for outputs (3, 1): ShapeError naming the loss and both shapes."""
        with pytest.raises(ShapeError) as info:
            MSELoss().value(np.zeros((3, 1)), np.zeros((3, 2)))
        message = str(info.value)
        assert message.startswith("MSELoss.value: targets 'y'")
        assert "(3, 1)" in message and "(3, 2)" in message

    def test_nan_target(self) -> None:
        """A NaN target is a NonFiniteError naming the loss and 'y'."""
        with pytest.raises(NonFiniteError, match=r"^MSELoss\.grad: 'y' holds 1 NaN"):
            MSELoss().grad(np.zeros((2, 1)), [[0.0], [np.nan]])


def independent_log_softmax(z: FloatArray) -> FloatArray:
    """log softmax via numpy's logaddexp.reduce (a second, independent formula)."""
    return np.asarray(z - np.logaddexp.reduce(z, axis=-1, keepdims=True))


class TestSoftmaxCrossEntropy:
    """Labels or one-hot, a stable log-softmax, clear target errors."""

    def test_value_and_grad(self, rng: np.random.Generator) -> None:
        """-mean log softmax(z)[label]; gradient (softmax(z) - one_hot) / m."""
        z = rng.normal(0.0, 2.0, (6, 4))
        labels = np.array([0, 3, 1, 1, 2, 0])
        log_p = independent_log_softmax(z)
        expected = -np.mean(log_p[np.arange(6), labels])
        assert SoftmaxCrossEntropyLoss().value(z, labels) == pytest.approx(expected, rel=1e-14)
        one_hot = np.eye(4)[labels]
        np.testing.assert_allclose(
            SoftmaxCrossEntropyLoss().grad(z, labels),
            (np.exp(log_p) - one_hot) / 6,
            rtol=1e-12,
            atol=1e-17,
        )

    def test_labels_and_one_hot_equal(self, rng: np.random.Generator) -> None:
        """Integer labels (m,), (m, 1), float labels and one-hot rows give identical results."""
        loss = SoftmaxCrossEntropyLoss()
        z = rng.normal(size=(5, 3))
        labels = np.array([2, 0, 1, 2, 2])
        forms = [labels, labels.reshape(5, 1), labels.astype(float), np.eye(3)[labels]]
        for form in forms:
            assert loss.value(z, form) == loss.value(z, labels)
            np.testing.assert_array_equal(loss.grad(z, form), loss.grad(z, labels))

    def test_stable_at_plus_minus_1000(self) -> None:
        """Logits of +-1000: finite, exact losses (0, 2000, 1000) and finite gradients."""
        z = np.array([[1000.0, -1000.0, 0.0]] * 3)
        labels = np.array([0, 1, 2])
        per_sample = SoftmaxCrossEntropyLoss().sample_losses(z, np.eye(3)[labels])
        np.testing.assert_array_equal(per_sample, [0.0, 2000.0, 1000.0])
        grad = SoftmaxCrossEntropyLoss().grad(z, labels)
        assert np.all(np.isfinite(grad))
        np.testing.assert_array_equal(
            grad * 3, [[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [1.0, 0.0, -1.0]]
        )

    @pytest.mark.parametrize("z", [1.0, 40.0, 700.0, -700.0])
    def test_two_classes_equal_bce_with_logits(self, z: float) -> None:
        """Two classes with logits (z, 0) are BCE with logits on z: same loss and gradient,
        to 1e-12 even when the right class is certain (loss ~ e^-700)."""
        softmax = SoftmaxCrossEntropyLoss()
        logits = np.array([[z, 0.0]])
        assert softmax.value(logits, [0]) == pytest.approx(
            BCEWithLogitsLoss().value([[z]], [[1.0]]), rel=1e-12, abs=0
        )
        assert softmax.grad(logits, [0])[0, 0] == pytest.approx(
            BCEWithLogitsLoss().grad([[z]], [[1.0]])[0, 0], rel=1e-12, abs=0
        )

    @pytest.mark.parametrize(
        ("labels", "fragments"),
        [
            ([0, 3, 1], ("integer class labels in [0, 2]", "3.0 at sample 1")),
            ([0, 0.5, 1], ("integer class labels in [0, 2]", "0.5 at sample 1")),
            ([0, -1, 1], ("integer class labels in [0, 2]", "-1.0 at sample 1")),
        ],
    )
    def test_bad_labels(self, labels: list[float], fragments: tuple[str, ...]) -> None:
        """A label out of range or not whole: TargetError naming the loss, 'y', the range and
        the first bad value with its sample."""
        with pytest.raises(TargetError) as info:
            SoftmaxCrossEntropyLoss().value(np.zeros((3, 3)), labels)
        message = str(info.value)
        assert message.startswith("SoftmaxCrossEntropyLoss.value: targets 'y'")
        for fragment in fragments:
            assert fragment in message

    def test_bad_one_hot_row(self) -> None:
        """A (m, k) target whose row is not one-hot: TargetError showing the row."""
        y = np.array([[1.0, 0.0], [0.5, 0.5]])
        with pytest.raises(TargetError, match=r"one-hot rows .* row 1 is \[0\.5, 0\.5\]"):
            SoftmaxCrossEntropyLoss().grad(np.zeros((2, 2)), y)

    def test_wrong_target_shape(self) -> None:
        """Targets (3, 2) for 3 classes: ShapeError naming the accepted shapes and the one given."""
        with pytest.raises(ShapeError) as info:
            SoftmaxCrossEntropyLoss().value(np.zeros((3, 3)), np.zeros((3, 2)))
        assert (
            "class labels of shape (3,) or one-hot rows of shape (3, 3), got shape (3, 2)"
            in str(info.value)
        )

    def test_one_column_refused(self) -> None:
        """One output column is no softmax: ShapeError pointing to BCEWithLogitsLoss."""
        with pytest.raises(ShapeError, match=r"k >= 2 .* got 1; .* BCEWithLogitsLoss"):
            SoftmaxCrossEntropyLoss().value(np.zeros((3, 1)), [0, 0, 0])


class TestFusionRule:
    """The one rule under which a model's loss reads the input of its last layer."""

    def test_bce_after_sigmoid_reads_logits(self) -> None:
        """BCELoss after Sigmoid is evaluated as BCEWithLogitsLoss."""
        assert isinstance(fused_loss(BCELoss(), Sigmoid()), BCEWithLogitsLoss)

    @pytest.mark.parametrize("loss", [BCEWithLogitsLoss(), MSELoss(), SoftmaxCrossEntropyLoss()])
    def test_other_losses_are_never_fused(self, loss: Loss) -> None:
        """Every other loss reads the model's output as it is."""
        assert fused_loss(loss, Sigmoid()) is None

    def test_subclasses_are_never_fused(self) -> None:
        """A BCELoss subclass, or a Sigmoid subclass, keeps its own code."""

        class MyBCE(BCELoss):
            pass

        class MySigmoid(Sigmoid):
            pass

        assert fused_loss(MyBCE(), Sigmoid()) is None
        assert fused_loss(BCELoss(), MySigmoid()) is None

    def test_bare_linear_with_bce_gets_advice(self) -> None:
        """BCELoss after a Linear: ConfigError advising a Sigmoid or BCEWithLogitsLoss."""
        with pytest.raises(
            ConfigError, match=r"bare Linear\(3->1\).*add a Sigmoid, or use BCEWithLogitsLoss"
        ):
            fused_loss(BCELoss(), Linear(3, 1))


class LogCosh(Loss):
    """A user's loss: log cosh(out - y), summed over columns."""

    def sample_losses(self, out: Array, y: Array) -> Array:
        diff = out - y
        return np.asarray((np.logaddexp(diff, -diff) - np.log(2.0)).sum(axis=-1))

    def sample_grads(self, out: Array, y: Array) -> Array:
        return np.asarray(np.tanh(out - y))


class TestUserLoss:
    """A loss written in a few lines gets validation, the mean and the gradient for free."""

    def test_grad_matches_numeric(self, rng: np.random.Generator) -> None:
        """The base class turns sample_grads into the gradient of the mean."""
        out, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
        np.testing.assert_allclose(
            LogCosh().grad(out, y), numeric_grad(LogCosh(), out, y), rtol=1e-6, atol=1e-8
        )

    def test_default_target_checks(self) -> None:
        """The default check_targets refuses a shape mismatch, naming the user's loss."""
        with pytest.raises(
            ShapeError, match=r"^LogCosh\.value: targets 'y' must have shape \(2, 2\)"
        ):
            LogCosh().value(np.zeros((2, 2)), np.zeros((2, 3)))
