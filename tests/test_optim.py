"""Tests for layerkit.optim: SGD, Adam and fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from layerkit.errors import ConfigError, NonFiniteError, ShapeError, TargetError
from layerkit.layers import Dropout, Linear, ReLU, Sigmoid
from layerkit.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss
from layerkit.models import fraud_net, mlp
from layerkit.optim import SGD, Adam, History, Optimizer, fit
from layerkit.sequential import Sequential

FloatArray = npt.NDArray[np.floating[Any]]


def separable_data(m: int = 200, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Points in R^4 labelled by the side of a fixed hyperplane (linearly separable)."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((m, 4))
    w = np.array([1.5, -2.0, 1.0, 0.5])
    y = (x @ w + 0.25 > 0).astype(np.float64).reshape(m, 1)
    return x, y


def accuracy(model: Sequential, x: FloatArray, y: FloatArray) -> float:
    return float(np.mean((model.predict(x) > 0.5) == (y > 0.5)))


class TestSGDStep:
    """SGD updates match v = mu v - lr g; p += v, computed by hand."""

    def test_plain_gradient_descent(self) -> None:
        """With momentum 0 a step is p - lr g."""
        p = np.array([1.0, -2.0, 0.5])
        g = np.array([0.5, 1.0, -4.0])
        out = SGD(lr=0.1, momentum=0.0).step(p, g)
        np.testing.assert_allclose(out, [0.95, -2.1, 0.9], rtol=1e-15)

    def test_momentum_two_steps(self) -> None:
        """v1 = -lr g1, p1 = p0 + v1; v2 = mu v1 - lr g2, p2 = p1 + v2."""
        opt = SGD(lr=0.5, momentum=0.5)
        p0 = np.array([1.0, 1.0])
        p1 = opt.step(p0, np.array([1.0, -2.0]))  # v1 = [-0.5, 1]
        np.testing.assert_allclose(p1, [0.5, 2.0], rtol=1e-15)
        p2 = opt.step(p1, np.array([0.0, 2.0]))  # v2 = [-0.25, 0.5] + [0, -1] = [-0.25, -0.5]
        np.testing.assert_allclose(p2, [0.25, 1.5], rtol=1e-15)

    def test_nesterov(self) -> None:
        """Nesterov steps to p + mu v - lr g with the updated velocity."""
        opt = SGD(lr=0.5, momentum=0.5, nesterov=True)
        p1 = opt.step(np.array([1.0]), np.array([1.0]))  # v = -0.5; p = 1 - 0.25 - 0.5
        np.testing.assert_allclose(p1, [0.25], rtol=1e-15)

    def test_does_not_modify_its_arguments(self) -> None:
        """step returns a new vector; params and grads are left as they were."""
        p = np.array([1.0, 2.0])
        g = np.array([3.0, 4.0])
        SGD().step(p, g)
        np.testing.assert_array_equal(p, [1.0, 2.0])
        np.testing.assert_array_equal(g, [3.0, 4.0])

    def test_shape_mismatch(self) -> None:
        """grads must have the shape of params; both shapes are named."""
        with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
            SGD().step(np.zeros(3), np.zeros(2))


class TestAdamStep:
    """Adam's bias-corrected steps, computed by hand."""

    def test_first_step_is_lr_times_sign(self) -> None:
        """m_hat = g, v_hat = g^2 at t = 1, so the step is lr g / (|g| + eps)."""
        g = np.array([2.0, -0.5, 1e-3])
        out = Adam(lr=0.1, eps=1e-8).step(np.zeros(3), g)
        np.testing.assert_allclose(out, -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)

    def test_second_step(self) -> None:
        """Two steps against the textbook recursion with beta1 = 0.5, beta2 = 0.75."""
        opt = Adam(lr=1.0, beta1=0.5, beta2=0.75, eps=0.0)
        p1 = opt.step(np.array([0.0]), np.array([1.0]))
        np.testing.assert_allclose(p1, [-1.0], rtol=1e-15)
        p2 = opt.step(p1, np.array([3.0]))
        # m = 0.5 * 0.5 + 0.5 * 3 = 1.75, m_hat = 1.75 / 0.75; v = 0.75 * 0.25 + 0.25 * 9 = 2.4375,
        # v_hat = 2.4375 / 0.4375.
        expected = -1.0 - (1.75 / 0.75) / np.sqrt(2.4375 / 0.4375)
        np.testing.assert_allclose(p2, [expected], rtol=1e-14)

    def test_shape_mismatch(self) -> None:
        """grads must have the shape of params."""
        with pytest.raises(ShapeError):
            Adam().step(np.zeros(3), np.zeros((3, 1)))


