"""Block-wise tallies give what one pass over every entry gives, however the entries are cut.

The oracle ranks entries in plain Python: failing, then inconclusive, then passing; within,
by how far the error exceeds what passes (NaN: first); ties in the order entries came.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from layerkit.gradcheck.probes import ProbeResult, Status
from layerkit.gradcheck.results import Tally, tally_block

WORST = 4


def _probes(n: int, seed: int) -> tuple[np.ndarray, ProbeResult]:
    rng = np.random.default_rng(seed)
    analytic = rng.standard_normal(n)
    numeric = analytic + rng.standard_normal(n) * 10.0 ** rng.integers(-12, -3, n)
    numeric[rng.integers(0, n, 2)] = np.nan
    allowed = np.abs(rng.standard_normal(n)) * 1e-6
    allowed[rng.integers(0, n, 2)] = 0.0
    status = rng.choice([int(s) for s in Status], size=n, p=[0.7, 0.1, 0.05, 0.05, 0.05, 0.05])
    numeric[3] = numeric[7] = analytic[3]  # a tie of excess 0
    probed = ProbeResult(
        numeric=numeric,
        error=np.abs(rng.standard_normal(n)),
        allowed=allowed,
        step=np.full(n, 1e-5),
        status=status.astype(np.int8),
        noise=1e-16,
    )
    return analytic, probed


def _oracle(analytic: np.ndarray, probed: ProbeResult, indices: np.ndarray) -> list[int]:
    """Flat indices of the `WORST` worst entries, ranked in plain Python."""
    keys = []
    for k in range(analytic.shape[0]):
        status = int(probed.status[k])
        rank = 2 if status == Status.FAIL else (1 if status != Status.PASS else 0)
        error = abs(analytic[k] - probed.numeric[k])
        excess = error / probed.allowed[k] if probed.allowed[k] > 0 else math.inf * error
        keys.append((-rank, -(math.inf if math.isnan(excess) else excess), k))
    return [int(indices[k]) for *_, k in sorted(keys)[:WORST]]


def _tally(cuts: list[int], analytic: np.ndarray, probed: ProbeResult) -> list[Tally]:
    """Two tensors (the first 30 entries and the rest), added in blocks cut at `cuts`."""
    n = analytic.shape[0]
    tallies = [Tally(name, (n,), None, "", WORST) for name in ("a", "b")]
    flat = np.concatenate([np.arange(30), np.arange(n - 30)])
    owner = np.repeat([0, 1], [30, n - 30])
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        parts = []
        for t in (0, 1):
            where = np.flatnonzero(owner[lo:hi] == t) + lo
            if where.shape[0]:
                parts.append((tallies[t], flat[where]))
        block = ProbeResult(
            probed.numeric[lo:hi],
            probed.error[lo:hi],
            probed.allowed[lo:hi],
            probed.step[lo:hi],
            probed.status[lo:hi],
            probed.noise,
        )
        tally_block(parts, analytic[lo:hi], block)
    return tallies


@pytest.mark.parametrize("cuts", [[], [30], [7, 30, 31, 50], list(range(1, 80))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocks_do_not_change_the_tally(cuts: list[int], seed: int) -> None:
    analytic, probed = _probes(80, seed)
    whole = ProbeResult(
        probed.numeric, probed.error, probed.allowed, probed.step, probed.status, probed.noise
    )
    for t, (lo, hi) in enumerate([(0, 30), (30, 80)]):
        tally = _tally(cuts, analytic, whole)[t]
        part = slice(lo, hi)
        sub = ProbeResult(
            probed.numeric[part],
            probed.error[part],
            probed.allowed[part],
            probed.step[part],
            probed.status[part],
            probed.noise,
        )
        result = tally.result().result
        expected = _oracle(analytic[part], sub, np.arange(hi - lo))
        assert [entry.index[0] for entry in result.worst] == expected
        assert result.checked == hi - lo
        assert result.n_fail == int(np.sum(sub.status == Status.FAIL))
        largest = float(np.max(np.abs(analytic[part] - sub.numeric)))  # NaN if any is NaN
        if math.isnan(largest):
            assert math.isnan(result.max_abs_error)
        else:
            assert result.max_abs_error == largest
        squares = tally.result().squares
        assert squares[0] == pytest.approx(float(np.sum(analytic[part] ** 2)), rel=1e-12)


@pytest.mark.parametrize("cuts", [[], [3], [1, 2, 3, 4, 5, 36, 70]])
def test_ties_keep_the_order_entries_came_in(cuts: list[int]) -> None:
    """Failing entries with the same excess: the first ones checked are reported first."""
    status = np.zeros(80, dtype=np.int8)
    status[[2, 5, 9, 12, 20, 33, 40]] = Status.FAIL
    analytic, numeric, allowed = np.zeros(80), np.full(80, 2.0), np.ones(80)  # excess 2 each
    probed = ProbeResult(numeric, np.zeros(80), allowed, np.ones(80), status, 0.0)
    tally = _tally(cuts, analytic, probed)[0]
    assert [entry.index[0] for entry in tally.result().result.worst] == [2, 5, 9, 12]
