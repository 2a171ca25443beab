"""Tests of the measurement noise models (operators/noise.py)."""

from __future__ import annotations

import math

import pytest
import torch

from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.noise import PoissonNoise

LINE_INTEGRALS = torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0], dtype=torch.float64)


def _draws(noise: PoissonNoise, n: int, seed: int = 0) -> torch.Tensor:
    return noise(LINE_INTEGRALS.repeat(n, 1), seed=seed)


def test_high_flux_mean_and_variance_follow_beer_lambert():
    noise = PoissonNoise(incident_flux=1e5)
    n = 20000
    y = _draws(noise, n)
    variance = noise.variance(LINE_INTEGRALS)
    torch.testing.assert_close(variance, torch.exp(LINE_INTEGRALS) / 1e5)
    # Unbiased up to the delta-method bias 1/(2λ) and 5 standard errors.
    tolerance = 5 * torch.sqrt(variance / n) + 1 / (2e5 * torch.exp(-LINE_INTEGRALS))
    assert bool(((y.mean(dim=0) - LINE_INTEGRALS).abs() <= tolerance).all())
    # Sample variance within 5 % (its relative standard error is √(2/n) = 1 %).
    torch.testing.assert_close(y.var(dim=0), variance, rtol=0.05, atol=0)


def test_electronic_noise_adds_its_variance():
    noise = PoissonNoise(incident_flux=1e4, electronic_std=20.0)
    y = _draws(noise, 20000, seed=3)
    counts = 1e4 * torch.exp(-LINE_INTEGRALS)
    torch.testing.assert_close(noise.expected_counts(LINE_INTEGRALS), counts)
    expected = (counts + 400.0) / counts**2
    torch.testing.assert_close(noise.variance(LINE_INTEGRALS), expected)
    # At p = 4 (λ ≈ 183) electronic noise more than triples the variance.
    assert float(expected[-1]) > 3 * float(1 / counts[-1])
    torch.testing.assert_close(y.var(dim=0), expected, rtol=0.08, atol=0)


def test_seeded_noise_is_deterministic():
    noise = PoissonNoise(1e3, electronic_std=1.0)
    clean = torch.rand(2, 1, 6, 9)
    first = noise(clean, seed=11)
    assert first.shape == clean.shape and first.dtype == clean.dtype
    assert torch.equal(first, noise(clean, seed=11))
    assert torch.equal(first, noise(clean, seed=torch.Generator().manual_seed(11)))
    assert not torch.equal(first, noise(clean, seed=12))


def test_zero_counts_are_replaced_by_min_counts():
    clean = torch.full((5000,), 6.0)  # λ = 2·e⁻⁶ ≈ 0.005: nearly all counts are 0
    for min_counts in (0.5, 1.0):
        noise = PoissonNoise(incident_flux=2.0, min_counts=min_counts)
        y = noise(clean, seed=0)
        ceiling = math.log(2.0 / min_counts)
        assert bool(torch.isfinite(y).all())
        assert float(y.max()) == pytest.approx(ceiling, rel=1e-6)
        assert float((y == y.max()).float().mean()) > 0.98
    # Negative signals from electronic noise are floored as well.
    noisy = PoissonNoise(incident_flux=2.0, electronic_std=5.0)(clean, seed=1)
    assert bool(torch.isfinite(noisy).all()) and float(noisy.max()) <= math.log(4.0) + 1e-6


def test_noisy_sinogram_of_a_ray_transform():
    geometry = ParallelBeam2D((16, 16), sparse_view_angles(10))
    operator = RayTransform(geometry)
    image = torch.zeros(1, 1, 16, 16)
    image[..., 4:12, 4:12] = 1.0
    clean = operator(image)
    noise = PoissonNoise(1e4)
    y = noise(clean, seed=0)
    assert y.shape == clean.shape
    weights = 1 / noise.variance(y)
    assert weights.shape == clean.shape and bool((weights > 0).all())
    # The noise level matches the model: normalised residuals have unit variance.
    residual = (y - clean) / noise.variance(clean).sqrt()
    assert float(residual.var()) == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"incident_flux": 0.0}, "incident_flux"),
        ({"incident_flux": -5.0}, "incident_flux"),
        ({"incident_flux": float("inf")}, "incident_flux"),
        ({"incident_flux": 100.0, "min_counts": 0.0}, "min_counts"),
        ({"incident_flux": 100.0, "min_counts": 200.0}, "min_counts"),
        ({"incident_flux": 100.0, "electronic_std": -1.0}, "electronic_std"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoissonNoise(**kwargs)


def test_bad_inputs():
    noise = PoissonNoise(1e3)
    with pytest.raises(ValueError, match="clean must be finite"):
        noise(torch.tensor([0.1, float("nan")]), seed=0)
    with pytest.raises(ValueError, match="line_integrals must be finite"):
        noise.variance(torch.tensor([float("inf")]))
    with pytest.raises(TypeError, match="floating-point"):
        noise(torch.ones(3, dtype=torch.complex64), seed=0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        noise([0.1, 0.2], seed=0)
