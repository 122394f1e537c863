"""Tests for layerkit.models, against the seed notebook's own formulas.

The seed's ``forward_propagation_n`` and ``backward_propagation_n`` (and gc_utils'
``dictionary_to_vector`` / ``vector_to_dictionary`` / ``gradients_to_vector``) are re-typed
below, in the seed's column layout (X of shape (4, m), biases of shape (out, 1)), as an
independent oracle. ``backward_propagation_n`` is given with and without its two planted bugs
(``dW2 * 2`` and ``db1 * 4``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from layerkit.errors import ConfigError
from layerkit.layers import Linear, ReLU, Sigmoid
from layerkit.losses import BCELoss, BCEWithLogitsLoss, Loss, MSELoss, SoftmaxCrossEntropyLoss
from layerkit.models import (
    FRAUD_NET_WIDTHS,
    SeedCase,
    fraud_net,
    fraud_net_from_arrays,
    fraud_net_seed_case,
    mlp,
    seed_parameters,
)

FloatArray = npt.NDArray[np.floating[Any]]
SeedCache = tuple[
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
]

SEED_COST = 2.407833389834357
"""The cost the seed notebook prints for gradient_check_n_test_case()."""

NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


# --- the seed notebook, re-typed (column layout) ------------------------------------------


def relu(x: FloatArray) -> FloatArray:
    return np.maximum(0, x)


def sigmoid(x: FloatArray) -> FloatArray:
    return 1 / (1 + np.exp(-x))


def forward_propagation_n(
    X: FloatArray, Y: FloatArray, parameters: Mapping[str, FloatArray]
) -> tuple[float, SeedCache]:
    m = X.shape[1]
    W1 = parameters["W1"]
    b1 = parameters["b1"]
    W2 = parameters["W2"]
    b2 = parameters["b2"]
    W3 = parameters["W3"]
    b3 = parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1.0 / m * np.sum(logprobs)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return float(cost), cache


def backward_propagation_n(
    X: FloatArray, Y: FloatArray, cache: SeedCache, *, planted_bugs: bool
) -> dict[str, FloatArray]:
    """The seed's backward; ``planted_bugs=False`` is the corrected version."""
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache  # noqa: RUF059 (the seed's line)

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) * (2 if planted_bugs else 1)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = (4.0 if planted_bugs else 1.0) / m * np.sum(dZ1, axis=1, keepdims=True)

    return {
        "dZ3": dZ3, "dW3": dW3, "db3": db3,
        "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
        "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1,
    }  # fmt: skip


def dictionary_to_vector(parameters: Mapping[str, FloatArray]) -> tuple[FloatArray, list[str]]:
    keys: list[str] = []
    theta = np.zeros((0, 1))
    for key in ["W1", "b1", "W2", "b2", "W3", "b3"]:
        new_vector = np.reshape(parameters[key], (-1, 1))
        keys = keys + [key] * new_vector.shape[0]
        theta = np.concatenate((theta, new_vector), axis=0)
    return theta, keys


def vector_to_dictionary(theta: FloatArray) -> dict[str, FloatArray]:
    return {
        "W1": theta[:20].reshape((5, 4)),
        "b1": theta[20:25].reshape((5, 1)),
        "W2": theta[25:40].reshape((3, 5)),
        "b2": theta[40:43].reshape((3, 1)),
        "W3": theta[43:46].reshape((1, 3)),
        "b3": theta[46:47].reshape((1, 1)),
    }


def gradients_to_vector(gradients: Mapping[str, FloatArray]) -> FloatArray:
    return np.concatenate(
        [np.reshape(gradients[key], (-1, 1)) for key in ["dW1", "db1", "dW2", "db2", "dW3", "db3"]]
    )


def seed_gradients_in_layerkit_layout(*, planted_bugs: bool) -> dict[str, FloatArray]:
    """The seed's gradients for its test case, as W (out, in) and b (out,)."""
    X, Y, parameters = seed_parameters()
    _, cache = forward_propagation_n(X, Y, parameters)
    gradients = backward_propagation_n(X, Y, cache, planted_bugs=planted_bugs)
    layout: dict[str, FloatArray] = {}
    for name in NAMES:
        grad = gradients["d" + name]
        layout[name] = grad.reshape(-1) if name.startswith("b") else grad
    return layout


# --- tests ---------------------------------------------------------------------------------


