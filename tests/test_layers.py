"""Tests for layerkit.layers: Linear, ReLU, Sigmoid, Tanh, Dropout and the layer contract.

Every backward is compared with a closed-form derivative written out here, never with
values computed by the code under test.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.errors import (
    ConfigError,
    DTypeError,
    LayerkitError,
    NonFiniteError,
    ShapeError,
)
from layerkit.layers import INIT_SCHEMES, Dropout, Layer, Linear, ReLU, Sigmoid, Tanh

FloatArray = npt.NDArray[np.floating[Any]]


def random_linear(
    rng: np.random.Generator, n_in: int, n_out: int
) -> tuple[Linear, FloatArray, FloatArray]:
    """A Linear holding random W and b (so that b matters), and copies of both."""
    W = rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out)
    return Linear.from_arrays(W, b), W, b


class TestLinearForward:
    """Linear computes y = x @ W.T + b."""

    def test_matches_explicit_sum(self, rng: np.random.Generator) -> None:
        """y[i, o] = sum_k x[i, k] W[o, k] + b[o]."""
        layer, W, b = random_linear(rng, 4, 3)
        x = rng.standard_normal((6, 4))
        y, _ = layer.forward(x)
        expected = np.einsum("ik,ok->io", x, W) + b[np.newaxis, :]
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
        assert y.shape == (6, 3)

    def test_rebound_copy_uses_the_given_arrays(self, rng: np.random.Generator) -> None:
        """rebound(params) is a copy computing with the given arrays; the layer keeps its own."""
        layer, W, b = random_linear(rng, 3, 2)
        other_W = rng.standard_normal((2, 3))
        other_b = rng.standard_normal(2)
        x = rng.standard_normal((5, 3))
        y, _ = layer.rebound({"W": other_W, "b": other_b}).forward(x)
        np.testing.assert_allclose(
            y, np.einsum("ik,ok->io", x, other_W) + other_b, rtol=1e-12, atol=1e-12
        )
        np.testing.assert_array_equal(layer.W, W)
        np.testing.assert_array_equal(layer.b, b)

    def test_set_params_with_wrong_keys_refused(self, rng: np.random.Generator) -> None:
        """set_params must get exactly W and b."""
        layer, W, _ = random_linear(rng, 3, 2)
        with pytest.raises(ShapeError, match=r"Linear\(3->2\).*\['W', 'b'\]"):
            layer.set_params({"W": W})

    def test_set_params_with_wrong_shape_refused(self, rng: np.random.Generator) -> None:
        """A W of another shape is refused with a layerkit error naming both shapes."""
        layer, _, b = random_linear(rng, 3, 2)
        with pytest.raises(ShapeError) as info:
            layer.set_params({"W": np.zeros((3, 3)), "b": b})
        message = str(info.value)
        assert "Linear(3->2)" in message
        assert "(2, 3)" in message
        assert "(3, 3)" in message


class TestLinearBackward:
    """Linear's backward matches grad_x = g @ W, grad_W = g.T @ x, grad_b = g.sum(0)."""

    @pytest.mark.parametrize(("m", "n_in", "n_out"), [(1, 1, 1), (3, 4, 5), (7, 5, 3), (2, 9, 1)])
    def test_closed_form(self, rng: np.random.Generator, m: int, n_in: int, n_out: int) -> None:
        """All three gradients equal their closed forms at random x, W, b and grad_out."""
        layer, W, _ = random_linear(rng, n_in, n_out)
        x = rng.standard_normal((m, n_in))
        g = rng.standard_normal((m, n_out))
        _, cache = layer.forward(x)
        grad_x, grads = layer.backward(cache, g)
        assert set(grads) == {"W", "b"}
        np.testing.assert_allclose(grad_x, np.einsum("io,ok->ik", g, W), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads["W"], np.einsum("io,ik->ok", g, x), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads["b"], g.sum(axis=0), rtol=1e-12, atol=1e-12)
        assert grad_x.shape == x.shape
        assert grads["W"].shape == W.shape
        assert grads["b"].shape == (n_out,)

    def test_gradient_of_a_scalar_function(self, rng: np.random.Generator) -> None:
        """For L = sum(c * y), the gradient w.r.t. b is the column sums of c, w.r.t. W is c.T @ x."""
        layer, _, _ = random_linear(rng, 2, 2)
        x = np.array([[1.0, 2.0], [3.0, -1.0]])
        c = np.array([[1.0, 0.0], [0.0, 2.0]])
        _, cache = layer.forward(x)
        _, grads = layer.backward(cache, c)
        np.testing.assert_array_equal(grads["b"], [1.0, 2.0])
        np.testing.assert_array_equal(grads["W"], [[1.0, 2.0], [6.0, -2.0]])

    def test_backward_after_rebinding_uses_the_forwards_W(self, rng: np.random.Generator) -> None:
        """After set_params rebinds W, an earlier cache's grad_x still uses the W of its forward."""
        layer, W, _ = random_linear(rng, 3, 2)
        x = rng.standard_normal((4, 3))
        g = rng.standard_normal((4, 2))
        _, cache = layer.forward(x)
        layer.set_params({"W": rng.standard_normal((2, 3)), "b": np.zeros(2)})
        grad_x, _ = layer.backward(cache, g)
        np.testing.assert_allclose(grad_x, g @ W, rtol=1e-12, atol=1e-12)


