"""A three-class classifier with SoftmaxCrossEntropyLoss: trained with fit, then checked.

Three interleaved arcs in the plane, labelled 0, 1, 2. The net outputs three logits (no
softmax layer: the loss computes a stable log-softmax itself) and takes the labels as integers;
one-hot rows give the same loss. After training, ``check_model`` verifies every backward at the
trained parameters. Run: ``python examples/07_three_class_softmax.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import layerkit as lk

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def make_arcs(per_class: int, seed: int) -> tuple[Array, IntArray]:
    """Points ``(3 * per_class, 2)`` on three noisy arcs, and their labels ``(3 * per_class,)``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), per_class)
    angle = rng.uniform(0.0, 2.0, labels.shape[0]) + labels * 2 * np.pi / 3
    radius = 1.0 + 0.5 * angle / 2
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x + 0.08 * rng.standard_normal(x.shape), labels


def main() -> None:
    x, labels = make_arcs(100, seed=0)
    x_test, labels_test = make_arcs(100, seed=1)
    model = lk.mlp([2, 24, 24, 3], loss=lk.SoftmaxCrossEntropyLoss(), seed=0)
    print(model)

    one_hot = np.eye(3)[labels]
    same = model.loss_value(x, labels) == model.loss_value(x, one_hot)
    print(f"labels and one-hot rows give the same loss: {same}")

    history = lk.fit(model, x, labels, optimizer=lk.Adam(lr=0.02), epochs=60, batch_size=100)
    print(f"training loss: epoch 1 {history.losses[0]:.3f}, epoch 60 {history.losses[-1]:.3f}")
    accuracy = float(np.mean(model.predict(x_test).argmax(axis=1) == labels_test))
    print(f"test accuracy: {accuracy:.1%} (chance: 33.3%)")

    report = lk.check_model(model, x_test[:30], labels_test[:30])
    print(f"gradient check of the trained net on 30 rows: {report.verdict} "
          f"(difference {report.difference:.1e})")  # fmt: skip


if __name__ == "__main__":
    main()