class TestOptimizerArguments:
    """Bad hyper-parameters are refused with messages that name them."""

    @pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1", True, None])
    @pytest.mark.parametrize("make", [SGD, Adam], ids=["SGD", "Adam"])
    def test_bad_lr(self, make: Callable[..., Optimizer], lr: object) -> None:
        """lr must be a finite number >= 0."""
        with pytest.raises(ConfigError) as info:
            make(lr=lr)
        message = str(info.value)
        assert message.startswith(make.__name__)
        assert "'lr'" in message
        assert repr(lr) in message
        assert isinstance(info.value, ValueError)

    @pytest.mark.parametrize("momentum", [1.0, 1.5, -0.1])
    def test_bad_momentum(self, momentum: float) -> None:
        """momentum must lie in [0, 1)."""
        with pytest.raises(ConfigError, match="'momentum'"):
            SGD(momentum=momentum)

    @pytest.mark.parametrize("name", ["beta1", "beta2"])
    def test_bad_betas(self, name: str) -> None:
        """Adam's betas must lie in [0, 1)."""
        with pytest.raises(ConfigError, match=f"'{name}'"):
            Adam(**{name: 1.0})

    def test_base_class_is_abstract_in_practice(self) -> None:
        """The base Optimizer does not step."""
        with pytest.raises(NotImplementedError):
            Optimizer().step(np.zeros(1), np.zeros(1))


class TestFitReducesLoss:
    """fit with SGD+momentum or Adam learns a separable problem."""

    @pytest.mark.parametrize(
        ("make_optimizer", "epochs", "batch_size"),
        [
            (lambda: SGD(lr=0.1, momentum=0.9), 100, None),
            (lambda: SGD(lr=0.1, momentum=0.9, nesterov=True), 100, None),
            (lambda: SGD(lr=0.05, momentum=0.9), 30, 20),
            (lambda: Adam(lr=0.02), 40, 32),
        ],
        ids=["sgd-momentum", "sgd-nesterov", "sgd-minibatch", "adam"],
    )
    @pytest.mark.parametrize("seed", [0, 3])
    def test_fraud_net(
        self,
        make_optimizer: Callable[[], Optimizer],
        epochs: int,
        batch_size: int | None,
        seed: int,
    ) -> None:
        """Loss falls below a tenth of its start and below 0.05; accuracy reaches 97 %."""
        x, y = separable_data()
        model = fraud_net(seed=seed)
        before = model.loss_value(x, y)
        optimizer = make_optimizer()  # fresh state for every run
        history = fit(
            model, x, y, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=1
        )
        after = model.loss_value(x, y)
        assert after < 0.1 * before
        assert after < 0.05
        assert accuracy(model, x, y) >= 0.97
        assert history.losses[-1] < 0.2 * history.losses[0]

    def test_wider_mlp_with_adam(self) -> None:
        """A 4 -> 8 -> 8 -> 1 mlp learns the same problem."""
        x, y = separable_data(seed=5)
        model = mlp((4, 8, 8, 1), seed=2)
        before = model.loss_value(x, y)
        fit(model, x, y, optimizer=Adam(lr=0.02), epochs=40, batch_size=50, seed=0)
        assert model.loss_value(x, y) < 0.1 * before
        assert accuracy(model, x, y) >= 0.97

    def test_zero_learning_rate_changes_nothing(self) -> None:
        """With lr = 0 the parameters stay put (so learning above is the optimizer's doing)."""
        x, y = separable_data()
        model = fraud_net(seed=0)
        before = model.flatten().copy()
        fit(model, x, y, optimizer=SGD(lr=0.0), epochs=5)
        np.testing.assert_array_equal(model.flatten(), before)

    def test_fit_with_dropout_still_learns(self) -> None:
        """A model with dropout trains (masks drawn from fit's seed) and predicts deterministically."""
        x, y = separable_data()
        model = Sequential(
            Linear(4, 16, seed=0),
            ReLU(),
            Dropout(0.2),
            Linear(16, 1, seed=1),
            Sigmoid(),
            loss=BCELoss(),
        )
        before = model.loss_value(x, y)
        fit(model, x, y, optimizer=Adam(lr=0.02), epochs=40, batch_size=50, seed=0)
        assert model.loss_value(x, y) < 0.3 * before
        assert accuracy(model, x, y) >= 0.95
        np.testing.assert_array_equal(model.predict(x), model.predict(x))


