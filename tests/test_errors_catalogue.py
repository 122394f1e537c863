"""The catalogue of bad input: every case raises a layerkit error that says what went wrong.

Each :class:`Case` is one distinct mistake a user can make (wrong rank or width, bad targets,
NaN, odd dtypes, mismatched gradients, nonsense options, CLI arguments...). Its error must be a
:class:`~layerkit.errors.LayerkitError` that is also a ``ValueError`` or ``TypeError``, defined
in ``layerkit.errors``, with a one-line message containing the fragments the case lists (the
argument or layer, what was expected, what came). :data:`CONVERTED` lists input that must be
*accepted* (integers, booleans) and give what the float input gives.

``docs/errors.md`` is rendered from these lists; :class:`TestDocsTable` fails when it drifts.
Regenerate it with ``python tests/test_errors_catalogue.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest

import layerkit as lk
from layerkit import errors
from layerkit import notebook as nb
from layerkit._typing import Array, Float64Array, Integer, Real
from layerkit.errors import (
    CacheError,
    ConfigError,
    DTypeError,
    GradientSpecError,
    LayerkitError,
    LossValueError,
    NondeterministicError,
    NonFiniteError,
    ParamFileError,
    ShapeError,
    TargetError,
    UserCodeError,
)
from layerkit.io import architecture
from layerkit.layers import Dropout, Linear, ReLU, Sigmoid, Tanh
from layerkit.losses import BCELoss
from layerkit.params import ParamSpec
from layerkit.testing import assert_report_ok

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


@attrs.frozen
class Case:
    """One bad input: ``area`` of the library, what is ``given``, the ``call`` that must
    raise ``error``, and fragments its message must ``mention``."""

    area: str
    given: str
    call: Callable[[], object]
    error: type[LayerkitError]
    mentions: tuple[str, ...]


@attrs.frozen
class CliCase:
    """A ``layerkit`` command line that makes no sense: exit code 2, one line on stderr
    containing ``mentions``."""

    argv: tuple[str, ...]
    mentions: tuple[str, ...]


@attrs.frozen
class Converted:
    """Input accepted by conversion: ``call(converted) == call(float input)`` bitwise."""

    area: str
    given: str
    call: Callable[[bool], Array | float]


# -- shared builders (fresh objects for every call) ---------------------------------------------


def seed_case() -> lk.models.SeedCase:
    return lk.fraud_net_seed_case()


def model_cache() -> tuple[lk.Sequential, lk.sequential.SequentialCache]:
    model = lk.Sequential(Linear(3, 2, seed=0))
    _, cache = model.forward(np.ones((2, 3)))
    return model, cache


def square(p: dict[str, Float64Array]) -> float:
    return float(np.sum(p["a"] ** 2))


def square_grad(p: dict[str, Float64Array]) -> dict[str, Array]:
    return {"a": 2 * p["a"]}


A = {"a": np.array([1.0, -2.0])}


def raises_zero_division(p: dict[str, Float64Array]) -> float:
    """A user's loss with a bug: Python float division by zero."""
    return float(np.sum(p["a"])) / 0


class Counter:
    """A loss that drifts by 1e-6 per call: nondeterministic."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, p: dict[str, Float64Array]) -> float:
        self.calls += 1
        return square(p) + 1e-6 * self.calls


def with_inf_param() -> lk.GradCheckReport:
    case = seed_case()
    case.model.params()["W2"][1, 2] = np.inf
    return lk.check_model(case.model, case.x, case.y)


def nb_case() -> tuple[Array, Array, dict[str, Array]]:
    return nb.gradient_check_n_test_case()


def nb_foreign_cache() -> object:
    X, Y, params = nb_case()
    _, cache = nb.forward_propagation_n(X, Y, params)
    return nb.backward_propagation_n(2 * X, Y, cache)


def nb_transposed_gradient() -> object:
    X, Y, params = nb_case()
    _, cache = nb.forward_propagation_n(X, Y, params)
    grads = nb.backward_propagation_n(X, Y, cache)
    return nb.gradient_check_n(params, {**grads, "dW1": grads["dW1"].T}, X, Y, verbose=False)


def save_then_load(saved: Callable[[], lk.Sequential], target: Callable[[], lk.Sequential]) -> None:
    lk.save_params(saved(), "model.npz")
    lk.load_params(target(), "model.npz")


def load_plain_npz() -> None:
    np.savez("weights.npz", W1=np.ones((5, 4)))
    lk.load_params(lk.fraud_net(), "weights.npz")


def load_text_file() -> None:
    Path("notes.txt").write_text("W1 = 1, 2, 3\n", encoding="utf-8")
    lk.load_params(lk.fraud_net(), "notes.txt")


def write_members(path: str, members: dict[str, bytes]) -> str:
    """A zip archive holding the given raw members."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def npy(array: npt.NDArray[Any]) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    return out.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy header alone: what a zip bomb or a crafted file declares."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def fraud_members(**changes: bytes) -> dict[str, bytes]:
    """The members save_params writes for the fraud net, with some replaced or added."""
    model = lk.fraud_net()
    members = {f"{name}.npy": npy(array) for name, array in model.params().items()}
    members["__layerkit__.npy"] = npy(np.array(json.dumps(architecture(model))))
    return {**members, **{f"{key}.npy" if "." not in key else key: v for key, v in changes.items()}}


def load_members(**changes: bytes) -> None:
    """Load the fraud net from a file of its members with ``changes``."""
    lk.load_params(lk.fraud_net(), write_members("model.npz", fraud_members(**changes)))


def load_bytes(content: bytes) -> None:
    Path("model.npz").write_bytes(content)
    lk.load_params(lk.fraud_net(), "model.npz")


def load_truncated() -> None:
    path = lk.save_params(lk.fraud_net(), "model.npz")
    path.write_bytes(path.read_bytes()[:700])
    lk.load_params(lk.fraud_net(), path)


def load_open_file() -> None:
    lk.save_params(lk.fraud_net(), "model.npz")
    with open("model.npz", "rb") as stream:
        lk.load_params(lk.fraud_net(), stream)  # type: ignore[arg-type]


def crafted_layer_class() -> None:
    meta = architecture(lk.fraud_net())
    meta["layers"][1] = {"class": "Tanh", "name": "ReLU"}
    load_members(__layerkit__=npy(np.array(json.dumps(meta))))


def nan_in_w2() -> None:
    W2 = lk.fraud_net().params()["W2"].copy()
    W2[1, 2] = np.nan
    load_members(W2=npy(W2))


def read_only_b3() -> None:
    lk.save_params(lk.fraud_net(), "model.npz")
    model = lk.fraud_net(seed=1)
    model.params()["b3"].flags.writeable = False
    lk.load_params(model, "model.npz")


def with_nan(name: str, model: lk.Sequential | None = None) -> lk.Sequential:
    """``model`` (default the fraud net) with a NaN in parameter ``name``."""
    target = model if model is not None else lk.fraud_net()
    target.params()[name].flat[0] = np.nan
    return target


