"""Debugging your own layer: a parametric Swish with a subtle backward bug.

``Swish``: ``y = x * sigmoid(beta * x)`` with one learnable ``beta`` per feature. Its input
gradient is ``s + beta * x * s * (1 - s)`` (``s = sigmoid(beta * x)``); the buggy version
below forgets the ``beta``. Two lessons: a check only tests the point it runs at (at the
usual ``beta = 1`` the bug is invisible), and ``check_layers`` names the faulty layer even
when the failing tensors sit in *another* layer. Run:
``python examples/03_custom_layer_debugging.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit.layers.activations import sigmoid

Array = npt.NDArray[np.floating]
SwishCache = tuple[Array, Array]


class Swish(lk.Layer):
    """``y = x * sigmoid(beta * x)``, elementwise, ``beta`` of shape ``(features,)``.

    The layer contract: ``params()``, ``forward(x) -> (y, cache)`` (the cache is anything
    backward needs) and ``backward(cache, grad_y) -> (grad_x, grads)``.
    """

    def __init__(self, features: int) -> None:
        self.in_features = features
        self.out_features = features
        self.beta: Array = np.ones(features)  # the usual initialisation: beta = 1

    @property
    def name(self) -> str:
        return f"Swish({self.in_features})"

    def params(self) -> dict[str, Array]:
        return {"beta": self.beta}

    def forward(self, x: Array, *, noise: Array | None = None) -> tuple[Array, SwishCache]:
        beta = self.beta  # kept in the cache: parameters are rebound, never written in place
        return x * sigmoid(beta * x), (x, beta)

    def backward(self, cache: SwishCache, grad_out: Array) -> tuple[Array, dict[str, Array]]:
        x, beta = cache
        s = sigmoid(beta * x)
        dy_dbeta = x * x * s * (1 - s)
        return grad_out * self.dy_dx(x, beta, s), {"beta": (grad_out * dy_dbeta).sum(axis=0)}

    def dy_dx(self, x: Array, beta: Array, s: Array) -> Array:
        """``dy/dx`` elementwise, given ``s = sigmoid(beta * x)``."""
        return s + beta * x * s * (1 - s)


class BuggySwish(Swish):
    """The first draft of :class:`Swish`, with the bug."""

    def dy_dx(self, x: Array, beta: Array, s: Array) -> Array:
        return s + x * s * (1 - s)  # BUG: the chain rule's inner factor beta is missing


def model_with(swish: Swish) -> lk.Sequential:
    """Linear(4->6) -> Swish(6) -> Linear(6->1) -> Sigmoid, with BCE."""
    return lk.Sequential(
        lk.Linear(4, 6, seed=0), swish, lk.Linear(6, 1, seed=1), lk.Sigmoid(), loss=lk.BCELoss()
    )


def main() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 4))
    y = (rng.random((16, 1)) < 0.5).astype(np.float64)

    print("== 1. The buggy Swish at beta = 1 (its initial value) ==")
    buggy = BuggySwish(6)
    model = model_with(buggy)
    report = lk.check_model(model, x, y)
    print(f"check_model: {report.verdict}  <- beta = 1 multiplies nothing: the bug is invisible")

    print("\n== 2. The same model at generic parameters (beta drawn in [0.5, 2]) ==")
    buggy.beta[...] = rng.uniform(0.5, 2.0, size=6)
    report = lk.check_model(model, x, y)
    print(report)
    # The failing tensors are W1 and b1, in the Linear layer *before* the Swish: the wrong
    # grad_x of the Swish flows into them. Checking each layer alone points at the real culprit.
    layers = lk.check_layers(model, x)
    print(f"\ncheck_layers: {layers.verdict}; first faulty layer: {layers.first_faulty}")
    swish_report = layers.layers[1].report
    print(swish_report)

    print("\n== 3. Fixed: beta restored in dy/dx (same parameters) ==")
    fixed = Swish(6)
    fixed.beta[...] = buggy.beta
    model = model_with(fixed)
    report = lk.check_model(model, x, y)
    print(f"check_model: {report.verdict} (difference {report.difference:.1e})")
    layers = lk.check_layers(model, x)
    print(f"check_layers: {layers.verdict}")


if __name__ == "__main__":
    main()
