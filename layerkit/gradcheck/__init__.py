"""Gradient checking: numeric differentiation, verdicts and reports."""

from layerkit.gradcheck.api import check_function, check_layer, check_layers, check_model
from layerkit.gradcheck.options import MODES, CheckOptions
from layerkit.gradcheck.probes import DEFAULT_STEP, Tolerance
from layerkit.gradcheck.report import (
    EntryResult,
    GradCheckReport,
    LayerReport,
    LayersReport,
    TensorResult,
    Verdict,
)

__all__ = [
    "DEFAULT_STEP",
    "MODES",
    "CheckOptions",
    "EntryResult",
    "GradCheckReport",
    "LayerReport",
    "LayersReport",
    "TensorResult",
    "Tolerance",
    "Verdict",
    "check_function",
    "check_layer",
    "check_layers",
    "check_model",
]
