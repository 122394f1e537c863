"""Issue 12 at the public entry points: fit is all-or-nothing, numbers and seeds are checked,
and random garbage gives the correct result or a layerkit error, never another exception and
never a changed model."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerkit as lk
from layerkit import notebook as nb
from layerkit._validate import as_rng
from layerkit.errors import ConfigError, LayerkitError, NonFiniteError
from layerkit.layers import Dropout, Linear
from layerkit.testing import assert_report_ok

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fingerprint(model: lk.Sequential | lk.Layer) -> dict[str, bytes]:
    return {name: a.dtype.str.encode() + a.tobytes() for name, a in model.params().items()}


def optimizer_state(optimizer: lk.optim.Optimizer) -> bytes:
    """The optimizer's whole state, comparable bit for bit."""
    import pickle

    return pickle.dumps(vars(optimizer))


class StopError(Exception):
    """What a user's callback raises."""


class TestFitIsAllOrNothing:
    """fit checks every argument first and restores model and optimizer on any error."""

    def test_callback_raising_restores_model_and_optimizer(self) -> None:
        """on_epoch raising at the third epoch: the model and Adam's moments are as before."""
        case = lk.fraud_net_seed_case()
        adam = lk.Adam()
        lk.fit(case.model, case.x, case.y, optimizer=adam, epochs=2)
        model_before, state_before = fingerprint(case.model), optimizer_state(adam)

        def stop_at_third(epoch: int, loss: float) -> None:
            if epoch == 2:
                raise StopError

        with pytest.raises(StopError):
            lk.fit(case.model, case.x, case.y, optimizer=adam, epochs=5, on_epoch=stop_at_third)
        assert fingerprint(case.model) == model_before
        assert optimizer_state(adam) == state_before

    @pytest.mark.parametrize(
        "options",
        [
            {"on_epoch": "print"},
            {"optimizer": "adam"},
            {"optimizer": lk.SGD},
            {"epochs": 2.0},
            {"epochs": np.float64(2)},
            {"batch_size": "all"},
            {"seed": -1},
            {"seed": "abc"},
        ],
        ids=repr,
    )
    def test_bad_argument_refused_before_any_update(self, options: dict[str, Any]) -> None:
        """A bad argument is refused before the first update: nothing trains, nothing moves."""
        case = lk.fraud_net_seed_case()
        sgd = lk.SGD()
        before, state = fingerprint(case.model), optimizer_state(sgd)
        arguments: dict[str, Any] = {"optimizer": sgd, "epochs": 3, **options}
        with pytest.raises(ConfigError):
            lk.fit(case.model, case.x, case.y, **arguments)
        assert fingerprint(case.model) == before
        assert optimizer_state(sgd) == state

    def test_read_only_parameter_refused_before_training(self) -> None:
        """A read-only W2 is found before the first update."""
        case = lk.fraud_net_seed_case()
        case.model.params()["W2"].flags.writeable = False
        before = fingerprint(case.model)
        with pytest.raises(ConfigError, match="fit: the model's W2 is a read-only array"):
            lk.fit(case.model, case.x, case.y, epochs=2)
        assert fingerprint(case.model) == before

    def test_numpy_numbers_are_numbers(self) -> None:
        """epochs=np.int64(2), batch_size=np.int32(2), SGD(lr=np.float32(0.1)) train as the
        Python numbers do."""
        first, second = lk.fraud_net_seed_case(), lk.fraud_net_seed_case()
        lk.fit(first.model, first.x, first.y, optimizer=lk.SGD(lr=0.5), epochs=2, batch_size=2)
        lk.fit(
            second.model, second.x, second.y, optimizer=lk.SGD(lr=np.float32(0.5)),
            epochs=np.int64(2), batch_size=np.int32(2),
        )  # fmt: skip
        assert fingerprint(first.model) == fingerprint(second.model)

    def test_nan_parameter_is_named(self) -> None:
        """A model holding NaN in W3 is refused naming W3, and left as it was."""
        case = lk.fraud_net_seed_case()
        case.model.params()["W3"][0, 1] = np.nan
        before = fingerprint(case.model)
        with pytest.raises(NonFiniteError, match=r"parameter W3 of layer 4 \(Linear\(3->1\)\)"):
            lk.fit(case.model, case.x, case.y, epochs=1)
        assert fingerprint(case.model) == before


