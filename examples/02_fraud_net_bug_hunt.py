"""Hunting the seed notebook's two planted backprop bugs, then checking the fix.

The seed's ``backward_propagation_n`` computes ``dW2`` twice too large and ``db1`` four times
too large. Its ``gradient_check_n`` prints one number (0.285) and "there is a mistake" but not
*where*. Here layerkit names the tensors (``check_function`` / ``check_model``) and the layers
(``check_layers``), then passes the fixed code. Run:
``python examples/02_fraud_net_bug_hunt.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit import notebook
from layerkit.layers.linear import LinearCache

Params = Mapping[str, npt.NDArray[np.floating]]
GradFn = Callable[[Params], Mapping[str, npt.NDArray[np.floating]]]


class SeedStyleLinear(lk.Linear):
    """A Linear layer whose backward is typed out by hand, as in the seed notebook.

    ``dW_factor`` and ``db_factor`` reproduce the seed's bugs: its ``dW2 = 1./m * np.dot(dZ2,
    A1.T) * 2`` is ``dW_factor=2`` on the second layer, its ``db1 = 4./m * np.sum(dZ1, ...)`` is
    ``db_factor=4`` on the first.
    """

    def __init__(
        self, in_features: int, out_features: int, *, dW_factor: float = 1.0, db_factor: float = 1.0
    ) -> None:
        super().__init__(in_features, out_features)
        self.dW_factor = dW_factor
        self.db_factor = db_factor

    @property
    def name(self) -> str:
        return f"SeedStyleLinear({self.in_features}->{self.out_features})"

    def backward(
        self, cache: LinearCache, grad_out: npt.NDArray[np.floating]
    ) -> tuple[npt.NDArray[np.floating], dict[str, npt.NDArray[np.floating]]]:
        A_prev, W = cache  # what Linear's forward kept: its input (m, in) and W (out, in)
        dZ = grad_out  # (m, out); the 1/m of the mean is already in it
        dW = self.dW_factor * (dZ.T @ A_prev)  # the seed's 1/m * dZ @ A_prev.T, batch-first
        db = self.db_factor * dZ.sum(axis=0)
        dA_prev = dZ @ W
        return dA_prev, {"W": dW, "b": db}


def seed_style_net(parameters: Params, *, bugs: bool) -> lk.Sequential:
    """The seed's 4 -> 5 -> 3 -> 1 net from hand-written layers, holding ``parameters``."""
    model = lk.Sequential(
        SeedStyleLinear(4, 5, db_factor=4.0 if bugs else 1.0),
        lk.ReLU(),
        SeedStyleLinear(5, 3, dW_factor=2.0 if bugs else 1.0),
        lk.ReLU(),
        SeedStyleLinear(3, 1),
        lk.Sigmoid(),
        loss=lk.BCELoss(),
    )
    # The seed's flat vector (W1, b1, ..., b3, row-major) is layerkit's order too.
    theta, _ = notebook.dictionary_to_vector(parameters)
    model.unflatten(theta)
    return model


def main() -> None:
    X, Y, parameters = notebook.gradient_check_n_test_case()  # X (4, 3), Y (1, 3): columns
    x, y = X.T, Y.T  # layerkit is batch-first: (3, 4) and (3, 1)

    def seed_cost(params: Params) -> float:
        return notebook.forward_propagation_n(X, Y, params)[0]

    def logit_cost(params: Params) -> float:
        # The same cost, computed from the logits: no rounding of A3 before log(1 - A3).
        return lk.fraud_net_from_arrays(params).loss_value(x, y)

    def gradients(bugs: bool) -> GradFn:
        backward = (
            notebook.backward_propagation_n_with_seed_bugs
            if bugs
            else notebook.backward_propagation_n
        )

        def grad(params: Params) -> dict[str, npt.NDArray[np.floating]]:
            _, cache = notebook.forward_propagation_n(X, Y, params)
            grads = backward(X, Y, cache)
            return {key: grads["d" + key] for key in notebook.PARAMETER_KEYS}

        return grad

    print("== 1. The seed's check on its bugged backward_propagation_n ==")
    _, cache = notebook.forward_propagation_n(X, Y, parameters)
    bugged = notebook.backward_propagation_n_with_seed_bugs(X, Y, cache)
    notebook.gradient_check_n(parameters, bugged, X, Y)  # prints one number: but where?

    print("\n== 2. layerkit's check_function on the same two functions ==")
    report = lk.check_function(seed_cost, gradients(True), parameters)
    print(report)
    print(f"failing tensors: {', '.join(report.failed)}")

    print("\n== 3. The same bugs written into layers: check_model, then check_layers ==")
    buggy = seed_style_net(parameters, bugs=True)
    report = lk.check_model(buggy, x, y)
    print(report)
    print(f"failing tensors: {', '.join(report.failed)}")
    layers = lk.check_layers(buggy, x)
    print(f"per-layer check: {layers.verdict}; first faulty layer: {layers.first_faulty}")
    print(f"all faulty layers: {', '.join(layers.faulty)}")

    print("\n== 4. Fixed (no *2, no *4) ==")
    fixed = lk.check_model(seed_style_net(parameters, bugs=False), x, y)
    print(f"check_model, fixed layers: {fixed.verdict} (difference {fixed.difference:.1e})")
    on_logits = lk.check_function(logit_cost, gradients(False), parameters)
    print(f"check_function, fixed backward, cost from logits: {on_logits.verdict}")
    # On the seed's own cost a couple of small W1 slopes drown in the rounding noise of
    # log(1 - A3) at A3 = 0.9989: layerkit calls them inconclusive (noisy), never pass or fail.
    # notebook.compare_checks() shows this side by side with the seed's number.
    on_seed_cost = lk.check_function(seed_cost, gradients(False), parameters)
    print(f"check_function, fixed backward, the seed's cost: {on_seed_cost.verdict}")


if __name__ == "__main__":
    main()
