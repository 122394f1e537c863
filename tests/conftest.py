"""Shared fixtures for the core test suite."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator

import numpy as np
import pytest


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
