"""A chain of layers and a head as a checker objective, evaluated many perturbations at a time.

Each batch of perturbed entries runs as one stacked forward; a moved parameter of a Linear
travels as a one-column change (see `layerkit.gradcheck.lowrank`). Every trick is verified
per layer first (`plan_layer`); a layer that mixes samples makes each perturbation run alone.
Kink margins are computed on the way (see `layerkit.gradcheck.kinks`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import numpy as np

from layerkit._backward import checked_backward, layer_label
from layerkit._typing import Array, ArrayLike, Float64Array, IntArray
from layerkit.errors import GradientSpecError
from layerkit.gradcheck.heads import Head
from layerkit.gradcheck.kinks import side_margins
from layerkit.gradcheck.lowrank import DENSE_ELEMENTS, LowRank
from layerkit.gradcheck.objective import Losses, Objective, as_private, random_scaled_signs
from layerkit.gradcheck.shortcuts import OWN_LAYERS, LayerPlan, plan_layer
from layerkit.layers.base import Layer, run_layer


@attrs.frozen
class TensorRef:
    """Where a checked tensor lives in a chain: `layer` index (-1 for the input `x`)."""

    layer: int
    local: str


class ChainObjective(Objective):
    """Layers applied in order to `x`, then a `Head`, on private float64 copies (the layers
    run are shallow copies rebound to them).

    Args:
        layers: The chain's layers.
        params: One dict per layer, local name -> array (copied).
        names: Model name -> `TensorRef` for every tensor to check (`x` included if wanted).
        x: The input batch `(m, in)`.
        noise: One mask or None per layer.
        head: The loss over the last output.
        labels: How errors name each layer (default `layer i (name)`, as in a model).
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
        self.layer_of = np.array([ref.layer for ref in self.refs.values()], dtype=np.intp)
        self._caches: list[Any] = []
        self.inputs: list[Float64Array] = []
        self.outputs: list[Float64Array] = []
        out: Array = self.x
        for layer, mask in zip(self.layers, self.noise, strict=True):
            self.inputs.append(np.asarray(out, dtype=np.float64))
            out, cache = run_layer(layer, out, mask)
            self._caches.append(cache)
            self.outputs.append(np.asarray(out, dtype=np.float64))
        self.out = self.outputs[-1] if self.outputs else self.x
        self.kinks = [self.kinks_of(i, x_in) for i, x_in in enumerate(self.inputs)]
        self.on_kink = [k is not None and bool(np.any(k == 0)) for k in self.kinks]
        self._sides = [None if k is None else (k > 0).reshape(1, -1) for k in self.kinks]
        self.plans = [  # verified here, at the checked point, before any parameter moves
            plan_layer(layer, x_in, y, mask, kinks)
            for layer, x_in, y, mask, kinks in zip(
                self.layers, self.inputs, self.outputs, self.noise, self.kinks, strict=True
            )
        ]
        self.own_code = head.own_code and all(
            type(layer) in OWN_LAYERS and mask is None
            for layer, mask in zip(self.layers, self.noise, strict=True)
        )
        self._lowrank = LowRank(self)
        self._tiled: dict[int, Array] = {}
        self._scratch: dict[str, Float64Array] = {}

    def array_bytes(self, entries: int) -> int:
        """One `(m,)` column per entry probed, and about 8 forwards' activations (the point,
        the noise line, fast mode's directions), in float64."""
        m = self.x.shape[0]
        activations = m * sum(y.shape[1] for y in self.outputs)
        return int(8 * (m * entries + 8 * activations))

    def base_cache(self, index: int) -> tuple[Any, Array]:
        """The cache and the output `(m, out)` of layer `index` at the unperturbed point."""
        return self._caches[index], self.outputs[index]

    def kinks_of(self, index: int, inputs: Array) -> Float64Array | None:
        """Layer `index`'s signed kink distances for `inputs` (None: a smooth layer)."""
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

    def plan(self, index: int) -> LayerPlan:
        """Layer `index`'s verified tricks (verified when the chain was built)."""
        return self.plans[index]

    def _stackable_from(self, start: int) -> bool:
        """True when every layer from `start` may run on stacked batches."""
        return all(plan.samplewise for plan in self.plans[start:])

    def forward_layer(self, index: int, x: Array, noise: Array | None) -> Float64Array:
        """Layer `index` on a batch `(N, k)` with mask `noise` (for those `N` rows)."""
        plain = self.plan(index).forward if noise is None else None
        if plain is not None:
            return plain(np.asarray(x, dtype=np.float64))
        out, _ = run_layer(self.layers[index], x, noise)
        return np.asarray(out, dtype=np.float64)

    def tiled_noise(self, index: int, n: int) -> Array | None:
        """Layer `index`'s mask repeated for `n` stacked batches `(n * m, k)` (a prefix
        of one cached tiling)."""
        mask = self.noise[index]
        if mask is None:
            return None
        tiled = self._tiled.get(index)
        if tiled is None or tiled.shape[0] < n * mask.shape[0]:
            tiled = np.tile(mask, (n, 1))
            self._tiled[index] = tiled
        return tiled[: n * mask.shape[0]]

    def margin(self, index: int, inputs: Array, n: int) -> Float64Array:
        """Kink margins `(n,)` of `n` stacked perturbed inputs `(n * m, k)` of layer
        `index` against the checked point's."""
        base = self.kinks[index]
        if base is None:
            return np.full(n, np.inf)
        moved = self.kinks_of(index, inputs)
        assert moved is not None
        side = self._sides[index]
        return side_margins(base.reshape(1, -1), moved.reshape(n, -1), self.on_kink[index], side)

    def stacked_from(self, start: int, stacked: Float64Array) -> Losses:
        """Layers `start..` on `n` stacked batches `(n, m, k)`: head values, margins."""
        n, m = stacked.shape[:2]
        margins = np.full(n, np.inf)
        out: Float64Array = stacked.reshape(n * m, -1)
        with np.errstate(all="ignore"):
            for index in range(start, len(self.layers)):
                np.minimum(margins, self.margin(index, out, n), out=margins)
                out = self.forward_layer(index, out, self.tiled_noise(index, n))
            return self.head.values(out.reshape(n, m, -1)), margins

    def _run(self, start: int, x: Array, *, margins: bool = True) -> tuple[float, float]:
        """One forward of layers `start..` on `x` `(m, k)`: the loss and the kink margin
        (`inf` without `margins`). The checked point itself (no `margins`) runs the layers'
        own forwards, twice for the determinism guard; moved points run the verified ones."""
        margin = np.inf
        out: Array = x
        for index in range(start, len(self.layers)):
            if margins and self.kinks[index] is not None:
                margin = min(margin, float(self.margin(index, out, 1)[0]))
            if margins:
                out = self.forward_layer(index, out, self.noise[index])
            else:
                out, _ = run_layer(self.layers[index], out, self.noise[index])
        self.evaluations += 1
        return float(self.head.values(np.asarray(out, dtype=np.float64)[np.newaxis])[0]), margin

    def first_loss(self) -> float:
        """The loss of the forward that built the chain (the layers' own forwards)."""
        self.evaluations += 1
        return float(self.head.values(self.out[np.newaxis])[0])

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
        """The inputs `x` moved along random signs times `max(1, |x|)`: all points of the
        line run as one stacked forward (None if a layer mixes samples)."""
        if not self._stackable_from(0):
            return None
        direction = random_scaled_signs(self.x, rng)

        def along(offsets: Float64Array) -> Losses:
            stacked = self.x[np.newaxis] + offsets[:, np.newaxis, np.newaxis] * direction
            self.evaluations += offsets.shape[0]
            return self.stacked_from(0, stacked)

        return along

    def direction_losses(
        self, direction: Mapping[str, Float64Array], offsets: Float64Array
    ) -> Losses:
        """Losses at `values + t * direction` for each `t` in `offsets`, built in reused
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
        """Rebind each layer's parameters to `params` (one dict per layer)."""
        for layer, arrays in zip(self.layers, params, strict=True):
            if arrays:
                layer.set_params(arrays)

    def analytic(self) -> dict[str, Float64Array]:
        grad: Array = self.head.grad(self.out)
        local: dict[int, dict[str, Array]] = {}
        for index in reversed(range(len(self.layers))):
            grad, local[index] = checked_backward(
                self.layers[index].backward(self._caches[index], grad),
                label=partial(self.labels.__getitem__, index),
                x_shape=self.inputs[index].shape,
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
        """Losses for entries of any tensors: entries of `x` run on their moved rows;
        parameter entries, sorted by layer, run in chunks of one stacked forward each
        (`_chunk_losses`); entries whose chain mixes samples run one at a time."""
        n = tensors.shape[0]
        result, margins = np.empty(n), np.empty(n)
        layer_of = self.layer_of[tensors]
        stackable = np.array([self._stackable_from(max(int(i), 0)) for i in self.layer_of])
        for k in np.flatnonzero(~stackable[tensors]):
            ref = self.refs[self.names[tensors[k]]]
            result[k], margins[k] = self._one_perturbation(ref, int(flat_indices[k]), offsets[k])
        m = self.x.shape[0]
        widest = max([self.x.shape[1]] + [y.shape[1] for y in self.outputs] + [1])
        rows = np.flatnonzero(stackable[tensors] & (layer_of < 0))
        size = max(1, DENSE_ELEMENTS // max(widest, m))
        for lo in range(0, rows.shape[0], size):
            ids = rows[lo : lo + size]
            result[ids], margins[ids] = self._row_losses(flat_indices[ids], offsets[ids])
        chosen = np.flatnonzero(stackable[tensors] & (layer_of >= 0))
        chosen = chosen[np.lexsort((tensors[chosen], layer_of[chosen]))]
        per_layer = np.bincount(layer_of[chosen], minlength=len(self.layers))
        self._lowrank.earlier_entries = np.concatenate([[0], np.cumsum(per_layer)])
        for ids in self._chunks(chosen, layer_of[chosen]):
            result[ids], margins[ids] = self._lowrank.chunk_losses(
                tensors[ids], flat_indices[ids], offsets[ids]
            )
        self.evaluations += rows.shape[0] + chosen.shape[0]
        return result, margins

    def _chunks(self, chosen: IntArray, layers: IntArray) -> list[IntArray]:
        """`chosen` entries (sorted by their `layers`) cut into chunks, each filled up to one
        chunk's worth of `LowRank.chunk_share`s (at least one entry per chunk)."""
        starts = np.searchsorted(layers, np.arange(len(self.layers) + 1))
        chunks: list[IntArray] = []
        parts: list[IntArray] = []
        used = 0.0
        for index in range(len(self.layers)):
            share = self._lowrank.chunk_share(index)
            lo, hi = int(starts[index]), int(starts[index + 1])
            while lo < hi:
                room = int((1.0 - used) / share)
                if room < 1 and parts:
                    chunks.append(np.concatenate(parts))
                    parts, used = [], 0.0
                    continue
                take = min(max(room, 1), hi - lo)
                parts.append(chosen[lo : lo + take])
                used += take * share
                lo += take
        if parts:
            chunks.append(np.concatenate(parts))
        return chunks

    def perturbed_outputs(
        self, index: int, local: str, flat_indices: IntArray, offsets: Float64Array
    ) -> Float64Array:
        """Layer `index`'s outputs with `local.flat[flat_indices[j]]` moved by
        `offsets[j]`, one forward each, stacked `(n * m, out)`."""
        array = self.layer_params[index][local].reshape(-1)
        outputs = []
        for entry, offset in zip(flat_indices, offsets, strict=True):
            old = array[entry]
            array[entry] = old + offset
            try:
                y, _ = run_layer(self.layers[index], self.inputs[index], self.noise[index])
            finally:
                array[entry] = old
            outputs.append(np.asarray(y, dtype=np.float64))
        return np.concatenate(outputs)

    def _row_losses(self, flat_indices: IntArray, offsets: Float64Array) -> Losses:
        """Losses with `x.flat[flat_indices[k]] += offsets[k]`: every layer is samplewise, so
        only that entry's row changes; the layers run on the `n` moved rows `(n, in)` and
        the head replaces one row of the base output each (`O(m)` per perturbation)."""
        n = flat_indices.shape[0]
        rows, cols = np.divmod(flat_indices, self.x.shape[1])
        out: Float64Array = self.x[rows]
        out[np.arange(n), cols] += offsets
        margins = np.full(n, np.inf)
        with np.errstate(all="ignore"):
            for index, base in enumerate(self.kinks):
                if base is not None:
                    moved = self.kinks_of(index, out)
                    assert moved is not None
                    found = side_margins(base[rows], moved, self.on_kink[index])
                    np.minimum(margins, found, out=margins)
                mask = self.noise[index]
                out = self.forward_layer(index, out, None if mask is None else mask[rows])
            return self.head.replaced_rows(self.out, rows, out), margins

    def _one_perturbation(self, ref: TensorRef, index: int, offset: float) -> tuple[float, float]:
        """The loss with one entry moved, run unstacked (for layers that mix samples); and
        its kink margin."""
        array = (self.x if ref.layer < 0 else self.layer_params[ref.layer][ref.local]).reshape(-1)
        old = array[index]
        array[index] = old + offset
        try:
            start = max(ref.layer, 0)
            return self._run(start, self.x if ref.layer < 0 else self.inputs[start])
        finally:
            array[index] = old
