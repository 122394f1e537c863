"""Nothing lost, nothing changed: checks, forwards and backwards leave the caller's arrays, the
global RNG and the layers as they found them; caches cannot go stale; saved parameters load
back bit for bit, and only into the architecture they came from.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import layerkit as lk
from layerkit._typing import Array, Float64Array
from layerkit.errors import ParamFileError, UserCodeError
from layerkit.gradcheck import check_function, check_layer, check_layers, check_model
from layerkit.layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from layerkit.losses import BCELoss
from layerkit.params import ParamSpec
from layerkit.testing import ScaledGradLinear

AnyArray = npt.NDArray[Any]


def fingerprint(arrays: Mapping[str, AnyArray]) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Dtype, shape and raw bytes of each array: equal fingerprints mean bitwise identical."""
    return {name: (a.dtype.str, a.shape, a.tobytes()) for name, a in arrays.items()}


def dropout_net(seed: int = 0, dtype: type[np.floating[Any]] = np.float64) -> lk.Sequential:
    """5 -> 8 -> 8 -> 1 with Tanh, Dropout and ReLU: every layer kind."""
    rng = np.random.default_rng(seed)
    return lk.Sequential(
        Linear(5, 8, seed=rng, dtype=dtype), Tanh(), Dropout(0.3),
        Linear(8, 8, seed=rng, dtype=dtype), ReLU(),
        Linear(8, 1, seed=rng, dtype=dtype), Sigmoid(),
        loss=BCELoss(),
    )  # fmt: skip


def data(seed: int = 1, m: int = 6, n_in: int = 5) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_in))
    y = (rng.random((m, 1)) > 0.5).astype(np.float64)
    return x, y


