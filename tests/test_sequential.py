"""Tests for layerkit.sequential: composition, naming, validation, purity, dtypes."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.errors import (
    CacheError,
    ConfigError,
    DTypeError,
    LayerkitError,
    NonFiniteError,
    ShapeError,
    TargetError,
)
from layerkit.layers import Dropout, Linear, ReLU, Sigmoid, Tanh
from layerkit.losses import BCELoss, BCEWithLogitsLoss, Loss, MSELoss, SoftmaxCrossEntropyLoss
from layerkit.models import fraud_net, mlp
from layerkit.sequential import Sequential

FloatArray = npt.NDArray[np.floating[Any]]


def stable_sigmoid(z: FloatArray) -> FloatArray:
    """Logistic function, evaluated with exp of a non-positive number only."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class TestConstruction:
    """Sequential checks its layers and their widths when it is built."""

    def test_positional_and_list_forms(self) -> None:
        """Layers may come positionally or as one list."""
        a, b = Linear(3, 2), ReLU()
        assert Sequential(a, b).layers == (a, b)
        assert Sequential([a, b]).layers == (a, b)

    def test_width_mismatch_names_both_layers(self) -> None:
        """Wrong widths are refused at construction, naming both layers and both widths."""
        with pytest.raises(ShapeError) as info:
            Sequential(Linear(4, 5), ReLU(), Linear(3, 1))
        message = str(info.value)
        assert "layer 2 (Linear(3->1))" in message
        assert "expects 3" in message
        assert "layer 1 (ReLU)" in message
        assert "gives 5" in message

    def test_width_mismatch_directly_after_linear(self) -> None:
        """Two Linears in a row must agree too."""
        with pytest.raises(
            ShapeError, match=r"layer 1 \(Linear\(2->1\)\).*layer 0 \(Linear\(4->3\)\)"
        ):
            Sequential(Linear(4, 3), Linear(2, 1))

    def test_width_mismatch_through_dropout(self) -> None:
        """Elementwise layers pass the width on, so the mismatch is still found."""
        with pytest.raises(ShapeError, match="gives 5"):
            Sequential(Linear(4, 5), Dropout(0.5), Tanh(), Linear(3, 1))

    def test_leading_activation_is_fine(self) -> None:
        """A model may start with an elementwise layer; its input width is the first Linear's."""
        model = Sequential(Tanh(), Linear(4, 2))
        assert model.in_features == 4

    def test_no_layers_refused(self) -> None:
        """An empty model is refused."""
        with pytest.raises(ConfigError, match="at least one layer"):
            Sequential()

    def test_non_layer_refused(self) -> None:
        """Items that are not layers are refused, naming what came."""
        with pytest.raises(ConfigError, match="int"):
            Sequential(Linear(2, 2), 3)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="item 1"):
            Sequential([Linear(2, 2), "relu"])  # type: ignore[list-item]

    def test_bad_loss_refused(self) -> None:
        """The loss must be a layerkit Loss or None."""
        with pytest.raises(ConfigError, match="'loss'"):
            Sequential(Linear(2, 1), loss="bce")  # type: ignore[arg-type]


class TestContainer:
    """len, iteration, indexing, slicing and repr."""

    def test_len_iter_index(self) -> None:
        """A model behaves as a sequence of its layers."""
        model = fraud_net(seed=0)
        assert len(model) == 6
        assert list(model) == list(model.layers)
        assert model[0] is model.layers[0]
        assert model[-1] is model.layers[5]
        assert isinstance(model[-1], Sigmoid)
        with pytest.raises(IndexError):
            model[6]

    def test_slice_shares_layers(self) -> None:
        """A slice is a Sequential of the very same layer objects."""
        model = fraud_net(seed=0)
        head = model[:2]
        assert isinstance(head, Sequential)
        assert head.layers == model.layers[:2]
        assert head[0] is model[0]

    def test_slice_keeps_loss_only_with_the_end(self) -> None:
        """Only a slice that keeps the last layer keeps the loss."""
        model = fraud_net(seed=0)
        assert model[2:].loss is model.loss
        assert model[:4].loss is None
        with pytest.raises(ConfigError, match="no loss"):
            model[:4].loss_and_grad(np.ones((1, 4)), np.ones((1, 3)))

    def test_slice_runs_like_the_prefix(self, rng: np.random.Generator) -> None:
        """model[:k] gives the same output as the first k layers of the whole model."""
        model = fraud_net(seed=3)
        x = rng.standard_normal((5, 4))
        prefix, _ = model[:3].forward(x)
        stopped, _ = model.forward(x, layers=3)
        np.testing.assert_array_equal(prefix, stopped)

    def test_repr(self) -> None:
        """repr lists each layer's name and parameter count, and the total."""
        text = repr(fraud_net(seed=0))
        for name in ("Linear(4->5)", "ReLU", "Linear(5->3)", "Linear(3->1)", "Sigmoid"):
            assert name in text
        lines = text.splitlines()
        for name, count in (("Linear(4->5)", 25), ("Linear(5->3)", 18), ("Linear(3->1)", 4)):
            (line,) = [line for line in lines if name in line]
            assert re.search(rf"params:\s+{count}\b", line), line
        assert re.search(r"total params:\s+47\b", text)
        assert "BCELoss" in text
        assert "from logits" in text


