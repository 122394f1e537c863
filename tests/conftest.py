"""Shared fixtures for the core test suite."""

from __future__ import annotations

import os

# One BLAS thread per test process, set before numpy is first imported (no plugin imports it
# earlier). The suite runs one pytest-xdist worker per core, so a multi-threaded BLAS in each
# worker would put two or more spinning threads on every core; and the suite's matrices are
# small, where extra threads cost more than they save. The results do not depend on it. A
# value set in the environment wins; subprocesses the tests start (CLI, examples) inherit it.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pickle  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, so every test draws the same random inputs."""
    return np.random.default_rng(20240611)


@pytest.fixture
def global_rng_untouched() -> Iterator[Callable[[], None]]:
    """A check that the legacy global ``np.random`` state is what it was at the test's start.

    The state is restored afterwards whatever happened, so one failing test cannot leak a
    changed global state into the next.
    """
    saved = np.random.get_state()
    before = pickle.dumps(saved)

    def check() -> None:
        after = pickle.dumps(np.random.get_state())
        assert after == before, "the global numpy RNG state was changed"

    yield check
    np.random.set_state(saved)