class TestActivations:
    """ReLU, Sigmoid and Tanh: values and derivatives against closed forms."""

    def test_relu(self, rng: np.random.Generator) -> None:
        """ReLU is max(x, 0) and passes the gradient where x > 0 (0 at exactly 0)."""
        x = rng.standard_normal((6, 5))
        x[0, :3] = 0.0  # the kink: derivative taken as 0, as in the seed
        g = rng.standard_normal((6, 5))
        layer = ReLU()
        y, cache = layer.forward(x)
        np.testing.assert_array_equal(y, np.where(x > 0, x, 0.0))
        grad_x, grads = layer.backward(cache, g)
        np.testing.assert_array_equal(grad_x, g * (x > 0))
        assert grads == {}
        assert np.all(grad_x[0, :3] == 0.0)

    def test_sigmoid(self, rng: np.random.Generator) -> None:
        """Sigmoid is 1 / (1 + e^-x) and its derivative s (1 - s)."""
        x = rng.uniform(-8, 8, size=(5, 4))
        g = rng.standard_normal((5, 4))
        s = 1.0 / (1.0 + np.exp(-x))
        layer = Sigmoid()
        y, cache = layer.forward(x)
        np.testing.assert_allclose(y, s, rtol=1e-12, atol=1e-12)
        grad_x, grads = layer.backward(cache, g)
        np.testing.assert_allclose(grad_x, g * s * (1.0 - s), rtol=1e-12, atol=1e-12)
        assert grads == {}

    def test_sigmoid_saturates_without_overflow(self) -> None:
        """At +-800 the sigmoid gives exactly 1 and a tiny positive number, with no warning."""
        y, _ = Sigmoid().forward(np.array([[800.0, -800.0, 30.0, -30.0]]))
        assert y[0, 0] == 1.0
        assert y[0, 1] == 0.0  # e^-800 underflows to 0 in float64
        np.testing.assert_allclose(y[0, 3], np.exp(-30.0) / (1.0 + np.exp(-30.0)), rtol=1e-14)
        assert np.all(np.isfinite(y))

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_tanh_is_within_3_ulp_of_numpy(self, dtype: type[np.floating]) -> None:
        """Tanh's own formula against np.tanh from 1e-300 (1e-38) to 1e3, both signs; exact
        at signed zeros, infinities and NaN, and +-1 where tanh rounds to 1."""
        tiny = -300 if dtype == np.float64 else -37
        magnitudes = np.logspace(tiny, 3, 40_001).astype(dtype)
        x = np.concatenate([magnitudes, -magnitudes])
        got, expected = Tanh().function(x), np.tanh(x)
        assert got.dtype == dtype
        ulps = np.abs(got - expected) / np.spacing(np.abs(expected))
        assert float(np.max(ulps)) <= 3.0
        assert np.all(np.abs(got) <= 1.0)
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0], dtype=dtype)
        got = Tanh().function(special)
        np.testing.assert_array_equal(got, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, -1.0])
        assert np.signbit(got[1]) and not np.signbit(got[0])

    def test_tanh(self, rng: np.random.Generator) -> None:
        """Tanh is (e^2x - 1) / (e^2x + 1) and its derivative 1 - t^2."""
        x = rng.uniform(-4, 4, size=(3, 7))
        g = rng.standard_normal((3, 7))
        e2x = np.exp(2.0 * x)
        t = (e2x - 1.0) / (e2x + 1.0)
        layer = Tanh()
        y, cache = layer.forward(x)
        np.testing.assert_allclose(y, t, rtol=1e-12, atol=1e-12)
        grad_x, grads = layer.backward(cache, g)
        np.testing.assert_allclose(grad_x, g * (1.0 - t * t), rtol=1e-12, atol=1e-12)
        assert grads == {}

    @pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Tanh()], ids=lambda layer: layer.name)
    def test_any_width_and_no_parameters(self, layer: Layer) -> None:
        """Activations accept any width, keep it, and have no parameters."""
        assert layer.in_features is None
        assert layer.output_width(7) == 7
        assert layer.param_spec.size == 0
        assert layer.flatten().shape == (0,)
        for width in (1, 3, 11):
            y, _ = layer.forward(np.zeros((2, width)))
            assert y.shape == (2, width)