class TestParameterNaming:
    """Parameters are named W1, b1, W2, ... by parameterised layer, in order."""

    def test_fraud_net_names_and_shapes(self) -> None:
        """The fraud net has W1, b1, W2, b2, W3, b3 with the seed's shapes."""
        model = fraud_net(seed=0)
        spec = model.param_spec
        assert spec.names == ("W1", "b1", "W2", "b2", "W3", "b3")
        assert [t.shape for t in spec] == [(5, 4), (5,), (3, 5), (3,), (1, 3), (1,)]
        assert spec.size == 47

    def test_parameter_free_layers_do_not_count(self) -> None:
        """Activations and dropout do not advance the counter."""
        model = Sequential(Tanh(), Linear(3, 4), Dropout(0.1), ReLU(), Linear(4, 1), Sigmoid())
        assert model.param_spec.names == ("W1", "b1", "W2", "b2")

    def test_params_are_live_arrays(self) -> None:
        """params() gives the layers' own arrays, by model name."""
        model = fraud_net(seed=0)
        params = model.params()
        assert params["W2"] is model[2].params()["W"]
        assert params["b3"] is model[4].params()["b"]

    def test_param_ref(self) -> None:
        """param_ref says which layer holds a parameter, and under which local name."""
        model = fraud_net(seed=0)
        ref = model.param_ref("b2")
        assert (ref.index, ref.local) == (2, "b")
        assert model.layer_label(ref.index) == "layer 2 (Linear(5->3))"

    def test_unknown_name_refused(self) -> None:
        """An unknown name is refused, listing the model's names."""
        with pytest.raises(ConfigError, match=r"'W4'.*\['W1', 'b1', 'W2', 'b2', 'W3', 'b3'\]"):
            fraud_net(seed=0).param_ref("W4")


class TestFlatten:
    """Model parameters flatten in name order, each row-major, and load back."""

    def test_layout(self) -> None:
        """flatten() is W1.ravel(), b1, W2.ravel(), b2, W3.ravel(), b3."""
        model = fraud_net(seed=1)
        p = model.params()
        expected = np.concatenate(
            [np.ravel(p[n], order="C") for n in ("W1", "b1", "W2", "b2", "W3", "b3")]
        )
        np.testing.assert_array_equal(model.flatten(), expected)

    def test_round_trip_bitwise(self, rng: np.random.Generator) -> None:
        """unflatten(v) then flatten() gives back every bit of v, and each slice lands in place."""
        model = fraud_net(seed=1)
        vector = rng.standard_normal(47)
        model.unflatten(vector)
        assert model.flatten().tobytes() == vector.tobytes()
        np.testing.assert_array_equal(model.params()["W1"], vector[:20].reshape(5, 4))
        np.testing.assert_array_equal(model.params()["b1"], vector[20:25])
        np.testing.assert_array_equal(model.params()["W3"], vector[43:46].reshape(1, 3))
        np.testing.assert_array_equal(model.params()["b3"], vector[46:])

    def test_unflatten_copies(self) -> None:
        """The model does not keep a view of the vector."""
        model = fraud_net(seed=1)
        vector = np.arange(47.0)
        model.unflatten(vector)
        vector[:] = 0.0
        assert model.params()["b3"][0] == 46.0

    @pytest.mark.parametrize("length", [0, 46, 48])
    def test_wrong_length_names_both(self, length: int) -> None:
        """A vector of the wrong length is refused; the message says 47 and the length given."""
        model = fraud_net(seed=1)
        before = model.flatten()
        with pytest.raises(ShapeError) as info:
            model.unflatten(np.zeros(length))
        message = str(info.value)
        assert "Sequential.unflatten" in message
        assert "length 47" in message
        assert f"length {length}" in message
        np.testing.assert_array_equal(model.flatten(), before)