class RaisingTanh(Tanh):
    """A Tanh whose ``n``-th forward raises: user code aborting a check midway."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = [0]  # shared with the copies a check runs

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, Any]:
        self.calls[0] += 1
        if self.calls[0] == self.n:
            raise RuntimeError(f"user layer failed on call {self.n}")
        return super().forward(x, noise=noise)


@pytest.fixture
def rng_state() -> Iterator[Callable[[], None]]:
    """Seeds the global legacy RNG, then checks that nothing drew from it or reseeded it."""
    saved = np.random.get_state()
    np.random.seed(12345)
    before = pickle.dumps(np.random.get_state())

    def check() -> None:
        assert pickle.dumps(np.random.get_state()) == before, "global numpy RNG state changed"

    yield check
    np.random.set_state(saved)


class TestChecksLeaveArraysBitwise:
    """After any check the caller's parameters, inputs and targets are bitwise identical."""

    @pytest.mark.parametrize("buggy", [False, True], ids=["passing", "failing"])
    @pytest.mark.parametrize("mode", ["exact", "sampled", "fast"])
    def test_check_model(self, buggy: bool, mode: str) -> None:
        """check_model (and its per-layer localisation) on a model with dropout."""
        model = dropout_net()
        if buggy:
            first = model.layers[0]
            assert isinstance(first, Linear)
            model = lk.Sequential(
                [ScaledGradLinear(first, scale={"W": 2.0}), *model.layers[1:]], loss=BCELoss()
            )
        x, y = data()
        before = fingerprint({**model.params(), "x": x, "y": y})
        report = check_model(model, x, y, mode=mode)
        assert report.verdict == ("fail" if buggy else "pass")
        assert fingerprint({**model.params(), "x": x, "y": y}) == before

    def test_float32_model_and_integer_data(self) -> None:
        """A float32 model, integer x and boolean y: converted copies are checked, not these."""
        model = dropout_net(dtype=np.float32)
        x = np.arange(30, dtype=np.int64).reshape(6, 5) % 3 - 1
        y = np.array([[True], [False], [True], [True], [False], [False]])
        before = fingerprint({**model.params(), "x": x, "y": y})
        assert check_model(model, x, y).verdict == "pass"
        assert fingerprint({**model.params(), "x": x, "y": y}) == before

    def test_non_contiguous_views(self) -> None:
        """x and y given as strided views of larger arrays: the bases are untouched."""
        model = dropout_net()
        big_x = np.random.default_rng(3).standard_normal((12, 10))
        big_y = np.tile(np.array([[1.0, 0.0]]), (6, 2))
        x, y = big_x[::2, ::2], big_y[:, 1:2]
        before = fingerprint({"x": big_x, "y": big_y})
        check_model(model, x, y)
        assert fingerprint({"x": big_x, "y": big_y}) == before

    def test_check_layer_and_layers(self) -> None:
        """check_layer (each layer kind, Dropout with and without a mask) and check_layers."""
        model = dropout_net()
        x, _ = data()
        mask = Dropout(0.3).sample_noise(np.ones((6, 8)), np.random.default_rng(4))
        before = fingerprint({**model.params(), "x": x, "mask": mask})
        for layer in model.layers:
            n_in = layer.in_features or 8
            check_layer(layer, x[:, :1].repeat(n_in, axis=1) * np.linspace(-1, 1, n_in))
        check_layer(Dropout(0.3), np.ones((6, 8)), noise=mask)
        check_layers(model, x)
        assert fingerprint({**model.params(), "x": x, "mask": mask}) == before

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16, 25, -1])
    def test_function_loss_raising_on_call_n(self, n: int) -> None:
        """A loss raising on its n-th call (the base point, stage 1, the escalation stages of
        a failing tensor, the very last call): UserCodeError; the caller's params untouched."""
        params = {"a": np.array([[0.3, -1.2], [2.5, 0.0]]), "b": np.array([1e-3, 4.0, -2.0])}
        before = fingerprint(params)
        calls = {"n": 0, "raise_on": 0}

        def loss(p: dict[str, Float64Array]) -> float:
            calls["n"] += 1
            if calls["n"] == calls["raise_on"]:
                raise RuntimeError("user loss failed")
            return float(np.sum(p["a"] ** 3) + np.sum(np.sin(p["b"])))

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            return {"a": 3 * p["a"] ** 2, "b": 1.01 * np.cos(p["b"])}  # b is wrong: escalates

        assert check_function(loss, grad, params).failed == ("b",)  # dry run: count the calls
        total, calls["n"] = calls["n"], 0
        calls["raise_on"] = total if n < 0 else n
        assert calls["raise_on"] <= total
        with pytest.raises(UserCodeError, match="user loss failed") as raised:
            check_function(loss, grad, params)
        assert isinstance(raised.value.__cause__, RuntimeError)
        assert calls["n"] == calls["raise_on"]
        assert fingerprint(params) == before

    def test_function_grad_raising(self) -> None:
        """grad_fn raising: UserCodeError naming grad_fn; params untouched."""
        params = {"a": np.array([0.5, 1.5])}
        before = fingerprint(params)

        def grad(p: dict[str, Float64Array]) -> dict[str, Array]:
            raise KeyError("missing")

        with pytest.raises(UserCodeError, match="grad_fn raised KeyError"):
            check_function(lambda p: float(np.sum(p["a"])), grad, params)
        assert fingerprint(params) == before

    def test_function_whose_loss_writes_its_argument(self) -> None:
        """A loss_fn that writes into the arrays it is given gets a UserCodeError naming
        loss_fn (its arrays are read-only, so it cannot corrupt later evaluations), and the
        caller's arrays are unchanged."""
        params = {"a": np.array([0.5, -1.5, 2.0])}
        before = fingerprint(params)

        def loss(p: dict[str, Float64Array]) -> float:
            value = float(np.sum(p["a"] ** 2))
            p["a"][...] = 99.0
            return value

        with pytest.raises(lk.errors.UserCodeError, match="loss_fn wrote into its argument"):
            check_function(loss, lambda p: {"a": 2 * p["a"]}, params)
        assert fingerprint(params) == before

    @pytest.mark.parametrize("n", [1, 2, 3, -1])
    def test_model_with_a_layer_raising_on_call_n(self, n: int) -> None:
        """A user layer raising on its n-th forward (first, second, third, last) aborts
        check_model; the model and data are unchanged."""
        rng = np.random.default_rng(5)
        tanh = RaisingTanh(0)
        model = lk.Sequential(
            Linear(5, 4, seed=rng), tanh, Linear(4, 1, seed=rng), Sigmoid(), loss=BCELoss()
        )
        x, y = data()
        before = fingerprint({**model.params(), "x": x, "y": y})
        check_model(model, x, y)  # dry run: count the forwards
        tanh.n = tanh.calls[0] if n < 0 else n
        assert tanh.n <= tanh.calls[0]
        tanh.calls[0] = 0
        with pytest.raises(RuntimeError, match=f"call {tanh.n}"):
            check_model(model, x, y)
        assert fingerprint({**model.params(), "x": x, "y": y}) == before