def masked(values: object) -> npt.NDArray[Any]:
    return np.ma.masked_invalid(np.asarray(values, dtype=float))


def fit_seed_case(**options: Any) -> lk.History:
    case = seed_case()
    return lk.fit(case.model, case.x, case.y, epochs=1, **options)


def reusing_a_layer() -> lk.Sequential:
    shared = Linear(3, 3, seed=0)
    return lk.Sequential(shared, ReLU(), shared)


CASES: tuple[Case, ...] = (
    # -- layers ----------------------------------------------------------------------------
    Case("layers", "Linear(4, 5).forward(x) with x of shape (4,): no batch axis",
         lambda: Linear(4, 5).forward(np.ones(4)), ShapeError,
         ("Linear(4->5)", "'x'", "(m, features)", "(4,)", "(1, features)")),
    Case("layers", "Linear(4, 5).forward(x) with x of shape (2, 3): wrong width",
         lambda: Linear(4, 5).forward(np.ones((2, 3))), ShapeError,
         ("Linear(4->5)", "'x'", "4 features", "(2, 3)")),
    Case("layers", "Linear(4, 5).forward(x) with x of shape (2, 3, 4): rank 3",
         lambda: Linear(4, 5).forward(np.ones((2, 3, 4))), ShapeError,
         ("Linear(4->5)", "(m, features)", "(2, 3, 4)")),
    Case("layers", "ReLU().forward(x) with x of shape (0, 3): empty batch",
         lambda: ReLU().forward(np.ones((0, 3))), ShapeError,
         ("ReLU", "'x'", "empty batch", "(0, 3)", "m >= 1")),
    Case("layers", "Tanh().forward(x) with a NaN in x",
         lambda: Tanh().forward(np.array([[0.5, np.nan]])), NonFiniteError,
         ("Tanh", "'x'", "1 NaN/Inf", "(0, 1)", "finite")),
    Case("layers", "Linear(2, 1).forward(x) with x of object dtype",
         lambda: Linear(2, 1).forward(np.array([[1, "a"]], dtype=object)), DTypeError,
         ("Linear(2->1)", "'x'", "real numbers", "object")),
    Case("layers", "Sigmoid().forward(x) with complex x",
         lambda: Sigmoid().forward(np.ones((2, 2)) * 1j),  # type: ignore[arg-type]
         DTypeError,
         ("Sigmoid", "'x'", "real numbers", "complex128")),
    Case("layers", "ReLU().forward(x) with a ragged nested list",
         lambda: ReLU().forward([[1.0, 2.0], [3.0]]),  # type: ignore[arg-type]
         DTypeError,
         ("ReLU", "'x'", "numeric array", "list")),
    Case("layers", "Linear(0, 3): a zero width",
         lambda: Linear(0, 3), ConfigError, ("Linear", "'in_features'", "positive integer", "0")),
    Case("layers", "Linear(10**20, 1): a width no memory can hold",
         lambda: Linear(10**20, 1), ConfigError,
         ("Linear", "cannot allocate W", "(1, 100000000000000000000)", "smaller widths")),
    Case("layers", "Linear(2, 3, init='glorot'): unknown init",
         lambda: Linear(2, 3, init="glorot"),  # type: ignore[arg-type]
         ConfigError, ("Linear", "'init'", "'xavier'", "'glorot'")),
    Case("layers", "Linear(2, 3, dtype=np.int64): integer parameters",
         lambda: Linear(2, 3, dtype=np.int64),  # type: ignore[arg-type]
         DTypeError, ("Linear", "'dtype'", "floating", "int64")),
    Case("layers", "Linear.from_arrays(W (3, 2), b (4,)): b does not match W",
         lambda: Linear.from_arrays(np.ones((3, 2)), np.ones(4)), ShapeError,
         ("Linear", "'b'", "(3,)", "(4,)")),
    Case("layers", "Linear.from_arrays(W) with an Inf in W",
         lambda: Linear.from_arrays([[1.0, np.inf]]), NonFiniteError,
         ("Linear.from_arrays", "'W'", "NaN/Inf", "(0, 1)")),
    Case("layers", "Linear(3, 2).set_params({'W': ...}): 'b' missing",
         lambda: Linear(3, 2).set_params({"W": np.ones((2, 3))}), ShapeError,
         ("Linear(3->2).set_params", "['W', 'b']", "['W']")),
    Case("layers", "Linear(3, 2).set_params({'W': (3, 3), ...}): wrong shape",
         lambda: Linear(3, 2).set_params({"W": np.ones((3, 3)), "b": np.zeros(2)}),
         ShapeError, ("Linear(3->2).set_params", "'W'", "(2, 3)", "(3, 3)")),
    Case("layers", "model.backward(cache, grad_out) with grad_out of the wrong shape",
         lambda: (lambda mc: mc[0].backward(mc[1], np.ones((3, 2))))(model_cache()), ShapeError,
         ("Sequential.backward", "'grad_out'", "(2, 2)", "(3, 2)")),
    Case("layers", "Dropout(1.0): rate out of range",
         lambda: Dropout(1.0), ConfigError, ("Dropout", "'rate'", "[0, 1)", "1.0")),
    Case("layers", "Dropout(0.5).forward(x, noise=mask) with a mask of another shape",
         lambda: Dropout(0.5).forward(np.ones((2, 3)), noise=np.ones((3, 3))), ConfigError,
         ("Dropout(0.5)", "'noise'", "(2, 3)", "(3, 3)")),
    # -- Sequential ------------------------------------------------------------------------
    Case("Sequential", "Sequential(Linear(4, 5), ReLU(), Linear(4, 1)): widths do not chain",
         lambda: lk.Sequential(Linear(4, 5), ReLU(), Linear(4, 1)), ShapeError,
         ("layer 2 (Linear(4->1))", "expects 4 input features", "gives 5")),
    Case("Sequential", "Sequential(Linear(4, 5), 'relu'): not a layer",
         lambda: lk.Sequential(Linear(4, 5), "relu"),  # type: ignore[arg-type]
         ConfigError, ("Sequential", "expected layers", "str 'relu'")),
    Case("Sequential", "Sequential(): no layers",
         lambda: lk.Sequential(), ConfigError, ("Sequential", "at least one layer")),
    Case("Sequential", "the same Linear object twice in one Sequential",
         reusing_a_layer, ConfigError, ("layer 2 (Linear(3->3))", "same object as layer 0")),
    Case("Sequential", "Sequential(..., loss='bce'): not a loss",
         lambda: lk.Sequential(Linear(4, 1), loss="bce"),  # type: ignore[arg-type]
         ConfigError, ("Sequential", "'loss'", "BCELoss", "str")),
    Case("Sequential", "fraud net forward(x) with x of shape (3, 5)",
         lambda: seed_case().model.forward(np.ones((3, 5))), ShapeError,
         ("Sequential", "'x'", "4 features", "(3, 5)")),
    Case("Sequential", "loss_and_grad(x, y) with y of shape (3, 2) for one output",
         lambda: seed_case().model.loss_and_grad(seed_case().x, np.ones((3, 2))), ShapeError,
         ("Sequential", "targets 'y'", "(3, 1)", "(3, 2)")),
    Case("Sequential", "loss_and_grad(x, y) with y of shape (1, 3, 1): same size, other shape",
         lambda: seed_case().model.loss_and_grad(seed_case().x, np.ones((1, 3, 1))), ShapeError,
         ("Sequential", "targets 'y'", "(3, 1)", "(1, 3, 1)")),
    Case("Sequential", "loss_and_grad(x, y) with a label 2 in y",
         lambda: seed_case().model.loss_and_grad(seed_case().x, [[2.0], [0.0], [1.0]]),
         TargetError, ("Sequential", "targets 'y'", "[0, 1]", "1 value(s) outside", "2.0")),
    Case("Sequential", "loss_and_grad(x, y) with a NaN label",
         lambda: seed_case().model.loss_and_grad(seed_case().x, [[np.nan], [0.0], [1.0]]),
         NonFiniteError, ("Sequential", "'y'", "NaN/Inf", "(0, 0)")),
    Case("Sequential", "loss_and_grad on a model built without a loss",
         lambda: lk.Sequential(Linear(4, 1)).loss_and_grad(np.ones((2, 4)), np.ones((2, 1))),
         ConfigError, ("Sequential", "no loss", "loss=BCELoss()")),
    Case("Sequential", "model.backward(cache) with the cache of a copy of the model",
         lambda: (lambda c: c.model.backward(c.model.copy().forward(c.x)[1], np.ones((3, 1))))(
             seed_case()), CacheError, ("Sequential.backward", "does not come from this model")),
    Case("Sequential", "forward(x, noise=[None]) for a 6-layer model",
         lambda: seed_case().model.forward(seed_case().x, noise=[None]), ConfigError,
         ("Sequential.forward", "'noise'", "(6)", "got 1")),
    Case("Sequential", "model.astype(np.int32)",
         lambda: seed_case().model.astype(np.int32),  # type: ignore[arg-type]
         DTypeError, ("Sequential.astype", "'dtype'", "floating", "int32")),
    Case("Sequential", "mlp(['a', 1]): widths that are not integers",
         lambda: lk.mlp(["a", 1]),  # type: ignore[list-item]
         ConfigError, ("mlp", "'widths'", "positive integers", "['a', 1]")),
    # -- losses ----------------------------------------------------------------------------
    Case("losses", "BCELoss().value(p, y) with p (3, 1) and y (2, 1)",
         lambda: BCELoss().value(np.full((3, 1), 0.5), np.ones((2, 1))), ShapeError,
         ("BCELoss.value", "targets 'y'", "(3, 1)", "(2, 1)")),
    Case("losses", "BCELoss().value(p, y) with logits passed as probabilities",
         lambda: BCELoss().value(np.array([[3.2], [-1.0]]), np.ones((2, 1))), TargetError,
         ("BCELoss.value", "'p'", "probabilities in [0, 1]", "[-1, 3.2]", "BCEWithLogitsLoss")),
    Case("losses", "BCEWithLogitsLoss().grad(z, y) with z of shape (3,)",
         lambda: lk.BCEWithLogitsLoss().grad(np.ones(3), np.ones(3)), ShapeError,
         ("BCEWithLogitsLoss.grad", "'z'", "(m, k)", "(3,)")),
    # -- flatten / unflatten ---------------------------------------------------------------
    Case("flatten", "model.unflatten(v) with v of length 46 for 47 parameters",
         lambda: seed_case().model.unflatten(np.ones(46)), ShapeError,
         ("Sequential.unflatten", "'vector'", "length 47", "W1", "length 46")),
    Case("flatten", "model.unflatten(v) with v of strings",
         lambda: seed_case().model.unflatten(np.array(["0.5"] * 47)), DTypeError,
         ("Sequential", "'vector'", "real numbers", "<U3")),
    Case("flatten", "layer.unflatten(v) with v of shape (2, 4)",
         lambda: Linear(3, 2).unflatten(np.ones((2, 4))), ShapeError,
         ("Linear(3->2).unflatten", "'vector'", "1-D", "(2, 4)")),
    Case("flatten", "ParamSpec.flatten(arrays) with a key the spec does not have",
         lambda: ParamSpec.of({"a": np.ones(2)}).flatten({"b": np.ones(2)}),
         GradientSpecError, ("keys ['a']", "missing ['a']", "unexpected ['b']")),
    # -- the checker -----------------------------------------------------------------------
    Case("checker", "check_function: grad_fn's dict lacks a parameter",
         lambda: lk.check_function(square, lambda p: {}, A), GradientSpecError,
         ("grad_fn(...)", "keys ['a']", "missing ['a']")),
    Case("checker", "check_function: grad_fn's dict has an extra key",
         lambda: lk.check_function(square, lambda p: {**square_grad(p), "b": 0.0}, A),
         GradientSpecError, ("grad_fn(...)", "keys ['a']", "unexpected ['b']")),
    Case("checker", "check_function: a gradient of the wrong shape",
         lambda: lk.check_function(square, lambda p: {"a": np.ones(3)}, A), GradientSpecError,
         ("grad_fn(...)['a']", "(2,)", "(3,)")),
    Case("checker", "check_function: grad_fn returns an array, not a dict",
         lambda: lk.check_function(square, lambda p: 2 * p["a"], A),  # type: ignore[arg-type, return-value]
         GradientSpecError, ("grad_fn", "mapping name -> array", "array of shape (2,)")),
    Case("checker", "check_function: a complex gradient",
         lambda: lk.check_function(square, lambda p: {"a": 2j * p["a"]}, A), DTypeError,
         ("check_function", "grad_fn(...)['a']", "real numbers", "complex128")),
    Case("checker", "check_function: loss_fn returns an array, not a scalar",
         lambda: lk.check_function(lambda p: p["a"] ** 2, square_grad, A), LossValueError,
         ("loss_fn", "scalar", "shape (2,)")),
    Case("checker", "check_function: loss_fn returns None",
         lambda: lk.check_function(lambda p: None, square_grad, A), LossValueError,
         ("loss_fn", "real scalar", "NoneType None")),
    Case("checker", "check_function: loss_fn raises",
         lambda: lk.check_function(raises_zero_division, square_grad, A), UserCodeError,
         ("check_function", "loss_fn raised ZeroDivisionError", "call 1", "aborted")),
    Case("checker", "check_function: grad_fn raises",
         lambda: lk.check_function(square, lambda p: {"a": p["b"]}, A), UserCodeError,
         ("check_function", "grad_fn raised KeyError", "'b'")),
    Case("checker", "check_function: loss_fn gives another value at the same point",
         lambda: lk.check_function(Counter(), square_grad, A), NondeterministicError,
         ("the loss gave", "and then", "nondeterministic")),
    Case("checker", "check_function: a NaN in params",
         lambda: lk.check_function(square, square_grad, {"a": np.array([np.nan, 1.0])}),
         NonFiniteError, ("check_function", "params['a']", "NaN/Inf", "(0,)")),
    Case("checker", "check_function: params of object dtype",
         lambda: lk.check_function(square, square_grad, {"a": np.array([None, 1.0])}),
         DTypeError, ("check_function", "params['a']", "real numbers", "object")),
    Case("checker", "check_function: empty params",
         lambda: lk.check_function(square, square_grad, {}), ConfigError,
         ("check_function", "'params'", "non-empty mapping", "dict {}")),
    Case("checker", "check option step=-1e-6",
         lambda: lk.check_function(square, square_grad, A, step=-1e-6), ConfigError,
         ("'step'", "(0, 0.1]", "-1e-06")),
    Case("checker", "check option step=0.5 (above the largest relative step)",
         lambda: lk.check_function(square, square_grad, A, step=0.5), ConfigError,
         ("'step'", "(0, 0.1]", "0.5")),
    Case("checker", "check option samples=0",
         lambda: lk.check_function(square, square_grad, A, samples=0), ConfigError,
         ("'samples'", "positive integer", "0")),
    Case("checker", "check option mode='full'",
         lambda: lk.check_function(square, square_grad, A, mode="full"), ConfigError,
         ("'mode'", "['exact', 'sampled', 'fast']", "'full'")),
    Case("checker", "check option eps=1e-7 (the seed's name for step)",
         lambda: lk.check_function(square, square_grad, A, eps=1e-7),  # type: ignore[call-arg]
         ConfigError, ("unknown option(s) ['eps']", "'step'")),
    Case("checker", "check_model(Linear(...), x, y): not a Sequential",
         lambda: lk.check_model(Linear(2, 1), np.ones((1, 2)), np.ones((1, 1))),  # type: ignore[arg-type]
         ConfigError, ("check_model", "'model'", "Sequential", "Linear")),
    Case("checker", "check_model on a model with no parameters (ReLU, Sigmoid)",
         lambda: lk.check_model(lk.Sequential(ReLU(), Sigmoid(), loss=BCELoss()),
                                np.ones((2, 1)), np.ones((2, 1))),
         ConfigError, ("no parameters", "nothing to check")),
    Case("checker", "check_function whose loss_fn writes into its argument",
         lambda: lk.check_function(lambda p: float(np.sum(np.multiply(p["a"], 2, out=p["a"]))),
                                   lambda p: {"a": 2 * np.ones(2)}, {"a": np.ones(2)}),
         UserCodeError, ("loss_fn wrote into its argument", "read-only")),
    Case("checker", "check_function whose loss_fn returns a masked value",
         lambda: lk.check_function(lambda p: np.ma.masked, lambda p: {"a": np.ones(2)},
                                   {"a": np.ones(2)}),
         LossValueError, ("loss_fn", "masked")),
    Case("checker", "check_model with an Inf parameter",
         with_inf_param, NonFiniteError,
         ("check_model", "layer 2 (Linear(5->3))", "'W2'", "NaN/Inf", "(1, 2)")),
    Case("checker", "check_model(model, x, y) with y of 4 rows for 3 samples",
         lambda: lk.check_model(seed_case().model, seed_case().x, np.ones((4, 1))),
         ShapeError, ("targets 'y'", "(3, 1)", "(4, 1)")),
    Case("checker", "check_layer(Dropout(0.5), x, noise=mask) with NaN in the mask",
         lambda: lk.check_layer(Dropout(0.5), np.ones((2, 2)), noise=np.full((2, 2), np.nan)),
         NonFiniteError, ("check_layer", "'noise'", "NaN/Inf")),
    Case("checker", "check_layer('relu', x): not a layer",
         lambda: lk.check_layer("relu", np.ones((2, 2))),  # type: ignore[arg-type]
         ConfigError, ("check_layer", "'layer'", "Layer", "str")),
    # -- notebook API ----------------------------------------------------------------------
    Case("notebook", "forward_propagation_n(X.T, Y, parameters): batch-first X",
         lambda: nb.forward_propagation_n(nb_case()[0].T, nb_case()[1], nb_case()[2]),
         ShapeError, ("forward_propagation_n", "'X'", "(4, m)", "(3, 4)", "pass X.T")),
    Case("notebook", "forward_propagation_n(X, Y, parameters) with Y of shape (1, 4)",
         lambda: nb.forward_propagation_n(nb_case()[0], np.ones((1, 4)), nb_case()[2]),
         ShapeError, ("forward_propagation_n", "'Y'", "(1, 3)", "(1, 4)")),
    Case("notebook", "forward_propagation_n with labels 3 in Y",
         lambda: nb.forward_propagation_n(nb_case()[0], 3 * nb_case()[1], nb_case()[2]),
         TargetError, ("forward_propagation_n", "[0, 1]", "3.0")),
    Case("notebook", "forward_propagation_n with parameters lacking b1..b3",
         lambda: nb.forward_propagation_n(nb_case()[0], nb_case()[1], {"W1": np.ones((5, 4))}),
         ConfigError, ("forward_propagation_n", "'parameters'", "missing", "'b1'")),
    Case("notebook", "forward_propagation_n with W2 of shape (3, 4) after W1 (5, 4)",
         lambda: nb.forward_propagation_n(
             nb_case()[0], nb_case()[1], {**nb_case()[2], "W2": np.ones((3, 4))}),
         ShapeError, ("forward_propagation_n", "parameters['W2']", "5 columns", "(3, 4)")),
    Case("notebook", "vector_to_dictionary(theta) with theta of length 46",
         lambda: nb.vector_to_dictionary(np.ones((46, 1))), ShapeError,
         ("vector_to_dictionary", "length 47", "length 46")),
    Case("notebook", "backward_propagation_n(X', Y, cache) with the cache of another X",
         nb_foreign_cache, CacheError,
         ("backward_propagation_n", "'cache'", "different X")),
    Case("notebook", "gradient_check_n with dW1 transposed",
         nb_transposed_gradient, GradientSpecError,
         ("gradient_check_n", "gradients['dW1']", "(5, 4)", "(4, 5)")),
    Case("notebook", "gradient_check(x, theta, epsilon=0)",
         lambda: nb.gradient_check(2.0, 4.0, epsilon=0.0), ConfigError,
         ("gradient_check", "'epsilon'", "positive finite", "0.0")),
    Case("notebook", "forward_propagation('2', 4): a string for x",
         lambda: nb.forward_propagation("2", 4),  # type: ignore[arg-type]
         DTypeError, ("forward_propagation", "'x'", "real number", "str '2'")),
    # -- saving and loading ----------------------------------------------------------------
    Case("io", "load_params(mlp 4-6-3-1, file saved from the 4-5-3-1 fraud net)",
         lambda: save_then_load(lk.fraud_net, lambda: lk.mlp([4, 6, 3, 1])), ParamFileError,
         ("load_params", "'model.npz'", "another architecture", "W1 has shape (5, 4)",
          "(6, 4) in the model")),
    Case("io", "load_params into a float32 model from a float64 file",
         lambda: save_then_load(lk.fraud_net, lambda: lk.fraud_net().astype(np.float32)),
         ParamFileError, ("W1, b1, W2, b2, W3, b3 are float64 in the file but float32",)),
    Case("io", "load_params(model, 'weights.npz') of a plain np.savez file",
         load_plain_npz, ParamFileError,
         ("load_params", "'weights.npz'", "'__layerkit__'", "['W1']", "save_params")),
    Case("io", "load_params(model, 'notes.txt'): not an .npz file",
         load_text_file, ParamFileError, ("load_params", "'notes.txt'", "not a .npz file")),
    # -- training ---------------------------------------------------------------------------
    Case("optim", "SGD(lr=-0.1)",
         lambda: lk.SGD(lr=-0.1), ConfigError, ("SGD", "'lr'", ">= 0", "-0.1")),
    Case("optim", "fit(model, x, y, epochs=0)",
         lambda: lk.fit(seed_case().model, seed_case().x, seed_case().y, epochs=0), ConfigError,
         ("fit", "'epochs'", "positive integer", "0")),
    # -- issue 12: untrusted files --------------------------------------------------------
    Case("io", "load_params of an empty file",
         lambda: load_bytes(b""), ParamFileError, ("load_params", "'model.npz'", "not a .npz file")),
    Case("io", "load_params of a file cut short (BadZipFile/EOFError inside)",
         load_truncated, ParamFileError, ("load_params", "'model.npz'", "not a .npz file")),
    Case("io", "load_params of a .npy file (np.save) instead of an .npz",
         lambda: load_bytes(npy(np.ones(3))),
         ParamFileError, ("'model.npz'", "is a .npy file", "not a .npz file")),
    Case("io", "load_params(model, None): no path",
         lambda: lk.load_params(lk.fraud_net(), None),  # type: ignore[arg-type]
         ParamFileError, ("load_params", "'path'", "file path", "NoneType")),
    Case("io", "load_params(model, open_file): a file object, not a path",
         load_open_file, ParamFileError, ("load_params", "'path'", "file path", "BufferedReader")),
    Case("io", "load_params(model, '.'): a directory",
         lambda: lk.load_params(lk.fraud_net(), "."), ParamFileError,
         ("load_params", "cannot open '.'", "directory")),
    Case("io", "load_params(model, 'missing.npz'): no such file",
         lambda: lk.load_params(lk.fraud_net(), "missing.npz"), ParamFileError,
         ("load_params", "cannot open 'missing.npz'", "No such file")),
    Case("io", "load_params of an archive with a member lacking the .npy suffix",
         lambda: load_members(**{"notes.txt": b"hi"}), ParamFileError,
         ("'model.npz'", "member 'notes.txt'", "no .npy suffix")),
    Case("io", "load_params of an archive with a member the model does not have",
         lambda: load_members(W9=npy(np.ones(2))), ParamFileError,
         ("'model.npz'", "another architecture", "the file's ['W9'] are not in the model")),
    Case("io", "load_params whose JSON description nests 100000 deep",
         lambda: load_members(__layerkit__=npy(np.array("[" * 100_000 + "]" * 100_000))),
         ParamFileError, ("member '__layerkit__.npy'", "not valid JSON", "RecursionError")),
    Case("io", "load_params of a zip bomb: W1's header declares 10**12 entries",
         lambda: load_members(W1=npy_header((10**12,)) + bytes(4096)), ParamFileError,
         ("'model.npz'", "W1 has shape (1000000000000,) in the file but (5, 4) in the model")),
    Case("io", "load_params whose description declares a 400 MB string",
         lambda: load_members(__layerkit__=npy_header((), "<U100000000")), ParamFileError,
         ("member '__layerkit__.npy'", "declares 400000000 bytes", "at most 1048576")),
    Case("io", "load_params of W1 with the right header but extra data after it",
         lambda: load_members(W1=npy(np.ones((5, 4))) + bytes(10**6)), ParamFileError,
         ("member 'W1.npy'", "data after its array")),
    Case("io", "load_params of W1 whose data stops short of its shape",
         lambda: load_members(W1=npy_header((5, 4)) + bytes(16)), ParamFileError,
         ("member 'W1.npy'", "truncated", "16 of 160 bytes")),
    Case("io", "load_params of an object (pickled) W1",
         lambda: load_members(W1=npy_header((5, 4), "|O") + b"\x80junk"), ParamFileError,
         ("member 'W1.npy'", "Python objects", "pickle")),
    Case("io", "load_params of a file holding NaN in W2",
         nan_in_w2, ParamFileError,
         ("'model.npz'", "member 'W2.npy'", "1 NaN/Inf", "(1, 2)", "must be finite")),
    Case("io", "load_params of a file whose layer 1 says class Tanh, name ReLU",
         crafted_layer_class, ParamFileError,
         ("another architecture", "layer 1 is Tanh in the file but ReLU in the model")),
    Case("io", "load_params into a model whose b3 is read-only",
         read_only_b3, ConfigError, ("load_params", "the model's b3", "read-only", "nothing")),
    Case("io", "save_params of a model holding NaN",
         lambda: lk.save_params(with_nan("W2"), "model.npz"), NonFiniteError,
         ("save_params", "the model's W2", "1 NaN/Inf", "not written")),
    Case("io", "save_params(model, 'no-dir/model.npz'): a missing folder",
         lambda: lk.save_params(lk.fraud_net(), "no-dir/model.npz"), ParamFileError,
         ("save_params", "cannot write 'no-dir/model.npz'", "No such file")),
    Case("io", "save_params(model, '.'): a directory",
         lambda: lk.save_params(lk.fraud_net(), "."), ParamFileError,
         ("save_params", "cannot write '.'", "directory")),
    # -- issue 12: NaN, masks, dtypes, widths, seeds -----------------------------------------
    Case("flatten", "model.unflatten(v) with a NaN at entry 3 (in W1)",
         lambda: seed_case().model.unflatten(np.where(np.arange(47) == 3, np.nan, 0.0)),
         NonFiniteError, ("Sequential.unflatten", "'vector'", "in W1", "1 NaN/Inf")),
    Case("layers", "Linear.from_arrays(W of shape (0, 3)): a zero-width layer",
         lambda: Linear.from_arrays(np.ones((0, 3))), ShapeError,
         ("Linear.from_arrays", "'W'", "at least one row", "(0, 3)")),
    Case("layers", "Linear.from_arrays(W) with W a masked array",
         lambda: Linear.from_arrays(masked([[1.0, np.nan]])), DTypeError,
         ("Linear.from_arrays", "'W'", "masked array", "filled")),
    Case("layers", "ReLU().forward(x) with x a masked array",
         lambda: ReLU().forward(masked([[1.0, 2.0]])), DTypeError,
         ("ReLU", "'x'", "masked array")),
    Case("layers", "Linear(3, 2).astype('float16'): an unsupported dtype",
         lambda: Linear(3, 2).astype("float16"),  # type: ignore[arg-type]
         DTypeError, ("Linear(3->2).astype", "'dtype'", "float32 or float64", "float16")),
    Case("layers", "Linear(4, 5).forward(x) after a NaN was written into W",
         lambda: with_nan("W", Linear(4, 5)).forward(np.ones((2, 4))),  # type: ignore[arg-type]
         NonFiniteError, ("Linear(4->5)", "parameter 'W'", "1 NaN/Inf", "must be finite")),
    Case("layers", "Linear(2, 3, seed=-1): a negative seed",
         lambda: Linear(2, 3, seed=-1), ConfigError,
         ("Linear", "'seed'", "non-negative integer", "-1")),
    Case("layers", "Linear(2, 3, seed='abc'): a string seed",
         lambda: Linear(2, 3, seed="abc"),  # type: ignore[arg-type]
         ConfigError, ("Linear", "'seed'", "non-negative integer", "'abc'")),
    Case("layers", "Linear(2, 3, seed=1.5): a float seed",
         lambda: Linear(2, 3, seed=1.5),  # type: ignore[arg-type]
         ConfigError, ("Linear", "'seed'", "non-negative integer", "1.5")),
    Case("layers", "Dropout(0.5).forward(x, noise=strings)",
         lambda: Dropout(0.5).forward(np.ones((1, 2)), noise=np.array([["a", "b"]])),
         DTypeError, ("Dropout(0.5)", "'noise'", "real numbers", "<U1")),
    Case("layers", "Dropout('0.5'): a string rate",
         lambda: Dropout("0.5"),  # type: ignore[arg-type]
         ConfigError, ("Dropout", "'rate'", "[0, 1)", "'0.5'")),
    Case("Sequential", "forward(x) with a NaN in W1: named, not a later ReLU",
         lambda: with_nan("W1").forward(np.ones((2, 4))), NonFiniteError,
         ("Sequential", "parameter W1", "layer 0 (Linear(4->5))", "1 NaN/Inf")),
    Case("Sequential", "forward(x, layers='a')",
         lambda: seed_case().model.forward(seed_case().x, layers="a"),  # type: ignore[call-overload]
         ConfigError, ("Sequential.forward", "'layers'", "[0, 6]", "str 'a'")),
    Case("Sequential", "forward(x, layers=7) for a 6-layer model",
         lambda: seed_case().model.forward(seed_case().x, layers=7), ConfigError,
         ("Sequential.forward", "'layers'", "[0, 6]", "7")),
    Case("Sequential", "forward(x, noise='abcdef'): a string, not masks",
         lambda: seed_case().model.forward(seed_case().x, noise="abcdef"),  # type: ignore[arg-type]
         ConfigError, ("Sequential.forward", "'noise'", "one mask", "str")),
    Case("Sequential", "forward(x, rng=-1): a negative seed",
         lambda: seed_case().model.forward(seed_case().x, rng=-1), ConfigError,
         ("Sequential.forward", "'rng'", "non-negative integer", "-1")),
    Case("Sequential", "mlp(5): a single number for widths",
         lambda: lk.mlp(5),  # type: ignore[arg-type]
         ConfigError, ("mlp", "'widths'", "two or more", "int 5")),
    Case("Sequential", "mlp([4, 1], seed='abc')",
         lambda: lk.mlp([4, 1], seed="abc"),  # type: ignore[arg-type]
         ConfigError, ("mlp", "'seed'", "non-negative integer", "'abc'")),
    Case("Sequential", "model.astype('float16')",
         lambda: seed_case().model.astype("float16"),  # type: ignore[arg-type]
         DTypeError, ("Sequential.astype", "'dtype'", "float32 or float64", "float16")),
    Case("notebook", "vector_to_dictionary(theta, shapes) with a shape (-1, 4)",
         lambda: nb.vector_to_dictionary(
             np.ones(47), {**nb.SEED_PARAMETER_SHAPES, "W1": (-1, 4)}),
         ConfigError, ("vector_to_dictionary", "shapes['W1']", "non-negative integers", "(-1, 4)")),
    Case("notebook", "vector_to_dictionary(theta, shapes) with a shape 'ab'",
         lambda: nb.vector_to_dictionary(
             np.ones(47), {**nb.SEED_PARAMETER_SHAPES, "b2": "ab"}),  # type: ignore[dict-item]
         ConfigError, ("vector_to_dictionary", "shapes['b2']", "non-negative integers", "'ab'")),
    # -- issue 12: training ----------------------------------------------------------------
    Case("optim", "fit(..., optimizer='adam'): a string",
         lambda: fit_seed_case(optimizer="adam"), ConfigError,
         ("fit", "'optimizer'", "SGD() or Adam()", "str 'adam'")),
    Case("optim", "fit(..., optimizer=SGD): the class, not an instance",
         lambda: fit_seed_case(optimizer=lk.SGD), ConfigError,
         ("fit", "'optimizer'", "pass an instance: SGD()")),
    Case("optim", "fit(..., on_epoch='print'): not a function",
         lambda: fit_seed_case(on_epoch="print"), ConfigError,
         ("fit", "'on_epoch'", "function", "str 'print'")),
    Case("optim", "fit(..., seed=1.5)",
         lambda: fit_seed_case(seed=1.5), ConfigError,
         ("fit", "'seed'", "non-negative integer", "1.5")),
    Case("optim", "fit(..., batch_size=2.5)",
         lambda: fit_seed_case(batch_size=2.5), ConfigError,
         ("fit", "'batch_size'", "positive integer", "2.5")),
    Case("optim", "fit(model) of a model with a NaN in W3",
         lambda: (lambda c: lk.fit(with_nan("W3", c.model), c.x, c.y, epochs=1))(seed_case()),
         NonFiniteError, ("parameter W3", "layer 4 (Linear(3->1))", "NaN/Inf")),
    Case("optim", "SGD().step(params, grads) with grads a list of strings",
         lambda: lk.SGD().step(np.zeros(2), ["a", "b"]),  # type: ignore[arg-type]
         DTypeError, ("SGD.step", "'grads'", "real numbers", "<U1")),
    Case("optim", "Adam().step(params, grads) with a NaN gradient",
         lambda: lk.Adam().step(np.zeros(2), np.array([np.nan, 1.0])), NonFiniteError,
         ("Adam.step", "'grads'", "1 NaN/Inf", "(0,)")),
    Case("optim", "SGD(nesterov='yes')",
         lambda: lk.SGD(nesterov="yes"),  # type: ignore[arg-type]
         ConfigError, ("SGD", "'nesterov'", "True or False", "'yes'")),
    Case("testing", "assert_report_ok(None)",
         lambda: assert_report_ok(None),  # type: ignore[arg-type]
         ConfigError, ("assert_report_ok", "'report'", "GradCheckReport", "NoneType")),
)  # fmt: skip