class TestInputValidation:
    """Bad input to forward / loss_and_grad raises a layerkit error that names the problem."""

    def model_and_data(self) -> tuple[Sequential, FloatArray, FloatArray]:
        x = np.linspace(-1, 1, 12).reshape(3, 4)
        y = np.array([[1.0], [0.0], [1.0]])
        return fraud_net(seed=0), x, y

    def test_wrong_rank(self) -> None:
        """1-D and 3-D x are refused with their shape."""
        model, x, y = self.model_and_data()
        with pytest.raises(ShapeError, match=r"Sequential: 'x'.*\(4,\).*\(1, features\)"):
            model.forward(x[0])
        with pytest.raises(ShapeError, match=r"\(1, 3, 4\)"):
            model.loss_and_grad(x[np.newaxis], y)

    def test_wrong_feature_count(self) -> None:
        """x must have the first layer's width; both widths are named."""
        model, _, y = self.model_and_data()
        with pytest.raises(ShapeError, match=r"4 features.*\(3, 5\)"):
            model.forward(np.zeros((3, 5)))
        with pytest.raises(ShapeError, match=r"4 features.*\(3, 3\)"):
            model.loss_and_grad(np.zeros((3, 3)), y)

    def test_empty_batch(self) -> None:
        """m = 0 is refused (a mean over no samples is meaningless)."""
        model, _, _ = self.model_and_data()
        with pytest.raises(ShapeError, match="empty batch"):
            model.forward(np.zeros((0, 4)))
        with pytest.raises(ShapeError, match="empty batch"):
            model.loss_and_grad(np.zeros((0, 4)), np.zeros((0, 1)))

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_x(self, bad: float) -> None:
        """NaN / Inf in x are refused by forward, predict and loss_and_grad."""
        model, x, y = self.model_and_data()
        x[2, 1] = bad
        with pytest.raises(NonFiniteError, match="'x'"):
            model.forward(x)
        with pytest.raises(NonFiniteError, match="'x'"):
            model.predict(x)
        with pytest.raises(NonFiniteError, match="'x'"):
            model.loss_and_grad(x, y)

    @pytest.mark.parametrize("bad", [-1.0, 2.0, 1.0001])
    def test_labels_outside_unit_interval(self, bad: float) -> None:
        """Labels must lie in [0, 1]."""
        model, x, y = self.model_and_data()
        y[1, 0] = bad
        with pytest.raises(TargetError, match=r"'y' must lie in \[0, 1\]"):
            model.loss_and_grad(x, y)
        with pytest.raises(TargetError):
            model.loss_value(x, y)

    def test_nan_labels(self) -> None:
        """NaN labels are refused."""
        model, x, y = self.model_and_data()
        y[0, 0] = np.nan
        with pytest.raises(NonFiniteError, match="'y'"):
            model.loss_and_grad(x, y)

    @pytest.mark.parametrize("shape", [(4, 1), (3, 2), (2,), (1, 1, 3)])
    def test_labels_of_wrong_shape(self, shape: tuple[int, ...]) -> None:
        """y must have one label per sample; the message names both shapes."""
        model, x, _ = self.model_and_data()
        with pytest.raises(ShapeError, match=r"'y'.*\(3, 1\)"):
            model.loss_and_grad(x, np.zeros(shape))

    def test_labels_of_wrong_shape_same_size(self) -> None:
        """(2, 2) labels for 4 samples are refused although they hold 4 numbers."""
        model = fraud_net(seed=0)
        with pytest.raises(ShapeError, match=r"\(4, 1\).*\(2, 2\)"):
            model.loss_and_grad(np.zeros((4, 4)), np.zeros((2, 2)))

    def test_label_layouts_accepted(self) -> None:
        """(m, 1), (m,) and the seed's (1, m) labels all give the same loss."""
        model, x, y = self.model_and_data()
        values = {model.loss_and_grad(x, labels)[0] for labels in (y, y.ravel(), y.T)}
        assert len(values) == 1

    def test_labels_without_known_width(self) -> None:
        """A model of only elementwise layers still refuses labels of an impossible size."""
        model = Sequential(Tanh(), Sigmoid(), loss=BCELoss())
        x = np.zeros((3, 2))
        with pytest.raises(ShapeError, match="'y'"):
            model.loss_and_grad(x, np.zeros(5))
        with pytest.raises(ShapeError, match=r"\(3, 2\).*\(3,\)"):
            model.loss_and_grad(x, np.zeros(3))  # predictions have 2 columns, not 1
        value, grads = model.loss_and_grad(x, np.ones((3, 2)))
        assert value == pytest.approx(2 * np.log(2.0), rel=1e-15)  # logit tanh(0) = 0, two columns
        assert grads == {}

    @pytest.mark.parametrize("dtype", [object, complex])
    def test_bad_dtype(self, dtype: type) -> None:
        """Object and complex x or y are refused as TypeErrors."""
        model, x, y = self.model_and_data()
        with pytest.raises(DTypeError, match="'x'") as info:
            model.forward(x.astype(dtype))
        assert isinstance(info.value, TypeError)
        with pytest.raises(DTypeError, match="'y'"):
            model.loss_and_grad(x, y.astype(dtype))

    def test_integers_converted(self) -> None:
        """Integer x and y give exactly what the equal floats give."""
        model = fraud_net(seed=2)
        xi = np.array([[1, 0, -1, 2], [0, 3, 1, -2]])
        yi = np.array([[1], [0]])
        out_int = model.predict(xi)
        assert out_int.dtype == np.float64
        np.testing.assert_array_equal(out_int, model.predict(xi.astype(float)))
        value_int, grads_int = model.loss_and_grad(xi, yi)
        value_float, grads_float = model.loss_and_grad(xi.astype(float), yi.astype(float))
        assert value_int == value_float
        for name in grads_int:
            np.testing.assert_array_equal(grads_int[name], grads_float[name])

    def test_all_errors_are_value_or_type_errors(self) -> None:
        """Every refusal above can be caught as a plain ValueError or TypeError."""
        model, x, y = self.model_and_data()
        for call in (
            lambda: model.forward(np.zeros(4)),
            lambda: model.loss_and_grad(x, y * 3),
            lambda: model.loss_and_grad(x.astype(complex), y),
        ):
            with pytest.raises((ValueError, TypeError)) as info:
                call()
            assert isinstance(info.value, LayerkitError)