class TestGlobalRandomState:
    """Checks, models and layers never draw from or reseed numpy's global RNG."""

    def test_checks_in_every_mode(self, rng_state: Callable[[], None]) -> None:
        """check_model / check_layers / check_layer / check_function in all modes."""
        model = dropout_net()
        x, y = data()
        for mode in ("exact", "sampled", "fast"):
            check_model(model, x, y, mode=mode)
            check_layers(model, x, mode=mode)
            check_layer(Dropout(0.5), x, mode=mode)
            check_function(
                lambda p: float(np.sum(p["a"] ** 2)),
                lambda p: {"a": 2 * p["a"]},
                {"a": np.arange(12.0)},
                mode=mode,
            )
        rng_state()

    def test_building_and_running_models(self, rng_state: Callable[[], None]) -> None:
        """Unseeded construction, forward with fresh dropout masks, fit: the global RNG is
        not their source of randomness."""
        model = lk.Sequential(Linear(5, 4), Dropout(0.5), Linear(4, 1), Sigmoid(), loss=BCELoss())
        x, y = data()
        model.forward(x, rng=None)
        model.forward(x, rng=7)
        model.loss_and_grad(x, y, rng=np.random.default_rng(1))
        lk.mlp([5, 3, 1], seed=None)
        lk.fraud_net_seed_case()
        lk.fit(model, x, y, optimizer=lk.SGD(), epochs=2, seed=None)
        rng_state()


LAYERS: dict[str, Callable[[], Layer]] = {
    "linear": lambda: Linear(4, 3, seed=0),
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "dropout": lambda: Dropout(0.4),
}


def layer_state(layer: Layer) -> bytes:
    """Everything a layer holds: its attributes and parameter bytes."""
    return pickle.dumps(layer)


def run_layer(layer: Layer, x: Array, rng: np.random.Generator) -> tuple[Array, Any]:
    noise = layer.sample_noise(x, rng)
    return layer.forward(x, noise=noise)


