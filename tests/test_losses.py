"""Tests for layerkit.losses: BCE on probabilities and on logits, and target validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from layerkit.errors import DTypeError, NonFiniteError, ShapeError, TargetError
from layerkit.losses import BCELoss, check_targets

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


class TestBCEFromLogits:
    """The logit form is exact and finite for any finite logit."""

    def test_value_matches_softplus_form(self, rng: np.random.Generator) -> None:
        """softplus(z) - y z, summed over columns, averaged over rows."""
        z = rng.normal(0.0, 5.0, size=(7, 3))
        y = rng.uniform(0.0, 1.0, size=(7, 3))
        expected = np.mean(np.sum(logit_bce(z, y), axis=1))
        assert BCELoss().value_from_logits(z, y) == pytest.approx(expected, rel=1e-12)

    def test_agrees_with_probability_form(self, rng: np.random.Generator) -> None:
        """Where the sigmoid is not saturated, both forms give the same value."""
        z = rng.uniform(-6, 6, size=(8, 1))
        y = (rng.random((8, 1)) > 0.5).astype(float)
        p = 1.0 / (1.0 + np.exp(-z))
        loss = BCELoss()
        assert loss.value_from_logits(z, y) == pytest.approx(loss.value(p, y), rel=1e-12)

    def test_grad_moderate(self, rng: np.random.Generator) -> None:
        """The gradient w.r.t. z is (sigmoid(z) - y) / m."""
        z = rng.uniform(-6, 6, size=(8, 2))
        y = rng.uniform(0.0, 1.0, size=(8, 2))
        expected = (1.0 / (1.0 + np.exp(-z)) - y) / 8
        np.testing.assert_allclose(
            BCELoss().grad_from_logits(z, y), expected, rtol=1e-12, atol=1e-12
        )

    @pytest.mark.parametrize("magnitude", [40.0, 700.0])
    def test_saturated(self, magnitude: float) -> None:
        """At +-40 and +-700, with right and wrong labels: finite value, exact gradient."""
        z = np.array([[magnitude], [magnitude], [-magnitude], [-magnitude]])
        y = np.array([[1.0], [0.0], [1.0], [0.0]])
        loss = BCELoss()
        value = loss.value_from_logits(z, y)
        assert np.isfinite(value)
        expected_value = float(np.mean(logit_bce(z, y)))
        assert value == pytest.approx(expected_value, rel=1e-12, abs=0)
        grad = loss.grad_from_logits(z, y)
        expected = sigmoid_minus_label(z, y) / 4
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=0)
        # The right labels give a tiny but non-zero gradient of the right sign.
        assert grad[0, 0] < 0.0 < grad[3, 0]

    def test_each_saturated_sample_exact(self) -> None:
        """A correctly labelled sample at z = 700 costs exactly log1p(e^-700) ~ 9.86e-305."""
        z = np.array([[700.0]])
        y = np.array([[1.0]])
        loss = BCELoss()
        assert loss.value_from_logits(z, y) == pytest.approx(np.exp(-700.0), rel=1e-12, abs=0)
        assert loss.value_from_logits(-z, y) == pytest.approx(700.0, rel=1e-15)
        assert loss.grad_from_logits(z, y)[0, 0] == pytest.approx(-np.exp(-700.0), rel=1e-12, abs=0)


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