class TestBackward:
    """Sequential.backward chains the layers' backwards; loss_and_grad matches a closed form."""

    def test_closed_form_with_tanh_and_dropout(self, rng: np.random.Generator) -> None:
        """x -> Linear -> Tanh -> Dropout(mask) -> Linear -> Sigmoid, BCE: hand-derived gradients."""
        m = 6
        W1, b1 = rng.standard_normal((4, 3)), rng.standard_normal(4)
        W2, b2 = rng.standard_normal((1, 4)), rng.standard_normal(1)
        model = Sequential(
            Linear.from_arrays(W1, b1),
            Tanh(),
            Dropout(0.5),
            Linear.from_arrays(W2, b2),
            Sigmoid(),
            loss=BCELoss(),
        )
        x = rng.standard_normal((m, 3))
        y = (rng.random((m, 1)) > 0.5).astype(float)
        mask = np.where(rng.random((m, 4)) < 0.5, 0.0, 2.0)

        # Forward by hand.
        a1 = np.tanh(x @ W1.T + b1)
        d1 = a1 * mask
        z2 = d1 @ W2.T + b2
        expected_loss = np.mean(np.logaddexp(0.0, z2) - y * z2)
        # Backward by hand.
        dz2 = (stable_sigmoid(z2) - y) / m
        dW2 = dz2.T @ d1
        db2 = dz2.sum(axis=0)
        dz1 = (dz2 @ W2) * mask * (1.0 - a1**2)
        dW1 = dz1.T @ x
        db1 = dz1.sum(axis=0)

        value, grads = model.loss_and_grad(x, y, noise=[None, None, mask, None, None])
        assert value == pytest.approx(expected_loss, rel=1e-12)
        assert list(grads) == ["W1", "b1", "W2", "b2"]
        for name, expected in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            np.testing.assert_allclose(grads[name], expected, rtol=1e-12, atol=1e-12)
        assert model.loss_value(x, y, noise=[None, None, mask, None, None]) == value

    def test_backward_returns_input_gradient(self, rng: np.random.Generator) -> None:
        """For Linear -> ReLU, grad_x = (g * (z > 0)) @ W."""
        W = rng.standard_normal((3, 2))
        model = Sequential(Linear.from_arrays(W), ReLU())
        x = rng.standard_normal((5, 2))
        g = rng.standard_normal((5, 3))
        _, cache = model.forward(x)
        grad_x, grads = model.backward(cache, g)
        z = x @ W.T
        np.testing.assert_allclose(grad_x, (g * (z > 0)) @ W, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads["W1"], (g * (z > 0)).T @ x, rtol=1e-12, atol=1e-12)

    def test_rng_draws_reproducible_masks(self, rng: np.random.Generator) -> None:
        """forward(x, rng=seed) records its masks; the same seed gives the same ones."""
        model = Sequential(Linear(3, 8, seed=0), Dropout(0.5), Linear(8, 1, seed=1))
        x = rng.standard_normal((4, 3))
        y1, cache1 = model.forward(x, rng=42)
        y2, cache2 = model.forward(x, rng=42)
        y3, cache3 = model.forward(x, rng=43)
        mask1, mask2, mask3 = cache1.noise[1], cache2.noise[1], cache3.noise[1]
        assert mask1 is not None and mask2 is not None and mask3 is not None
        np.testing.assert_array_equal(mask1, mask2)
        np.testing.assert_array_equal(y1, y2)
        assert not np.array_equal(mask1, mask3)
        assert cache1.noise[0] is None
        replay, _ = model.forward(x, noise=cache1.noise)
        np.testing.assert_array_equal(replay, y1)
        assert not np.array_equal(y1, y3)

    def test_noise_length_checked(self) -> None:
        """noise needs one entry per layer."""
        model = fraud_net(seed=0)
        with pytest.raises(ConfigError, match=r"one entry per layer \(6\), got 2"):
            model.forward(np.zeros((1, 4)), noise=[None, None])

    def test_cache_from_other_model_refused(self) -> None:
        """A cache from another model (even a copy) is refused."""
        model = fraud_net(seed=0)
        _, cache = model.copy().forward(np.ones((2, 4)))
        with pytest.raises(CacheError, match=r"Sequential\.backward"):
            model.backward(cache, np.ones((2, 1)))
        with pytest.raises(CacheError):
            model.backward("cache", np.ones((2, 1)))  # type: ignore[call-overload]


