"""Layers: one file per family."""

from layerkit.layers.activations import Activation, ReLU, Sigmoid, Tanh, sigmoid
from layerkit.layers.base import Layer
from layerkit.layers.dropout import Dropout
from layerkit.layers.linear import INIT_SCHEMES, Linear, init_weights

__all__ = [
    "INIT_SCHEMES",
    "Activation",
    "Dropout",
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "init_weights",
    "sigmoid",
]