class TestDropout:
    """Dropout: identity without noise; an explicit, reproducible mask otherwise."""

    def test_no_noise_is_identity(self, rng: np.random.Generator) -> None:
        """forward(x) returns x and backward passes the gradient through unchanged."""
        x = rng.standard_normal((4, 3))
        g = rng.standard_normal((4, 3))
        layer = Dropout(0.5)
        y, cache = layer.forward(x)
        np.testing.assert_array_equal(y, x)
        grad_x, grads = layer.backward(cache, g)
        np.testing.assert_array_equal(grad_x, g)
        assert grads == {}

    def test_mask_is_reproducible_from_seed(self) -> None:
        """The same seed gives the same mask; another seed gives another one."""
        layer = Dropout(0.3)
        x = np.ones((20, 10))
        first = layer.sample_noise(x, np.random.default_rng(7))
        again = layer.sample_noise(x, np.random.default_rng(7))
        other = layer.sample_noise(x, np.random.default_rng(8))
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)

    @pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.9])
    def test_mask_values_and_keep_fraction(self, rate: float) -> None:
        """Mask entries are 0 or 1 / (1 - rate), and about a fraction 1 - rate are kept."""
        layer = Dropout(rate)
        mask = layer.sample_noise(np.ones((200, 100)), np.random.default_rng(0))
        assert mask.shape == (200, 100)
        scale = 1.0 / (1.0 - rate)
        assert set(np.unique(mask)) <= {0.0, scale}
        kept = float(np.mean(mask != 0.0))
        assert abs(kept - (1.0 - rate)) < 0.01  # 20 000 draws: sd of the fraction <= 0.0035
        assert abs(float(mask.mean()) - 1.0) < 0.05 + 0.1 * rate  # inverted dropout: E[mask] = 1

    def test_forward_and_backward_use_the_mask(self, rng: np.random.Generator) -> None:
        """y = x * mask and grad_x = g * mask, with the mask given by the caller."""
        layer = Dropout(0.25)
        x = rng.standard_normal((5, 6))
        g = rng.standard_normal((5, 6))
        mask = layer.sample_noise(x, np.random.default_rng(3))
        y, cache = layer.forward(x, noise=mask)
        np.testing.assert_array_equal(y, x * mask)
        grad_x, _ = layer.backward(cache, g)
        np.testing.assert_array_equal(grad_x, g * mask)
        dropped = mask == 0.0
        assert dropped.any()
        assert np.all(grad_x[dropped] == 0.0)
        np.testing.assert_allclose(grad_x[~dropped], g[~dropped] / 0.75, rtol=1e-12, atol=1e-12)

    def test_mask_follows_input_dtype(self) -> None:
        """A float32 input gets a float32 mask."""
        mask = Dropout(0.5).sample_noise(np.ones((3, 3), np.float32), np.random.default_rng(0))
        assert mask.dtype == np.float32

    def test_noise_of_wrong_shape_refused(self) -> None:
        """A mask that does not match x is refused, naming both shapes."""
        with pytest.raises(ConfigError, match=r"\(3, 4\).*\(2, 4\)"):
            Dropout(0.5).forward(np.ones((3, 4)), noise=np.ones((2, 4)))

    @pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), True, "0.5", None])
    def test_bad_rate_refused(self, rate: object) -> None:
        """rate must be a number in [0, 1); the message names it and what came."""
        with pytest.raises(ConfigError) as info:
            Dropout(rate)  # type: ignore[arg-type]
        assert "'rate'" in str(info.value)
        assert repr(rate) in str(info.value)

    def test_is_stochastic_and_named(self) -> None:
        """Dropout declares itself stochastic and shows its rate."""
        layer = Dropout(0.25)
        assert layer.stochastic
        assert not Linear(2, 2).stochastic
        assert layer.name == "Dropout(0.25)"