class TestNoStaleCaches:
    """forward/backward leave layers unchanged; a backward uses exactly its own forward."""

    @pytest.mark.parametrize("kind", sorted(LAYERS))
    def test_forward_backward_do_not_change_the_layer(self, kind: str) -> None:
        """A layer pickles to the same bytes before and after forward and backward."""
        layer = LAYERS[kind]()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, layer.in_features or 4))
        before = layer_state(layer)
        y, cache = run_layer(layer, x, rng)
        layer.backward(cache, np.ones_like(y))
        assert layer_state(layer) == before

    @pytest.mark.parametrize("kind", sorted(LAYERS))
    def test_backward_with_an_earlier_cache(self, kind: str) -> None:
        """backward(cache1) after a second forward gives exactly what it gave before."""
        layer = LAYERS[kind]()
        rng = np.random.default_rng(1)
        n_in = layer.in_features or 4
        x1, x2 = rng.standard_normal((5, n_in)), rng.standard_normal((5, n_in))
        y1, cache1 = run_layer(layer, x1, rng)
        g = rng.standard_normal(y1.shape)
        first = layer.backward(cache1, g)
        run_layer(layer, x2, rng)
        if isinstance(layer, Linear):
            layer.unflatten(rng.standard_normal(layer.param_spec.size))
        again = layer.backward(cache1, g)
        assert fingerprint({"x": first[0], **first[1]}) == fingerprint({"x": again[0], **again[1]})

    @pytest.mark.parametrize("kind", sorted(LAYERS))
    def test_caller_reusing_its_input_buffer(self, kind: str) -> None:
        """Writing the next batch into the array passed to a model's forward does not change
        what the earlier cache's backward computes (the model copies its input)."""
        model = lk.Sequential(LAYERS[kind]())
        rng = np.random.default_rng(2)
        x = rng.standard_normal((5, model.in_features or 4))
        y, cache = model.forward(x, rng=rng)
        g = rng.standard_normal(y.shape)
        expected = model.backward(cache, g)
        x[...] = rng.standard_normal(x.shape)  # a training loop refilling its batch buffer
        again = model.backward(cache, g)
        assert fingerprint({"x": expected[0], **expected[1]}) == fingerprint(
            {"x": again[0], **again[1]}
        )

    @pytest.mark.parametrize("kind", sorted(LAYERS))
    def test_caller_editing_the_returned_output(self, kind: str) -> None:
        """Clipping a model's returned output in place (e.g. probabilities before a log) does
        not change what backward computes (the model returns its own copy)."""
        model = lk.Sequential(LAYERS[kind]())
        rng = np.random.default_rng(3)
        x = rng.standard_normal((5, model.in_features or 4))
        y, cache = model.forward(x, rng=rng)
        g = rng.standard_normal(y.shape)
        expected = model.backward(cache, g)
        np.clip(y, 0.2, 0.8, out=y)
        again = model.backward(cache, g)
        assert fingerprint({"x": expected[0], **expected[1]}) == fingerprint(
            {"x": again[0], **again[1]}
        )

    def test_sequential_backward_with_an_earlier_cache(self) -> None:
        """Sequential: a second forward (new masks, new x) and a parameter update leave an
        earlier cache's gradients unchanged."""
        model = dropout_net()
        x, _ = data()
        out, cache = model.forward(x, rng=1)
        g = np.random.default_rng(2).standard_normal(out.shape)
        expected = model.backward(cache, g)
        model.forward(x[::-1], rng=2)
        model.unflatten(model.flatten() * 1.5)
        again = model.backward(cache, g)
        assert fingerprint({"x": expected[0], **expected[1]}) == fingerprint(
            {"x": again[0], **again[1]}
        )

    def test_cache_of_another_model_is_refused(self) -> None:
        """A cache from a copy of the model (same architecture) is refused, not used."""
        model = dropout_net()
        x, _ = data()
        out, cache = model.copy().forward(x)
        with pytest.raises(lk.errors.CacheError, match="does not come from this model"):
            model.backward(cache, np.ones_like(out))

    def test_checks_do_not_change_layers(self) -> None:
        """A model pickles to the same bytes before and after check_model and check_layers."""
        model = dropout_net()
        x, y = data()
        before = pickle.dumps(model)
        check_model(model, x, y)
        check_layers(model, x)
        assert pickle.dumps(model) == before