class TestNanIsNamedWhereTheUserPutIt:
    """A NaN parameter is reported against the parameter, not a downstream activation."""

    def test_forward(self) -> None:
        model = lk.fraud_net()
        model.params()["W1"][:] = np.nan
        with pytest.raises(
            NonFiniteError, match=r"parameter W1 of layer 0 \(Linear\(4->5\)\) holds 20"
        ):
            model.forward(np.ones((2, 4)))

    def test_unflatten_names_the_tensor(self) -> None:
        model = lk.fraud_net()
        before = fingerprint(model)
        vector = model.flatten()
        vector[-1] = np.inf
        with pytest.raises(NonFiniteError, match=r"in b3 \(entries 46\.\.46 of the vector\)"):
            model.unflatten(vector)
        assert fingerprint(model) == before


class TestSeeds:
    """Seeds: None, non-negative integers (Python or numpy), sequences of them, generators."""

    @pytest.mark.parametrize(
        "seed",
        [None, 0, 7, np.int64(7), np.uint8(7), [1, 2], np.random.SeedSequence(3)],
        ids=repr,
    )
    def test_accepted(self, seed: Any) -> None:
        assert isinstance(as_rng(seed, owner="t"), np.random.Generator)

    def test_generator_is_used_as_is(self) -> None:
        generator = np.random.default_rng(1)
        assert as_rng(generator, owner="t") is generator

    # ids are stable strings: pytest-xdist workers must collect the same test names, and
    # repr(object()) holds a memory address.
    @pytest.mark.parametrize(
        "seed",
        [-1, "abc", 1.5, True, [1, -1], [], object()],
        ids=["-1", "'abc'", "1.5", "True", "[1, -1]", "[]", "object()"],
    )
    def test_refused(self, seed: Any) -> None:
        with pytest.raises(ConfigError, match="'seed' must be None, a non-negative integer"):
            as_rng(seed, owner="t")


class TestZeroWidthAndDtypes:
    """Zero-width layers and unsupported dtypes are refused, not silently changed."""

    @pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
    def test_zero_width_from_arrays(self, shape: tuple[int, int]) -> None:
        with pytest.raises(lk.errors.ShapeError, match="zero-width"):
            Linear.from_arrays(np.ones(shape))

    @pytest.mark.parametrize("dtype", ["float16", np.longdouble, "int32", "c16"])
    def test_astype_refuses(self, dtype: Any) -> None:
        with pytest.raises(lk.errors.DTypeError, match="float32 or float64"):
            lk.fraud_net().astype(dtype)

    def test_byte_order_is_not_a_dtype(self) -> None:
        """astype('>f8') is float64 in native order (byte order is a storage detail)."""
        assert lk.fraud_net().astype(np.dtype(">f8")).dtype == np.dtype(np.float64)

    def test_float16_input_is_converted_to_float64(self) -> None:
        """Data (not parameters) in float16 is read as float64, the documented conversion."""
        layer = Linear.from_arrays(np.ones((2, 3), dtype=np.float16))
        assert layer.W.dtype == np.float64


# -- properties: random garbage at each entry point ----------------------------------------------


VALUES = [0.0, 1.5, -2.0, 3.0, np.nan, np.inf, -np.inf, 1e3]
DTYPES = ["f8", "f4", "f2", "i8", "u1", "?", "c16", "U2", "M8[s]", "O"]


