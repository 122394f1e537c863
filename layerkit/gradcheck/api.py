"""The public checks: any function, a whole model, one layer, each layer of a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Unpack

import attrs
import numpy as np

from layerkit._typing import Array, ArrayLike, Float64Array
from layerkit._validate import as_batch, as_float_array
from layerkit.errors import ConfigError
from layerkit.gradcheck.chain import ChainObjective, TensorRef
from layerkit.gradcheck.engine import run_check
from layerkit.gradcheck.heads import OWN_LOSSES, ModelLossHead, ProjectionHead
from layerkit.gradcheck.objective import FunctionObjective
from layerkit.gradcheck.options import CheckKwargs, CheckOptions, checker_rng, make_options
from layerkit.gradcheck.report import GradCheckReport, LayerReport, LayersReport, combine
from layerkit.layers.base import Layer, run_layer
from layerkit.sequential import Sequential

PROJECTION_STREAM, LINEARITY_STREAM = 1, 2
"""The checker's random streams (salted, see `checker_rng`) for a layer check's projection
`r` and its linearity test: never equal to data from `default_rng(seed)`."""

LINEARITY_RTOL = 1e-9
"""How far `backward(a r1 + b r2)` may stray from `a backward(r1) + b backward(r2)`."""


def check_function(
    loss_fn: Callable[[dict[str, Float64Array]], object],
    grad_fn: Callable[[dict[str, Float64Array]], Mapping[str, ArrayLike]],
    params: Mapping[str, ArrayLike],
    **options: Unpack[CheckKwargs],
) -> GradCheckReport:
    """Check `grad_fn` against `loss_fn` at `params`, for any code.

    Both functions receive float64 copies; the caller's arrays are never written.

    Args:
        loss_fn: `loss_fn(params) -> float`, the loss at a point.
        grad_fn: `grad_fn(params) -> {name: array}`, its gradient, with the keys and shapes
            of `params`.
        params: The point, name -> array of any shape.
        **options: The fields of [`CheckOptions`][layerkit.CheckOptions].

    Returns:
        One tensor per key of `params`.

    Raises:
        ConfigError: Empty `params`, a function that is not callable, an unknown option or
            a value out of its range.
        UserCodeError: `loss_fn` or `grad_fn` raised, or `loss_fn` wrote into its argument.
        LossValueError: `loss_fn` returned something other than a real scalar.
        GradientSpecError: `grad_fn`'s names or shapes differ from those of `params`.
    """
    settings = make_options(**options)
    objective = FunctionObjective(loss_fn, grad_fn, params)
    return run_check(objective, settings, subject="function")


def _model_objective(
    model: Sequential, x: ArrayLike, y: ArrayLike, seed: int
) -> tuple[ChainObjective, dict[str, str]]:
    """The model's mean loss as a chain over private float64 copies, dropout masks fixed."""
    if not isinstance(model, Sequential):
        msg = f"check_model: 'model' must be a Sequential, got {type(model).__name__}."
        raise ConfigError(msg)
    if model.loss is None:
        msg = "check_model: the model has no loss; build it with loss=BCELoss()."
        raise ConfigError(msg)
    _require_finite_params(model, "check_model")
    inputs = np.asarray(model.check_input(x), dtype=np.float64)
    body = model.body
    noise = _fixed_noise(model, x, seed)
    out_width = _body_width(model, inputs)
    targets = np.asarray(model.check_targets(y, inputs.shape[0], width=out_width), dtype=np.float64)
    refs: dict[str, TensorRef] = {}
    labels: dict[str, str] = {}
    for name in model.param_spec.names:
        ref = model.param_ref(name)
        refs[name] = TensorRef(ref.index, ref.local)
        labels[name] = model.layer_label(ref.index)
    own_loss = type(model) is Sequential and type(model.loss) in OWN_LOSSES
    head = ModelLossHead(model.sample_losses, model.loss_grad, targets, own_code=own_loss)
    objective = ChainObjective(
        body, [layer.params() for layer in body], refs, inputs, noise[: len(body)], head
    )
    return objective, labels


def _require_finite_params(model: Sequential, owner: str) -> None:
    """Refuse NaN/Inf parameters, naming the model's tensor (`W2`) and its layer."""
    for name, array in model.params().items():
        label = model.layer_label(model.param_ref(name).index)
        as_float_array(array, name=name, owner=f"{owner}, {label}")