class TestFitContract:
    """fit's arguments, return value and randomness."""

    def test_returns_history(self) -> None:
        """One finite mean loss per epoch; the first is the loss before any step (full batch)."""
        x, y = separable_data(m=40)
        model = fraud_net(seed=0)
        start = model.loss_value(x, y)
        history = fit(model, x, y, epochs=7)
        assert isinstance(history, History)
        assert len(history.losses) == 7
        assert all(isinstance(v, float) and np.isfinite(v) for v in history.losses)
        assert history.losses[0] == pytest.approx(start, rel=1e-12)

    def test_on_epoch_callback(self) -> None:
        """on_epoch receives (epoch, loss) once per epoch, matching the History."""
        x, y = separable_data(m=40)
        seen: list[tuple[int, float]] = []
        history = fit(
            fraud_net(seed=0),
            x,
            y,
            epochs=4,
            batch_size=16,
            on_epoch=lambda e, v: seen.append((e, v)),
        )
        assert seen == list(enumerate(history.losses))

    def test_reproducible_and_global_rng_untouched(
        self, global_rng_untouched: Callable[[], None]
    ) -> None:
        """Same seed, same result (shuffling and dropout); the global numpy RNG is not used."""
        x, y = separable_data(m=60)

        def train(seed: int) -> FloatArray:
            model = Sequential(
                Linear(4, 6, seed=0),
                ReLU(),
                Dropout(0.3),
                Linear(6, 1, seed=1),
                Sigmoid(),
                loss=BCELoss(),
            )
            fit(model, x, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=16, seed=seed)
            return np.asarray(model.flatten(), dtype=np.float64)

        first = train(7)
        np.testing.assert_array_equal(first, train(7))
        assert not np.array_equal(first, train(8))
        global_rng_untouched()

    def test_generator_seed_accepted(self) -> None:
        """A Generator may be passed as seed."""
        x, y = separable_data(m=30)
        history = fit(
            fraud_net(seed=0), x, y, epochs=2, batch_size=10, seed=np.random.default_rng(0)
        )
        assert len(history.losses) == 2

    @pytest.mark.parametrize("epochs", [0, -1, 2.0, True])
    def test_bad_epochs(self, epochs: object) -> None:
        """epochs must be a positive integer."""
        x, y = separable_data(m=10)
        with pytest.raises(ConfigError, match="'epochs'"):
            fit(fraud_net(seed=0), x, y, epochs=epochs)  # type: ignore[arg-type]

    @pytest.mark.parametrize("batch_size", [0, -5, 1.5])
    def test_bad_batch_size(self, batch_size: object) -> None:
        """batch_size must be a positive integer."""
        x, y = separable_data(m=10)
        with pytest.raises(ConfigError, match="'batch_size'"):
            fit(fraud_net(seed=0), x, y, batch_size=batch_size)  # type: ignore[arg-type]

    def test_bad_data_refused_before_training(self) -> None:
        """NaN inputs and labels outside [0, 1] are refused, and the model is untouched."""
        x, y = separable_data(m=10)
        model = fraud_net(seed=0)
        before = model.flatten().copy()
        x_bad = x.copy()
        x_bad[0, 0] = np.nan
        with pytest.raises(NonFiniteError):
            fit(model, x_bad, y, epochs=1)
        with pytest.raises(TargetError):
            fit(model, x, y * 2, epochs=1)
        with pytest.raises(ShapeError):
            fit(model, x, y[:5], epochs=1)
        np.testing.assert_array_equal(model.flatten(), before)

    def test_float32_model_stays_float32(self) -> None:
        """Training a float32 model keeps its parameters float32."""
        x, y = separable_data(m=40)
        model = fraud_net(seed=0).astype(np.float32)
        fit(model, x, y, optimizer=Adam(lr=0.01), epochs=3)
        assert model.dtype == np.float32
        assert all(a.dtype == np.float32 for a in model.params().values())


class TestFitAnyLoss:
    """fit trains regression (MSE) and multi-class (softmax cross-entropy) nets."""

    def test_regression_with_mse(self) -> None:
        """A 2-output linear target y = x A + c: the MSE falls below 1% of where it started."""
        rng = np.random.default_rng(5)
        x = rng.standard_normal((200, 3))
        y = x @ rng.standard_normal((3, 2)) + np.array([0.5, -1.0])
        model = mlp([3, 16, 2], loss=MSELoss(), seed=0)
        start = model.loss_value(x, y)
        history = fit(model, x, y, optimizer=Adam(lr=0.02), epochs=150, batch_size=50)
        assert history.losses[-1] < 0.01 * start
        assert model.loss_value(x, y) < 0.01 * start

    def test_three_classes_with_integer_labels(self) -> None:
        """Three blobs, labels 0, 1, 2 as integers: the argmax of the logits is right for
        at least 95% of the samples; one-hot targets train to the same parameters."""
        rng = np.random.default_rng(6)
        centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
        labels = rng.integers(0, 3, 300)
        x = centres[labels] + rng.standard_normal((300, 2))
        trained = []
        for targets in (labels, np.eye(3)[labels]):
            model = mlp([2, 8, 3], loss=SoftmaxCrossEntropyLoss(), seed=0)
            fit(model, x, targets, optimizer=Adam(lr=0.02), epochs=30, batch_size=60)
            trained.append(model.flatten())
            assert np.mean(model.predict(x).argmax(axis=1) == labels) >= 0.95
        np.testing.assert_array_equal(trained[0], trained[1])

    def test_bad_labels_refused_before_training(self) -> None:
        """A label 3 for three classes: TargetError naming the model's loss, nothing trained."""
        model = mlp([2, 4, 3], loss=SoftmaxCrossEntropyLoss(), seed=0)
        before = model.flatten().copy()
        with pytest.raises(TargetError, match=r"Sequential \(SoftmaxCrossEntropyLoss\(\)\)"):
            fit(model, np.zeros((3, 2)), [0, 3, 1], epochs=1)
        np.testing.assert_array_equal(model.flatten(), before)