@st.composite
def garbage_arrays(draw: st.DrawFn) -> npt.NDArray[Any]:
    """Arrays of random dtype and small random shape, some NaN/Inf, some masked."""
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    size = int(np.prod(shape, dtype=np.int64))
    values = draw(st.lists(st.sampled_from(VALUES), min_size=size, max_size=size))
    dtype = draw(st.sampled_from(DTYPES))
    base = np.array(values, dtype=np.float64).reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype in ("U2", "M8[s]", "O"):
            array: npt.NDArray[Any] = np.array(
                base.astype(str) if dtype == "U2" else base, dtype=object
            )
            array = array.astype(dtype) if dtype == "U2" else array
        else:
            array = np.nan_to_num(base).astype(dtype) if dtype[0] in "iu?" else base.astype(dtype)
    if draw(st.booleans()) and array.dtype.kind in "f":
        return np.ma.masked_invalid(array)
    return array


def garbage() -> st.SearchStrategy[Any]:
    """Anything a caller might pass: numbers of every kind, strings, objects, lists, arrays."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.builds(object),
        st.sampled_from([np.float32(0.5), np.int64(2), np.uint8(1), np.bool_(True), 1j]),
        st.sampled_from([lk.SGD, lk.SGD(), Linear, print, np.float64]),
    )
    return st.one_of(scalars, garbage_arrays(), st.lists(scalars, max_size=4))


def _huge_layer(widths: Any) -> bool:
    """True when two consecutive integer `widths` would make a weight matrix of over 10^6
    entries: `mlp` would really allocate it (the machine's memory, not garbage, is tested)."""
    if not isinstance(widths, list | tuple | np.ndarray) or np.ndim(widths) != 1:
        return False
    sizes = [int(w) for w in widths if isinstance(w, int | np.integer) and not isinstance(w, bool)]
    return any(abs(a * b) > 10**6 for a, b in itertools.pairwise(sizes))


def untouched(model: lk.Sequential | lk.Layer, call: Callable[[], object]) -> object:
    """``call()``; on a LayerkitError (the only exception allowed) ``model`` is unchanged."""
    before = fingerprint(model)
    try:
        return call()
    except LayerkitError as error:
        assert isinstance(error, ValueError | TypeError)
        assert fingerprint(model) == before
        return error


class TestGarbageProperties:
    """Random garbage at each public entry point: a correct result or a layerkit error."""

    @PROPERTY
    @given(vector=garbage())
    def test_unflatten(self, vector: Any) -> None:
        model = lk.fraud_net()
        result = untouched(model, lambda: model.unflatten(vector))
        if not isinstance(result, LayerkitError):
            expected = np.asarray(vector, dtype=np.float64).reshape(-1)
            np.testing.assert_array_equal(model.flatten(), expected)

    @PROPERTY
    @given(x=garbage(), layers=garbage(), rng=garbage())
    def test_forward(self, x: Any, layers: Any, rng: Any) -> None:
        model = lk.fraud_net()
        result = untouched(model, lambda: model.forward(x, layers=layers, rng=rng))
        if not isinstance(result, LayerkitError):
            assert isinstance(result, tuple) and np.all(np.isfinite(result[0]))

    @PROPERTY
    @given(W=garbage(), b=st.one_of(st.none(), garbage()))
    def test_linear_from_arrays(self, W: Any, b: Any) -> None:
        result = untouched(Linear(1, 1), lambda: Linear.from_arrays(W, b))
        if isinstance(result, Linear):
            assert result.W.dtype in (np.float32, np.float64) and result.W.size > 0
            assert np.all(np.isfinite(result.W)) and np.all(np.isfinite(result.b))

    @PROPERTY
    @given(rate=garbage(), noise=garbage())
    def test_dropout(self, rate: Any, noise: Any) -> None:
        def run() -> object:
            return Dropout(rate).forward(np.ones((2, 3)), noise=noise)

        untouched(Linear(1, 1), run)

    @PROPERTY
    @given(
        optimizer=garbage(),
        epochs=garbage(),
        batch_size=garbage(),
        seed=garbage(),
        on_epoch=st.one_of(garbage(), st.just(lambda epoch, loss: None)),
    )
    def test_fit(
        self, optimizer: Any, epochs: Any, batch_size: Any, seed: Any, on_epoch: Any
    ) -> None:
        case = lk.fraud_net_seed_case()
        if isinstance(optimizer, lk.optim.Optimizer):
            optimizer = copy.deepcopy(optimizer)
            state = optimizer_state(optimizer)
        if isinstance(epochs, int | np.integer) and epochs > 3:
            epochs = 3
        result = untouched(
            case.model,
            lambda: lk.fit(
                case.model, case.x, case.y, optimizer=optimizer, epochs=epochs,
                batch_size=batch_size, seed=seed, on_epoch=on_epoch,
            ),
        )  # fmt: skip
        if isinstance(result, LayerkitError) and isinstance(optimizer, lk.optim.Optimizer):
            assert optimizer_state(optimizer) == state

    @PROPERTY
    @given(lr=garbage(), momentum=garbage(), params=garbage(), grads=garbage())
    def test_sgd(self, lr: Any, momentum: Any, params: Any, grads: Any) -> None:
        def run() -> object:
            return lk.SGD(lr=lr, momentum=momentum).step(params, grads)

        untouched(Linear(1, 1), run)

    @PROPERTY
    @given(
        theta=garbage(),
        shapes=st.one_of(
            st.none(), garbage(), st.dictionaries(st.sampled_from(nb.PARAMETER_KEYS), garbage())
        ),
    )
    def test_vector_to_dictionary(self, theta: Any, shapes: Any) -> None:
        untouched(Linear(1, 1), lambda: nb.vector_to_dictionary(theta, shapes))

    @PROPERTY
    @given(widths=st.one_of(garbage(), st.lists(st.integers(-2, 6), max_size=4)), seed=garbage())
    def test_mlp(self, widths: Any, seed: Any) -> None:
        if _huge_layer(widths):
            return  # a real allocation of up to terabytes: not what this property is for
        untouched(Linear(1, 1), lambda: lk.mlp(widths, seed=seed))

    @PROPERTY
    @given(report=garbage())
    def test_assert_report_ok(self, report: Any) -> None:
        with pytest.raises(ConfigError, match="'report' must be a GradCheckReport"):
            assert_report_ok(report)


class TestMoreGarbageProperties:
    """Constructors, casts and file paths: a correct result or a layerkit error."""

    @PROPERTY
    @given(
        n_in=st.one_of(garbage(), st.integers(-1, 4)),
        n_out=st.one_of(garbage(), st.integers(-1, 4)),
        seed=garbage(),
        dtype=st.one_of(garbage(), st.sampled_from(["float16", "float32", ">f8", np.float64])),
    )
    def test_linear(self, n_in: Any, n_out: Any, seed: Any, dtype: Any) -> None:
        integers = isinstance(n_in, int | np.integer) and isinstance(n_out, int | np.integer)
        if integers and 10**6 < int(n_in) * int(n_out) < 10**13:
            return  # a real allocation of up to terabytes: not what this property is for
        result = untouched(Linear(1, 1), lambda: Linear(n_in, n_out, seed=seed, dtype=dtype))
        if isinstance(result, Linear):
            assert result.W.shape == (int(n_out), int(n_in))
            assert result.W.dtype in (np.float32, np.float64)

    @PROPERTY
    @given(dtype=garbage())
    def test_astype(self, dtype: Any) -> None:
        model = lk.fraud_net()
        result = untouched(model, lambda: model.astype(dtype))
        if isinstance(result, lk.Sequential):
            assert result.dtype in (np.float32, np.float64)

    @PROPERTY
    @given(path=garbage())
    def test_file_paths(self, path: Any) -> None:
        """Garbage as a path to save to or load from: never a raw exception. (Any string a
        garbage strategy makes is a relative name in a scratch directory.)"""
        import os
        import tempfile

        model = lk.fraud_net()
        previous = os.getcwd()
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            try:
                untouched(model, lambda: lk.load_params(model, path))
                untouched(model, lambda: lk.save_params(model, path))
            finally:
                os.chdir(previous)
