"""The heap reserve a check holds under fixed malloc thresholds is released when the check
ends, normally or by an error; without fixed thresholds there is none."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

import layerkit as lk
from layerkit.gradcheck import reserve
from layerkit.gradcheck.api import _model_objective
from layerkit.gradcheck.reserve import RESERVE_BLOCK, RESERVE_MIN_BYTES, heap_reserve


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reserve, "FIXED_THRESHOLDS", True)


@pytest.mark.usefixtures("traced")
class TestHeapReserve:
    @pytest.mark.usefixtures("fixed")
    def test_only_the_pin_is_held_inside(self) -> None:
        before = tracemalloc.get_traced_memory()[0]
        with heap_reserve(RESERVE_MIN_BYTES):
            held = tracemalloc.get_traced_memory()[0] - before
            reserved = tracemalloc.get_traced_memory()[1] - before
        assert RESERVE_BLOCK <= held < 2 * RESERVE_BLOCK  # the blocks were freed, the pin not
        assert reserved >= reserve.RESERVE_BYTES

    @pytest.mark.usefixtures("fixed")
    def test_nothing_is_held_after_an_error(self) -> None:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(RuntimeError), heap_reserve(RESERVE_MIN_BYTES):
            raise RuntimeError("user code failed")
        assert tracemalloc.get_traced_memory()[0] - before < RESERVE_BLOCK

    def test_no_reserve_without_fixed_thresholds(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(reserve, "FIXED_THRESHOLDS", False)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with heap_reserve(RESERVE_MIN_BYTES):
            pass
        assert tracemalloc.get_traced_memory()[1] - before < RESERVE_BLOCK

    @pytest.mark.usefixtures("fixed")
    def test_no_reserve_for_a_small_check(self) -> None:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with heap_reserve(RESERVE_MIN_BYTES - 1):
            pass
        assert tracemalloc.get_traced_memory()[1] - before < RESERVE_BLOCK

    @pytest.mark.usefixtures("fixed")
    def test_a_check_holds_no_memory_after_it_returns(self) -> None:
        model = lk.mlp([64, 128, 1], seed=0)  # an exact check of 8k entries: with a reserve
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((64, 64)), (rng.random((64, 1)) > 0.5).astype(float)
        objective, _ = _model_objective(model, x, y, 0)
        assert objective.array_bytes(model.param_spec.size) >= RESERVE_MIN_BYTES
        lk.check_model(model, x, y, mode="exact")  # lazy imports and caches
        before = tracemalloc.get_traced_memory()[0]
        assert lk.check_model(model, x, y, mode="exact").verdict == "pass"
        assert tracemalloc.get_traced_memory()[0] - before < RESERVE_BLOCK


@pytest.mark.parametrize(
    ("setting", "fixed_thresholds"),
    [
        ({}, False),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}, False),
    ],
)
def test_fixed_thresholds_are_read_from_the_environment(
    setting: dict[str, str], fixed_thresholds: bool
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }
    code = "from layerkit.gradcheck.reserve import FIXED_THRESHOLDS; print(FIXED_THRESHOLDS)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env | setting, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(fixed_thresholds)