def _fixed_noise(model: Sequential, x: ArrayLike, seed: int) -> list[Array | None]:
    """Dropout masks drawn once from `seed` (None for deterministic layers)."""
    if not any(layer.stochastic for layer in model.layers):
        return [None] * len(model.layers)
    _, cache = model.forward(x, rng=np.random.default_rng(seed))
    return list(cache.noise)


def _body_width(model: Sequential, inputs: Array) -> int:
    width = int(inputs.shape[1])
    for layer in model.body:
        width = layer.output_width(width)
    return width


def check_model(
    model: Sequential,
    x: ArrayLike,
    y: ArrayLike,
    *,
    localise: bool = True,
    **options: Unpack[CheckKwargs],
) -> GradCheckReport:
    """Check every parameter gradient of `model`'s loss on `(x, y)`.

    Differentiates float64 copies whatever the model's dtype; dropout masks are drawn once
    from `seed` and held fixed. When the check fails and `localise` is true, each layer is
    also checked in isolation ([`check_layers`][layerkit.check_layers]) and the report's
    [`culprits`][layerkit.GradCheckReport.culprits] name the layers that fail there.

    Args:
        model: A [`Sequential`][layerkit.Sequential] with a loss.
        x: Inputs `(m, in)`.
        y: Targets `(m, out)`, as the model's loss takes them.
        localise: On failure, also check each layer in isolation.
        **options: The fields of [`CheckOptions`][layerkit.CheckOptions].

    Returns:
        Tensors `W1, b1, ...`.

    Raises:
        ConfigError: Not a `Sequential`, no loss, an unknown option or a value out of range.
        ShapeError: `x` or `y` does not fit the model.
        NonFiniteError: A parameter holds NaN or Inf.
    """
    settings = make_options(**options)
    objective, labels = _model_objective(model, x, y, settings.seed)
    report = run_check(objective, settings, subject=f"model ({len(model)} layers)", layer_of=labels)
    if report.verdict == "fail" and localise:
        layers = _check_layers(model, x, attrs.evolve(settings, progress=None))
        faulty = layers.faulty
        note = (
            "per-layer check: " + ", ".join(faulty) + " fail(s) in isolation"
            if faulty
            else "per-layer check: no layer fails in isolation (the fault may be in the loss)"
        )
        report = attrs.evolve(report, notes=(*report.notes, note), layer_culprits=faulty)
    return report


def _projection(shape: tuple[int, ...], seed: int) -> Float64Array:
    """The seeded random upstream gradient `r` of a layer check."""
    return checker_rng(seed, PROJECTION_STREAM).standard_normal(shape)


@np.errstate(invalid="ignore", over="ignore")  # a NaN/Inf gap is judged below
def _linearity_note(layer: Layer, cache: Any, y_shape: tuple[int, ...], seed: int) -> str | None:
    """Check `backward` is linear in `grad_out` `y_shape`; describe the violation, if any."""
    rng = checker_rng(seed, LINEARITY_STREAM)
    r1, r2 = rng.standard_normal(y_shape), rng.standard_normal(y_shape)
    a, b = 0.75, -1.25
    gx, grads = layer.backward(cache, a * r1 + b * r2)
    gx1, grads1 = layer.backward(cache, r1)
    gx2, grads2 = layer.backward(cache, r2)
    pairs = [("x", gx, a * gx1 + b * gx2)] + [
        (n, grads[n], a * grads1[n] + b * grads2[n]) for n in grads
    ]
    for name, combined, expected in pairs:
        gap = float(np.max(np.abs(np.asarray(combined) - expected), initial=0.0))
        scale = float(np.max(np.abs(expected), initial=0.0)) + 1e-300
        if not np.isfinite(gap) or gap > LINEARITY_RTOL * scale:
            return (
                f"{layer.name}.backward is not linear in grad_out for '{name}' "
                f"(max gap {gap:.2e} vs scale {scale:.2e}): it must not depend on grad_out "
                "in any other way than linearly"
            )
    return None


