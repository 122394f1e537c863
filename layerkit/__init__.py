"""layerkit: numpy layers with hand-written backward passes, and a gradient checker you can trust."""

from layerkit.errors import LayerkitError
from layerkit.gradcheck import (
    CheckOptions,
    GradCheckReport,
    LayersReport,
    TensorResult,
    check_function,
    check_layer,
    check_layers,
    check_model,
)
from layerkit.io import load_params, save_params
from layerkit.layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from layerkit.losses import BCELoss, BCEWithLogitsLoss, Loss, MSELoss, SoftmaxCrossEntropyLoss
from layerkit.models import fraud_net, fraud_net_from_arrays, fraud_net_seed_case, mlp
from layerkit.optim import SGD, Adam, History, Optimizer, fit
from layerkit.params import ParamSpec, TensorSpec
from layerkit.sequential import Sequential

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CheckOptions",
    "Dropout",
    "GradCheckReport",
    "History",
    "Layer",
    "LayerkitError",
    "LayersReport",
    "Linear",
    "Loss",
    "MSELoss",
    "Optimizer",
    "ParamSpec",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropyLoss",
    "Tanh",
    "TensorResult",
    "TensorSpec",
    "__version__",
    "check_function",
    "check_layer",
    "check_layers",
    "check_model",
    "fit",
    "fraud_net",
    "fraud_net_from_arrays",
    "fraud_net_seed_case",
    "load_params",
    "mlp",
    "save_params",
]
