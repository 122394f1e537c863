"""The pieces under the checker's truth: ECnoise, kink margins, ReLU's kink report."""

from __future__ import annotations

import numpy as np
import pytest

from layerkit.gradcheck.kinks import kink_margins
from layerkit.gradcheck.noise import Level, Spacing, ecnoise, measure
from layerkit.layers import ReLU, Tanh


class TestECnoise:
    """Moré and Wild's difference table recovers the noise it is given."""

    @pytest.mark.parametrize("sigma", [1e-12, 1e-9, 1e-6])
    def test_recovers_known_noise_within_a_factor_three(self, sigma: float) -> None:
        rng = np.random.default_rng(1)
        t = np.arange(-3, 4) * 1e-6
        found = [ecnoise(np.sin(1 + t) + sigma * rng.standard_normal(7)) for _ in range(200)]
        levels = np.array([f.sigma for f in found if isinstance(f, Level)])
        assert len(levels) >= 190
        assert sigma / 3 < np.median(levels) < 3 * sigma

    def test_quantized_values_ask_for_a_larger_spacing(self) -> None:
        assert ecnoise(np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0])) is Spacing.TOO_SMALL

    def test_curvature_without_plateau_gives_an_upper_bound(self) -> None:
        t = np.arange(-3, 4) * 1e-1
        found = ecnoise(np.exp(3 * t))
        assert isinstance(found, Level) and found.kind == "bound" and found.sigma > 1e-6

    def test_values_near_overflow_do_not_overflow(self) -> None:
        found = ecnoise(np.array([1e308, 1.1e308, 1.2e308, 1.3e308, 1.4e308]))
        assert isinstance(found, Level) and np.isfinite(found.sigma)

    def test_measure_shrinks_inside_a_reported_kink(self) -> None:
        """A line crossing a kink at 2e-6 is measured again well inside it."""
        spacings: list[float] = []

        def along(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            spacings.append(float(np.min(np.abs(offsets))))
            margins = np.where(np.abs(offsets) >= 2e-6, 2e-6 / np.abs(offsets), np.inf)
            return 1.0 + offsets, margins

        sigma, how, spacing = measure(along, 1.0, 1e-5, floor=2.2e-16)
        assert spacings[0] == 1e-5 and spacings[-1] * 3 < 2e-6
        assert spacing == spacings[-1]
        assert sigma >= 2.2e-16 and "ECnoise" in how


class TestKinkMargins:
    """How far a move stayed from every kink, per row."""

    def test_values(self) -> None:
        base = np.array([[0.5, -1.0, 2.0]])
        moved = np.array([[0.6, -1.0, 2.0], [0.4, -0.5, 2.0], [-0.1, -1.0, 2.0]])
        margins = kink_margins(base, moved)
        assert margins[0] == pytest.approx(5.0)  # moved 0.1 of its 0.5
        assert margins[1] == pytest.approx(2.0)  # the -1 entry moved 0.5 of its 1
        assert margins[2] < 1.0  # crossed

    def test_an_entry_on_the_kink_that_moves_has_margin_zero(self) -> None:
        assert kink_margins(np.array([[0.0, 1.0]]), np.array([[1e-12, 1.0]]))[0] == 0.0
        assert kink_margins(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))[0] == np.inf

    def test_relu_reports_its_kink_and_smooth_layers_do_not(self) -> None:
        x = np.array([[-1.0, 0.0, 2.0]])
        distance = ReLU().kink_distance(x)
        assert distance is not None
        np.testing.assert_array_equal(distance, x)
        assert Tanh().kink_distance(x) is None
