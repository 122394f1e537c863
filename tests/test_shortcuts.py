"""The checker's speed tricks equal the plain computation, and are refused where they would not.

Stacked forwards must equal one forward per batch, Linear's rank-one shortcut must equal a
forward with the moved entry, and a layer using batch statistics must never be stacked (a
false fail would follow); all within 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_no_mutation import LAYERS  # one factory per built-in layer kind

import layerkit as lk
from layerkit._typing import Array
from layerkit.gradcheck import check_layer, check_model
from layerkit.gradcheck.shortcuts import shortcut_for, verified_samplewise
from layerkit.layers import Layer, Linear, ReLU, Tanh
from layerkit.layers.linear import LinearCache
from layerkit.losses import MSELoss

RTOL = 1e-12


def assert_close(got: Array, expected: Array) -> None:
    """Equal within RTOL of the expected values' scale."""
    scale = float(np.max(np.abs(expected), initial=0.0))
    assert float(np.max(np.abs(got - expected), initial=0.0)) <= RTOL * scale


class Center(Layer):
    """``y = x - mean(x, axis=0)``: mixes samples through a batch statistic."""

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, None]:
        return x - x.mean(axis=0), None

    def backward(self, cache: None, grad_y: Array) -> tuple[Array, dict[str, Array]]:
        return grad_y - grad_y.mean(axis=0), {}


class TestStacking:
    """Stacked batches equal unstacked ones for the built-in layers; not for batch statistics."""

    @pytest.mark.parametrize("kind", sorted(LAYERS))
    def test_stacked_equals_unstacked(self, kind: str) -> None:
        """Three batches through one stacked forward give each batch's own output."""
        layer = LAYERS[kind]()
        rng = np.random.default_rng(0)
        batches = [rng.standard_normal((5, 4)) for _ in range(3)]
        mask = layer.sample_noise(batches[0], rng)
        tiled = None if mask is None else np.tile(mask, (3, 1))
        stacked, _ = layer.forward(np.concatenate(batches), noise=tiled)
        alone = [layer.forward(b, noise=mask)[0] for b in batches]
        assert_close(stacked, np.concatenate(alone))
        y, _ = layer.forward(batches[0], noise=mask)
        assert verified_samplewise(layer, batches[0], y, mask)

    def test_batch_statistics_are_not_stacked(self) -> None:
        """A layer subtracting the batch mean fails the verification."""
        x = np.random.default_rng(1).standard_normal((6, 3))
        assert not verified_samplewise(Center(), x, Center().forward(x)[0], None)

    def test_batch_statistics_never_give_a_false_fail(self) -> None:
        """A correct layer using batch statistics passes: the checker runs it unstacked."""
        rng = np.random.default_rng(2)
        model = lk.Sequential(Tanh(), Linear(3, 4, seed=3), Tanh(), Center(), Linear(4, 2, seed=4),
                              loss=MSELoss())  # fmt: skip
        x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
        assert check_model(model, x, y).verdict == "pass"
        assert check_layer(Center(), x).verdict == "pass"


class TestLinearShortcut:
    """Linear's rank-one update equals a forward with the moved entry."""

    @pytest.mark.parametrize("param", ["W", "b"])
    def test_shortcut_equals_plain_forward(self, param: str) -> None:
        """Each row of the shortcut is the forward with that one entry moved."""
        rng = np.random.default_rng(5)
        layer = Linear(4, 3, seed=6)
        layer.set_params({"W": layer.W, "b": rng.standard_normal(3)})
        x = rng.standard_normal((5, 4))
        y, _ = layer.forward(x)
        size = layer.params()[param].size
        indices = np.arange(size)
        deltas = rng.standard_normal(size) * 1e-3
        fast = shortcut_for(layer)
        assert fast is not None
        got = fast(layer, x, y, param, indices, deltas)
        for k in range(size):
            moved = {name: array.copy() for name, array in layer.params().items()}
            moved[param].reshape(-1)[k] += deltas[k]
            expected, _ = layer.rebound(moved).forward(x)
            assert_close(got[k], expected)

    def test_subclass_overriding_forward_gets_no_shortcut(self) -> None:
        """A Linear subclass with its own forward is run plainly; one keeping it is not."""

        class Doubled(Linear):
            def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, LinearCache]:
                y, cache = super().forward(x)
                return 2 * y, cache

        class Renamed(Linear):
            pass

        assert shortcut_for(Doubled(2, 2)) is None
        assert shortcut_for(Renamed(2, 2)) is not None
        assert shortcut_for(ReLU()) is None