def check_layer(
    layer: Layer,
    x: ArrayLike,
    *,
    noise: ArrayLike | None = None,
    **options: Unpack[CheckKwargs],
) -> GradCheckReport:
    """Check one layer in isolation: its parameter gradients and its input gradient `x`.

    The loss is `L = sum(r * layer(x))` for a seeded random `r` (not ones: ones would hide
    bugs that permute or mix output columns), drawn from a stream salted away from
    `default_rng(seed)`, so that it never equals data the user drew with the same seed.
    Also checks that `backward` is linear in the upstream gradient.

    Args:
        layer: Any [`Layer`][layerkit.Layer].
        x: Inputs `(m, in)`.
        noise: The mask a stochastic layer uses, shaped as its `sample_noise` returns it
            (default: one drawn from `seed`).
        **options: The fields of [`CheckOptions`][layerkit.CheckOptions].

    Returns:
        One tensor per parameter, and `x`.

    Raises:
        ConfigError: Not a `Layer`, an unknown option or a value out of range.
    """
    settings = make_options(**options)
    return _check_layer(
        layer, x, noise, settings, label=f"layer {layer.name}" if isinstance(layer, Layer) else ""
    )


def _check_layer(
    layer: Layer, x: ArrayLike, noise: ArrayLike | None, options: CheckOptions, *, label: str
) -> GradCheckReport:
    if not isinstance(layer, Layer):
        msg = f"check_layer: 'layer' must be a layerkit Layer, got {type(layer).__name__}."
        raise ConfigError(msg)
    inputs = np.asarray(
        as_batch(x, name="x", features=layer.in_features, owner=layer.name), dtype=np.float64
    )
    mask: Array | None = None
    if noise is not None:
        mask = np.asarray(as_float_array(noise, name="noise", owner="check_layer"), np.float64)
    elif layer.stochastic:
        mask = layer.sample_noise(inputs, np.random.default_rng(options.seed))
    params = {local: np.array(v, dtype=np.float64) for local, v in layer.params().items()}
    y, _ = run_layer(layer.rebound(params), inputs, mask)
    head = ProjectionHead(_projection(np.shape(y), options.seed))
    refs = {local: TensorRef(0, local) for local in params}
    refs["x"] = TensorRef(-1, "x")
    objective = ChainObjective([layer], [params], refs, inputs, [mask], head)
    report = run_check(objective, options, subject=label, layer_of=dict.fromkeys(refs, label))
    cache, out = objective.base_cache(0)
    problem = _linearity_note(objective.layers[0], cache, out.shape, options.seed)
    if problem is not None:
        report = attrs.evolve(report, verdict="fail", notes=(*report.notes, problem))
    return report


def check_layers(
    model: Sequential,
    x: ArrayLike,
    **options: Unpack[CheckKwargs],
) -> LayersReport:
    """Check each layer of `model` in isolation, at the activations it sees in the model.

    Dropout masks are drawn once from `seed`.

    Args:
        model: A [`Sequential`][layerkit.Sequential] (its loss, if any, is not checked).
        x: Inputs `(m, in)`.
        **options: The fields of [`CheckOptions`][layerkit.CheckOptions].

    Returns:
        One report per layer; its [`first_faulty`][layerkit.LayersReport.first_faulty] names
            the first layer whose own check fails.

    Raises:
        ConfigError: Not a `Sequential`, an unknown option or a value out of range.
        NonFiniteError: A parameter holds NaN or Inf.
    """
    settings = make_options(**options)
    return _check_layers(model, x, settings)


def _check_layers(model: Sequential, x: ArrayLike, options: CheckOptions) -> LayersReport:
    if not isinstance(model, Sequential):
        msg = f"check_layers: 'model' must be a Sequential, got {type(model).__name__}."
        raise ConfigError(msg)
    _require_finite_params(model, "check_layers")
    noise = _fixed_noise(model, x, options.seed)
    inputs = np.asarray(model.check_input(x), dtype=np.float64)
    _, cache = model.astype(np.float64).forward(inputs, noise=noise)
    reports = []
    options.report_progress(0, len(model.layers))
    for index, layer in enumerate(model.layers):
        label = model.layer_label(index)
        layer_options = attrs.evolve(options, seed=options.seed + index, progress=None)
        report = _check_layer(layer, cache.inputs[index], noise[index], layer_options, label=label)
        reports.append(LayerReport(index=index, label=label, report=report))
        options.report_progress(index + 1, len(model.layers))
    return LayersReport(verdict=combine([r.report.verdict for r in reports]), layers=tuple(reports))