class TestIntermediates:
    """forward and backward return every layer's output and its gradient when asked."""

    def test_forward_outputs_are_each_layers_output(self, rng: np.random.Generator) -> None:
        """outputs[i] is layer i's output (Linear, ReLU, ...); the last is y; copies, not cache."""
        model = fraud_net(seed=1)
        x = rng.standard_normal((4, 4))
        y, cache, outputs = model.forward(x, intermediates=True)
        plain, _ = model.forward(x)
        assert len(outputs) == len(model)
        np.testing.assert_array_equal(outputs[-1], y)
        np.testing.assert_array_equal(y, plain)
        W1, b1 = model.params()["W1"], model.params()["b1"]
        np.testing.assert_allclose(outputs[0], x @ W1.T + b1, rtol=1e-15)
        np.testing.assert_array_equal(outputs[1], np.maximum(outputs[0], 0.0))
        outputs[0][...] = 0.0  # the caller's copy: the cache still differentiates the forward
        _, grads = model.backward(cache, np.ones_like(y))
        _, again = model.backward(model.forward(x)[1], np.ones_like(y))
        for name in grads:
            np.testing.assert_array_equal(grads[name], again[name])

    def test_forward_outputs_stop_with_layers(self, rng: np.random.Generator) -> None:
        """With layers=k there are k outputs, the last of which is the returned y."""
        model = fraud_net(seed=1)
        y, _, outputs = model.forward(rng.standard_normal((2, 4)), layers=3, intermediates=True)
        assert len(outputs) == 3
        np.testing.assert_array_equal(outputs[-1], y)

    def test_backward_grad_outputs_by_chain_rule(self, rng: np.random.Generator) -> None:
        """grad_outputs[i] is d(sum g * y)/d(output of layer i): the last is grad_out, and each
        earlier one is what the next layer's backward turned it into."""
        model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
        x = rng.standard_normal((5, 3))
        g = rng.standard_normal((5, 2))
        _, cache, outputs = model.forward(x, intermediates=True)
        grad_x, grads, grad_outputs = model.backward(cache, g, intermediates=True)
        plain_x, plain = model.backward(cache, g)
        np.testing.assert_array_equal(grad_x, plain_x)
        assert grads.keys() == plain.keys()
        assert [a.shape for a in grad_outputs] == [a.shape for a in outputs]
        np.testing.assert_array_equal(grad_outputs[2], g)
        W2 = model.params()["W2"]
        np.testing.assert_allclose(grad_outputs[1], g @ W2, rtol=1e-14)
        np.testing.assert_allclose(grad_outputs[0], (g @ W2) * (1 - outputs[1] ** 2), rtol=1e-14)
        np.testing.assert_allclose(grad_x, grad_outputs[0] @ model.params()["W1"], rtol=1e-14)

    def test_backward_of_a_partial_forward(self, rng: np.random.Generator) -> None:
        """A forward stopped at the body gives one gradient per layer it ran."""
        model = fraud_net(seed=2)
        x = rng.standard_normal((3, 4))
        logits, cache = model.forward(x, layers=len(model.body))
        y = np.array([[1.0], [0.0], [1.0]])
        _, grads, grad_outputs = model.backward(
            cache, model.loss_grad(logits, y), intermediates=True
        )
        assert len(grad_outputs) == len(model.body)
        _, expected = model.loss_and_grad(x, y)
        for name in expected:
            np.testing.assert_array_equal(grads[name], expected[name])


class TestForwardPurity:
    """forward is pure; a cache always differentiates the forward that made it."""

    def test_forward_twice_identical(self, rng: np.random.Generator) -> None:
        """Same bits out, parameters untouched, x untouched."""
        model = fraud_net(seed=5)
        x = rng.standard_normal((7, 4))
        x_before = x.copy()
        params_before = model.flatten().copy()
        y1, _ = model.forward(x)
        y2, _ = model.forward(x)
        model.loss_and_grad(x, np.ones((7, 1)))
        assert y1.tobytes() == y2.tobytes()
        assert model.flatten().tobytes() == params_before.tobytes()
        assert x.tobytes() == x_before.tobytes()

    def test_old_cache_after_new_forward(self, rng: np.random.Generator) -> None:
        """backward(cache1) after forward(x2) gives the gradients at x1."""
        model = fraud_net(seed=5)
        x1, x2 = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
        g = rng.standard_normal((4, 1))
        _, cache1 = model.forward(x1)
        gx1, grads1 = model.backward(cache1, g)
        _, cache2 = model.forward(x2)
        gx_again, grads_again = model.backward(cache1, g)
        _, grads2 = model.backward(cache2, g)
        np.testing.assert_array_equal(gx_again, gx1)
        for name in grads1:
            np.testing.assert_array_equal(grads_again[name], grads1[name])
        assert not np.array_equal(grads1["W1"], grads2["W1"])

    def test_old_cache_after_parameter_update(self, rng: np.random.Generator) -> None:
        """backward(cache) after unflatten gives the gradient at the parameters of that forward."""
        model = fraud_net(seed=5)
        twin = model.copy()
        x = rng.standard_normal((4, 4))
        g = rng.standard_normal((4, 1))
        _, cache = model.forward(x)
        _, twin_cache = twin.forward(x)
        _, expected = twin.backward(twin_cache, g)
        model.unflatten(model.flatten() + 0.5)
        _, grads = model.backward(cache, g)
        for name in expected:
            np.testing.assert_array_equal(grads[name], expected[name])

    def test_predict_is_forward_in_evaluation_mode(self, rng: np.random.Generator) -> None:
        """predict equals forward without noise; dropout is the identity there."""
        body = [Linear(3, 5, seed=0), ReLU(), Linear(5, 1, seed=1), Sigmoid()]
        with_dropout = Sequential([*body[:2], Dropout(0.5), *body[2:]], loss=BCELoss())
        plain = Sequential(body, loss=BCELoss())
        x = rng.standard_normal((6, 3))
        forward_out, _ = with_dropout.forward(x)
        np.testing.assert_array_equal(with_dropout.predict(x), forward_out)
        np.testing.assert_array_equal(with_dropout.predict(x), plain.predict(x))
        probabilities = plain.predict(x)
        assert probabilities.shape == (6, 1)
        assert np.all((probabilities > 0) & (probabilities < 1))


