"""A chain of layers and a head as a checker objective, evaluated many perturbations at a time.

Each batch of perturbed entries runs as one stacked forward. A moved parameter of a Linear
travels as a one-column change (:class:`~layerkit.gradcheck.shortcuts.ColumnChange`) through
elementwise layers and becomes dense at the next Linear, as an outer product; only the layers
after that run on the stack. Every trick is verified per layer first
(:func:`~layerkit.gradcheck.shortcuts.plan_layer`); a layer that mixes samples makes each
perturbation run alone. Kink margins are computed on the way (see :func:`kink_margins`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import numpy as np

from layerkit._backward import checked_backward, layer_label
from layerkit._typing import Array, ArrayLike, BoolArray, Float64Array, IntArray
from layerkit.errors import GradientSpecError
from layerkit.gradcheck.heads import Head
from layerkit.gradcheck.objective import Losses, Objective, as_private
from layerkit.gradcheck.shortcuts import (
    ColumnChange,
    LayerPlan,
    LinearTail,
    linear_tail,
    plan_layer,
)
from layerkit.layers.activations import ReLU
from layerkit.layers.base import Layer, run_layer
from layerkit.layers.linear import Linear

CHUNK_ELEMENTS = 1 << 19
"""Largest stacked activation (in float64 entries) one batched evaluation may build."""


@attrs.frozen
class TensorRef:
    """Where a checked tensor lives in a chain: ``layer`` index (-1 for the input ``x``)."""

    layer: int
    local: str


def kink_margins(base: Float64Array, moved: Float64Array) -> Float64Array:
    """Per row of ``moved`` ``(n, k)``, the smallest ``|base| / |moved - base|`` over its
    entries (``base`` ``(n, k)`` or ``(1, k)``): above 1, each entry moved less than its
    distance from its kink (to first order, it stayed on its side); 0, an entry on a kink
    moved; ``inf``, nothing moved."""
    delta = np.abs(moved - base)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(base) / delta
    ratio[delta == 0] = np.inf
    return np.asarray(np.min(ratio, axis=1, initial=np.inf))


def _side_margins(
    base: Float64Array, moved: Float64Array, on_kink: bool, side: BoolArray | None = None
) -> Float64Array:
    """:func:`kink_margins`, computed only for rows where a cheap test (an entry changed side,
    or moved off a kink it sat on) says it can be small; ``inf`` for the others. ``side`` is
    ``base > 0``, if known."""
    suspect = np.any(np.not_equal(moved > 0, base > 0 if side is None else side), axis=1)
    if on_kink:
        suspect |= np.any((base == 0) & (moved != base), axis=1)
    margins = np.full(moved.shape[0], np.inf)
    if np.any(suspect):
        chosen = np.flatnonzero(suspect)
        margins[chosen] = kink_margins(base if base.shape[0] == 1 else base[chosen], moved[chosen])
    return margins


class ChainObjective(Objective):
    """Layers applied in order to ``x`` then a :class:`~layerkit.gradcheck.heads.Head`, on
    private float64 copies (the layers run are shallow copies rebound to them).

    **Arguments:** ``layers``; ``params`` one dict per layer (local name -> array; copied);
    ``names`` model name -> :class:`TensorRef` for every tensor to check (``x`` included if
    wanted); ``x`` ``(m, in)``; ``noise`` one mask or None per layer; ``head``; ``labels``
    how errors name each layer (default ``layer i (name)``, as in a model).
    """

    merges_tensors = True

    def __init__(
        self,
        layers: Sequence[Layer],
        params: Sequence[Mapping[str, ArrayLike]],
        names: Mapping[str, TensorRef],
        x: ArrayLike,
        noise: Sequence[Array | None],
        head: Head,
        *,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.labels = tuple(labels or (layer_label(i, la) for i, la in enumerate(layers)))
        self.layer_params = [
            {local: as_private(v, f"{layer.name}.{local}") for local, v in p.items()}
            for layer, p in zip(layers, params, strict=True)
        ]
        self.layers = tuple(
            layer.rebound(p) for layer, p in zip(layers, self.layer_params, strict=True)
        )
        self.x = as_private(x, "x")
        self.noise = [None if n is None else np.asarray(n, dtype=np.float64) for n in noise]
        self.head = head
        self.refs = dict(names)
        self.names = tuple(self.refs)
        self.values = {
            name: self.x if ref.layer < 0 else self.layer_params[ref.layer][ref.local]
            for name, ref in self.refs.items()
        }
        self._layer_of = np.array([ref.layer for ref in self.refs.values()], dtype=np.intp)
        self._caches: list[Any] = []
        self._inputs: list[Float64Array] = []
        self._outputs: list[Float64Array] = []
        out: Array = self.x
        for layer, mask in zip(self.layers, self.noise, strict=True):
            self._inputs.append(np.asarray(out, dtype=np.float64))
            out, cache = run_layer(layer, out, mask)
            self._caches.append(cache)
            self._outputs.append(np.asarray(out, dtype=np.float64))
        self._out = self._outputs[-1] if self._outputs else self.x
        self._kinks = [self._kinks_of(i, x_in) for i, x_in in enumerate(self._inputs)]
        self._on_kink = [k is not None and bool(np.any(k == 0)) for k in self._kinks]
        self._sides = [None if k is None else (k > 0).reshape(1, -1) for k in self._kinks]
        self._plans: dict[int, LayerPlan] = {}
        self._tails: dict[int, LinearTail | None] = {}
        self._widths: dict[int, int] = {}
        self._tiled: dict[int, Array] = {}
        self._scratch: dict[str, Float64Array] = {}

    def base_cache(self, index: int) -> tuple[Any, Array]:
        """The cache and the output ``(m, out)`` of layer ``index`` at the unperturbed point."""
        return self._caches[index], self._outputs[index]

    def _kinks_of(self, index: int, inputs: Array) -> Float64Array | None:
        """Layer ``index``'s signed kink distances for ``inputs`` (None: a smooth layer)."""
        distance = self.layers[index].kink_distance(inputs)
        if distance is None:
            return None
        result = np.asarray(distance, dtype=np.float64)
        if result.shape != np.shape(inputs):
            msg = (
                f"{self.layers[index].name}.kink_distance returned shape {result.shape} for an "
                f"input of shape {np.shape(inputs)}; it must return one distance per input."
            )
            raise GradientSpecError(msg)
        return result

    def _plan(self, index: int) -> LayerPlan:
        """Layer ``index``'s verified tricks (verified once, at the checked point)."""
        plan = self._plans.get(index)
        if plan is None:
            args = (self._inputs[index], self._outputs[index], self.noise[index])
            plan = plan_layer(self.layers[index], *args, self._kinks[index])
            self._plans[index] = plan
        return plan

    def _dense_width(self, index: int) -> int:
        """The widest stack row ``(k,)`` a parameter of layer ``index`` may need: the width of
        each output it changes densely (a one-column change costs no width)."""
        if index not in self._widths:
            plans = [self._plan(i) for i in range(index, len(self.layers))]
            columns = plans[0].perturbed is not None
            width = 1
            for plan, y in zip(plans, self._outputs[index:], strict=True):
                if columns and (plan.columnwise or plan is plans[0]):
                    continue
                columns = False
                width = max(width, y.shape[1])
            self._widths[index] = width
        return self._widths[index]

    def _stackable_from(self, start: int) -> bool:
        """True when every layer from ``start`` may run on stacked batches."""
        return all(self._plan(i).samplewise for i in range(start, len(self.layers)))

    def _forward(self, index: int, x: Array, noise: Array | None) -> Float64Array:
        """Layer ``index`` on a batch ``(N, k)`` with mask ``noise`` (for those ``N`` rows)."""
        plain = self._plan(index).forward if noise is None else None
        if plain is not None:
            return plain(np.asarray(x, dtype=np.float64))
        out, _ = run_layer(self.layers[index], x, noise)
        return np.asarray(out, dtype=np.float64)

    def _tiled_noise(self, index: int, n: int) -> Array | None:
        """Layer ``index``'s mask repeated for ``n`` stacked batches ``(n * m, k)`` (a prefix
        of one cached tiling)."""
        mask = self.noise[index]
        if mask is None:
            return None
        tiled = self._tiled.get(index)
        if tiled is None or tiled.shape[0] < n * mask.shape[0]:
            tiled = np.tile(mask, (n, 1))
            self._tiled[index] = tiled
        return tiled[: n * mask.shape[0]]

    def _margin(self, index: int, inputs: Array, n: int) -> Float64Array:
        """Kink margins ``(n,)`` of ``n`` stacked perturbed inputs ``(n * m, k)`` of layer
        ``index`` against the checked point's."""
        base = self._kinks[index]
        if base is None:
            return np.full(n, np.inf)
        moved = self._kinks_of(index, inputs)
        assert moved is not None
        side = self._sides[index]
        return _side_margins(base.reshape(1, -1), moved.reshape(n, -1), self._on_kink[index], side)

    def _stacked_from(self, start: int, stacked: Float64Array) -> Losses:
        """Layers ``start..`` on ``n`` stacked batches ``(n, m, k)``: head values, margins."""
        n, m = stacked.shape[:2]
        margins = np.full(n, np.inf)
        out: Float64Array = stacked.reshape(n * m, -1)
        with np.errstate(all="ignore"):
            for index in range(start, len(self.layers)):
                np.minimum(margins, self._margin(index, out, n), out=margins)
                out = self._forward(index, out, self._tiled_noise(index, n))
            return self.head.values(out.reshape(n, m, -1)), margins

    def _run(self, start: int, x: Array, *, margins: bool = True) -> tuple[float, float]:
        """One forward of layers ``start..`` on ``x`` ``(m, k)``: the loss and the kink
        margin (``inf`` without ``margins``)."""
        margin = np.inf
        out: Array = x
        for index in range(start, len(self.layers)):
            if margins and self._kinks[index] is not None:
                margin = min(margin, float(self._margin(index, out, 1)[0]))
            out, _ = run_layer(self.layers[index], out, self.noise[index])
        self.evaluations += 1
        return float(self.head.values(np.asarray(out, dtype=np.float64)[np.newaxis])[0]), margin

    def loss_at(self, point: Mapping[str, Float64Array]) -> float:
        if point is self.values:  # the point itself (base_loss): nothing to swap in
            return self._run(0, self.x, margins=False)[0]
        saved = {name: self.values[name].copy() for name in self.names}
        try:
            for name in self.names:
                self.values[name][...] = point[name]
            return self._run(0, self.x)[0]
        finally:
            for name in self.names:
                self.values[name][...] = saved[name]

    def input_line(self, rng: np.random.Generator) -> Callable[[Float64Array], Losses] | None:
        """The inputs ``x`` moved along random signs times ``max(1, |x|)``: all points of the
        line run as one stacked forward (None if a layer mixes samples)."""
        if not self._stackable_from(0):
            return None
        signs = np.where(rng.integers(0, 2, size=self.x.shape) == 1, 1.0, -1.0)
        direction = signs * np.maximum(np.abs(self.x), 1.0)

        def along(offsets: Float64Array) -> Losses:
            stacked = self.x[np.newaxis] + offsets[:, np.newaxis, np.newaxis] * direction
            self.evaluations += offsets.shape[0]
            return self._stacked_from(0, stacked)

        return along

    def direction_losses(
        self, direction: Mapping[str, Float64Array], offsets: Float64Array
    ) -> Losses:
        """Losses at ``values + t * direction`` for each ``t`` in ``offsets``, built in reused
        scratch arrays (the checked point is never written); and their kink margins."""
        if not self._scratch:
            self._scratch = {name: np.empty_like(self.values[name]) for name in self.names}
        params = [dict(p) for p in self.layer_params]
        x = self.x
        for name, ref in self.refs.items():
            if ref.layer < 0:
                x = self._scratch[name]
            else:
                params[ref.layer][ref.local] = self._scratch[name]
        result = np.empty(offsets.shape[0])
        margins = np.empty(offsets.shape[0])
        try:
            self._bind(params)
            for k, t in enumerate(offsets):
                for name in self.names:
                    moved = self._scratch[name]
                    np.multiply(direction[name], t, out=moved)
                    np.add(self.values[name], moved, out=moved)
                result[k], margins[k] = self._run(0, x)
        finally:
            self._bind(self.layer_params)
        return result, margins

    def _bind(self, params: Sequence[Mapping[str, Float64Array]]) -> None:
        """Rebind each layer's parameters to ``params`` (one dict per layer)."""
        for layer, arrays in zip(self.layers, params, strict=True):
            if arrays:
                layer.set_params(arrays)

    def analytic(self) -> dict[str, Float64Array]:
        grad: Array = self.head.grad(self._out)
        local: dict[int, dict[str, Array]] = {}
        for index in reversed(range(len(self.layers))):
            grad, local[index] = checked_backward(
                self.layers[index].backward(self._caches[index], grad),
                label=partial(self.labels.__getitem__, index),
                x_shape=self._inputs[index].shape,
                params=self.layer_params[index],
            )
        return {
            name: np.array(grad if ref.layer < 0 else local[ref.layer][ref.local], np.float64)
            for name, ref in self.refs.items()
        }

    def coordinate_losses(self, name: str, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        tensors = np.full(flat_indices.shape[0], self.names.index(name), dtype=np.intp)
        return self.entry_losses(tensors, flat_indices, offsets)

    def entry_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses for entries of any tensors: entries of ``x`` run on their moved rows;
        parameter entries, sorted by layer, run in chunks of one stacked forward each
        (:meth:`_chunk_losses`); entries whose chain mixes samples run one at a time."""
        n = tensors.shape[0]
        result, margins = np.empty(n), np.empty(n)
        layer_of = self._layer_of[tensors]
        stackable = np.array([self._stackable_from(max(int(i), 0)) for i in self._layer_of])
        for k in np.flatnonzero(~stackable[tensors]):
            ref = self.refs[self.names[tensors[k]]]
            result[k], margins[k] = self._one_perturbation(ref, int(flat_indices[k]), offsets[k])
        m = self.x.shape[0]
        widest = max([self.x.shape[1]] + [y.shape[1] for y in self._outputs] + [1])
        rows = np.flatnonzero(stackable[tensors] & (layer_of < 0))
        size = max(1, CHUNK_ELEMENTS // max(widest, m))
        for lo in range(0, rows.shape[0], size):
            ids = rows[lo : lo + size]
            result[ids], margins[ids] = self._row_losses(flat_indices[ids], offsets[ids])
        chosen = np.flatnonzero(stackable[tensors] & (layer_of >= 0))
        chosen = chosen[np.lexsort((tensors[chosen], layer_of[chosen]))]
        cost = np.array([m * self._dense_width(int(i)) for i in layer_of[chosen]])
        cuts = np.flatnonzero(np.diff(np.cumsum(cost) // CHUNK_ELEMENTS)) + 1
        for ids in np.split(chosen, cuts) if chosen.shape[0] else []:
            result[ids], margins[ids] = self._chunk_losses(
                tensors[ids], flat_indices[ids], offsets[ids]
            )
        self.evaluations += rows.shape[0] + chosen.shape[0]
        return result, margins

    def _chunk_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses for parameter entries sorted by (layer, tensor), each entry's perturbation
        carried from its layer on as a one-column change while it stays one, then densely on
        one stack with the others."""
        m = self.x.shape[0]
        margins = np.full(tensors.shape[0], np.inf)
        layer_of = self._layer_of[tensors]
        dense: list[tuple[IntArray, Float64Array]] = []
        columns: list[tuple[IntArray, ColumnChange]] = []
        with np.errstate(all="ignore"):
            waiting: dict[int, list[tuple[IntArray, Float64Array]]] = {}
            for index in range(int(layer_of[0]), len(self.layers)):
                dense, columns = self._advance(index, dense, columns, margins, waiting)
                dense.extend(waiting.pop(index, []))
                plan = self._plan(index)
                for tensor in np.unique(tensors[layer_of == index]):
                    ids = np.flatnonzero(tensors == tensor)
                    local = self.refs[self.names[tensor]].local
                    args = (local, flat_indices[ids], offsets[ids])
                    if plan.perturbed is not None:
                        x_in, y = self._inputs[index], self._outputs[index]
                        columns.append((ids, plan.perturbed(x_in, y, *args)))
                    else:
                        dense.append((ids, self._perturbed_outputs(index, *args)))
            result = np.empty(tensors.shape[0])
            for ids, out in dense:
                result[ids] = self.head.values(out.reshape(ids.shape[0], m, -1))
            for ids, change in columns:
                result[ids] = self.head.replaced_columns(self._out, change.cols, change.new)
        return result, margins

    def _advance(
        self,
        index: int,
        dense: list[tuple[IntArray, Float64Array]],
        columns: list[tuple[IntArray, ColumnChange]],
        margins: Float64Array,
        waiting: dict[int, list[tuple[IntArray, Float64Array]]],
    ) -> tuple[list[tuple[IntArray, Float64Array]], list[tuple[IntArray, ColumnChange]]]:
        """Carry perturbed inputs of layer ``index`` through it: dense stacks ``(r * m, k)``
        stay dense; one-column changes stay so through an elementwise layer, else turn dense
        (an outer product for a Linear), or jump a whole Linear-ReLU-Linear
        (:class:`~layerkit.gradcheck.shortcuts.LinearTail`) into ``waiting`` at the layer
        they reach, when they cross no kink. Lowers ``margins`` at kinks on the way."""
        plan, base = self._plan(index), self._kinks[index]
        carried: list[tuple[IntArray, Float64Array]] = []
        if dense:
            ids = np.concatenate([d[0] for d in dense]) if len(dense) > 1 else dense[0][0]
            out = np.concatenate([d[1] for d in dense]) if len(dense) > 1 else dense[0][1]
            margins[ids] = np.minimum(margins[ids], self._margin(index, out, ids.shape[0]))
            carried.append((ids, self._forward(index, out, self._tiled_noise(index, ids.shape[0]))))
        kept: list[tuple[IntArray, ColumnChange]] = []
        x_in, y = self._inputs[index], self._outputs[index]
        for ids, change in columns:
            if plan.columnwise:
                moved = plan.column_kinks(change.new)
                if base is not None and moved is not None:
                    reference = base[:, change.cols].T
                    found = _side_margins(reference, moved, self._on_kink[index])
                    margins[ids] = np.minimum(margins[ids], found)
                kept.append((ids, ColumnChange(change.cols, plan.columns(change.new))))
            elif plan.after_column is not None:
                ids, change = self._jump(index, ids, change, margins, waiting)
                if ids.shape[0]:
                    dense_out = plan.after_column(x_in, y, change)
                    carried.append((ids, dense_out.reshape(-1, y.shape[1])))
            else:
                n = ids.shape[0]
                stacked = np.repeat(x_in[np.newaxis], n, axis=0)
                stacked[np.arange(n), :, change.cols] = change.new
                flat = stacked.reshape(n * x_in.shape[0], -1)
                margins[ids] = np.minimum(margins[ids], self._margin(index, flat, n))
                carried.append((ids, self._forward(index, flat, self._tiled_noise(index, n))))
        return carried, kept

    def _jump(
        self,
        index: int,
        ids: IntArray,
        change: ColumnChange,
        margins: Float64Array,
        waiting: dict[int, list[tuple[IntArray, Float64Array]]],
    ) -> tuple[IntArray, ColumnChange]:
        """Send the changes of Linear ``index``'s input that cross no kink of the ReLU after it
        through its :class:`~layerkit.gradcheck.shortcuts.LinearTail` to ``waiting``; return
        the others (all of them when the layers have no tail)."""
        tail = self._tail(index)
        if tail is None:
            return ids, change
        moved = change.new - self._inputs[index][:, change.cols].T
        out, found = tail.outputs(change.cols, moved)
        clear = found > 1
        if np.any(clear):
            margins[ids[clear]] = np.minimum(margins[ids[clear]], found[clear])
            width = tail.output.shape[1]
            waiting.setdefault(index + 2, []).append((ids[clear], out[clear].reshape(-1, width)))
        rest = ~clear
        return ids[rest], ColumnChange(change.cols[rest], change.new[rest])

    def _tail(self, index: int) -> LinearTail | None:
        """The verified tail of layers ``index..index + 2`` (Linear, ReLU, Linear), if any."""
        if index not in self._tails:
            tail = None
            trio = self.layers[index : index + 3]
            plain = len(trio) == 3 and all(self.noise[i] is None for i in range(index, index + 3))
            if (
                plain
                and isinstance(trio[0], Linear)
                and type(trio[1]) is ReLU
                and isinstance(trio[2], Linear)
                and self._plan(index).after_column is not None
                and self._plan(index + 2).forward is not None
            ):
                z, out = self._outputs[index], self._outputs[index + 2]
                tail = linear_tail(trio[0], z, trio[2], out)
            self._tails[index] = tail
        return self._tails[index]

    def _perturbed_outputs(
        self, index: int, local: str, flat_indices: IntArray, offsets: Float64Array
    ) -> Float64Array:
        """Layer ``index``'s outputs with ``local.flat[flat_indices[j]]`` moved by
        ``offsets[j]``, one forward each, stacked ``(n * m, out)``."""
        array = self.layer_params[index][local].reshape(-1)
        outputs = []
        for entry, offset in zip(flat_indices, offsets, strict=True):
            old = array[entry]
            array[entry] = old + offset
            try:
                y, _ = run_layer(self.layers[index], self._inputs[index], self.noise[index])
            finally:
                array[entry] = old
            outputs.append(np.asarray(y, dtype=np.float64))
        return np.concatenate(outputs)

    def _row_losses(self, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        """Losses with ``x.flat[flat_indices[k]] += offsets[k]``: every layer is samplewise, so
        only that entry's row changes; the layers run on the ``n`` moved rows ``(n, in)`` and
        the head replaces one row of the base output each (``O(m)`` per perturbation)."""
        n = flat_indices.shape[0]
        rows, cols = np.divmod(flat_indices, self.x.shape[1])
        out: Float64Array = self.x[rows]
        out[np.arange(n), cols] += offsets
        margins = np.full(n, np.inf)
        with np.errstate(all="ignore"):
            for index, base in enumerate(self._kinks):
                if base is not None:
                    moved = self._kinks_of(index, out)
                    assert moved is not None
                    found = _side_margins(base[rows], moved, self._on_kink[index])
                    np.minimum(margins, found, out=margins)
                mask = self.noise[index]
                out = self._forward(index, out, None if mask is None else mask[rows])
            return self.head.replaced_rows(self._out, rows, out), margins

    def _one_perturbation(self, ref: TensorRef, index: int, offset: float) -> tuple[float, float]:
        """The loss with one entry moved, run unstacked (for layers that mix samples); and
        its kink margin."""
        array = (self.x if ref.layer < 0 else self.layer_params[ref.layer][ref.local]).reshape(-1)
        old = array[index]
        array[index] = old + offset
        try:
            start = max(ref.layer, 0)
            return self._run(start, self.x if ref.layer < 0 else self._inputs[start])
        finally:
            array[index] = old
