"""A heap reserve held while a check runs, so that its many short-lived arrays reuse memory.

The stacked evaluations make thousands of arrays of up to about 100 KiB (one chunk of changed
columns, `COLUMN_ELEMENTS`) and free them chunk after chunk. With glibc's default settings
the freed memory stays in the heap for the next chunk. But when `MALLOC_MMAP_THRESHOLD_` is
set in the environment, glibc stops adapting its thresholds: each time the free memory at
the top of the heap passes 128 KiB it goes back to the kernel, and the next chunk faults it
in again, page by page (about 27,000 page faults per exact check of a 64-128-64-1 net).

`heap_reserve` allocates `RESERVE_BYTES` in blocks below that size, then one block more, and
frees the first ones. What they freed lies below a live block, never at the top of the heap,
so it is not given back; the check's arrays are carved out of it. When the check ends the
last block goes, and the heap shrinks as it would have. No allocator setting changes.

It does this only when the process's environment fixed a glibc malloc threshold
(`FIXED_THRESHOLDS`): glibc reads them at start-up, and with none set its own adaptive
thresholds already keep the memory (the reserve would only cost its 0.3 ms). A program that
fixes them with `mallopt` instead gets no reserve: checks then run as if it were absent.
And only for a check that makes at least `RESERVE_MIN_BYTES` of arrays: a smaller one frees
little, and the reserve (0.3 ms, plus faulting in the pages it hands out, which go back to
the kernel when the check ends) would cost it more than it saves: measured with the variable
set, `check_layers` on the fraud net ran 1.28x slower with a reserve and 1.03x without.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_FIXING = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)
_TUNABLES = ("mmap_threshold", "trim_threshold", "top_pad", "mmap_max")

FIXED_THRESHOLDS = any(name in os.environ for name in _FIXING) or any(
    f"glibc.malloc.{t}" in os.environ.get("GLIBC_TUNABLES", "") for t in _TUNABLES
)
"""True when the environment sets a malloc parameter that turns off glibc's adaptive mmap
and trim thresholds (any of the four, as a `MALLOC_*_` variable or a tunable)."""

RESERVE_MIN_BYTES = 1 << 19
"""Fewest bytes of short-lived arrays a check must make for a reserve to pay (see the module)."""
RESERVE_BLOCK = 96 * 1024
"""Bytes per block: below glibc's smallest mmap threshold (128 KiB), so blocks come from the heap."""
RESERVE_BYTES = 8 << 20
"""Bytes held in reserve during a check (virtual: only what the check touches is resident)."""


@contextmanager
def heap_reserve(array_bytes: int) -> Iterator[None]:
    """Hold `RESERVE_BYTES` of heap for reuse while the block runs, if `FIXED_THRESHOLDS`
    and the block makes `array_bytes` of arrays, at least `RESERVE_MIN_BYTES` (see the
    module)."""
    if not FIXED_THRESHOLDS or array_bytes < RESERVE_MIN_BYTES:
        yield
        return
    blocks = [
        np.empty(RESERVE_BLOCK, dtype=np.uint8) for _ in range(RESERVE_BYTES // RESERVE_BLOCK)
    ]
    pin = np.empty(RESERVE_BLOCK, dtype=np.uint8)  # above the blocks: keeps them off the top
    del blocks
    try:
        yield
    finally:
        del pin