class TestSaturatedLogits:
    """Linear -> Sigmoid with BCE stays finite and exact where the sigmoid saturates."""

    @pytest.mark.parametrize("magnitude", [40.0, 700.0])
    @pytest.mark.parametrize("label", [0.0, 1.0])
    @pytest.mark.parametrize("sign", [1.0, -1.0])
    def test_exact_gradient_and_loss(self, magnitude: float, label: float, sign: float) -> None:
        """Logit z = +-40 or +-700 on one sample: loss softplus(z) - y z, gradient sigmoid(z) - y."""
        z = sign * magnitude
        model = Sequential(Linear.from_arrays([[2.0, -1.0]], [0.0]), Sigmoid(), loss=BCELoss())
        x = np.array([[z / 2.0, 0.0]])  # z = 2 * x0 exactly
        value, grads = model.loss_and_grad(x, np.array([[label]]))
        assert np.isfinite(value)
        # softplus(z) - y z, rewritten so that nothing cancels: for z >= 0 it is
        # softplus(-z) + (1 - y) z, and logaddexp(0, -z) = log1p(e^-z) keeps e^-700 ~ 1e-304.
        if z >= 0:
            expected_value = float(np.logaddexp(0.0, -z) + (1.0 - label) * z)
        else:
            expected_value = float(np.logaddexp(0.0, z) - label * z)
        assert value == pytest.approx(expected_value, rel=1e-12, abs=0)

        e = np.exp(-abs(z))  # sigmoid(z) - y on the branch that does not cancel
        dz = ((1.0 - label) - e / (1.0 + e)) if z >= 0 else (e / (1.0 + e) - label)
        assert np.all(np.isfinite(grads["W1"]))
        np.testing.assert_allclose(grads["b1"], [dz], rtol=1e-12, atol=0)
        np.testing.assert_allclose(grads["W1"], [[dz * x[0, 0], 0.0]], rtol=1e-12, atol=0)

    def test_batch_mean(self) -> None:
        """A batch at +-700 averages the per-sample closed forms."""
        model = Sequential(Linear.from_arrays([[1.0]], [0.0]), Sigmoid(), loss=BCELoss())
        z = np.array([[700.0], [-700.0], [700.0], [-700.0]])
        y = np.array([[1.0], [1.0], [0.0], [0.0]])
        value, grads = model.loss_and_grad(z, y)
        assert value == pytest.approx(np.mean(np.logaddexp(0.0, z) - y * z), rel=1e-12)
        assert value == pytest.approx(1400.0 / 4, rel=1e-12)
        # Per sample, sigmoid(z) - y is -e, e - 1, 1 - e, e with e = sigmoid(-700): the bias
        # gradient cancels to 0 and the weight gradient is (1400 - 2800 e) / 4 = 350.
        np.testing.assert_allclose(grads["b1"], [0.0], atol=1e-15)
        np.testing.assert_allclose(grads["W1"], [[350.0]], rtol=1e-12)

    def test_predict_saturates_cleanly(self) -> None:
        """The probabilities themselves are 1 and 0 (up to underflow), without warnings."""
        model = Sequential(Linear.from_arrays([[1.0]], [0.0]), Sigmoid(), loss=BCELoss())
        p = model.predict(np.array([[700.0], [-700.0]]))
        assert p[0, 0] == 1.0
        assert 0.0 <= p[1, 0] < 1e-300


class TestDtype:
    """float64 by default; float32 models run in float32 end to end."""

    def test_default_is_float64(self, rng: np.random.Generator) -> None:
        """Parameters, outputs and gradients are float64, even for float32 x."""
        model = fraud_net(seed=0)
        assert model.dtype == np.float64
        x = rng.standard_normal((3, 4)).astype(np.float32)
        assert model.predict(x).dtype == np.float64
        _, grads = model.loss_and_grad(x, np.ones((3, 1)))
        assert all(g.dtype == np.float64 for g in grads.values())

    def test_complex_grad_out_refused(self) -> None:
        """backward refuses a complex grad_out rather than silently dropping its imaginary part."""
        model = fraud_net(seed=0)
        out, cache = model.forward(np.ones((4, 4)))
        with pytest.raises(DTypeError, match="'grad_out'"):
            model.backward(cache, np.ones(out.shape, dtype=complex))

    def test_astype_float32(self, rng: np.random.Generator) -> None:
        """model.astype(float32) computes in float32 and stays close to the float64 model."""
        model = fraud_net(seed=0)
        small = model.astype(np.float32)
        assert small.dtype == np.float32
        assert model.dtype == np.float64
        x = rng.standard_normal((5, 4))
        y = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])
        out, cache = small.forward(x)
        assert out.dtype == np.float32
        assert all(y.dtype == np.float32 for y in cache.outputs)
        value32, grads32 = small.loss_and_grad(x, y)
        value64, grads64 = model.loss_and_grad(x, y)
        assert all(g.dtype == np.float32 for g in grads32.values())
        assert value32 == pytest.approx(value64, rel=1e-5)
        for name in grads64:
            np.testing.assert_allclose(grads32[name], grads64[name], rtol=1e-4, atol=1e-5)
        assert small.flatten().dtype == np.float32

    def test_mlp_float32(self, rng: np.random.Generator) -> None:
        """mlp(..., dtype=float32) builds a float32 model; integer x becomes float32."""
        model = mlp((3, 4, 2), dtype=np.float32)
        assert model.dtype == np.float32
        assert model.predict(np.ones((2, 3), dtype=int)).dtype == np.float32
        _, grads = model.loss_and_grad(rng.standard_normal((2, 3)), np.ones((2, 2)))
        assert all(g.dtype == np.float32 for g in grads.values())

    def test_float32_with_dropout_masks(self, rng: np.random.Generator) -> None:
        """Masks drawn for a float32 model are float32 and keep the output float32."""
        model = Sequential(Linear(3, 4, seed=0), Dropout(0.5), Linear(4, 1, seed=1)).astype(
            np.float32
        )
        out, cache = model.forward(rng.standard_normal((2, 3)), rng=0)
        mask = cache.noise[1]
        assert mask is not None
        assert mask.dtype == np.float32
        assert out.dtype == np.float32