class TestLinearInit:
    """Initialisation schemes draw from the right distributions, from their own RNG."""

    n_in = 500
    n_out = 400

    def weights(self, scheme: str, seed: int = 0) -> FloatArray:
        layer = Linear(self.n_in, self.n_out, init=scheme, seed=seed)  # type: ignore[arg-type]
        assert layer.W.shape == (self.n_out, self.n_in)
        np.testing.assert_array_equal(layer.b, np.zeros(self.n_out))
        return np.asarray(layer.W, dtype=np.float64)

    @pytest.mark.parametrize(
        ("scheme", "expected_std"),
        [
            ("normal", 1.0),
            ("he", np.sqrt(2.0 / 500)),
            ("xavier", np.sqrt(2.0 / (500 + 400))),
            ("xavier_uniform", np.sqrt(6.0 / (500 + 400)) / np.sqrt(3.0)),
        ],
    )
    def test_mean_and_std(self, scheme: str, expected_std: float) -> None:
        """200 000 draws: mean within 0.02 std of 0, std within 2 % of the scheme's."""
        W = self.weights(scheme)
        assert abs(float(W.mean())) < 0.02 * expected_std
        assert abs(float(W.std()) / expected_std - 1.0) < 0.02

    def test_normal_schemes_look_gaussian(self) -> None:
        """About 68.3 % of He draws lie within one std (a uniform would give 57.7 %)."""
        W = self.weights("he")
        inside = float(np.mean(np.abs(W) < np.sqrt(2.0 / self.n_in)))
        assert abs(inside - 0.6827) < 0.01

    def test_xavier_uniform_bounds(self) -> None:
        """Uniform draws stay inside +-sqrt(6 / (in + out)) and reach close to both ends."""
        limit = np.sqrt(6.0 / (self.n_in + self.n_out))
        W = self.weights("xavier_uniform")
        assert W.max() <= limit
        assert W.min() >= -limit
        assert W.max() > 0.99 * limit
        assert W.min() < -0.99 * limit

    def test_zeros(self) -> None:
        """The zeros scheme gives an all-zero W."""
        np.testing.assert_array_equal(self.weights("zeros"), 0.0)

    def test_default_is_he(self) -> None:
        """Without init=, the scheme is He."""
        np.testing.assert_array_equal(Linear(30, 20, seed=4).W, Linear(30, 20, init="he", seed=4).W)

    @pytest.mark.parametrize("scheme", INIT_SCHEMES)
    def test_seed_reproducible(self, scheme: str) -> None:
        """The same seed gives the same weights; another seed other weights (but zeros)."""
        first = Linear(6, 4, init=scheme, seed=11)  # type: ignore[arg-type]
        again = Linear(6, 4, init=scheme, seed=11)  # type: ignore[arg-type]
        np.testing.assert_array_equal(first.W, again.W)
        if scheme != "zeros":
            other = Linear(6, 4, init=scheme, seed=12)  # type: ignore[arg-type]
            assert not np.array_equal(first.W, other.W)

    def test_generator_is_used_and_advanced(self) -> None:
        """A Generator seeds like its int seed, and successive layers from it differ."""
        generator = np.random.default_rng(5)
        first = Linear(6, 4, seed=generator)
        second = Linear(6, 4, seed=generator)
        np.testing.assert_array_equal(first.W, Linear(6, 4, seed=5).W)
        assert not np.array_equal(first.W, second.W)

    def test_global_rng_untouched(self, global_rng_untouched: Callable[[], None]) -> None:
        """No scheme, seeded or not, draws from (or reseeds) the global numpy RNG."""
        for scheme in INIT_SCHEMES:
            Linear(8, 3, init=scheme)  # type: ignore[arg-type]
            Linear(8, 3, init=scheme, seed=1)  # type: ignore[arg-type]
            Linear(8, 3, init=scheme, seed=np.random.default_rng(1))  # type: ignore[arg-type]
        global_rng_untouched()

    def test_unseeded_layers_differ(self) -> None:
        """seed=None draws fresh entropy: two unseeded layers are different."""
        assert not np.array_equal(Linear(10, 10).W, Linear(10, 10).W)

    def test_bad_scheme_refused(self) -> None:
        """An unknown scheme is refused, naming it and listing the valid ones."""
        with pytest.raises(ConfigError) as info:
            Linear(3, 2, init="glorot")  # type: ignore[arg-type]
        message = str(info.value)
        assert "'glorot'" in message
        assert "'init'" in message
        for scheme in INIT_SCHEMES:
            assert scheme in message

    @pytest.mark.parametrize("width", [0, -3, 2.0, True, "4", None])
    def test_bad_width_refused(self, width: object) -> None:
        """Widths must be positive integers; the message names the argument and the value."""
        with pytest.raises(ConfigError, match="'in_features'"):
            Linear(width, 3)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="'out_features'"):
            Linear(3, width)  # type: ignore[arg-type]

    def test_numpy_integer_width_accepted(self) -> None:
        """np.int64 widths are fine."""
        assert Linear(np.int64(3), np.int64(2)).W.shape == (2, 3)  # type: ignore[arg-type]


