"""The checker's speed tricks equal the plain computation, and are refused where they would not.

Stacked forwards must equal one forward per batch, Linear's one-column change and its
outer-product continuation must equal forwards with the moved entry, elementwise layers on
columns must equal their forward, a layer using batch statistics must never be stacked (a
false fail would follow), all within 1e-12 relative; and the slopes the chain evaluator
computes must equal plain forwards' within 1e-10.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_no_mutation import LAYERS  # one factory per built-in layer kind

import layerkit as lk
from layerkit._typing import Array
from layerkit.gradcheck import chain, check_layer, check_model, lowrank
from layerkit.gradcheck.api import _model_objective
from layerkit.gradcheck.chain import ChainObjective, TensorRef
from layerkit.gradcheck.heads import ProjectionHead
from layerkit.gradcheck.shortcuts import ColumnChange, LayerPlan, plan_layer, verified_samplewise
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


class Cube(Layer):
    """``y = x ** 3``: elementwise, but not a layer the checker knows (the generic path)."""

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, Array]:
        return x**3, x

    def backward(self, cache: Array, grad_y: Array) -> tuple[Array, dict[str, Array]]:
        return 3 * cache**2 * grad_y, {}


class Verbatim(Linear):
    """A Linear whose overridden forward (the same arithmetic) gets none of the tricks: its
    moved parameters run dense from the start."""

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, LinearCache]:
        return super().forward(x, noise=noise)


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


def _densified(base: Array, change: ColumnChange) -> Array:
    """The full outputs ``(n, m, k)`` a :class:`ColumnChange` of ``base`` ``(m, k)`` stands for."""
    n = change.cols.shape[0]
    full = np.repeat(base[np.newaxis], n, axis=0)
    full[np.arange(n), :, change.cols] = change.new
    return full


class TestLowRank:
    """Linear's one-column change, its outer-product continuation and elementwise layers on
    columns equal a forward with the moved entry."""

    @pytest.mark.parametrize("param", ["W", "b"])
    def test_moved_entry_changes_one_column(self, param: str) -> None:
        """Each perturbation's column change is the forward with that one entry moved."""
        rng = np.random.default_rng(5)
        layer = Linear(4, 3, seed=6)
        layer.set_params({"W": layer.W, "b": rng.standard_normal(3)})
        x = rng.standard_normal((5, 4))
        y, _ = layer.forward(x)
        size = layer.params()[param].size
        deltas = rng.standard_normal(size) * 1e-3
        plan = plan_layer(layer, x, y, None, None)
        assert plan.perturbed is not None
        got = _densified(y, plan.perturbed(x, y, param, np.arange(size), deltas))
        for k in range(size):
            moved = {name: array.copy() for name, array in layer.params().items()}
            moved[param].reshape(-1)[k] += deltas[k]
            expected, _ = layer.rebound(moved).forward(x)
            assert_close(got[k], expected)

    def test_outer_product_equals_forward(self) -> None:
        """A Linear fed inputs changed in one column each: ``y`` plus an outer product."""
        rng = np.random.default_rng(7)
        layer = Linear(6, 4, seed=8)
        x = rng.standard_normal((5, 6))
        y, _ = layer.forward(x)
        plan = plan_layer(layer, x, y, None, None)
        assert plan.after_column is not None
        change = ColumnChange(np.array([0, 5, 2]), rng.standard_normal((3, 5)))
        got = plan.after_column(x, y, change)
        for k, moved in enumerate(_densified(x, change)):
            assert_close(got[k], layer.forward(moved)[0])

    @pytest.mark.parametrize("kind", [ReLU, Tanh, lk.Sigmoid])
    def test_elementwise_layers_map_columns(self, kind: type[Layer]) -> None:
        """An activation on changed columns equals its forward on the changed inputs."""
        rng = np.random.default_rng(9)
        layer = kind()
        x = rng.standard_normal((5, 4))
        y, _ = layer.forward(x)
        plan = plan_layer(layer, x, y, None, layer.kink_distance(x))
        assert plan.columnwise
        change = ColumnChange(np.array([3, 1]), rng.standard_normal((2, 5)))
        outputs = _densified(y, ColumnChange(change.cols, plan.columns(change.new)))
        for k, moved in enumerate(_densified(x, change)):
            assert_close(outputs[k], layer.forward(moved)[0])

    def test_overridden_forward_gets_no_tricks(self) -> None:
        """A subclass with its own forward runs plainly (even a Linear); one keeping it
        gets the tricks; a layer that is not elementwise is never carried as columns."""

        class Doubled(Linear):
            def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, LinearCache]:
                y, cache = super().forward(x)
                return 2 * y, cache

        class Renamed(Linear):
            pass

        class Softmax(lk.Sigmoid):
            def function(self, x: Array) -> Array:
                e = np.exp(x - x.max(axis=1, keepdims=True))
                return np.asarray(e / e.sum(axis=1, keepdims=True))

        x = np.random.default_rng(10).standard_normal((4, 2))

        def plan(layer: Layer) -> LayerPlan:
            return plan_layer(layer, x, layer.forward(x)[0], None, layer.kink_distance(x))

        assert plan(Doubled(2, 2)).perturbed is None
        assert plan(Doubled(2, 2)).forward is None
        assert plan(Renamed(2, 2)).perturbed is not None
        assert not plan(Softmax()).columnwise
        assert plan(ReLU()).columnwise


