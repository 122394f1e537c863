"""Low-rank propagation: the chain evaluator's stacked run of many perturbed entries.

A moved entry of a Linear's `W` or `b` changes one column of its output. The change travels
as a [`ColumnChange`][layerkit.gradcheck.shortcuts.ColumnChange] through elementwise layers,
turns dense at the next Linear (an outer product), or jumps a whole Linear-ReLU-Linear
([`LinearTail`][layerkit.gradcheck.shortcuts.LinearTail]) while it crosses no kink. Only what
is dense runs layer by layer, all perturbations of a chunk stacked in one forward.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

from layerkit._typing import Float64Array, IntArray
from layerkit.gradcheck.kinks import side_margins
from layerkit.gradcheck.objective import Losses
from layerkit.gradcheck.shortcuts import ColumnChange, LinearTail, linear_tail
from layerkit.layers.activations import ReLU
from layerkit.layers.linear import Linear

if TYPE_CHECKING:
    from layerkit.gradcheck.chain import ChainObjective

COLUMN_ELEMENTS = 12 * 1024
"""Largest stack of changed columns `(n, m)` (float64 entries, 96 KiB) one chunk carries: its
many elementwise temporaries stay below glibc's default mmap threshold (128 KiB) and in the
CPU's cache, so they are reused heap memory, never freshly mapped pages."""
DENSE_ELEMENTS = 1 << 19
"""Largest dense stack `(n * m, k)` (float64 entries, 4 MiB) one forward of a layer takes:
large enough that the layer's matmul, not Python, sets the cost."""

Columns = list[tuple[IntArray, ColumnChange]]
"""One-column perturbed outputs: `(entries (r,), change)` pairs."""


TAIL_MIN_CHANGES = 128
"""Fewest changes a `LinearTail` is built for (below, the dense path is cheaper)."""


