"""The seed notebook's 1-D gradient check, J(theta) = theta * x, next to layerkit's.

The seed checks ``dJ/dtheta = x`` with one central difference at ``epsilon = 1e-7`` and one
number, ``|grad - gradapprox| / (|grad| + |gradapprox|)``, against a threshold of 1e-7.
layerkit's ``check_function`` checks the same function and says pass, fail (where), or
inconclusive (why). Run: ``python examples/01_one_dimensional_check.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

import layerkit as lk
from layerkit import notebook

Params = Mapping[str, npt.NDArray[np.float64]]


def layerkit_check(x: float, theta: float, derivative: float) -> lk.GradCheckReport:
    """check_function on J(theta) = theta * x, with ``derivative`` as the claimed dJ/dtheta."""

    def loss(params: Params) -> float:
        # forward_propagation is the seed's J; params["theta"] is a 0-d float64 array.
        return notebook.forward_propagation(x, float(params["theta"]))

    def grad(params: Params) -> dict[str, float]:
        return {"theta": derivative}

    return lk.check_function(loss, grad, {"theta": np.float64(theta)})


def main() -> None:
    x, theta = 2.0, 4.0

    print("== The seed's check: gradient_check(x=2, theta=4) ==")
    difference = notebook.gradient_check(x, theta)  # prints the seed's verdict
    print(f"difference = {difference:.6e}   (the seed printed 2.919335883291695e-10)")

    print("\n== layerkit's check_function on the same J and dJ/dtheta = x ==")
    report = layerkit_check(x, theta, notebook.backward_propagation(x, theta))
    print(report)
    print(f"verdict: {report.verdict}")
    # layerkit's difference is 0 here: it divides by the step actually taken after rounding,
    # (theta + h) - theta, so a linear J is differentiated exactly. The seed divides by the
    # nominal 2e-7; its 2.9e-10 is the rounding of theta +- 1e-7, not an error of backward.

    # A wrong derivative (x + 1 instead of x): both catch it; layerkit also says where and
    # by how much (analytic vs numeric slope).
    print("\n== A wrong backward, dJ/dtheta = x + 1 ==")
    wrong = layerkit_check(x, theta, x + 1)
    print(wrong)
    print(f"verdict: {wrong.verdict}")

    # x = 0: J is flat and its derivative is 0, which the backward gets right. The seed's
    # relative difference is 0 / 0 = NaN and it prints "wrong"; layerkit compares the two
    # slopes (both exactly 0) and passes.
    print("\n== x = 0: the seed's formula divides 0 by 0 ==")
    seed_nan = notebook.gradient_check(0.0, theta)
    print(f"difference = {seed_nan}")
    flat = layerkit_check(0.0, theta, notebook.backward_propagation(0.0, theta))
    print(f"layerkit verdict at x = 0: {flat.verdict}")


if __name__ == "__main__":
    main()