class TestSeedCase:
    """The seed's test case as a layerkit model."""

    def test_oracle_reproduces_the_notebook(self) -> None:
        """The re-typed seed forward gives the notebook's printed cost (checks the oracle)."""
        X, Y, parameters = seed_parameters()
        cost, _ = forward_propagation_n(X, Y, parameters)
        assert cost == pytest.approx(SEED_COST, rel=0, abs=1e-12)

    def test_seed_parameters_layout(self) -> None:
        """X (4, 3), Y (1, 3) = [1, 1, 0], and the seed's column-layout shapes."""
        X, Y, parameters = seed_parameters()
        assert X.shape == (4, 3)
        np.testing.assert_array_equal(Y, [[1.0, 1.0, 0.0]])
        assert list(parameters) == list(NAMES)
        assert [parameters[n].shape for n in NAMES] == [
            (5, 4),
            (5, 1),
            (3, 5),
            (3, 1),
            (1, 3),
            (1, 1),
        ]

    def test_seed_parameters_leave_global_rng_alone(
        self, global_rng_untouched: Callable[[], None]
    ) -> None:
        """Drawing the seed's case does not reseed the global numpy RNG."""
        seed_parameters()
        fraud_net_seed_case()
        global_rng_untouched()

    def test_case_is_batch_first(self) -> None:
        """x is the seed's X.T, y its Y.T, and the model holds the seed's arrays."""
        X, Y, parameters = seed_parameters()
        case = fraud_net_seed_case()
        assert isinstance(case, SeedCase)
        np.testing.assert_array_equal(case.x, X.T)
        np.testing.assert_array_equal(case.y, Y.T)
        params = case.model.params()
        for name in NAMES:
            np.testing.assert_array_equal(
                params[name], parameters[name].reshape(params[name].shape)
            )

    def test_cost(self) -> None:
        """The model's cost is the seed's 2.407833389834357, to 1e-12."""
        case = fraud_net_seed_case()
        value, _ = case.model.loss_and_grad(case.x, case.y)
        assert value == pytest.approx(SEED_COST, rel=0, abs=1e-12)
        assert case.model.loss_value(case.x, case.y) == pytest.approx(SEED_COST, rel=0, abs=1e-12)

    def test_gradients_equal_the_fixed_seed_backward(self) -> None:
        """All six gradients equal the seed's backward without its planted bugs, to 1e-12."""
        case = fraud_net_seed_case()
        _, grads = case.model.loss_and_grad(case.x, case.y)
        expected = seed_gradients_in_layerkit_layout(planted_bugs=False)
        assert list(grads) == list(NAMES)
        for name in NAMES:
            assert grads[name].shape == expected[name].shape, name
            np.testing.assert_allclose(
                grads[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name
            )

    def test_planted_bugs_differ_exactly_in_dW2_and_db1(self) -> None:
        """The buggy backward disagrees with layerkit in dW2 (x2) and db1 (x4) only."""
        case = fraud_net_seed_case()
        _, grads = case.model.loss_and_grad(case.x, case.y)
        buggy = seed_gradients_in_layerkit_layout(planted_bugs=True)
        differing = {
            name
            for name in NAMES
            if not np.allclose(grads[name], buggy[name], rtol=1e-12, atol=1e-12)
        }
        assert differing == {"W2", "b1"}
        np.testing.assert_allclose(buggy["W2"], 2 * grads["W2"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(buggy["b1"], 4 * grads["b1"], rtol=1e-12, atol=1e-12)

    def test_flat_gradient_matches_gradients_to_vector(self) -> None:
        """The flattened gradient equals gc_utils' gradients_to_vector, entry by entry."""
        case = fraud_net_seed_case()
        _, grads = case.model.loss_and_grad(case.x, case.y)
        X, Y, parameters = seed_parameters()
        _, cache = forward_propagation_n(X, Y, parameters)
        seed_vector = gradients_to_vector(backward_propagation_n(X, Y, cache, planted_bugs=False))
        np.testing.assert_allclose(
            case.model.param_spec.flatten(grads), seed_vector.ravel(), rtol=1e-12, atol=1e-12
        )


class TestSeedLayout:
    """The flat parameter vector is laid out as the seed's dictionary_to_vector."""

    def test_flatten_equals_dictionary_to_vector(self) -> None:
        """Same entries, same order; the keys list matches the spec's offsets."""
        _, _, parameters = seed_parameters()
        theta, keys = dictionary_to_vector(parameters)
        model = fraud_net_seed_case().model
        assert model.flatten().tobytes() == theta.ravel().tobytes()
        for name, (start, stop) in model.param_spec.offsets().items():
            assert keys[start:stop] == [name] * (stop - start)

    def test_unflatten_equals_vector_to_dictionary(self, rng: np.random.Generator) -> None:
        """Loading the seed's (47, 1) theta gives the arrays vector_to_dictionary gives."""
        theta = rng.standard_normal((47, 1))
        model = fraud_net_seed_case().model
        model.unflatten(theta)
        expected = vector_to_dictionary(theta)
        for name, array in model.params().items():
            np.testing.assert_array_equal(array, expected[name].reshape(array.shape))

    def test_cost_agrees_at_random_points(self, rng: np.random.Generator) -> None:
        """At random parameter vectors, the model's cost equals the seed's forward."""
        X, Y, _ = seed_parameters()
        case = fraud_net_seed_case()
        for _ in range(5):
            theta = rng.standard_normal((47, 1))
            case.model.unflatten(theta)
            expected, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta))
            assert case.model.loss_value(case.x, case.y) == pytest.approx(expected, rel=1e-12)


class TestFraudNet:
    """fraud_net() and mlp() build the seed's architecture from a seed."""

    def test_architecture(self) -> None:
        """Linear(4->5), ReLU, Linear(5->3), ReLU, Linear(3->1), Sigmoid, with BCE."""
        model = fraud_net(seed=0)
        assert FRAUD_NET_WIDTHS == (4, 5, 3, 1)
        kinds = [type(layer) for layer in model]
        assert kinds == [Linear, ReLU, Linear, ReLU, Linear, Sigmoid]
        assert [layer.name for layer in model][::2] == [
            "Linear(4->5)",
            "Linear(5->3)",
            "Linear(3->1)",
        ]
        assert isinstance(model.loss, BCELoss)
        assert model.fused_logits

    def test_seeded(self, global_rng_untouched: Callable[[], None]) -> None:
        """Same seed, same parameters; another seed, others; the global RNG is left alone."""
        first = fraud_net(seed=3).flatten()
        np.testing.assert_array_equal(first, fraud_net(seed=3).flatten())
        assert not np.array_equal(first, fraud_net(seed=4).flatten())
        fraud_net(seed=None)
        global_rng_untouched()

    def test_biases_start_at_zero_and_weights_are_he(self) -> None:
        """Biases are zero; init='zeros' gives zero weights too."""
        model = fraud_net(seed=0)
        for name in ("b1", "b2", "b3"):
            np.testing.assert_array_equal(model.params()[name], 0.0)
        assert np.all(fraud_net(seed=0, init="zeros").flatten() == 0.0)

    def test_mlp_widths(self) -> None:
        """mlp puts ReLU between Linears and a Sigmoid at the end."""
        model = mlp((3, 7, 7, 2), seed=1)
        assert [type(layer) for layer in model] == [Linear, ReLU, Linear, ReLU, Linear, Sigmoid]
        assert [layer.name for layer in model][::2] == [
            "Linear(3->7)",
            "Linear(7->7)",
            "Linear(7->2)",
        ]
        assert mlp((2, 1)).param_spec.names == ("W1", "b1")

    @pytest.mark.parametrize("widths", [(), (4,), (4, 0, 1), (4, -2, 1), (4, 2.5, 1), (4, True, 1)])
    def test_mlp_bad_widths(self, widths: tuple[Any, ...]) -> None:
        """Fewer than two widths, or non-positive / non-integer widths, are refused."""
        with pytest.raises(ConfigError, match="'widths'"):
            mlp(widths)

    def test_mlp_bad_init(self) -> None:
        """An unknown init scheme is refused with the scheme's name."""
        with pytest.raises(ConfigError, match="'glorot'"):
            mlp((3, 1), init="glorot")  # type: ignore[arg-type]


class TestFraudNetFromArrays:
    """fraud_net_from_arrays takes the seed's dictionary."""

    def test_missing_keys_named(self) -> None:
        """Missing parameters are listed."""
        _, _, parameters = seed_parameters()
        del parameters["W2"], parameters["b3"]
        with pytest.raises(ConfigError, match=r"\['W2', 'b3'\]"):
            fraud_net_from_arrays(parameters)

    def test_copies_the_arrays(self) -> None:
        """Changing the dictionary afterwards does not change the model."""
        _, _, parameters = seed_parameters()
        model = fraud_net_from_arrays(parameters)
        before = model.flatten().copy()
        parameters["W1"][0, 0] += 1.0
        parameters["b1"][0, 0] += 1.0
        np.testing.assert_array_equal(model.flatten(), before)

    def test_flat_biases_accepted(self) -> None:
        """Biases of shape (out,) work as well as the seed's (out, 1)."""
        _, _, parameters = seed_parameters()
        flat = {k: (v.reshape(-1) if k.startswith("b") else v) for k, v in parameters.items()}
        np.testing.assert_array_equal(
            fraud_net_from_arrays(flat).flatten(), fraud_net_from_arrays(parameters).flatten()
        )


class TestMlpForAnyLoss:
    """mlp(widths, loss=...) builds regression and multi-class nets as well as classifiers."""

    @pytest.mark.parametrize(
        ("loss", "ends_in_sigmoid"),
        [(None, True), (BCELoss(), True), (BCEWithLogitsLoss(), False), (MSELoss(), False),
         (SoftmaxCrossEntropyLoss(), False)],
    )  # fmt: skip
    def test_output_layer(self, loss: Loss | None, ends_in_sigmoid: bool) -> None:
        """A Sigmoid only before BCELoss (it reads probabilities); else the last Linear."""
        model = mlp([3, 6, 2], loss=loss)
        kinds = [type(layer) for layer in model]
        assert kinds == [Linear, ReLU, Linear] + ([Sigmoid] if ends_in_sigmoid else [])
        assert isinstance(model.loss, BCELoss if loss is None else type(loss))

    def test_same_weights_whatever_the_loss(self) -> None:
        """The loss changes the end, not the initial weights drawn from the seed."""
        np.testing.assert_array_equal(
            mlp([3, 6, 2], seed=4).flatten(), mlp([3, 6, 2], seed=4, loss=MSELoss()).flatten()
        )
