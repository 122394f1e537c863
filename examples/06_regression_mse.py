"""A regression net with MSELoss: trained with fit, then gradient-checked.

The targets are real numbers, ``y = sin(2 x0) + 0.5 x1 * x2`` plus a little noise, so the net
ends in a bare Linear (no Sigmoid) and the loss is the mean squared error. After training,
``check_model`` verifies every backward of the trained net at its new parameters. Run:
``python examples/06_regression_mse.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import layerkit as lk

Array = npt.NDArray[np.float64]


def make_data(m: int, seed: int) -> tuple[Array, Array]:
    """Inputs ``(m, 3)`` and real targets ``(m, 1)``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (m, 3))
    y = np.sin(2 * x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3] + 0.05 * rng.standard_normal((m, 1))
    return x, y


def main() -> None:
    x, y = make_data(400, seed=0)
    x_test, y_test = make_data(200, seed=1)
    model = lk.mlp([3, 24, 24, 1], loss=lk.MSELoss(), seed=0)
    print(model)

    baseline = float(np.mean((y_test - y.mean()) ** 2))  # predicting the mean
    history = lk.fit(model, x, y, optimizer=lk.Adam(lr=0.02), epochs=80, batch_size=100)
    print(f"training MSE: epoch 1 {history.losses[0]:.4f}, epoch 80 {history.losses[-1]:.4f}")
    test_mse = model.loss_value(x_test, y_test)
    print(f"test MSE {test_mse:.4f} vs {baseline:.4f} for always predicting the mean")

    report = lk.check_model(model, x_test[:32], y_test[:32])
    print(f"gradient check of the trained net on 32 rows: {report.verdict} "
          f"(difference {report.difference:.1e})")  # fmt: skip


if __name__ == "__main__":
    main()