CLI_CASES: tuple[CliCase, ...] = (
    CliCase((), ("choose a command", "check or sweep")),
    CliCase(("verify",), ("invalid choice", "'verify'", "'check'")),
    CliCase(("check", "--arch", "4,x,1"), ("--arch", "'4,x,1'", "positive integers")),
    CliCase(("check", "--arch", "4"), ("--arch", "'4'", "two or more")),
    CliCase(("check", "--arch", "4,0,1"), ("--arch", "'4,0,1'", "positive integers")),
    CliCase(("check", "--arch", "100000000000000000000,1"), ("--arch", "GB", "memory", "smaller")),
    CliCase(("check", "--arch", "4,3", "--batch", "0"), ("--batch", "'0'", "positive integer")),
    CliCase(("check", "--batch", "5"), ("--batch", "--arch")),
    CliCase(("check", "--seed", "-1"), ("--seed", "'-1'", "non-negative integer")),
    CliCase(("check", "--rtol", "2"), ("--rtol", "'2'", "[0, 1]")),
    CliCase(("check", "--mode", "full"), ("--mode", "invalid choice", "'full'")),
    CliCase(("check", "--samples", "0"), ("--samples", "'0'", "positive integer")),
    CliCase(("check", "--dtype", "int8"), ("--dtype", "invalid choice", "'int8'")),
    CliCase(("check", "--arch", "4,1", "--inject-seed-bugs"), ("--inject-seed-bugs", "W2", "b1")),
    CliCase(("check", "--tolerance", "1e-3"), ("unrecognized arguments", "--tolerance")),
    CliCase(("sweep", "--points", "0"), ("--points", "'0'", "positive integer")),
    CliCase(("sweep", "--plot", "no-such-dir/sweep.png"), ("--plot", "no-such-dir/sweep.png")),
    CliCase(("check", "--arch", "4,3", "--batch", "1000000000"),
            ("--batch 1000000000", "448 GB", "memory", "smaller")),
    CliCase(("sweep", "--points", "1000000000"), ("--points 1000000000", "memory", "smaller")),
    CliCase(("check", "--arch", "4,100000,100000,1"), ("--arch 4,100000,100000,1", "640 GB")),
    CliCase(("sweep", "--plot", ""), ("--plot", "'' is not a file name")),
    CliCase(("sweep", "--plot", "sweep.jpg"), ("--plot", "'.jpg'", ".png, .svg, .pdf")),
    CliCase(("check", "--step", "0.5"), ("--step", "'0.5'", "(0, 0.1]")),
    CliCase(("check", "--atol", "-1"), ("--atol", "'-1'", "[0, inf)")),
    CliCase(("check", "--model", "no_such_module:build", "--data", "d.npz"),
            ("--model 'no_such_module:build'", "no module named")),
    CliCase(("check", "--model", "net.py:build"), ("--model 'net.py:build'", "needs --data")),
    CliCase(("check", "--data", "missing.npz"), ("--data 'missing.npz'", "No such file")),
)  # fmt: skip


