"""What layerkit's checks are measured against, on the same model and data.

- :class:`PlainMLP`: the model as bare numpy arrays; ``2P`` of its forward+loss evaluations are
  the floor of an exact black-box check (``T_floor``).
- :func:`seed_loop`: the seed notebook's ``gradient_check_n`` (a full copy of the parameter
  vector and a rebuilt dictionary per coordinate and sign), re-implemented for reference.
- :func:`torch_gradcheck`: ``torch.autograd.gradcheck`` on the same function in float64, when
  torch is installed (an optional extra: ``pip install torch==2.13.0``), on every parameter or
  on a subset of the tensors (:func:`torch_subset`) where the whole check would take minutes.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from layerkit import Linear, ReLU, Sequential, Sigmoid, Tanh

Vector = npt.NDArray[np.float64]


def load_torch() -> Any | None:
    """The torch module pinned to one thread, or None when it is not installed."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return None
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # allowed only before torch's first parallel work
        torch.set_num_interop_threads(1)
    return torch


@attrs.frozen(eq=False)
class PlainMLP:
    """An MLP ``Linear -> act -> ... -> Linear`` with BCE from logits, as bare arrays.

    **Fields:** ``activation`` ``relu`` or ``tanh`` (between the Linear layers); ``names`` and ``shapes`` of the parameters in the model's order (``W1, b1, ...``);
    ``x`` ``(m, in)``; ``y`` ``(m, 1)``; ``theta`` the parameters as one vector ``(P,)``.
    """

    activation: str
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    x: Vector
    y: Vector
    theta: Vector

    @classmethod
    def of(cls, model: Sequential, x: npt.ArrayLike, y: npt.ArrayLike) -> PlainMLP:
        """The arrays of ``model``: Linear layers with ReLU (or Tanh) between, a final
        Sigmoid, BCE."""
        layers = model.layers
        linear = layers[0::2]
        between = layers[1:-1:2]
        kinds = {type(layer) for layer in between}
        if (
            not all(isinstance(layer, Linear) for layer in linear)
            or (not kinds <= {ReLU} and not kinds <= {Tanh})
            or not isinstance(layers[-1], Sigmoid)
        ):
            msg = (
                "PlainMLP: expected Linear layers with ReLU (or Tanh) between, ending in "
                f"Sigmoid, got {model!r}."
            )
            raise ValueError(msg)
        params = model.params()
        names = tuple(params)
        return cls(
            activation="tanh" if Tanh in kinds else "relu",
            names=names,
            shapes=tuple(params[name].shape for name in names),
            x=np.asarray(x, dtype=np.float64),
            y=np.asarray(y, dtype=np.float64).reshape(-1, 1),
            theta=np.concatenate([np.ravel(params[name]) for name in names]).astype(np.float64),
        )

    @property
    def size(self) -> int:
        """``P``, the number of parameters."""
        return int(self.theta.shape[0])

    def unroll(self, theta: Vector) -> dict[str, Vector]:
        """Views of ``theta`` ``(P,)`` or ``(P, 1)`` under the parameter names (the seed's
        ``vector_to_dictionary``)."""
        flat = theta.reshape(-1)
        arrays: dict[str, Vector] = {}
        start = 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            stop = start + int(np.prod(shape))
            arrays[name] = flat[start:stop].reshape(shape)
            start = stop
        return arrays

    def loss(self, params: dict[str, Vector]) -> float:
        """Mean BCE from logits of the forward with ``params`` (a plain numpy forward+loss)."""
        h = self.x
        depth = len(self.names) // 2
        for index in range(depth):
            h = h @ params[self.names[2 * index]].T + params[self.names[2 * index + 1]]
            if index < depth - 1:
                h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0.0)
        terms = np.maximum(h, 0.0) - self.y * h + np.log1p(np.exp(-np.abs(h)))
        return float(terms.sum(axis=-1).mean())

    def base_params(self) -> dict[str, Vector]:
        """The parameters at the point, as views of :attr:`theta`."""
        return self.unroll(self.theta)


