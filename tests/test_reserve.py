"""The heap reserve a check holds is released when the check ends, normally or by an error."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import layerkit as lk
from layerkit.gradcheck.reserve import RESERVE_BLOCK, heap_reserve


@pytest.fixture
def traced() -> object:
    tracemalloc.start()
    yield
    tracemalloc.stop()


@pytest.mark.usefixtures("traced")
class TestHeapReserve:
    def test_only_the_pin_is_held_inside(self) -> None:
        before = tracemalloc.get_traced_memory()[0]
        with heap_reserve():
            held = tracemalloc.get_traced_memory()[0] - before
        assert RESERVE_BLOCK <= held < 2 * RESERVE_BLOCK  # the blocks were freed, the pin not

    def test_nothing_is_held_after_an_error(self) -> None:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(RuntimeError), heap_reserve():
            raise RuntimeError("user code failed")
        assert tracemalloc.get_traced_memory()[0] - before < RESERVE_BLOCK

    def test_a_check_holds_no_memory_after_it_returns(self) -> None:
        model = lk.mlp([6, 8, 1], seed=0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((16, 6)), (rng.random((16, 1)) > 0.5).astype(float)
        lk.check_model(model, x, y, mode="exact")  # lazy imports and caches
        before = tracemalloc.get_traced_memory()[0]
        assert lk.check_model(model, x, y, mode="exact").verdict == "pass"
        assert tracemalloc.get_traced_memory()[0] - before < RESERVE_BLOCK
