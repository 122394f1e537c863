"""Gradient-checking a model with dropout: hold the masks fixed.

The seed notebook says gradient checking "does not work with dropout": each forward draws a
new random mask, so the loss is a different function at every call. In layerkit the mask is
an explicit input (``layerkit.layers.dropout``): ``check_model`` draws the masks once, from its
``seed``, and keeps them for every evaluation, so dropout's backward is checked too. A loss
that redraws its mask is refused with a ``NondeterministicError``. Run:
``python examples/05_dropout_checked.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit.errors import NondeterministicError

Array = npt.NDArray[np.floating]
Params = Mapping[str, Array]


class ForgetfulDropout(lk.Dropout):
    """A dropout whose backward forgets the mask (and its 1 / (1 - rate) scale)."""

    def backward(self, cache: Array | None, grad_out: Array) -> tuple[Array, dict[str, Array]]:
        return grad_out, {}  # BUG: should be grad_out * mask (the cache)


def model_with(dropout: lk.Dropout) -> lk.Sequential:
    """Linear(5->16) -> ReLU -> dropout -> Linear(16->1) -> Sigmoid, with BCE."""
    return lk.Sequential(
        lk.Linear(5, 16, seed=0),
        lk.ReLU(),
        dropout,
        lk.Linear(16, 1, seed=1),
        lk.Sigmoid(),
        loss=lk.BCELoss(),
    )


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5))
    y = (rng.random((32, 1)) < 0.3).astype(np.float64)
    model = model_with(lk.Dropout(0.3))
    print(model)

    print("\n== 1. check_model: masks drawn once from `seed`, then held fixed ==")
    for seed in (0, 1):
        report = lk.check_model(model, x, y, seed=seed)
        # A mask drawn from the same seed, to show how much is dropped.
        _, cache = model.forward(x, rng=np.random.default_rng(seed))
        mask = cache.noise[2]
        dropped = float(np.mean(mask == 0)) if mask is not None else 0.0
        print(f"seed {seed}: {dropped:.0%} of hidden units dropped -> {report.verdict}")

    # The masks are really applied in the check: a dropout backward that forgets them fails.
    report = lk.check_model(model_with(ForgetfulDropout(0.3)), x, y)
    print(
        f"a dropout whose backward forgets the mask: {report.verdict}; "
        f"failing tensors {', '.join(report.failed)}; culprit {', '.join(report.culprits)}"
    )

    print("\n== 2. check_function with masks you hold yourself ==")
    _, cache = model.forward(x, rng=np.random.default_rng(42))  # draw once
    masks = list(cache.noise)

    def loss_fixed(params: Params) -> float:
        return model.loss_value(x, y, noise=masks, params=params)

    def grad_fixed(params: Params) -> dict[str, npt.NDArray[np.floating]]:
        return model.loss_and_grad(x, y, noise=masks, params=params)[1]

    report = lk.check_function(loss_fixed, grad_fixed, model.params())
    print(f"fixed masks: {report.verdict} (difference {report.difference:.1e})")

    print("\n== 3. A loss that draws a fresh mask at every call ==")
    fresh = np.random.default_rng(7)

    def loss_redrawn(params: Params) -> float:
        return model.loss_value(x, y, rng=fresh, params=params)  # a new mask each call

    first, second = loss_redrawn(model.params()), loss_redrawn(model.params())
    print(f"the same parameters, twice: {first:.6f} then {second:.6f}")
    try:
        lk.check_function(loss_redrawn, grad_fixed, model.params())
    except NondeterministicError as error:
        print(f"NondeterministicError: {error}")


if __name__ == "__main__":
    main()