def seed_loop(
    plain: PlainMLP, grad: Vector, *, coordinates: int | None = None, epsilon: float = 1e-7
) -> float:
    """The seed's ``gradient_check_n`` on the first ``coordinates`` entries (all when None).

    Per coordinate and sign: ``np.copy`` of the whole ``(P, 1)`` vector, one entry moved, a
    dictionary rebuilt from it, one forward+loss. **Returns:** the seed's ``difference``
    ``|grad - approx| / (|grad| + |approx|)`` over the coordinates checked.
    """
    parameters_values = plain.theta.reshape(-1, 1)
    count = plain.size if coordinates is None else min(coordinates, plain.size)
    j_plus = np.zeros((count, 1))
    j_minus = np.zeros((count, 1))
    gradapprox = np.zeros((count, 1))
    for i in range(count):
        thetaplus = np.copy(parameters_values)
        thetaplus[i][0] = thetaplus[i][0] + epsilon
        j_plus[i] = plain.loss(plain.unroll(thetaplus))
        thetaminus = np.copy(parameters_values)
        thetaminus[i][0] = thetaminus[i][0] - epsilon
        j_minus[i] = plain.loss(plain.unroll(thetaminus))
        gradapprox[i] = (j_plus[i] - j_minus[i]) / (2 * epsilon)
    checked = grad.reshape(-1, 1)[:count]
    numerator = np.linalg.norm(checked - gradapprox)
    denominator = np.linalg.norm(checked) + np.linalg.norm(gradapprox)
    return float(numerator / denominator)


def torch_loss(
    torch: Any, plain: PlainMLP, tensors: Sequence[int] | None = None
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """The same loss in torch, float64: ``(loss(*inputs), inputs)``, one leaf tensor
    (``requires_grad``) per parameter in ``tensors`` (indices in the model's order; None: all),
    the others held as constants."""
    x = torch.tensor(plain.x, dtype=torch.float64)
    y = torch.tensor(plain.y, dtype=torch.float64)
    params = plain.base_params()
    chosen = tuple(range(len(plain.names))) if tensors is None else tuple(tensors)
    every = [
        torch.tensor(params[name], dtype=torch.float64, requires_grad=index in chosen)
        for index, name in enumerate(plain.names)
    ]
    inputs = tuple(every[index] for index in chosen)
    depth = len(every) // 2

    def loss(*moved: Any) -> Any:
        tensors_now = list(every)
        for index, tensor in zip(chosen, moved, strict=True):
            tensors_now[index] = tensor
        h = x
        for index in range(depth):
            h = h @ tensors_now[2 * index].T + tensors_now[2 * index + 1]
            if index < depth - 1:
                h = torch.tanh(h) if plain.activation == "tanh" else torch.relu(h)
        return torch.nn.functional.binary_cross_entropy_with_logits(h, y, reduction="mean")

    return loss, inputs


def torch_gradcheck(
    torch: Any, plain: PlainMLP, *, fast: bool, tensors: Sequence[int] | None = None
) -> bool:
    """``torch.autograd.gradcheck`` (default tolerances) of :func:`torch_loss` over
    ``tensors`` (None: every parameter); ``fast`` selects ``fast_mode=True``.
    **Returns:** its verdict."""
    loss, inputs = torch_loss(torch, plain, tensors)
    return bool(torch.autograd.gradcheck(loss, inputs, fast_mode=fast, raise_exception=False))


def torch_subset(plain: PlainMLP, budget: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tensors for a part of torch's exact gradcheck: ``(small, subset)``, ``small`` the one
    smallest tensor and ``subset`` the smallest tensors whose entries add up to at most
    ``budget`` (at least two tensors). torch's exact check pays one forward per entry and
    sign whatever the tensor, so the time of ``subset`` less that of ``small`` gives the cost
    per entry, and ``small`` its fixed cost."""
    sizes = [int(np.prod(shape)) for shape in plain.shapes]
    order = sorted(range(len(sizes)), key=lambda index: (sizes[index], index))
    subset: list[int] = []
    total = 0
    for index in order:
        if len(subset) >= 2 and total + sizes[index] > budget:
            break
        subset.append(index)
        total += sizes[index]
    return (order[0],), tuple(sorted(subset))