class TestSaveLoad:
    """save_params/load_params round-trip exactly and refuse another architecture."""

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_round_trip_is_bitwise(self, tmp_path: Path, dtype: type[np.floating[Any]]) -> None:
        """Parameters (including -0.0, subnormals and the largest floats) load back bit for
        bit. (NaN and Inf are refused by both save_params and load_params.)"""
        model = dropout_net(seed=1, dtype=dtype)
        W1 = model.params()["W1"]
        info = np.finfo(dtype)
        W1[0, :4] = np.array([-0.0, info.smallest_subnormal, info.max, -info.max])
        path = save_params_to(model, tmp_path / "model.npz")
        other = dropout_net(seed=2, dtype=dtype)
        lk.load_params(other, path)
        assert fingerprint(other.params()) == fingerprint(model.params())

    def test_loading_rebinds_the_models_arrays(self, tmp_path: Path) -> None:
        """Loading binds new arrays of the file's values: the old ones (which a cache may hold)
        are unchanged, and loading twice gives two unaliased arrays."""
        model = dropout_net(seed=1)
        path = save_params_to(model, tmp_path / "m.npz")
        other = dropout_net(seed=2)
        old = other.params()["W2"]
        before = old.copy()
        lk.load_params(other, path)
        first = other.params()["W2"]
        assert first is not old
        np.testing.assert_array_equal(old, before)
        np.testing.assert_array_equal(first, model.params()["W2"])
        lk.load_params(other, path)
        assert other.params()["W2"] is not first

    def test_file_is_plain_npz_with_names(self, tmp_path: Path) -> None:
        """The file opens with np.load(allow_pickle=False) and holds W1, b1, ... by name."""
        model = lk.fraud_net_seed_case().model
        path = save_params_to(model, tmp_path / "fraud.npz")
        with np.load(path, allow_pickle=False) as stored:
            names = [n for n in stored.files if not n.startswith("__")]
            assert names == ["W1", "b1", "W2", "b2", "W3", "b3"]
            for name, array in model.params().items():
                assert stored[name].tobytes() == array.tobytes()

    def test_single_layer(self, tmp_path: Path) -> None:
        """A lone Layer saves and loads too."""
        layer = Linear(3, 2, seed=4)
        path = save_params_to(layer, tmp_path / "layer.npz")
        other = Linear(3, 2, seed=5)
        lk.load_params(other, path)
        assert fingerprint(other.params()) == fingerprint(layer.params())

    def test_flatten_unflatten_with_names(self) -> None:
        """flatten -> unflatten through the named spec is exact, for every tensor."""
        model = dropout_net(seed=3)
        spec = model.param_spec
        arrays = spec.unflatten(model.flatten())
        assert fingerprint(arrays) == fingerprint(model.params())
        again = ParamSpec.of(arrays).flatten(arrays)
        assert again.tobytes() == model.flatten().tobytes()

    @pytest.mark.parametrize(
        ("other", "expected"),
        [
            (lambda: lk.mlp([5, 9, 8, 1], seed=0), r"W1 has shape \(8, 5\) in the file but \(9, 5\)"),
            (lambda: lk.mlp([5, 8, 1], seed=0), r"the file's \['W3', 'b3'\] are not in the model"),
            (
                lambda: lk.Sequential(
                    Linear(5, 8), ReLU(), Dropout(0.3), Linear(8, 8), ReLU(), Linear(8, 1),
                    Sigmoid(), loss=BCELoss(),
                ),
                r"layer 1 is Tanh in the file but ReLU in the model",
            ),
            (
                lambda: dropout_net().astype(np.float32),
                r"W1, b1, W2, b2, W3, b3 are float64 in the file but float32",
            ),
            (lambda: Linear(5, 8), r"the model's \['W', 'b'\] are not in the file"),
        ],
        ids=["width", "depth", "activation", "dtype", "layer"],
    )  # fmt: skip
    def test_another_architecture_is_refused(
        self, tmp_path: Path, other: Callable[[], lk.Sequential | Layer], expected: str
    ) -> None:
        """Loading into another architecture names the mismatch and changes nothing."""
        path = save_params_to(dropout_net(seed=1), tmp_path / "net.npz")
        target = other()
        before = fingerprint(target.params())
        with pytest.raises(ParamFileError, match=expected):
            lk.load_params(target, path)
        assert fingerprint(target.params()) == before

    def test_failed_save_keeps_the_old_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A save that fails midway (the third array) leaves the existing file as it was, and
        no stray temporary file; the OSError becomes a ParamFileError naming the file."""
        path = save_params_to(dropout_net(seed=1), tmp_path / "net.npz")
        content = path.read_bytes()
        write_array = np.lib.format.write_array
        calls = {"n": 0}

        def failing(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full")
            write_array(*args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
        with pytest.raises(ParamFileError, match=r"cannot write .*net\.npz.*disk full"):
            lk.save_params(dropout_net(seed=2), path)
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]


def save_params_to(model: lk.Sequential | Layer, path: Path) -> Path:
    """Save and return the path (which save_params must not rename)."""
    written = lk.save_params(model, path)
    assert written == path and path.exists()
    return path