class LowRank:
    """Evaluates chunks of parameter entries of one [`ChainObjective`][] chain."""

    def __init__(self, chain: ChainObjective) -> None:
        self.chain = weakref.proxy(
            chain
        )  # the chain owns this: no reference cycle to keep it alive
        self._tails: dict[int, LinearTail | None] = {}
        self._shares: dict[int, float] = {}
        self.earlier_entries = np.zeros(len(chain.layers) + 1, dtype=np.intp)
        """Per layer index, how many entries of the current call belong to earlier layers
        (an upper bound on the changes that reach it; set by the chain per call)."""

    def chunk_share(self, index: int) -> float:
        """The share of one chunk an entry of layer `index` takes. A change carried as a
        column takes `m` of `COLUMN_ELEMENTS` per row width it must carry: 1 for a column,
        the widest output after a `LinearTail` it may jump, or the last output's width when
        the head needs full outputs (the changes that turn dense on the way are split into
        stacks of `DENSE_ELEMENTS`). A change dense from the start takes `m` times the
        widest output from its layer on, of `DENSE_ELEMENTS`."""
        if index not in self._shares:
            m, outputs = self.chain.x.shape[0], self.chain.outputs
            if self.chain.plan(index).perturbed is None:
                width = max(y.shape[1] for y in outputs[index:])
                self._shares[index] = m * width / DENSE_ELEMENTS
                return self._shares[index]
            width = self.chain.head.column_width(outputs[-1].shape[1])
            for later in range(index + 1, len(self.chain.layers)):
                if self.chain.plan(later).columnwise:
                    continue
                width = 1
                if self._tail_fits(later):
                    width = max(y.shape[1] for y in outputs[later + 2 :])
                break
            self._shares[index] = m * width / COLUMN_ELEMENTS
        return self._shares[index]

    def chunk_losses(
        self, tensors: IntArray, flat_indices: IntArray, offsets: Float64Array
    ) -> Losses:
        """Losses for parameter entries sorted by (layer, tensor), each entry's perturbation
        carried from its layer on as a one-column change while it stays one; a change that
        turns dense runs to the head at once, in stacks of at most `DENSE_ELEMENTS` (one
        at a time, so a chunk never holds more than one)."""
        n = tensors.shape[0]
        result, margins = np.empty(n), np.full(n, np.inf)
        layer_of = self.chain.layer_of[tensors]
        columns: Columns = []
        with np.errstate(all="ignore"):
            for index in range(int(layer_of[0]), len(self.chain.layers)):
                columns = self._advance(index, columns, result, margins)
                plan = self.chain.plan(index)
                x_in, y = self.chain.inputs[index], self.chain.outputs[index]
                for tensor in np.unique(tensors[layer_of == index]):
                    ids = np.flatnonzero(tensors == tensor)
                    local = self.chain.refs[self.chain.names[tensor]].local
                    if plan.perturbed is not None:
                        args = (local, flat_indices[ids], offsets[ids])
                        columns.append((ids, plan.perturbed(x_in, y, *args)))
                        continue
                    for cut in _slices(ids.shape[0], x_in.shape[0] * y.shape[1]):
                        part = ids[cut]
                        out = self.chain.perturbed_outputs(
                            index, local, flat_indices[part], offsets[part]
                        )
                        self._finish(index, part, out, result, margins)
            for ids, change in _merged(columns):
                result[ids] = self.chain.head.replaced_columns(self.chain.out, change)
        return result, margins

    def _finish(
        self,
        index: int,
        ids: IntArray,
        out: Float64Array,
        result: Float64Array,
        margins: Float64Array,
    ) -> None:
        """Run stacked outputs `(n * m, k)` of layer `index` (-1: inputs of layer 0) through
        the rest of the chain: the losses of entries `ids` into `result`, kink margins
        lowered in `margins`."""
        n = ids.shape[0]
        values, found = self.chain.stacked_from(
            index + 1, out.reshape(n, self.chain.x.shape[0], -1)
        )
        result[ids] = values
        margins[ids] = np.minimum(margins[ids], found)

    def _advance(
        self, index: int, columns: Columns, result: Float64Array, margins: Float64Array
    ) -> Columns:
        """Carry one-column changes of layer `index`'s input through it: they stay one
        column through an elementwise layer (returned); through a Linear they jump a
        Linear-ReLU-Linear (`LinearTail`) when they cross no kink, else turn dense (an
        outer product; any other layer: the full input), and run to the head at once
        (`_finish`). Lowers `margins` at kinks on the way."""
        plan, base = self.chain.plan(index), self.chain.kinks[index]
        kept: Columns = []
        x_in, y = self.chain.inputs[index], self.chain.outputs[index]
        m = x_in.shape[0]
        for ids, change in _merged(columns):
            if plan.columnwise:
                moved = plan.column_kinks(change.new)
                if base is not None and moved is not None:
                    reference = base[:, change.cols].T
                    found = side_margins(reference, moved, self.chain.on_kink[index])
                    margins[ids] = np.minimum(margins[ids], found)
                kept.append((ids, ColumnChange(change.cols, plan.columns(change.new))))
            elif plan.after_column is not None:
                ids, change = self._jump(index, ids, change, result, margins)
                for part, piece in _pieces(ids, change, m * y.shape[1]):
                    out = plan.after_column(x_in, y, piece).reshape(-1, y.shape[1])
                    self._finish(index, part, out, result, margins)
            else:
                for part, piece in _pieces(ids, change, m * max(x_in.shape[1], y.shape[1])):
                    out = piece.full(x_in).reshape(part.shape[0] * m, -1)
                    self._finish(index - 1, part, out, result, margins)
        return kept

    def _jump(
        self,
        index: int,
        ids: IntArray,
        change: ColumnChange,
        result: Float64Array,
        margins: Float64Array,
    ) -> tuple[IntArray, ColumnChange]:
        """Run the changes of Linear `index`'s input that cross no kink of the ReLU after it
        through its `LinearTail` and on to the head; return the others (all of them when
        the layers have no tail)."""
        tail = self._tail(index)
        if tail is None:
            return ids, change
        moved = change.new - self.chain.inputs[index][:, change.cols].T
        out, found = tail.outputs(change.cols, moved)
        clear = found > 1
        if np.any(clear):
            margins[ids[clear]] = np.minimum(margins[ids[clear]], found[clear])
            width = tail.output.shape[1]
            self._finish(index + 2, ids[clear], out[clear].reshape(-1, width), result, margins)
        rest = ~clear
        return ids[rest], ColumnChange(change.cols[rest], change.new[rest])

    def _tail_fits(self, index: int) -> bool:
        """True when layers `index..index + 2` are a Linear (with a verified outer-product
        update), layerkit's ReLU and a Linear (with a plain forward), none with noise."""
        trio = self.chain.layers[index : index + 3]
        return (
            len(trio) == 3
            and all(self.chain.noise[i] is None for i in range(index, index + 3))
            and isinstance(trio[0], Linear)
            and type(trio[1]) is ReLU
            and isinstance(trio[2], Linear)
            and self.chain.plan(index).after_column is not None
            and self.chain.plan(index + 2).forward is not None
        )

    def _tail(self, index: int) -> LinearTail | None:
        """The verified tail of layers `index..index + 2` (Linear, ReLU, Linear), if any,
        built only once enough changes will use it: its tables cost about as much as
        carrying one change densely per input column of layer `index`, and never less than
        carrying `TAIL_MIN_CHANGES` (building and verifying it is a few hundred numpy calls)."""
        if index not in self._tails:
            wanted = max(TAIL_MIN_CHANGES, self.chain.inputs[index].shape[1])
            if self.earlier_entries[index] < wanted:
                return None  # too few changes to pay for the tables (decided again next call)
            tail = None
            if self._tail_fits(index):
                a, b = self.chain.layers[index], self.chain.layers[index + 2]
                assert isinstance(a, Linear) and isinstance(b, Linear)
                z, out = self.chain.outputs[index], self.chain.outputs[index + 2]
                tail = linear_tail(a, z, b, out)
            self._tails[index] = tail
        return self._tails[index]


def _merged(columns: Columns) -> Columns:
    """Column changes of several tensors as one (fewer, larger operations)."""
    if len(columns) < 2:
        return columns
    ids = np.concatenate([c[0] for c in columns])
    cols = np.concatenate([c[1].cols for c in columns])
    new = np.concatenate([c[1].new for c in columns])
    return [(ids, ColumnChange(cols, new))]


def _pieces(
    ids: IntArray, change: ColumnChange, per_entry: int
) -> list[tuple[IntArray, ColumnChange]]:
    """`ids` and their `change` in pieces whose dense stacks (`per_entry` elements each)
    fit `DENSE_ELEMENTS`."""
    return [
        (ids[part], ColumnChange(change.cols[part], change.new[part]))
        for part in _slices(ids.shape[0], per_entry)
    ]


def _slices(count: int, per_entry: int) -> list[slice]:
    """`count` entries cut into slices of dense stacks (`per_entry` elements each) that fit
    `DENSE_ELEMENTS` (at least one entry each)."""
    size = max(1, DENSE_ELEMENTS // max(1, per_entry))
    return [slice(lo, lo + size) for lo in range(0, count, size)]