def _float_and_converted(
    call: Callable[[Array], Array | float], converted: npt.NDArray[Any]
) -> Callable[[bool], Array | float]:
    def run(convert: bool) -> Array | float:
        return call(converted if convert else converted.astype(np.float64))

    return run


def _model_loss(y: Array) -> float:
    case = seed_case()
    return case.model.loss_and_grad(case.x, y)[0]


def _loaded_vector(vector: Array) -> Array:
    model = lk.fraud_net()
    model.unflatten(vector)
    return model.flatten()


def _function_check(params: Array) -> float:
    report = lk.check_function(square, square_grad, {"a": params})
    assert report.verdict == "pass"
    return report.loss


CONVERTED: tuple[Converted, ...] = (
    Converted("layers", "Linear(2, 3).forward(x) with integer x",
              _float_and_converted(lambda x: Linear(2, 3, seed=0).forward(x)[0],
                                   np.array([[1, -2], [0, 3]]))),
    Converted("layers", "Linear.from_arrays(W, b) with integer W and b",
              _float_and_converted(lambda w: Linear.from_arrays(w, w[:, 0]).W,
                                   np.array([[1, 2], [3, 4]]))),
    Converted("Sequential", "loss_and_grad(x, y) with y as booleans",
              _float_and_converted(_model_loss, np.array([[True], [True], [False]]))),
    Converted("Sequential", "loss_and_grad(x, y) with y as the seed's 1-D int labels [1, 1, 0]",
              _float_and_converted(_model_loss, np.array([1, 1, 0]))),
    Converted("flatten", "model.unflatten(v) with an integer vector",
              _float_and_converted(_loaded_vector, np.arange(47) % 5 - 2)),
    Converted("checker", "check_function with integer params",
              _float_and_converted(_function_check, np.array([1, -2, 3]))),
    Converted("layers", "Dropout(np.float32(0.25)): a numpy float rate",
              lambda c: _dropped(np.float32(0.25) if c else 0.25)),
    Converted("layers", "Linear(2, 3, seed=np.int64(3)): a numpy integer seed",
              lambda c: Linear(2, 3, seed=np.int64(3) if c else 3).W),
    Converted("optim", "SGD(lr=np.float32(0.125), momentum=np.float64(0.5)).step",
              lambda c: _sgd_steps(np.float32(0.125), np.float64(0.5)) if c else _sgd_steps(0.125, 0.5)),
    Converted("optim", "fit(..., epochs=np.int64(2), batch_size=np.int32(2))",
              lambda c: _fitted(np.int64(2), np.int32(2)) if c else _fitted(2, 2)),
    Converted("Sequential", "forward(x, layers=np.int64(2))",
              lambda c: seed_case().model.forward(seed_case().x, layers=np.int64(2) if c else 2)[0]),
)  # fmt: skip


