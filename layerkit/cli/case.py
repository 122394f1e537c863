"""What a command checks: the seed's fraud net, a fresh `--arch` mlp, or the user's own
`--model`; optionally with `--params` loaded into it, `--data` instead of the default
data, and the seed's bugs planted. Requests too big for the machine are refused up front."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import attrs
import numpy as np

from layerkit._typing import Array
from layerkit.cli.user_model import load_data, load_model
from layerkit.errors import ConfigError
from layerkit.io import load_params
from layerkit.models import fraud_net_seed_case, mlp
from layerkit.sequential import Sequential
from layerkit.testing import inject_seed_bugs

DEFAULT_BATCH = 8
"""Rows of synthetic data drawn for `--arch` when `--batch` is not given."""

MEMORY_LIMIT_FRACTION = 0.5
"""A command whose estimated memory exceeds this fraction of the machine's physical memory is
refused before anything is allocated (exit 2)."""

BYTES_PER_PARAMETER = 64
"""Memory per parameter: the model, its float64 copy in the checker, gradients and the
checker's flat vectors (a generous estimate)."""

BYTES_PER_ACTIVATION = 64
"""Memory per (row x unit) of a check: the data, each layer's input and output in the caches,
their gradients, and the checker's perturbed copies (a generous estimate)."""


def memory_limit() -> int:
    """The most bytes a command may expect to use: a fraction of physical memory (8 GiB when
    the system does not say)."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 16 << 30
    return int(physical * MEMORY_LIMIT_FRACTION)


def check_memory(needed: float, what: str) -> None:
    """Refuse a command estimated to need more than `memory_limit` bytes.

    Args:
        needed: The estimated bytes.
        what: The option responsible, as the message names it.

    Raises:
        ConfigError: `needed` exceeds the limit (the command exits with 2).
    """
    limit = memory_limit()
    if needed > limit:
        msg = (
            f"{what} would need about {needed / 1e9:.3g} GB, more than "
            f"{MEMORY_LIMIT_FRACTION:.0%} of this machine's memory; use a smaller value."
        )
        raise ConfigError(msg)


@attrs.frozen(eq=False)
class Case:
    """What a command checks.

    Attributes:
        model: The model, with its loss.
        x: Inputs `(m, in)`.
        y: Targets `(m, out)`.
        description: One line saying what is checked.
    """

    model: Sequential
    x: Array
    y: Array
    description: str


def _arch_case(
    arch: Sequence[int], batch: int | None, seed: int
) -> tuple[Sequential, Array, Array, str]:
    rows = DEFAULT_BATCH if batch is None else batch
    widths = ",".join(map(str, arch))
    parameters = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(arch))
    check_memory(BYTES_PER_PARAMETER * parameters, f"--arch {widths}")
    check_memory(BYTES_PER_ACTIVATION * rows * sum(arch), f"--batch {rows} with --arch")
    model = mlp(arch, seed=seed)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((rows, arch[0]))
    y = rng.integers(0, 2, size=(rows, arch[-1])).astype(np.float64)
    what = f"mlp {widths.replace(',', '->')} (seed {seed}, {rows} synthetic examples)"
    return model, x, y, what


def build_case(
    arch: Sequence[int] | None,
    *,
    batch: int | None = None,
    seed: int = 0,
    dtype: str | None = None,
    seed_bugs: bool = False,
    model: str | None = None,
    params: str | None = None,
    data: str | None = None,
) -> Case:
    """The case a command checks.

    With neither `arch` nor `model`: the seed notebook's fraud net and its 3 examples.

    Args:
        arch: Widths of a fresh `mlp(arch, seed=seed)` with `batch` rows of synthetic
            data (`x ~ N(0, 1)`, labels in {0, 1} from `default_rng([seed, 1])`).
        batch: Rows of synthetic data (`arch` only).
        seed: Seeds the `arch` parameters and data.
        dtype: The parameters' dtype (default float64; a `model` keeps its own).
        seed_bugs: Plant the seed's bugs
            ([`inject_seed_bugs`][layerkit.testing.inject_seed_bugs]).
        model: `module:factory` or `file.py:factory` returning the model (needs `data`).
        params: A file written by [`save_params`][layerkit.save_params], loaded into the model.
        data: An `.npz` file with arrays `x` and `y`, replacing the default data.

    Returns:
        The model, its data and a one-line description.

    Raises:
        ConfigError: Options that do not go together, or a request too big for the machine;
            also the errors of `load_model`, `load_data` and
            [`load_params`][layerkit.load_params].
    """
    if batch is not None and (arch is None or data is not None):
        msg = (
            "--batch applies with --arch only, without --data (the seed case has its own 3 "
            "examples; --data brings its own rows)."
        )
        raise ConfigError(msg)
    if model is not None and arch is not None:
        raise ConfigError("--model and --arch are two ways to choose the network; give one.")
    if model is not None and data is None:
        msg = (
            f"--model {model!r} needs --data FILE.npz with arrays x (rows, inputs) and y "
            "(rows, outputs): layerkit cannot guess what your network reads."
        )
        raise ConfigError(msg)
    if model is not None:
        net = load_model(model)
        x: Array = np.zeros((0, 0))
        y: Array = x
        what = f"{model}"
    elif arch is not None:
        net, x, y, what = _arch_case(arch, batch, seed)
    else:
        seed_case = fraud_net_seed_case()
        net, x, y = seed_case.model, seed_case.x, seed_case.y
        what = "the seed notebook's fraud net 4->5->3->1 (its parameters and 3 examples)"
    if params is not None:
        load_params(net, params)
        what += f", parameters from {params}"
    if dtype is not None or model is None:
        net = net.astype(np.dtype(dtype or "float64"))
    if data is not None:
        x, y = load_data(data, net)
        what += f", {x.shape[0]} examples from {data}"
    if seed_bugs:
        net = inject_seed_bugs(net)
        what += ", with the seed's bugs planted (dW2 x2, db1 x4)"
    return Case(net, x, y, f"{what}: {net.param_spec.size} parameters, {net.dtype}")
