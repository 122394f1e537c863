"""The seed's `gradient_check_n` next to layerkit's checks, on the seed's test case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

import attrs
import numpy as np

from layerkit._seed import CACHE_NAMES, GRADIENT_CHECK_N_THRESHOLD, PARAMETER_KEYS, seed_message
from layerkit._typing import Array, Float64Array
from layerkit.gradcheck.api import check_function, check_model
from layerkit.gradcheck.options import CheckKwargs
from layerkit.gradcheck.report import GradCheckReport
from layerkit.models import fraud_net_from_arrays, fraud_net_seed_case


def _summary(report: GradCheckReport) -> str:
    """One line per verdict: `fail: b1 (4/5 entries), W2 (4/15 entries); pass: W1, b2, ...`."""
    parts: list[str] = []
    for verdict in ("fail", "inconclusive", "pass"):
        names: list[str] = []
        for tensor in (t for t in report.tensors if t.verdict == verdict):
            if verdict == "fail" and tensor.checked:
                names.append(f"{tensor.name} ({tensor.n_fail}/{tensor.checked} entries)")
            elif verdict == "inconclusive" and tensor.reasons:
                why = ", ".join(f"{k}: {v}" for k, v in sorted(tensor.reasons.items()))
                names.append(f"{tensor.name} ({why})")
            else:
                names.append(tensor.name)
        if names:
            parts.append(f"{verdict}: " + ", ".join(names))
    return "; ".join(parts)


@attrs.frozen
class Comparison:
    """The seed's `gradient_check_n` and layerkit's checks on the seed's test case.

    Attributes:
        bugs: Whether the backward has the seed's planted bugs.
        seed_difference: The seed's one number, and `seed_message` what it prints for it.
        function_report: [`check_function`][layerkit.check_function] on the seed's cost (on
            probabilities); `stable_report` the same from the logits.
        model_report: [`check_model`][layerkit.check_model] on the fraud net: layerkit's own
            backward (never bugged).
        max_probability: The largest output probability.
        seed_cost: The cost at the point by the seed's formula; `stable_cost` from logits.
    """

    bugs: bool
    seed_difference: float
    seed_message: str
    function_report: GradCheckReport
    stable_report: GradCheckReport
    model_report: GradCheckReport
    max_probability: float
    seed_cost: float
    stable_cost: float

    @property
    def cost_gap(self) -> float:
        """`|seed_cost - stable_cost|`: the seed cost's rounding error at the point."""
        return abs(self.seed_cost - self.stable_cost)

    @property
    def seed_passed(self) -> bool:
        """True when the seed's check would print that backprop works (never for NaN)."""
        return bool(self.seed_difference <= GRADIENT_CHECK_N_THRESHOLD)

    def __str__(self) -> str:
        rows = {
            "check_function, the seed's cost log(1 - A3)": self.function_report,
            "check_function, the same cost from logits": self.stable_report,
            "check_model, the fraud net's own backward": self.model_report,
        }
        width = max(map(len, rows))
        threshold = GRADIENT_CHECK_N_THRESHOLD
        lines = [
            f"The seed's test case (X of shape (4, 3)), "
            f"backward_propagation_n{'_with_seed_bugs' * self.bugs}:\n",
            f"seed gradient_check_n (h = 1e-7, one number, pass if <= {threshold:g}):",
            f"  difference {self.seed_difference:.4e} -> {self.seed_message}\n",
            "layerkit (per entry; pass / fail / inconclusive):",
        ]
        for label, report in rows.items():
            lines += [f"  {label:{width}}  {report.verdict.upper()}"]
            lines += [f"  {'':{width}}  {_summary(report)}"]
        if self.bugs:
            lines += ["  (check_model checks layerkit's own backward, which has no planted bugs.)"]
        noisy = [t.name for t in self.function_report if t.reasons.get("noisy")]
        if noisy:
            ulps = self.cost_gap / (np.finfo(np.float64).eps * abs(self.stable_cost))
            lines += [
                f"\nWhy {', '.join(noisy)} is 'inconclusive (noisy)' on the seed's cost: A3 reaches "
                f"{self.max_probability:.4f}, so the\nseed's log(1 - A3) is off the exact cost by "
                f"{self.cost_gap:.1e} ({ulps:.0f} ulps; the checker allows for 8): too\nnoisy "
                "to confirm the smallest slopes. The same backward passes on the cost from logits."
            ]
        return "\n".join([*lines, "", str(self.function_report)])


def compare_checks(bugs: bool = False, **options: Unpack[CheckKwargs]) -> Comparison:
    """The seed's `gradient_check_n` and layerkit's checks on the seed's test case, as a
    [`Comparison`][layerkit.notebook.Comparison] (`print` it).

    Args:
        bugs: Check the backward with the seed's bugs instead of the fixed one.
        **options: For every layerkit check, as in [`CheckOptions`][layerkit.CheckOptions].
    """
    from layerkit import notebook as nb  # here: layerkit.notebook re-exports this module

    X, Y, parameters = nb.gradient_check_n_test_case()
    backward = nb.backward_propagation_n_with_seed_bugs if bugs else nb.backward_propagation_n
    cost, cache = nb.forward_propagation_n(X, Y, parameters)
    seed_difference = nb.gradient_check_n(parameters, backward(X, Y, cache), X, Y, verbose=False)

    def seed_cost(point: dict[str, Float64Array]) -> float:
        return nb.forward_propagation_n(X, Y, point)[0]

    def stable_cost(point: Mapping[str, Array]) -> float:
        return fraud_net_from_arrays(point).loss_value(X.T, Y.T)

    def gradients(point: dict[str, Float64Array]) -> dict[str, Array]:
        grads = backward(X, Y, nb.forward_propagation_n(X, Y, point)[1])
        return {key: grads[f"d{key}"] for key in PARAMETER_KEYS}

    case = fraud_net_seed_case()
    return Comparison(
        bugs=bool(bugs),
        seed_difference=seed_difference,
        seed_message=seed_message(seed_difference),
        function_report=check_function(seed_cost, gradients, parameters, **options),
        stable_report=check_function(stable_cost, gradients, parameters, **options),
        model_report=check_model(case.model, case.x, case.y, **options),
        max_probability=float(np.max(dict(zip(CACHE_NAMES, cache, strict=True))["A3"])),
        seed_cost=cost,
        stable_cost=stable_cost(parameters),
    )