class TestLinearFromArrays:
    """Linear.from_arrays copies the given arrays into a layer."""

    def test_copies(self) -> None:
        """Changing the source arrays later does not change the layer."""
        W = np.ones((2, 3))
        b = np.zeros(2)
        layer = Linear.from_arrays(W, b)
        W[0, 0] = 5.0
        b[0] = 5.0
        assert layer.W[0, 0] == 1.0
        assert layer.b[0] == 0.0

    def test_seed_column_bias_accepted(self) -> None:
        """The seed's (out, 1) bias column becomes (out,)."""
        layer = Linear.from_arrays(np.ones((3, 2)), np.array([[1.0], [2.0], [3.0]]))
        np.testing.assert_array_equal(layer.b, [1.0, 2.0, 3.0])
        assert (layer.in_features, layer.out_features) == (2, 3)
        assert layer.name == "Linear(2->3)"

    def test_missing_bias_is_zero(self) -> None:
        """Without b, the bias is zeros of the output width."""
        np.testing.assert_array_equal(Linear.from_arrays(np.ones((3, 2))).b, np.zeros(3))

    def test_mismatched_bias_refused(self) -> None:
        """A bias of another width is refused, naming both shapes."""
        with pytest.raises(ShapeError, match=r"\(3,\).*\(4,\)"):
            Linear.from_arrays(np.ones((3, 2)), np.ones(4))

    def test_integer_weights_converted(self) -> None:
        """Integer W becomes float64."""
        assert Linear.from_arrays(np.ones((2, 2), dtype=int)).W.dtype == np.float64

    def test_rank_checked(self) -> None:
        """W must be 2-D."""
        with pytest.raises(ShapeError, match="'W'"):
            Linear.from_arrays(np.ones(3))