def _dropped(rate: Real) -> Array:
    layer = Dropout(rate)
    x = np.ones((4, 5))
    return layer.forward(x, noise=layer.sample_noise(x, np.random.default_rng(0)))[0]


def _sgd_steps(lr: Real, momentum: Real) -> Array:
    sgd = lk.SGD(lr=lr, momentum=momentum)
    params = np.array([1.0, -2.0])
    for _ in range(3):
        params = sgd.step(params, 2 * params)
    return params


def _fitted(epochs: Integer, batch_size: Integer) -> Array:
    case = seed_case()
    history = lk.fit(case.model, case.x, case.y, epochs=epochs, batch_size=batch_size)
    return np.concatenate([case.model.flatten(), history.losses])


# -- running the cases -------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_directory() -> Iterator[None]:
    """Run in a fresh temporary working directory (io cases write relative file names)."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def raised_by(case: Case) -> LayerkitError:
    """Run ``case.call`` in a scratch directory; the LayerkitError it raised."""
    with scratch_directory():
        try:
            case.call()
        except LayerkitError as error:
            return error
    msg = f"{case.given}: nothing was raised"
    raise AssertionError(msg)


def run_cli(argv: tuple[str, ...]) -> tuple[int, str, str]:
    """``layerkit.cli.main(argv)`` in a scratch directory: ``(exit code, stdout, stderr)``."""
    from layerkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with scratch_directory(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def case_id(case: Case) -> str:
    return f"{case.area}: {case.given}"


class TestCatalogue:
    """Every bad input raises a layerkit error whose message says what was wrong."""

    def test_enough_distinct_cases(self) -> None:
        """At least 25 distinct cases, across every area the issue names."""
        assert len({c.given for c in CASES}) == len(CASES) >= 25
        assert {c.area for c in CASES} >= {
            "layers", "Sequential", "losses", "flatten", "checker", "notebook", "io", "optim",
        }  # fmt: skip
        assert len({c.argv for c in CLI_CASES}) == len(CLI_CASES)

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_raises_a_layerkit_error(self, case: Case) -> None:
        """The error is the listed layerkit type, a ValueError or TypeError, importable from
        layerkit.errors."""
        error = raised_by(case)
        assert type(error) is case.error, f"{type(error).__name__}: {error}"
        assert isinstance(error, ValueError | TypeError)
        assert getattr(errors, type(error).__name__) is type(error)

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_message_says_what_was_wrong(self, case: Case) -> None:
        """One line naming the argument or layer, what was expected and what came."""
        message = str(raised_by(case))
        assert "\n" not in message
        missing = [m for m in case.mentions if m not in message]
        assert not missing, f"message lacks {missing}: {message}"


class TestConverted:
    """Integers and booleans are converted, never refused, and give the float result."""

    @pytest.mark.parametrize("case", CONVERTED, ids=lambda c: f"{c.area}: {c.given}")
    def test_same_result_as_float_input(self, case: Converted) -> None:
        """The converted input gives bitwise the result of the same values as float64."""
        converted, reference = case.call(True), case.call(False)
        assert np.asarray(converted).tobytes() == np.asarray(reference).tobytes()


class TestCommandLine:
    """Nonsense command lines: exit code 2 and one line on stderr, nothing on stdout."""

    @pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: " ".join(c.argv) or "(none)")
    def test_usage_error(self, case: CliCase) -> None:
        """Exit 2, a single 'layerkit: error: ...' line mentioning the argument."""
        code, out, err = run_cli(case.argv)
        assert code == 2
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("layerkit: error: "), err
        missing = [m for m in case.mentions if m not in err]
        assert not missing, f"stderr lacks {missing}: {err}"

    @pytest.mark.parametrize("case", CASES[:3], ids=case_id)
    def test_library_errors_are_layerkit_errors_for_the_cli(self, case: Case) -> None:
        """What the CLI catches to turn into exit 2 covers the catalogue's errors."""
        assert isinstance(raised_by(case), LayerkitError)


