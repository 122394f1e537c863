"""What a layer's backward returns is checked wherever it is called: model, checks, training.

Each mistake (a missing or extra key, None, the bare dict, a wrong shape, text) raises one
GradientSpecError naming the layer by its model label, the key, and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import layerkit as lk
from layerkit._typing import Array
from layerkit.errors import GradientSpecError
from layerkit.layers import Layer, Linear, Sigmoid

Mangle = Callable[[Array, dict[str, Array]], object]


class Scale(Layer):
    """``y = x * g + h`` per feature; ``mangle`` turns the correct (grad_x, grads) into what
    backward returns (identity: a correct layer)."""

    def __init__(self, features: int, mangle: Mangle | None = None) -> None:
        self.in_features = self.out_features = features
        self.g, self.h = np.linspace(0.5, 1.5, features), np.zeros(features)
        self.mangle = mangle

    @property
    def name(self) -> str:
        return f"Scale({self.in_features})"

    def params(self) -> dict[str, Array]:
        return {"g": self.g, "h": self.h}

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, tuple[Array, Array]]:
        return x * self.g + self.h, (x, self.g)

    def backward(
        self, cache: tuple[Array, Array], grad_out: Array
    ) -> tuple[Array, dict[str, Array]]:
        x, g = cache
        grad_x = grad_out * g
        grads = {"g": (grad_out * x).sum(axis=0), "h": grad_out.sum(axis=0)}
        if self.mangle is None:
            return grad_x, grads
        return self.mangle(grad_x, grads)  # type: ignore[return-value]


MISTAKES: dict[str, tuple[Mangle, tuple[str, ...]]] = {
    "missing key": (
        lambda gx, gr: (gx, {"g": gr["g"]}),
        ("keys of params() ['g', 'h']", "missing ['h']"),
    ),
    "extra key": (
        lambda gx, gr: (gx, {**gr, "k": gr["h"]}),
        ("keys of params() ['g', 'h']", "unexpected ['k']"),
    ),
    "None for a gradient": (
        lambda gx, gr: (gx, {"g": gr["g"], "h": None}),
        ("None for grads['h']", "expected a real array of shape (4,)"),
    ),
    "None for grad_x": (
        lambda gx, gr: (None, gr),
        ("None for grad_x", "expected a real array of shape (5, 4)"),
    ),
    "None for grads": (
        lambda gx, gr: (gx, None),
        ("grads must be a dict with the keys ['g', 'h']", "NoneType None"),
    ),
    "None instead of the tuple": (
        lambda gx, gr: None,
        ("must return a tuple (grad_x, grads)", "NoneType None"),
    ),
    "the bare dict": (
        lambda gx, gr: gr,
        ("must return a tuple (grad_x, grads)", "got a dict"),
    ),
    "a gradient of the wrong shape": (
        lambda gx, gr: (gx, {"g": gr["g"][np.newaxis], "h": gr["h"]}),
        ("grads['g'] of shape (1, 4)", "expected a real array of shape (4,)"),
    ),
    "grad_x of the wrong shape": (
        lambda gx, gr: (gx.T, gr),
        ("grad_x of shape (4, 5)", "expected a real array of shape (5, 4)"),
    ),
    "text for a gradient": (
        lambda gx, gr: (gx, {"g": "0.5", "h": gr["h"]}),
        ("grads['g']", "str '0.5'", "expected a real array of shape (4,)"),
    ),
}


def model_with(layer: Layer, loss: lk.Loss | None = None) -> lk.Sequential:
    """Linear(3->4) -> Linear(4->4) -> ``layer`` (layer 2) -> Linear(4->1) -> Sigmoid."""
    return lk.Sequential(
        Linear(3, 4, seed=0),
        Linear(4, 4, seed=1),
        layer,
        Linear(4, 1, seed=2),
        Sigmoid(),
        loss=lk.BCELoss() if loss is None else loss,
    )


def data() -> tuple[Array, Array]:
    rng = np.random.default_rng(3)
    return rng.standard_normal((5, 3)), (rng.random((5, 1)) < 0.5).astype(np.float64)


def assert_names(
    error: pytest.ExceptionInfo[GradientSpecError], fragments: tuple[str, ...]
) -> None:
    message = str(error.value)
    assert message.startswith("layer 2 (Scale(4)): backward"), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


class TestEveryPlace:
    """One mistake, the same error in Sequential.backward, check_model, check_layers and fit."""

    @pytest.mark.parametrize("mistake", sorted(MISTAKES))
    def test_sequential_backward(self, mistake: str) -> None:
        """Sequential.backward (and loss_and_grad through it)."""
        mangle, fragments = MISTAKES[mistake]
        model = model_with(Scale(4, mangle))
        x, y = data()
        _, cache = model.forward(x)
        with pytest.raises(GradientSpecError) as error:
            model.backward(cache, np.ones((5, 1)))
        assert_names(error, fragments)
        with pytest.raises(GradientSpecError) as error:
            model.loss_and_grad(x, y)
        assert_names(error, fragments)

    @pytest.mark.parametrize("mistake", sorted(MISTAKES))
    def test_check_model(self, mistake: str) -> None:
        """check_model raises before judging anything."""
        mangle, fragments = MISTAKES[mistake]
        x, y = data()
        with pytest.raises(GradientSpecError) as error:
            lk.check_model(model_with(Scale(4, mangle)), x, y)
        assert_names(error, fragments)

    @pytest.mark.parametrize("mistake", ["missing key", "the bare dict"])
    def test_training(self, mistake: str) -> None:
        """fit stops at the first step with the same error."""
        mangle, fragments = MISTAKES[mistake]
        x, y = data()
        with pytest.raises(GradientSpecError) as error:
            lk.fit(model_with(Scale(4, mangle)), x, y, epochs=1)
        assert_names(error, fragments)

    @pytest.mark.parametrize("mistake", ["extra key", "a gradient of the wrong shape"])
    def test_check_layer(self, mistake: str) -> None:
        """check_layer on the layer alone names it as layer 0 of its one-layer chain."""
        mangle, fragments = MISTAKES[mistake]
        with pytest.raises(GradientSpecError) as error:
            lk.check_layer(Scale(4, mangle), data()[0] @ np.ones((3, 4)))
        message = str(error.value)
        assert message.startswith("layer 0 (Scale(4)): backward")
        assert all(fragment in message for fragment in fragments)


class TestAccepted:
    """A correct backward passes untouched; what it may return besides plain float arrays."""

    def test_correct_layer_checks(self) -> None:
        """The same Scale without a mistake passes check_model and trains."""
        x, y = data()
        assert lk.check_model(model_with(Scale(4)), x, y).verdict == "pass"
        lk.fit(model_with(Scale(4)), x, y, epochs=2)

    def test_nan_gradients_are_for_the_checker(self) -> None:
        """NaN in a gradient is not a contract error: the checker judges it (never 'pass')
        and locates it."""
        nan_g: Mangle = lambda gx, gr: (gx, {"g": np.full(4, np.nan), "h": gr["h"]})  # noqa: E731
        x, y = data()
        report = lk.check_model(model_with(Scale(4, nan_g)), x, y)
        assert report.verdict != "pass"
        assert report["g3"].verdict != "pass"
        assert all(report[name].verdict == "pass" for name in ("W1", "h3", "W4"))

    def test_lists_and_integers_accepted(self) -> None:
        """Gradients given as lists or integer arrays of the right shape are fine."""
        as_lists: Mangle = lambda gx, gr: (gx.tolist(), {"g": gr["g"].tolist(), "h": gr["h"]})  # noqa: E731
        model = model_with(Scale(4, as_lists))
        x, y = data()
        _, grads = model.loss_and_grad(x, y)
        _, expected = model_with(Scale(4)).loss_and_grad(x, y)
        for name in expected:
            np.testing.assert_array_equal(grads[name], expected[name])