class TestInputValidation:
    """A layer refuses bad x with a layerkit error that names the layer and the problem."""

    def test_wrong_rank(self) -> None:
        """A 1-D sample is refused with a hint to use shape (1, features)."""
        with pytest.raises(ShapeError, match=r"Linear\(4->2\).*\(4,\).*\(1, features\)"):
            Linear(4, 2).forward(np.zeros(4))
        with pytest.raises(ShapeError, match=r"ReLU.*\(2, 3, 4\)"):
            ReLU().forward(np.zeros((2, 3, 4)))

    def test_wrong_feature_count(self) -> None:
        """The message names the expected and the given width."""
        with pytest.raises(ShapeError) as info:
            Linear(4, 2).forward(np.zeros((3, 5)))
        message = str(info.value)
        assert "Linear(4->2)" in message
        assert "4 features" in message
        assert "(3, 5)" in message

    @pytest.mark.parametrize("layer", [Linear(3, 2), ReLU(), Dropout(0.5)], ids=repr)
    def test_empty_batch(self, layer: Layer) -> None:
        """A batch of 0 samples is refused."""
        with pytest.raises(ShapeError, match="empty batch"):
            layer.forward(np.zeros((0, 3)))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite(self, bad: float) -> None:
        """NaN and Inf in x are refused."""
        x = np.zeros((2, 3))
        x[1, 2] = bad
        with pytest.raises(NonFiniteError, match="'x' holds 1 NaN/Inf"):
            Linear(3, 2).forward(x)

    @pytest.mark.parametrize("dtype", [complex, object, str])
    def test_bad_dtype(self, dtype: type) -> None:
        """Complex, object and string arrays are refused as a TypeError."""
        with pytest.raises(DTypeError, match="'x'") as info:
            Linear(3, 2).forward(np.zeros((2, 3)).astype(dtype))
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, LayerkitError)

    def test_integers_converted(self, rng: np.random.Generator) -> None:
        """Integer and boolean x give the same output as the equal float x."""
        layer, _, _ = random_linear(rng, 3, 2)
        xi = np.array([[1, 0, -2], [3, 4, 5]])
        y_int, _ = layer.forward(xi)
        y_float, _ = layer.forward(xi.astype(np.float64))
        assert y_int.dtype == np.float64
        np.testing.assert_array_equal(y_int, y_float)
        y_bool, _ = Tanh().forward(np.array([[True, False]]))
        np.testing.assert_allclose(y_bool, [[np.tanh(1.0), 0.0]], rtol=1e-12, atol=1e-12)

    def test_lists_accepted(self) -> None:
        """Nested lists are arrays too."""
        y, _ = ReLU().forward([[1.0, -1.0]])  # type: ignore[arg-type]
        np.testing.assert_array_equal(y, [[1.0, 0.0]])


class TestRebinding:
    """Parameters are rebound, never written in place; copies never share arrays."""

    def test_unflatten_rebinds(self, rng: np.random.Generator) -> None:
        """unflatten binds new arrays (of the layer's dtype); the old ones are left as they were."""
        layer = Linear(3, 2, seed=0, dtype=np.float32)
        old_W = layer.W
        before = old_W.copy()
        layer.unflatten(rng.standard_normal(8))
        assert layer.W is not old_W
        assert layer.W.dtype == np.float32
        np.testing.assert_array_equal(old_W, before)

    def test_unflatten_into_a_read_only_W(self) -> None:
        """A read-only W is not written: unflatten binds a new array, and leaves it alone."""
        layer = Linear(3, 2, seed=0)
        frozen = layer.W
        frozen.flags.writeable = False
        layer.unflatten(np.arange(8.0))
        np.testing.assert_array_equal(layer.W, np.arange(6.0).reshape(2, 3))
        assert layer.W.flags.writeable and not frozen.flags.writeable

    def test_custom_layer_gets_astype_and_copy(self) -> None:
        """A layer defining only params/forward/backward gets astype and copy with new arrays."""

        class Shift(Layer):
            def __init__(self) -> None:
                self.h = np.zeros(3)

            def params(self) -> dict[str, FloatArray]:
                return {"h": self.h}

            def forward(self, x: FloatArray, *, noise: object = None) -> tuple[FloatArray, None]:
                return x + self.h, None

            def backward(
                self, cache: None, grad_y: FloatArray
            ) -> tuple[FloatArray, dict[str, FloatArray]]:
                return grad_y, {"h": grad_y.sum(axis=0)}

        layer = Shift()
        small, twin = layer.astype(np.float32), layer.copy()
        assert small.h.dtype == np.float32
        assert small.h is not layer.h
        assert twin.h is not layer.h
        np.testing.assert_array_equal(twin.h, layer.h)

    def test_params_under_other_names_need_set_params(self) -> None:
        """A layer whose attributes differ from its parameter names is told to override set_params."""

        class Hidden(Layer):
            def __init__(self) -> None:
                self._w = np.ones(2)

            def params(self) -> dict[str, FloatArray]:
                return {"w": self._w}

            def forward(self, x: FloatArray, *, noise: object = None) -> tuple[FloatArray, None]:
                return x * self._w, None

            def backward(
                self, cache: None, grad_y: FloatArray
            ) -> tuple[FloatArray, dict[str, FloatArray]]:
                return grad_y, {"w": grad_y.sum(axis=0)}

        with pytest.raises(ConfigError, match="override set_params"):
            Hidden().unflatten(np.zeros(2))