# -- the docs table --------------------------------------------------------------------------


HEADER = """\
# Errors: what layerkit refuses, and what it says

layerkit checks what it is given before computing with it. Bad input never ends in a numpy
broadcasting traceback, an `IndexError` from deep inside, or a silent wrong number: it raises
an exception from `layerkit.errors`, each a `LayerkitError` and also a `ValueError` or
`TypeError` (so generic handlers keep working), whose one-line message names the layer or
argument, what was expected and what came. The `layerkit` command prints that line on stderr
and exits with code 2.

| Exception | Raised for |
|---|---|
{classes}

## The rules at the boundary

- **Finite numbers only.** Parameters and inputs entering layerkit must be finite: NaN or Inf in
  `forward`'s `x`, in `unflatten`'s vector, in `Linear.from_arrays`, in a parameter file (and so
  in `save_params`, which would write a file `load_params` refuses) raise `NonFiniteError`. The
  message names what you control: the parameter (`W1 of layer 0 (Linear(4->5))`), the tensor a
  vector entry falls in, or the file and member, never a later activation that inherited the
  NaN. (The checker judges NaN itself, and a NaN never passes.)
- **Masked arrays are refused.** layerkit does not read masks, and ignoring one would compute on
  the masked values: pass `a.filled(value)` or drop the masked rows.
- **Dtypes.** Parameters are float32 or float64; `astype` and `dtype=` refuse anything else
  (float16, longdouble, integers). Data of other real dtypes (integers, booleans, float16) is
  converted to float64.
- **Numbers.** numpy integer and float scalars are accepted wherever Python numbers are (rates,
  epochs, batch sizes, widths, seeds). Seeds are None, a non-negative integer, or a
  `numpy.random.Generator`.
- **All or nothing.** `load_params`, `unflatten` and `fit` check everything before the first
  write; on any error the model (and the optimizer's state, for `fit`) is left as it was.
- **Parameter files are untrusted.** `load_params` reads only the members the model needs,
  checks each header against the model before its data, never decompresses more than the
  model's size, and never reads pickles; any fault of the file is a `ParamFileError` naming the
  file and member.

Every row below is a test case (`tests/test_errors_catalogue.py`): the message shown is the
one the library gives today. This page is generated from those cases; do not edit it by hand,
run `python tests/test_errors_catalogue.py` instead.

## Bad input and the error it raises

| # | Area | Input | Error | Message |
|---|---|---|---|---|
{rows}

## Accepted and converted

Integer and boolean arrays mean numbers: they are converted to float, never refused, and give
exactly what the same values as float64 give. numpy integer and float scalars are accepted
wherever Python numbers are (rates, seeds, epochs, widths).

| Area | Input |
|---|---|
{converted}

## The `layerkit` command

Arguments that make no sense exit with code 2 and one line on stderr (nothing on stdout).

| Command line | stderr |
|---|---|
{cli}
"""


