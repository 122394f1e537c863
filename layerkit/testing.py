"""Assertions for users' own test suites (pytest or unittest)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from layerkit._typing import ArrayLike, Float64Array
from layerkit.errors import ConfigError
from layerkit.gradcheck import check_function, check_layer, check_model
from layerkit.gradcheck.report import GradCheckReport, LayersReport
from layerkit.layers.base import Layer
from layerkit.sequential import Sequential


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