class TestForwardPurity:
    """forward is a pure function of (parameters, input); a cache keeps its own forward."""

    def test_forward_twice_identical_and_params_untouched(self, rng: np.random.Generator) -> None:
        """Two calls give the same bits and leave W, b and x unchanged."""
        layer, W, b = random_linear(rng, 4, 3)
        x = rng.standard_normal((5, 4))
        x_before = x.copy()
        y1, _ = layer.forward(x)
        y2, _ = layer.forward(x)
        assert y1.tobytes() == y2.tobytes()
        assert layer.W.tobytes() == W.tobytes()
        assert layer.b.tobytes() == b.tobytes()
        assert x.tobytes() == x_before.tobytes()

    @pytest.mark.parametrize("make", [ReLU, Sigmoid, Tanh, lambda: Linear(4, 4, seed=0)])
    def test_old_cache_after_new_forward(
        self, rng: np.random.Generator, make: Callable[[], Layer]
    ) -> None:
        """backward(cache1) after forward(x2) still differentiates at x1."""
        layer = make()
        x1 = rng.standard_normal((3, 4))
        x2 = rng.standard_normal((3, 4))
        g = rng.standard_normal((3, 4))
        _, cache1 = layer.forward(x1)
        expected_x, expected = layer.backward(cache1, g)
        _, cache2 = layer.forward(x2)
        again_x, again = layer.backward(cache1, g)
        other_x, _ = layer.backward(cache2, g)
        np.testing.assert_array_equal(again_x, expected_x)
        for name in expected:
            np.testing.assert_array_equal(again[name], expected[name])
        if not isinstance(layer, Linear):  # Linear's grad_x does not depend on x
            assert not np.array_equal(other_x, expected_x)

    def test_old_cache_after_parameter_update(self, rng: np.random.Generator) -> None:
        """After unflatten loads new parameters, an earlier cache still holds the W it used."""
        layer, W, _ = random_linear(rng, 3, 2)
        x = rng.standard_normal((4, 3))
        g = rng.standard_normal((4, 2))
        _, cache = layer.forward(x)
        layer.unflatten(rng.standard_normal(layer.param_spec.size))
        assert not np.array_equal(layer.W, W)
        grad_x, grads = layer.backward(cache, g)
        np.testing.assert_allclose(grad_x, g @ W, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads["W"], g.T @ x, rtol=1e-12, atol=1e-12)


class TestLayerFlatten:
    """A layer's parameters flatten to W row-major then b, and load back from a vector."""

    def test_linear_layout(self, rng: np.random.Generator) -> None:
        """flatten() is W.ravel() followed by b."""
        layer, W, b = random_linear(rng, 3, 2)
        assert layer.param_spec.names == ("W", "b")
        np.testing.assert_array_equal(layer.flatten(), np.concatenate([W.ravel(), b]))

    def test_round_trip(self, rng: np.random.Generator) -> None:
        """unflatten(v) then flatten() gives v back bit for bit, and W, b are v's slices."""
        layer, _, _ = random_linear(rng, 3, 2)
        vector = rng.standard_normal(8)
        layer.unflatten(vector)
        assert layer.flatten().tobytes() == vector.tobytes()
        np.testing.assert_array_equal(layer.W, vector[:6].reshape(2, 3))
        np.testing.assert_array_equal(layer.b, vector[6:])

    def test_unflatten_copies(self, rng: np.random.Generator) -> None:
        """The layer does not keep a view of the vector it was loaded from."""
        layer, _, _ = random_linear(rng, 3, 2)
        vector = np.arange(8.0)
        layer.unflatten(vector)
        vector[:] = -1.0
        np.testing.assert_array_equal(layer.b, [6.0, 7.0])

    def test_wrong_length_names_both(self) -> None:
        """The message names the layer and both lengths."""
        with pytest.raises(ShapeError) as info:
            Linear(3, 2).unflatten(np.zeros(9))
        message = str(info.value)
        assert "Linear(3->2)" in message
        assert "length 8" in message
        assert "length 9" in message


