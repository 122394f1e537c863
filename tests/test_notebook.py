"""Tests for layerkit.notebook: the seed notebook's functions, names and numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from layerkit import notebook
from layerkit._typing import Array
from layerkit.errors import (
    CacheError,
    ConfigError,
    DTypeError,
    GradientSpecError,
    ShapeError,
    TargetError,
)
from layerkit.notebook import (
    NotebookCache,
    backward_propagation,
    backward_propagation_n,
    backward_propagation_n_with_seed_bugs,
    compare_checks,
    dictionary_to_vector,
    forward_propagation,
    forward_propagation_n,
    gradient_check,
    gradient_check_n,
    gradient_check_n_test_case,
    gradients_to_vector,
    relu,
    sigmoid,
    vector_to_dictionary,
)
from layerkit.sequential import Sequential

SEED_COST = 2.407833389834357
SEED_1D_DIFFERENCE = 2.919335883291695e-10
SEED_N_DIFFERENCE = 1.1890913023330276e-07  # the seed's printed result, correct backprop
SEED_BUGGED_DIFFERENCE = 0.2850931567761624  # the Coursera original, planted bugs
KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")
SHAPES = {"W1": (5, 4), "b1": (5, 1), "W2": (3, 5), "b2": (3, 1), "W3": (1, 3), "b3": (1, 1)}
GRADIENT_ORDER = ["dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"]

# -- the seed's formulas, typed out again independently (bugs fixed) --------------------------


def seed_forward(
    X: Array, Y: Array, parameters: dict[str, Array]
) -> tuple[float, tuple[Array, ...]]:
    """The seed's forward_propagation_n, column layout, its own sigmoid and relu."""
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1 = np.maximum(0, Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = np.maximum(0, Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = 1 / (1 + np.exp(-Z3))
    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = float(1.0 / m * np.sum(logprobs))
    return cost, (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def seed_backward_fixed(X: Array, Y: Array, cache: tuple[Array, ...]) -> dict[str, Array]:
    """The seed's backward_propagation_n without the planted *2 and *4."""
    m = X.shape[1]
    A1, A2, A3 = cache[1], cache[5], cache[9]
    W2, W3 = cache[6], cache[10]
    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {
        "dZ3": dZ3,
        "dW3": dW3,
        "db3": db3,
        "dA2": dA2,
        "dZ2": dZ2,
        "dW2": dW2,
        "db2": db2,
        "dA1": dA1,
        "dZ1": dZ1,
        "dW1": dW1,
        "db1": db1,
    }


def other_case(m: int = 7, seed: int = 3) -> tuple[Array, Array, dict[str, Array]]:
    """A second, larger case (random labels, m examples), to not rely on one data set."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, m))
    Y: Array = (rng.random((1, m)) > 0.5).astype(np.float64)
    parameters: dict[str, Array] = {k: rng.standard_normal(SHAPES[k]) for k in KEYS}
    return X, Y, parameters


# -- 1-D -------------------------------------------------------------------------------------


class TestOneDimensional:
    """forward_propagation, backward_propagation and gradient_check on J = theta * x."""

    def test_forward_and_backward(self) -> None:
        """J(4) = 8 and dJ/dtheta = 2 for x = 2, as the seed prints."""
        assert forward_propagation(2, 4) == 8
        assert backward_propagation(2, 4) == 2

    def test_seed_difference_and_message(self, capsys: pytest.CaptureFixture[str]) -> None:
        """gradient_check(2, 4) gives the seed's 2.919e-10 and prints that it is correct."""
        difference = gradient_check(2, 4)
        assert difference == pytest.approx(SEED_1D_DIFFERENCE, rel=1e-6)
        assert capsys.readouterr().out == "The gradient is correct!\n"

    def test_verbose_false_is_silent(self, capsys: pytest.CaptureFixture[str]) -> None:
        """verbose=False returns the same number and prints nothing."""
        assert gradient_check(2, 4, verbose=False) == gradient_check(2, 4)
        capsys.readouterr()
        gradient_check(2, 4, verbose=False)
        assert capsys.readouterr().out == ""

    def test_wrong_backward_is_reported(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A wrong backward_propagation (as the seed's exercise could have) prints "wrong"."""
        monkeypatch.setattr(notebook, "backward_propagation", lambda x, theta: x + 1)
        difference = gradient_check(2, 4)
        assert difference > 0.1
        assert capsys.readouterr().out == "The gradient is wrong!\n"

    def test_nan_difference_is_wrong(self, capsys: pytest.CaptureFixture[str]) -> None:
        """x = 0 gives 0 / 0 = NaN, which reads as wrong, never as correct."""
        difference = gradient_check(0, 4)
        assert np.isnan(difference)
        assert capsys.readouterr().out == "The gradient is wrong!\n"

    def test_bad_input(self) -> None:
        """Non-numbers and a non-positive epsilon are refused with layerkit errors."""
        with pytest.raises(DTypeError, match="'x' must be a real number"):
            forward_propagation("2", 4)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="'epsilon' must be a positive"):
            gradient_check(2, 4, epsilon=0.0)


# -- the test case and the vector helpers ----------------------------------------------------


class TestTestCase:
    """gradient_check_n_test_case reproduces the seed's np.random.seed(1) draws."""

    def test_matches_seed_sequence(self) -> None:
        """X, then W1, b1, W2, b2, W3, b3 drawn in order from RandomState(1); Y = [[1, 1, 0]]."""
        rng = np.random.RandomState(1)
        expected_X = rng.randn(4, 3)
        expected = {k: rng.randn(*SHAPES[k]) for k in KEYS}
        X, Y, parameters = gradient_check_n_test_case()
        np.testing.assert_array_equal(X, expected_X)
        np.testing.assert_array_equal(Y, np.array([[1.0, 1.0, 0.0]]))
        assert list(parameters) == list(KEYS)
        for key in KEYS:
            np.testing.assert_array_equal(parameters[key], expected[key])

    def test_global_rng_untouched(self) -> None:
        """The caller's global numpy RNG state is the same before and after."""
        np.random.seed(12345)
        before = np.random.get_state(legacy=False)
        gradient_check_n_test_case()
        after = np.random.get_state(legacy=False)
        np.testing.assert_array_equal(after["state"]["key"], before["state"]["key"])
        assert after["state"]["pos"] == before["state"]["pos"]
        assert (after["has_gauss"], after["gauss"]) == (before["has_gauss"], before["gauss"])
        np.testing.assert_array_equal(np.random.randn(3), np.random.RandomState(12345).randn(3))

    def test_fresh_arrays(self) -> None:
        """Each call returns new arrays: changing one case does not change the next."""
        _, _, first = gradient_check_n_test_case()
        original = first["W1"].copy()
        first["W1"][...] = 0.0
        _, _, second = gradient_check_n_test_case()
        np.testing.assert_array_equal(second["W1"], original)


class TestVectorHelpers:
    """dictionary_to_vector, vector_to_dictionary and gradients_to_vector."""

    def test_order_and_layout(self) -> None:
        """W1, b1, W2, b2, W3, b3, each row-major, in one (47, 1) column, with its keys."""
        _, _, parameters = gradient_check_n_test_case()
        theta, keys = dictionary_to_vector(parameters)
        assert theta.shape == (47, 1)
        expected = np.concatenate([parameters[k].ravel(order="C") for k in KEYS])
        np.testing.assert_array_equal(theta[:, 0], expected)
        assert theta[1, 0] == parameters["W1"][0, 1]  # row-major: W1[0, 1] comes second
        assert keys == ["W1"] * 20 + ["b1"] * 5 + ["W2"] * 15 + ["b2"] * 3 + ["W3"] * 3 + ["b3"]

    def test_round_trip(self) -> None:
        """vector_to_dictionary(dictionary_to_vector(p)) gives back p, keys in order."""
        _, _, parameters = gradient_check_n_test_case()
        theta, _ = dictionary_to_vector(parameters)
        back = vector_to_dictionary(theta)
        assert list(back) == list(KEYS)
        for key in KEYS:
            assert back[key].shape == SHAPES[key]
            np.testing.assert_array_equal(back[key], parameters[key])
        again, _ = dictionary_to_vector(back)
        np.testing.assert_array_equal(again, theta)

    def test_vector_is_a_copy(self) -> None:
        """Changing the rolled vector leaves the parameters alone."""
        _, _, parameters = gradient_check_n_test_case()
        original = parameters["b2"].copy()
        theta, _ = dictionary_to_vector(parameters)
        theta[40:43] = 0.0
        np.testing.assert_array_equal(parameters["b2"], original)

    def test_wrong_length_names_both(self) -> None:
        """A vector of the wrong length is refused, naming 47 and what came."""
        with pytest.raises(ShapeError, match=r"length 47.*got length 46"):
            vector_to_dictionary(np.zeros((46, 1)))

    def test_missing_keys(self) -> None:
        """Missing parameter or gradient keys are named in the error."""
        _, _, parameters = gradient_check_n_test_case()
        del parameters["b2"]
        with pytest.raises(ConfigError, match=r"missing \['b2'\]"):
            dictionary_to_vector(parameters)
        with pytest.raises(GradientSpecError, match=r"missing \['dW1'"):
            gradients_to_vector({"W1": np.zeros((5, 4))})

    def test_gradients_to_vector_order(self) -> None:
        """Gradients roll as dW1, db1, dW2, db2, dW3, db3; other keys are ignored."""
        gradients = {f"d{k}": np.full(SHAPES[k], float(i)) for i, k in enumerate(KEYS)}
        gradients["dZ3"] = np.full((1, 3), 99.0)
        vector = gradients_to_vector(gradients)
        sizes = [int(np.prod(SHAPES[k])) for k in KEYS]
        np.testing.assert_array_equal(vector[:, 0], np.repeat(np.arange(6.0), sizes))

    def test_sigmoid_and_relu(self) -> None:
        """sigmoid and relu match the seed's gc_utils on ordinary values."""
        z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])
        np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
        np.testing.assert_array_equal(relu(z), np.maximum(0, z))


# -- N-D: forward, backward, the planted bugs, the check -------------------------------------


class TestForwardPropagationN:
    """forward_propagation_n runs layerkit's fraud net and returns the seed's (cost, cache)."""

    def test_seed_cost(self) -> None:
        """The test case's cost is the seed's 2.407833389834357."""
        X, Y, parameters = gradient_check_n_test_case()
        cost, _ = forward_propagation_n(X, Y, parameters)
        assert isinstance(cost, float)
        assert cost == pytest.approx(SEED_COST, abs=1e-12)

    @pytest.mark.parametrize("case", ["seed", "other"])
    def test_cache_is_the_seed_tuple(self, case: str) -> None:
        """The cache unpacks as the seed's 12-tuple, equal to the seed's formulas."""
        X, Y, parameters = gradient_check_n_test_case() if case == "seed" else other_case()
        cost, cache = forward_propagation_n(X, Y, parameters)
        expected_cost, expected = seed_forward(X, Y, parameters)
        assert cost == pytest.approx(expected_cost, abs=1e-12)
        assert isinstance(cache, tuple)
        assert len(cache) == 12
        (Z1, _A1, _W1, b1, _Z2, _A2, _W2, _b2, _Z3, A3, _W3, _b3) = cache
        assert Z1.shape == (5, X.shape[1]) and b1.shape == (5, 1) and A3.shape == Y.shape
        for ours, theirs in zip(cache, expected, strict=True):
            assert ours.shape == theirs.shape
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)

    def test_runs_on_a_layerkit_model(self) -> None:
        """The cache carries the Sequential that ran; its loss agrees with the cost."""
        X, Y, parameters = gradient_check_n_test_case()
        cost, cache = forward_propagation_n(X, Y, parameters)
        assert isinstance(cache, NotebookCache)
        assert isinstance(cache.model, Sequential)
        np.testing.assert_array_equal(cache.model.predict(X.T), cache[9].T)
        assert cache.model.loss_value(X.T, Y.T) == pytest.approx(cost, abs=1e-12)

    def test_accepts_seed_1d_labels(self) -> None:
        """The seed's gc_utils 1-D int labels [1, 1, 0] give the same cost."""
        X, _, parameters = gradient_check_n_test_case()
        cost, _ = forward_propagation_n(X, np.array([1, 1, 0]), parameters)
        assert cost == pytest.approx(SEED_COST, abs=1e-12)

    def test_bad_input(self) -> None:
        """Batch-first X, missing keys, a wrong b and bad labels get clear layerkit errors."""
        X, Y, parameters = gradient_check_n_test_case()
        with pytest.raises(ShapeError, match=r"shape \(4, m\).*got shape \(3, 4\).*pass X\.T"):
            forward_propagation_n(X.T, Y, parameters)
        missing = {k: v for k, v in parameters.items() if k != "W3"}
        with pytest.raises(ConfigError, match=r"missing \['W3'\]"):
            forward_propagation_n(X, Y, missing)
        wrong_b = {**parameters, "b2": np.zeros((5, 1))}
        with pytest.raises(
            ShapeError, match=r"'b2'\] must have shape \(3, 1\).*got shape \(5, 1\)"
        ):
            forward_propagation_n(X, Y, wrong_b)
        with pytest.raises(ShapeError, match=r"'Y' must have shape \(1, 3\)"):
            forward_propagation_n(X, np.array([[1.0, 0.0]]), parameters)
        with pytest.raises(TargetError):
            forward_propagation_n(X, np.array([[1.0, 2.0, 0.0]]), parameters)


class TestBackwardPropagationN:
    """backward_propagation_n is the seed's backward with the bugs fixed."""

    @pytest.mark.parametrize("case", ["seed", "other"])
    def test_equals_seed_formulas_fixed(self, case: str) -> None:
        """All eleven gradients, in the seed's order, equal the fixed seed formulas to 1e-12."""
        X, Y, parameters = gradient_check_n_test_case() if case == "seed" else other_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        gradients = backward_propagation_n(X, Y, cache)
        _, seed_cache = seed_forward(X, Y, parameters)
        expected = seed_backward_fixed(X, Y, seed_cache)
        assert list(gradients) == GRADIENT_ORDER
        for key in GRADIENT_ORDER:
            assert gradients[key].shape == expected[key].shape, key
            np.testing.assert_allclose(gradients[key], expected[key], rtol=0, atol=1e-12)

    def test_matches_layerkit_loss_and_grad(self) -> None:
        """dW/db are layerkit's own gradients (Sequential.loss_and_grad), reshaped."""
        X, Y, parameters = other_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        gradients = backward_propagation_n(X, Y, cache)
        assert cache.model is not None
        _, grads = cache.model.loss_and_grad(X.T, Y.T)
        for key in KEYS:
            np.testing.assert_allclose(
                gradients[f"d{key}"].reshape(grads[key].shape), grads[key], rtol=1e-15, atol=0
            )

    def test_plain_tuple_cache(self) -> None:
        """A plain 12-tuple from the seed's own forward gives the same gradients."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        _, seed_cache = seed_forward(X, Y, parameters)
        ours = backward_propagation_n(X, Y, cache)
        from_plain = backward_propagation_n(X, Y, seed_cache)
        for key in GRADIENT_ORDER:
            np.testing.assert_allclose(from_plain[key], ours[key], rtol=0, atol=1e-15)

    def test_cache_from_another_x(self) -> None:
        """A cache from a different X is refused, whether ours or a plain tuple."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        _, seed_cache = seed_forward(X, Y, parameters)
        with pytest.raises(CacheError, match="different X"):
            backward_propagation_n(X + 1.0, Y, cache)
        with pytest.raises(CacheError, match="does not match"):
            backward_propagation_n(X + 1.0, Y, seed_cache)
        with pytest.raises(CacheError, match="12-tuple"):
            backward_propagation_n(X, Y, seed_cache[:11])


class TestSeedBugs:
    """backward_propagation_n_with_seed_bugs keeps the seed's two planted bugs, and only them."""

    def test_differs_exactly_in_dW2_and_db1(self) -> None:
        """dW2 is doubled, db1 is four times; every other entry is identical."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        correct = backward_propagation_n(X, Y, cache)
        bugged = backward_propagation_n_with_seed_bugs(X, Y, cache)
        assert list(bugged) == GRADIENT_ORDER
        np.testing.assert_array_equal(bugged["dW2"], 2 * correct["dW2"])
        np.testing.assert_array_equal(bugged["db1"], 4 * correct["db1"])
        assert np.any(correct["dW2"] != 0) and np.any(correct["db1"] != 0)
        for key in GRADIENT_ORDER:
            if key not in ("dW2", "db1"):
                np.testing.assert_array_equal(bugged[key], correct[key])


class TestGradientCheckN:
    """gradient_check_n reproduces the seed's numbers and messages, and mutates nothing."""

    def test_correct_backprop(self, capsys: pytest.CaptureFixture[str]) -> None:
        """About the seed's 1.189e-7, printed as fine (just under its 1.2e-7 threshold)."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        difference = gradient_check_n(parameters, backward_propagation_n(X, Y, cache), X, Y)
        # This number is rounding noise (A3 rounded near 1, then log(1 - A3), over 2e-7), yet
        # deterministic: the seed's machine and ours agree to ~10 digits. The stable logit
        # loss would give ~1e-9 here, so the tolerance also pins the seed's cost formula.
        assert difference == pytest.approx(SEED_N_DIFFERENCE, rel=1e-6)
        out = capsys.readouterr().out
        assert out.startswith("Your backward propagation works perfectly fine! difference = ")

    def test_planted_bugs(self, capsys: pytest.CaptureFixture[str]) -> None:
        """About 0.285 with the planted bugs, printed as a mistake."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        bugged = backward_propagation_n_with_seed_bugs(X, Y, cache)
        difference = gradient_check_n(parameters, bugged, X, Y)
        assert difference == pytest.approx(SEED_BUGGED_DIFFERENCE, rel=1e-6)
        out = capsys.readouterr().out
        assert out.startswith("There is a mistake in the backward propagation! difference = ")

    @pytest.mark.parametrize("bugs", [False, True])
    def test_inputs_unchanged(self, bugs: bool) -> None:
        """parameters, gradients, X and Y are the same objects with the same values after."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        backward = backward_propagation_n_with_seed_bugs if bugs else backward_propagation_n
        gradients = backward(X, Y, cache)
        saved = copy.deepcopy((parameters, gradients, X, Y))
        arrays_before = {k: id(v) for k, v in parameters.items()}
        gradient_check_n(parameters, gradients, X, Y, verbose=False)
        for now, then in zip((parameters, gradients), saved[:2], strict=True):
            assert list(now) == list(then)
            for key in now:
                np.testing.assert_array_equal(now[key], then[key])
        np.testing.assert_array_equal(X, saved[2])
        np.testing.assert_array_equal(Y, saved[3])
        assert {k: id(v) for k, v in parameters.items()} == arrays_before

    def test_nan_is_never_a_pass(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A NaN difference prints the mistake message (the seed would print "fine")."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        gradients = backward_propagation_n(X, Y, cache)
        gradients["dW3"] = np.full_like(gradients["dW3"], np.nan)
        difference = gradient_check_n(parameters, gradients, X, Y)
        assert np.isnan(difference)
        assert capsys.readouterr().out.startswith("There is a mistake")

    def test_verbose_false_is_silent(self, capsys: pytest.CaptureFixture[str]) -> None:
        """verbose=False prints nothing."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        gradient_check_n(parameters, backward_propagation_n(X, Y, cache), X, Y, verbose=False)
        assert capsys.readouterr().out == ""

    def test_gradient_shape_mismatch(self) -> None:
        """A transposed dW1 (same size, wrong layout) or a missing db3 is refused."""
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        gradients = backward_propagation_n(X, Y, cache)
        transposed = {**gradients, "dW1": gradients["dW1"].T}
        with pytest.raises(GradientSpecError, match=r"'dW1'\] must have the shape.*\(5, 4\)"):
            gradient_check_n(parameters, transposed, X, Y)
        missing = {k: v for k, v in gradients.items() if k != "db3"}
        with pytest.raises(GradientSpecError, match=r"missing \['db3'\]"):
            gradient_check_n(parameters, missing, X, Y)


class TestCompareChecks:
    """compare_checks puts the seed's one number next to layerkit's per-entry verdicts."""

    @pytest.mark.parametrize(
        ("bugs", "expected"), [(False, SEED_N_DIFFERENCE), (True, SEED_BUGGED_DIFFERENCE)]
    )
    def test_seed_side(
        self, bugs: bool, expected: float, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The seed's difference and message are those gradient_check_n gives and prints."""
        comparison = compare_checks(bugs=bugs)
        assert comparison.bugs is bugs
        assert comparison.seed_difference == pytest.approx(expected, rel=1e-6)
        assert comparison.seed_passed is not bugs
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = forward_propagation_n(X, Y, parameters)
        backward = backward_propagation_n_with_seed_bugs if bugs else backward_propagation_n
        gradient_check_n(parameters, backward(X, Y, cache), X, Y)
        printed = capsys.readouterr().out
        assert printed.startswith(comparison.seed_message + " difference = ")

    def test_bugs_fail_on_exactly_their_entries(self) -> None:
        """Bugged: W2 and b1 fail, on every entry whose true gradient is nonzero, and only them."""
        comparison = compare_checks(bugs=True)
        X, Y, parameters = gradient_check_n_test_case()
        _, cache = seed_forward(X, Y, parameters)
        true = seed_backward_fixed(X, Y, cache)
        for report in (comparison.function_report, comparison.stable_report):
            assert report.verdict == "fail"
            assert report.failed == ("b1", "W2")
            assert report["W2"].n_fail == np.count_nonzero(true["dW2"])
            assert report["b1"].n_fail == np.count_nonzero(true["db1"])
        assert all(
            t.verdict == "pass" for t in comparison.stable_report if t.name not in ("b1", "W2")
        )
        # check_model runs layerkit's own (correct) backward, whatever `bugs` says.
        assert comparison.model_report.verdict == "pass"

    def test_correct_backprop_is_never_failed(self) -> None:
        """Correct: nothing fails; anything not passed on the seed's cost is 'noisy' and passes
        on the logit cost; the logit-cost check and check_model pass."""
        comparison = compare_checks()
        report = comparison.function_report
        assert report.verdict in ("pass", "inconclusive")
        assert report.failed == ()
        for tensor in report:
            if tensor.verdict != "pass":
                assert set(tensor.reasons) == {"noisy"}
                assert comparison.stable_report[tensor.name].verdict == "pass"
        assert comparison.stable_report.verdict == "pass"
        assert comparison.model_report.verdict == "pass"
        assert comparison.model_report.difference < 1e-9 < comparison.seed_difference

    def test_the_noise_is_real(self) -> None:
        """The seed's cost is off the exact cost by more than the 8 ulps the checker allows."""
        comparison = compare_checks()
        X, Y, parameters = gradient_check_n_test_case()
        assert comparison.seed_cost == seed_forward(X, Y, parameters)[0]
        assert comparison.stable_cost == pytest.approx(SEED_COST, rel=1e-13)
        eps = float(np.finfo(np.float64).eps)
        assert comparison.cost_gap > 8 * eps * comparison.stable_cost
        assert comparison.max_probability == pytest.approx(0.99887329, abs=1e-8)

    def test_str(self) -> None:
        """str() shows the seed's message, each layerkit verdict, and explains what is noisy."""
        for bugs in (False, True):
            comparison = compare_checks(bugs=bugs)
            text = str(comparison)
            assert comparison.seed_message in text
            assert f"{comparison.seed_difference:.4e}" in text
            for report in (
                comparison.function_report,
                comparison.stable_report,
                comparison.model_report,
            ):
                assert report.verdict.upper() in text
            assert str(comparison.function_report) in text
            noisy = any(t.reasons.get("noisy") for t in comparison.function_report)
            assert ("inconclusive (noisy)' on the seed's cost" in text) is noisy
            assert ("no planted bugs" in text) is bugs
        assert "fail: b1 (4/5 entries), W2 (4/15 entries)" in str(compare_checks(bugs=True))

    def test_options_reach_every_check(self) -> None:
        """Options go to all three layerkit checks; an unknown one is a ConfigError."""
        comparison = compare_checks(rtol=1e-6, mode="sampled", samples=3)
        for report in (
            comparison.function_report,
            comparison.stable_report,
            comparison.model_report,
        ):
            assert report.rtol == 1e-6
            assert report.mode == "sampled"
            assert all(t.checked == min(3, t.size) for t in report)
        with pytest.raises(ConfigError, match="unknown option"):
            compare_checks(tolerance=1.0)  # type: ignore[call-arg]
