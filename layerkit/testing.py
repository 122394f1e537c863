"""Assertions for users' test suites, and planted gradient bugs that show a check failing.

A planted bug wraps a real [`Linear`][layerkit.Linear] and scales some of its parameter
gradients (or shifts one entry): a correct checker fails on exactly those tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from layerkit._typing import Array, ArrayLike, Float64Array
from layerkit.errors import ConfigError
from layerkit.gradcheck import check_function, check_layer, check_model
from layerkit.gradcheck.report import GradCheckReport, LayersReport
from layerkit.layers.base import Layer
from layerkit.layers.linear import Linear, LinearCache
from layerkit.sequential import Sequential

SEED_BUGS: dict[str, float] = {"W2": 2.0, "b1": 4.0}
"""The seed notebook's planted bugs: `dW2` doubled, `db1` times four."""


class ScaledGradLinear(Linear):
    """A [`Linear`][layerkit.Linear] whose backward gets some parameter gradients wrong
    (forward, parameters and input gradient are the wrapped layer's).

    Args:
        base: The layer whose parameters are copied.
        scale: Local name -> factor for its gradient, e.g. `{"W": 2.0}`.
        poke: `(local name, index, amount)` added to one gradient entry, e.g.
            `("b", (0,), 1e-3)`.
    """

    def __init__(
        self,
        base: Linear,
        scale: Mapping[str, float] | None = None,
        poke: tuple[str, tuple[int, ...], float] | None = None,
    ) -> None:
        self.W = base.W.copy()
        self.b = base.b.copy()
        self.scale = dict(scale or {})
        self.poke = poke

    def backward(self, cache: LinearCache, grad_out: Array) -> tuple[Array, dict[str, Array]]:
        grad_x, grads = super().backward(cache, grad_out)
        grads = {name: g * self.scale.get(name, 1.0) for name, g in grads.items()}
        if self.poke is not None:
            name, index, amount = self.poke
            grads[name] = grads[name].copy()
            grads[name][index] += amount
        return grad_x, grads

    def astype(self, dtype: type[np.floating] | np.dtype[np.floating]) -> ScaledGradLinear:
        return ScaledGradLinear(super().astype(dtype), self.scale, self.poke)


def plant_gradient_bugs(model: Sequential, factors: Mapping[str, float]) -> Sequential:
    """A copy of `model` whose named tensors' gradients are multiplied by their factors, each
    [`Linear`][layerkit.Linear] holding one replaced by a
    [`ScaledGradLinear`][layerkit.testing.ScaledGradLinear].

    Args:
        model: The model (untouched; its loss is kept).
        factors: Model tensor name -> factor, e.g. `{"W2": 2.0, "b1": 4.0}`.

    Returns:
        The bugged copy.

    Raises:
        ConfigError: A name is not one of the model's tensors, or its layer is not a Linear.
    """
    names = model.param_spec.names
    by_layer: dict[int, dict[str, float]] = {}
    for name, factor in factors.items():
        if name not in names:
            msg = (
                f"plant_gradient_bugs: the model has no parameter {name!r} (bugs {list(factors)} "
                f"need two or more Linear layers); it has {', '.join(names) or 'no parameters'}."
            )
            raise ConfigError(msg)
        ref = model.param_ref(name)
        by_layer.setdefault(ref.index, {})[ref.local] = factor
    layers = list(model.layers)
    for index, scale in by_layer.items():
        layer = layers[index]
        if not isinstance(layer, Linear):
            msg = f"plant_gradient_bugs: layer {index} ({layer.name}) must be a Linear layer."
            raise ConfigError(msg)
        layers[index] = ScaledGradLinear(layer, scale)
    return Sequential(layers, loss=model.loss)


def inject_seed_bugs(model: Sequential) -> Sequential:
    """A copy of `model` with the seed's bugs planted: `dW2` doubled, `db1` times four (see
    [`plant_gradient_bugs`][layerkit.testing.plant_gradient_bugs]).

    Raises:
        ConfigError: No `W2` or `b1` in a Linear layer (named after `--inject-seed-bugs`).
    """
    try:
        return plant_gradient_bugs(model, SEED_BUGS)
    except ConfigError as error:
        detail = str(error).removeprefix("plant_gradient_bugs: ")
        msg = f"inject_seed_bugs (--inject-seed-bugs) needs W2 and b1 in Linear layers: {detail}"
        raise ConfigError(msg) from None


def assert_report_ok(
    report: GradCheckReport | LayersReport, *, allow_inconclusive: bool = False
) -> None:
    """Fail unless the report's verdict is `pass` (or `inconclusive` when `allow_inconclusive`).

    Raises:
        AssertionError: With the report's table and worst entries as the message.
        ConfigError: `report` is not a report.
    """
    if not isinstance(report, GradCheckReport | LayersReport):
        msg = (
            "assert_report_ok: 'report' must be a GradCheckReport or LayersReport (what "
            f"check_model, check_layer, check_layers or check_function return), got "
            f"{type(report).__name__}."
        )
        raise ConfigError(msg)
    accepted = ("pass", "inconclusive") if allow_inconclusive else ("pass",)
    if report.verdict not in accepted:
        raise AssertionError(f"gradient check verdict is {report.verdict!r}\n{report}")


def assert_gradients_ok(
    subject: Sequential | Layer | Callable[[dict[str, Float64Array]], object],
    *args: Any,
    allow_inconclusive: bool = False,
    **options: Any,
) -> GradCheckReport:
    """Check gradients and fail the test with the report's table unless they pass.

    `subject` decides the check: a [`Sequential`][layerkit.Sequential] takes `(x, y)`
    ([`check_model`][layerkit.check_model]); a [`Layer`][layerkit.Layer] takes `(x,)`
    ([`check_layer`][layerkit.check_layer]); a `loss_fn` takes `(grad_fn, params)`
    ([`check_function`][layerkit.check_function]).

    Args:
        subject: A model, a layer or a loss function.
        *args: The check's positional arguments, as above.
        allow_inconclusive: Accept an inconclusive verdict too.
        **options: The checks' keyword options.

    Returns:
        The report, for further assertions.

    Raises:
        AssertionError: The verdict is not accepted; the message is the report.
    """
    report: GradCheckReport
    if isinstance(subject, Sequential):
        report = check_model(subject, *args, **options)
    elif isinstance(subject, Layer):
        report = check_layer(subject, *args, **options)
    else:
        report = check_function(subject, *args, **options)
    assert_report_ok(report, allow_inconclusive=allow_inconclusive)
    return report


def assert_function_gradients_ok(
    loss_fn: Callable[[dict[str, Float64Array]], object],
    grad_fn: Callable[[dict[str, Float64Array]], Mapping[str, ArrayLike]],
    params: Mapping[str, ArrayLike],
    *,
    allow_inconclusive: bool = False,
    **options: Any,
) -> GradCheckReport:
    """[`assert_gradients_ok`][layerkit.testing.assert_gradients_ok] for a `loss_fn`/`grad_fn`
    pair, spelled out."""
    return assert_gradients_ok(
        loss_fn, grad_fn, params, allow_inconclusive=allow_inconclusive, **options
    )