class TestChainEquivalence:
    """Slopes from the chain evaluator (stacked, low-rank) equal those of plain forwards."""

    @pytest.mark.parametrize(
        "widths, activation",
        [((5, 7, 4, 3), ReLU), ((3, 6, 6, 2), Tanh), ((4, 5, 1), lk.Sigmoid), ((3, 5, 4, 2), Cube)],
    )
    @pytest.mark.parametrize("budgets", ["default", "tiny"])
    def test_slopes_equal_plain_forwards(
        self,
        widths: tuple[int, ...],
        activation: type,
        budgets: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Every entry's central difference within 1e-10 of the plain path's (relative to the
        largest slope), for MSE and softmax heads, a dropout mask mid-chain and a layer
        check's projection; also when
        tiny chunk budgets cut every chunk to a few entries and split and regroup every dense
        stack, and changes jump Linear-ReLU-Linear tails (how entries are chunked, and which
        path they take, must not change a loss)."""
        if budgets == "tiny":
            monkeypatch.setattr(lowrank, "COLUMN_ELEMENTS", 20)  # 3 entries per chunk (m = 6)
            monkeypatch.setattr(lowrank, "DENSE_ELEMENTS", 64)  # pieces of 1-2 entries
            monkeypatch.setattr(chain, "DENSE_ELEMENTS", 64)
            monkeypatch.setattr(lowrank, "TAIL_MIN_CHANGES", 0)  # ReLU nets: through a tail
        rng = np.random.default_rng(sum(widths))
        layers: list[Layer] = []
        linear = Verbatim if activation is Cube else Linear  # the generic paths together
        for a, b in itertools.pairwise(widths):
            layers += [linear(a, b, seed=a + b), activation()]
        layers.pop()
        layers.insert(2, lk.Dropout(0.3))  # a fixed mask: a layer with noise mid-chain
        m = 6
        x = rng.standard_normal((m, widths[0]))
        losses = [MSELoss(), lk.SoftmaxCrossEntropyLoss()] if widths[-1] > 1 else [MSELoss()]
        for loss in losses:
            model = lk.Sequential(layers, loss=loss)
            y = (
                rng.standard_normal((m, widths[-1]))
                if isinstance(loss, MSELoss)
                else rng.integers(0, widths[-1], size=m)
            )
            objective, _ = _model_objective(model, x, y, 0)
            _assert_equivalent(objective, step=1e-5)
        layer = layers[0]
        refs = {"W": TensorRef(0, "W"), "b": TensorRef(0, "b"), "x": TensorRef(-1, "x")}
        params = {k: np.array(v) for k, v in layer.params().items()}
        out = layer.forward(x)[0]
        head = ProjectionHead(rng.standard_normal(out.shape))
        _assert_equivalent(ChainObjective([layer], [params], refs, x, [None], head), step=1e-5)


def _assert_equivalent(objective: ChainObjective, *, step: float) -> None:
    names = objective.names
    tensors = np.concatenate(
        [np.full(objective.values[n].size, k, dtype=np.intp) for k, n in enumerate(names)]
    )
    flat = np.concatenate([np.arange(objective.values[n].size) for n in names])
    up, _ = objective.entry_losses(tensors, flat, np.full(flat.shape, step))
    down, _ = objective.entry_losses(tensors, flat, np.full(flat.shape, -step))
    fast = (up - down) / (2 * step)
    plain = np.empty_like(fast)
    for k, (tensor, entry) in enumerate(zip(tensors, flat, strict=True)):
        point = {n: v.copy() for n, v in objective.values.items()}
        sides = []
        for sign in (1.0, -1.0):
            point[names[tensor]].reshape(-1)[entry] = (
                objective.values[names[tensor]].reshape(-1)[entry] + sign * step
            )
            sides.append(objective.loss_at(point))
        plain[k] = (sides[0] - sides[1]) / (2 * step)
    scale = float(np.max(np.abs(plain)))
    assert scale > 0
    assert float(np.max(np.abs(fast - plain))) <= 1e-10 * scale