def cell(text: str) -> str:
    """``text`` as a markdown table cell in a code span (pipes escaped)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def render() -> str:
    """docs/errors.md as the cases say it should read."""
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, LayerkitError) and c is not LayerkitError
    ]
    class_rows = "\n".join(
        f"| `{c.__name__}` ({'ValueError' if issubclass(c, ValueError) else 'TypeError'}) | "
        f"{' '.join((c.__doc__ or '').split())} |"
        for c in classes
    )
    rows = "\n".join(
        f"| {number} | {case.area} | {case.given} | `{case.error.__name__}` | "
        f"{cell(str(raised_by(case)))} |"
        for number, case in enumerate(CASES, start=1)
    )
    converted = "\n".join(f"| {c.area} | {c.given} |" for c in CONVERTED)
    cli = "\n".join(
        f"| {cell(' '.join(('layerkit', *c.argv)))} | {cell(run_cli(c.argv)[2].strip())} |"
        for c in CLI_CASES
    )
    return HEADER.format(classes=class_rows, rows=rows, converted=converted, cli=cli)


@pytest.fixture(scope="class")
def rendered() -> str:
    """The catalogue rendered once (it runs every case) for both tests of TestDocsTable."""
    return render()


class TestDocsTable:
    """docs/errors.md is exactly what the catalogue renders."""

    def test_errors_page_is_up_to_date(self, rendered: str) -> None:
        """The page matches the cases and today's messages; regenerate it when they change."""
        expected = rendered
        actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        assert actual == expected, (
            "docs/errors.md is out of date with tests/test_errors_catalogue.py; "
            "regenerate it with: python tests/test_errors_catalogue.py"
        )

    def test_every_case_is_a_row(self, rendered: str) -> None:
        """One table row per case, numbered in order."""
        text = rendered
        for number, case in enumerate(CASES, start=1):
            assert f"| {number} | {case.area} | {case.given} |" in text


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC} ({len(CASES)} cases, {len(CLI_CASES)} command lines)\n")