class TestCopy:
    """copy() is deep."""

    def test_copy_is_independent(self) -> None:
        """Changing the copy's parameters leaves the original alone."""
        model = fraud_net(seed=0)
        before = model.flatten().copy()
        twin = model.copy()
        twin.unflatten(np.zeros(47))
        np.testing.assert_array_equal(model.flatten(), before)


widths_strategy = st.lists(st.integers(1, 6), min_size=2, max_size=5)


class TestProperties:
    """Shapes and round trips hold for random widths, depths and batch sizes."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(widths=widths_strategy, m=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
    def test_shapes(self, widths: list[int], m: int, seed: int) -> None:
        """Output (m, last width); one gradient per parameter, of its shape; names W1..bL."""
        generator = np.random.default_rng(seed)
        model = mlp(widths, seed=generator)
        depth = len(widths) - 1
        assert len(model) == 2 * depth
        x = generator.standard_normal((m, widths[0]))
        y = (generator.random((m, widths[-1])) > 0.5).astype(float)
        out = model.predict(x)
        assert out.shape == (m, widths[-1])
        value, grads = model.loss_and_grad(x, y)
        assert np.isfinite(value)
        params = model.params()
        expected_names = [f"{p}{i}" for i in range(1, depth + 1) for p in ("W", "b")]
        assert list(params) == expected_names
        assert list(grads) == expected_names
        for name in expected_names:
            assert grads[name].shape == params[name].shape
        _, cache = model.forward(x)
        grad_x, _ = model.backward(cache, np.ones_like(out))
        assert grad_x.shape == x.shape

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(widths=widths_strategy, seed=st.integers(0, 2**32 - 1))
    def test_flatten_round_trip_bitwise(self, widths: list[int], seed: int) -> None:
        """unflatten(v); flatten() == v bit for bit, and the length is sum of out * (in + 1)."""
        generator = np.random.default_rng(seed)
        model = mlp(widths, seed=0)
        size = sum(n_out * (n_in + 1) for n_in, n_out in itertools.pairwise(widths))
        assert model.param_spec.size == size
        vector = generator.standard_normal(size)
        model.unflatten(vector)
        assert model.flatten().tobytes() == vector.tobytes()
        back = model.param_spec.unflatten(model.flatten())
        for name, array in model.params().items():
            assert back[name].tobytes() == array.tobytes()


class TestLossAtOtherParameters:
    """loss_value / loss_and_grad take params= (and loss_value rng=) like forward does."""

    def test_params_match_a_loaded_copy(self, rng: np.random.Generator) -> None:
        """With params=p, the loss and gradients are those of a copy holding p; the model's own
        parameters are neither used nor written."""
        model = fraud_net(seed=3)
        x, y = rng.standard_normal((6, 4)), (rng.random((6, 1)) > 0.5).astype(float)
        before = {k: v.copy() for k, v in model.params().items()}
        other = {k: v + rng.standard_normal(v.shape) for k, v in before.items()}
        loaded = model.copy()
        loaded.unflatten(loaded.param_spec.flatten(other))
        assert model.loss_value(x, y, params=other) == loaded.loss_value(x, y)
        value, grads = model.loss_and_grad(x, y, params=other)
        expected_value, expected_grads = loaded.loss_and_grad(x, y)
        assert value == expected_value
        for name in expected_grads:
            np.testing.assert_array_equal(grads[name], expected_grads[name])
        assert model.loss_value(x, y) != value
        for name, array in model.params().items():
            np.testing.assert_array_equal(array, before[name])

    def test_rng_draws_masks_like_forward(self, rng: np.random.Generator) -> None:
        """loss_value(rng=s) uses the dropout masks forward(rng=s) draws; no rng: identity."""
        model = Sequential(
            Linear(3, 6, seed=0),
            ReLU(),
            Dropout(0.5),
            Linear(6, 1, seed=1),
            Sigmoid(),
            loss=BCELoss(),
        )
        x, y = rng.standard_normal((8, 3)), np.ones((8, 1))
        _, cache = model.forward(x, rng=np.random.default_rng(5))
        assert cache.noise[2] is not None
        with_masks = model.loss_value(x, y, noise=list(cache.noise))
        assert model.loss_value(x, y, rng=np.random.default_rng(5)) == with_masks
        assert model.loss_value(x, y, rng=5) == with_masks
        assert model.loss_value(x, y, rng=6) != with_masks
        assert model.loss_value(x, y) == model.loss_value(x, y, noise=[None] * 5)

    def test_bad_params_are_refused(self) -> None:
        """A params mapping with a missing name or a wrong shape names the problem."""
        model = fraud_net()
        x, y = np.zeros((2, 4)), np.zeros((2, 1))
        params = model.params()
        missing = {k: v for k, v in params.items() if k != "b3"}
        with pytest.raises(LayerkitError, match=r"missing \['b3'\]"):
            model.loss_value(x, y, params=missing)
        wrong = {**params, "W2": params["W2"].T}
        with pytest.raises(LayerkitError, match=r"'W2'\] must have shape \(3, 5\)"):
            model.loss_and_grad(x, y, params=wrong)


class TestAnyLoss:
    """Sequential takes any Loss; loss_value and loss_and_grad refuse the same things."""

    @pytest.mark.parametrize(
        ("loss", "y"),
        [
            (BCEWithLogitsLoss(), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])),
            (MSELoss(), np.array([[0.5, -2.0], [1.0, 3.0], [0.0, 0.0]])),
            (SoftmaxCrossEntropyLoss(), np.array([1, 0, 1])),
        ],
    )
    def test_loss_reads_the_output(
        self, loss: Loss, y: FloatArray, rng: np.random.Generator
    ) -> None:
        """Without a final Sigmoid the loss reads the model's output: loss_value equals
        loss.value(predict(x), y), and the gradient reaching the output is loss.grad."""
        model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1), loss=loss)
        x = rng.standard_normal((3, 3))
        out = model.predict(x)
        assert model.loss_value(x, y) == loss.value(out, y)
        value, grads = model.loss_and_grad(x, y)
        assert value == loss.value(out, y)
        _, cache = model.forward(x)
        _, expected = model.backward(cache, loss.grad(out, y))
        for name in expected:
            np.testing.assert_array_equal(grads[name], expected[name])

    def test_fused_bce_equals_bce_with_logits(self, rng: np.random.Generator) -> None:
        """Linear -> Sigmoid with BCELoss gives bitwise what Linear with BCEWithLogitsLoss gives."""
        layer = Linear(3, 1, seed=0)
        fused = Sequential(layer, Sigmoid(), loss=BCELoss())
        explicit = Sequential(layer.astype(np.float64), loss=BCEWithLogitsLoss())
        x = 20 * rng.standard_normal((6, 3))  # saturating logits
        y = (rng.random((6, 1)) < 0.5).astype(float)
        assert fused.fused_logits and not explicit.fused_logits
        assert fused.loss_and_grad(x, y)[0] == explicit.loss_and_grad(x, y)[0]
        for name, grad in fused.loss_and_grad(x, y)[1].items():
            np.testing.assert_array_equal(grad, explicit.loss_and_grad(x, y)[1][name])
        assert "loss: BCELoss() (from logits)" in repr(fused)

    def test_bare_linear_with_bce_refused(self) -> None:
        """A model ending in a bare Linear with BCELoss is refused at construction with advice."""
        with pytest.raises(ConfigError) as info:
            Sequential(Linear(3, 4), ReLU(), Linear(4, 1), loss=BCELoss())
        message = str(info.value)
        assert "bare Linear(4->1)" in message
        assert "add a Sigmoid, or use BCEWithLogitsLoss" in message

    def test_value_and_grad_refuse_alike(self, rng: np.random.Generator) -> None:
        """Tanh outputs are no probabilities: loss_value and loss_and_grad both raise the same
        TargetError (loss_value used to return NaN), with the advice."""
        model = Sequential(Linear(3, 1, seed=0), Tanh(), loss=BCELoss())
        x = 10 * rng.standard_normal((8, 3))
        y = np.ones((8, 1))
        with pytest.raises(TargetError) as from_value:
            model.loss_value(x, y)
        with pytest.raises(TargetError) as from_grad:
            model.loss_and_grad(x, y)
        assert str(from_value.value) == str(from_grad.value)
        assert str(from_value.value).startswith("Sequential (BCELoss()): 'p' must be probabilities")
        assert "add a Sigmoid, or use BCEWithLogitsLoss" in str(from_value.value)

    def test_bce_subclass_is_not_fused(self, rng: np.random.Generator) -> None:
        """A BCELoss subclass after a Sigmoid reads the probabilities, so its code runs."""

        class DoubledBCE(BCELoss):
            def sample_losses(self, out: FloatArray, y: FloatArray) -> FloatArray:
                return 2.0 * super().sample_losses(out, y)

        layer = Linear(3, 1, seed=0)
        plain = Sequential(layer, Sigmoid(), loss=BCELoss())
        doubled = Sequential(layer, Sigmoid(), loss=DoubledBCE())
        x, y = rng.standard_normal((4, 3)), np.array([[1.0], [0.0], [1.0], [0.0]])
        assert not doubled.fused_logits
        assert doubled.loss_value(x, y) == pytest.approx(2 * plain.loss_value(x, y), rel=1e-14)

    def test_softmax_targets_checked_with_the_loss_named(self) -> None:
        """Targets are the loss's to judge; the error names the model's loss."""
        model = Sequential(Linear(2, 3), loss=SoftmaxCrossEntropyLoss())
        with pytest.raises(
            TargetError, match=r"^Sequential \(SoftmaxCrossEntropyLoss\(\)\): targets 'y'"
        ):
            model.loss_value(np.zeros((2, 2)), [0, 5])