class TestDtype:
    """float64 by default; a float32 layer computes in float32."""

    def test_default_float64(self) -> None:
        """Weights, bias and outputs are float64 by default, even for float32 input."""
        layer = Linear(3, 2, seed=0)
        assert layer.W.dtype == np.float64
        assert layer.b.dtype == np.float64
        y, _ = layer.forward(np.ones((2, 3), dtype=np.float32))
        assert y.dtype == np.float64

    def test_float32_layer(self, rng: np.random.Generator) -> None:
        """A float32 Linear gives float32 outputs and gradients for float64 input."""
        layer = Linear(3, 2, seed=0, dtype=np.float32)
        assert layer.W.dtype == np.float32
        x = rng.standard_normal((4, 3))
        y, cache = layer.forward(x)
        assert y.dtype == np.float32
        grad_x, grads = layer.backward(cache, np.ones((4, 2)))
        assert grad_x.dtype == np.float32
        assert grads["W"].dtype == np.float32
        assert grads["b"].dtype == np.float32
        np.testing.assert_allclose(y, x @ layer.W.astype(np.float64).T, rtol=1e-5, atol=1e-5)

    def test_astype(self) -> None:
        """astype returns a converted copy and leaves the original alone."""
        layer = Linear(3, 2, seed=0)
        small = layer.astype(np.float32)
        assert small is not layer
        assert small.W.dtype == np.float32
        assert layer.W.dtype == np.float64
        np.testing.assert_allclose(small.W, layer.W, rtol=1e-7)

    @pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Tanh(), Dropout(0.5)], ids=repr)
    def test_activations_keep_float32(self, layer: Layer) -> None:
        """Parameter-free layers keep a float32 input float32, forward and backward."""
        x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
        y, cache = layer.forward(x)
        assert y.dtype == np.float32
        grad_x, _ = layer.backward(cache, np.ones((3, 4), dtype=np.float32))
        assert grad_x.dtype == np.float32


class TestLayerProperties:
    """Shapes hold for any widths and batch sizes."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(
        m=st.integers(1, 9),
        n_in=st.integers(1, 9),
        n_out=st.integers(1, 9),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_linear_shapes_and_round_trip(self, m: int, n_in: int, n_out: int, seed: int) -> None:
        """Output (m, out); grad_x like x; gradients like parameters; flatten round trip exact."""
        generator = np.random.default_rng(seed)
        layer = Linear(n_in, n_out, seed=generator)
        x = generator.standard_normal((m, n_in))
        y, cache = layer.forward(x)
        assert y.shape == (m, n_out)
        grad_x, grads = layer.backward(cache, generator.standard_normal((m, n_out)))
        assert grad_x.shape == (m, n_in)
        assert {k: v.shape for k, v in grads.items()} == {
            k: v.shape for k, v in layer.params().items()
        }
        vector = generator.standard_normal(n_in * n_out + n_out)
        layer.unflatten(vector)
        assert layer.flatten().tobytes() == vector.tobytes()

    def test_layers_pickle(self) -> None:
        """Layers survive pickling (needed to copy models)."""
        layer = Linear(3, 2, seed=0)
        copy = pickle.loads(pickle.dumps(layer))
        np.testing.assert_array_equal(copy.W, layer.W)
        assert pickle.loads(pickle.dumps(Dropout(0.3))).rate == 0.3
