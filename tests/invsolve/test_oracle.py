"""`invsolve.gaussian_posterior` against an independent dense computation.

The reference below is written separately from the oracle: it uses the
information form ``Σ_post = (Σ⁻¹ + ÃᵀÃ/σ²)⁻¹``, ``μ_post = Σ_post(Σ⁻¹μ + Ãᵀỹ/σ²)``
with an explicit inverse of the prior covariance, where for complex data
``Ã = [Re A; Im A]`` and ``ỹ = [Re y; Im y]`` (real images, noise of variance
σ² on each real component, as `GaussianNoise` draws it).  The oracle itself
uses the covariance form and never inverts Σ.  Operators: a small CT ray
transform (real, not diagonal), single-coil and SENSE Cartesian MRI on real
images through `ComplexAsChannels` (complex range), and a pixel mask.
"""

import re

import pytest
import torch

import invsolve
from invsolve.operators import ComplexAsChannels, GaussianNoise, Mask, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.mri import CartesianMRI, random_mask
from invsolve.priors import GaussianPrior

NOISE_STD = 0.05
SIZE = 8


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def information_form(prior: GaussianPrior, operator, y: torch.Tensor, noise_std: float):
    """Dense posterior ``(mean (B, n), cov (n, n))`` from the precision matrix, float64."""
    a = operator.to_dense(torch.float64)
    data = y.reshape(y.shape[0], -1)
    if a.is_complex():
        a = torch.cat([a.real, a.imag], dim=0)
        data = data.to(torch.complex128)
        data = torch.cat([data.real, data.imag], dim=1)
    data = data.to(torch.float64)
    prior_precision = torch.linalg.inv(prior.cov)
    cov = torch.linalg.inv(prior_precision + a.T @ a / noise_std**2)
    information = prior_precision @ prior.mean.reshape(-1) + data @ a / noise_std**2  # (B, n)
    return information @ cov.T, cov


def smooth_coil_maps(n_coils: int, size: int) -> torch.Tensor:
    """Synthetic coil sensitivities: Gaussian magnitude around a point on a circle, linear phase."""
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    maps = []
    for c in range(n_coils):
        angle = 2 * torch.pi * c / n_coils
        centre_r, centre_c = 1.2 * torch.cos(torch.tensor(angle)), 1.2 * torch.sin(torch.tensor(angle))
        magnitude = torch.exp(-((rows - centre_r) ** 2 + (cols - centre_c) ** 2) / 2.0)
        phase = 0.7 * rows * (c + 1) - 0.4 * cols
        maps.append(magnitude * torch.exp(1j * phase))
    return torch.stack(maps)


def ct_case():
    geometry = ParallelBeam2D((10, 10), sparse_view_angles(6))
    operator = RayTransform(geometry)
    prior = GaussianPrior.squared_exponential((1, 10, 10), length_scale=1.5, std=1.0, mean=0.3)
    return prior, operator


def mri_case():
    mask = random_mask(SIZE, center_fraction=0.25, acceleration=2, seed=0)
    operator = CartesianMRI(mask, shape=(SIZE, SIZE)) @ ComplexAsChannels((1, SIZE, SIZE))
    prior = GaussianPrior.squared_exponential((2, SIZE, SIZE), length_scale=1.5, mean=0.2)
    return prior, operator


def sense_case():
    mask = random_mask(SIZE, center_fraction=0.25, acceleration=2, seed=1)
    operator = CartesianMRI(mask, smooth_coil_maps(2, SIZE), shape=(SIZE, SIZE)) @ ComplexAsChannels((1, SIZE, SIZE))
    prior = GaussianPrior.squared_exponential((2, SIZE, SIZE), length_scale=1.5, mean=-0.1)
    return prior, operator


def mask_case():
    operator = Mask(random_pixel_mask((SIZE, SIZE), missing_fraction=0.5, seed=0))
    prior = GaussianPrior.squared_exponential((1, SIZE, SIZE), length_scale=1.5, std=1.0, mean=0.3)
    return prior, operator


CASES = {"ct": ct_case, "mri": mri_case, "sense": sense_case, "mask": mask_case}


def measure(prior, operator, batch: int = 2, seed: int = 0):
    truth = prior.sample_exact(batch, seed=seed)
    return truth, GaussianNoise(NOISE_STD)(operator(truth), seed=seed + 1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_oracle_matches_dense_information_form(case):
    prior, operator = CASES[case]()
    _, y = measure(prior, operator)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)
    expected_mean, expected_cov = information_form(prior, operator, y, NOISE_STD)
    assert mean.dtype == cov.dtype == torch.float64
    assert mean.shape == (2, *operator.in_shape)
    assert cov.shape == (expected_cov.shape[0],) * 2
    torch.testing.assert_close(cov, expected_cov, rtol=0, atol=1e-8)
    torch.testing.assert_close(mean.reshape(2, -1), expected_mean, rtol=0, atol=1e-8)
    # and the posterior is a proper covariance: symmetric, PSD, shrunk below the prior
    assert torch.equal(cov, cov.T)
    assert float(torch.linalg.eigvalsh(cov).min()) > -1e-10
    assert bool((cov.diagonal() <= prior.cov.diagonal() + 1e-12).all())


def test_batch_items_are_independent_and_unbatched_y_is_one_item():
    prior, operator = mri_case()
    _, y = measure(prior, operator, batch=3, seed=4)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)
    for i in range(3):
        single_mean, single_cov = invsolve.gaussian_posterior(prior, operator, y[i], NOISE_STD)
        assert single_mean.shape == (1, *operator.in_shape)
        torch.testing.assert_close(single_mean[0], mean[i], rtol=0, atol=1e-12)
        torch.testing.assert_close(single_cov, cov, rtol=0, atol=1e-12)


def test_real_data_for_a_complex_range_operator_means_zero_imaginary_part():
    prior, operator = mri_case()
    _, y = measure(prior, operator)
    real_mean, real_cov = invsolve.gaussian_posterior(prior, operator, y.real, NOISE_STD)
    complex_mean, complex_cov = invsolve.gaussian_posterior(prior, operator, y.real.to(torch.complex128), NOISE_STD)
    torch.testing.assert_close(real_mean, complex_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(real_cov, complex_cov, rtol=0, atol=1e-12)


def test_fully_sampled_mri_regression():
    """Every real unknown observed once with noise σ through an orthogonal map.

    ``Ã`` is orthogonal, so ``Σ_post = U diag(σ²λ/(λ+σ²)) Uᵀ`` and
    ``μ_post = μ + U diag(λ/(λ+σ²)) Uᵀ(Aᴴy − μ)`` for ``Σ = U diag(λ) Uᵀ``.
    The old oracle (a proper complex model) gave std 0.707 everywhere and
    kept only half of the data: RMS error ≈ 0.5 here.
    """
    prior = GaussianPrior.squared_exponential((2, SIZE, SIZE), length_scale=1.5)
    operator = CartesianMRI(torch.ones(SIZE, dtype=torch.bool), shape=(SIZE, SIZE)) @ ComplexAsChannels((1, SIZE, SIZE))
    truth, y = measure(prior, operator, batch=1, seed=1)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)

    eigenvalues, u = torch.linalg.eigh(prior.cov)
    variance = NOISE_STD**2 * eigenvalues / (eigenvalues + NOISE_STD**2)
    torch.testing.assert_close(cov, (u * variance) @ u.T, rtol=0, atol=1e-12)
    gain = eigenvalues / (eigenvalues + NOISE_STD**2)
    centred = operator.adjoint(y).reshape(-1) - prior.mean.reshape(-1)
    expected_mean = prior.mean.reshape(-1) + u @ (gain * (u.T @ centred))
    torch.testing.assert_close(mean.reshape(-1), expected_mean, rtol=0, atol=1e-12)

    rms_std = float(cov.diagonal().mean().sqrt())
    assert rms_std == pytest.approx(float(variance.mean().sqrt()), rel=1e-10)
    # about σ, less the prior's shrinkage of its smooth (small-λ) directions; measured 0.0433
    assert 0.8 * NOISE_STD < rms_std < NOISE_STD
    # measured 0.042 (≈ σ, the noise left after denoising by the prior)
    assert rms(mean - truth) < 2 * NOISE_STD


def test_fully_observed_mask_with_diagonal_covariance_is_per_pixel():
    generator = torch.Generator().manual_seed(0)
    variances = 0.01 + torch.rand(2 * 5 * 5, generator=generator, dtype=torch.float64)
    prior_mean = torch.randn(2, 5, 5, generator=generator, dtype=torch.float64)
    prior = GaussianPrior(prior_mean, torch.diag(variances))
    operator = Mask(torch.ones(5, 5, dtype=torch.bool), in_shape=(2, 5, 5))
    y = torch.randn(3, 2, 5, 5, generator=generator, dtype=torch.float64)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)
    noise_var = NOISE_STD**2
    expected_var = variances * noise_var / (variances + noise_var)
    expected_mean = (noise_var * prior_mean.reshape(-1) + variances * y.reshape(3, -1)) / (variances + noise_var)
    torch.testing.assert_close(cov, torch.diag(expected_var), rtol=0, atol=1e-14)
    torch.testing.assert_close(mean.reshape(3, -1), expected_mean, rtol=0, atol=1e-12)


# -- errors ---------------------------------------------------------------------------


@pytest.fixture
def mask_problem():
    prior, operator = mask_case()
    _, y = measure(prior, operator)
    return prior, operator, y


def test_rejects_a_prior_that_is_not_gaussian(mask_problem):
    _, operator, y = mask_problem
    with pytest.raises(TypeError, match="prior must be a GaussianPrior, got str"):
        invsolve.gaussian_posterior("prior", operator, y, NOISE_STD)


def test_rejects_an_operator_that_is_not_a_linear_operator(mask_problem):
    prior, operator, y = mask_problem
    with pytest.raises(TypeError, match="operator must be an invsolve LinearOperator, got Tensor"):
        invsolve.gaussian_posterior(prior, operator.to_dense(), y, NOISE_STD)


def test_rejects_a_complex_domain_operator_naming_it():
    operator = CartesianMRI(random_mask(SIZE, 0.25, 2, seed=0), shape=(SIZE, SIZE))
    prior = GaussianPrior.squared_exponential((1, SIZE, SIZE), length_scale=1.5)
    y = operator(torch.zeros(1, 1, SIZE, SIZE, dtype=torch.complex128))
    pattern = r"operator must have a real domain.*ComplexAsChannels.*got " + re.escape(operator.describe())
    with pytest.raises(ValueError, match=pattern):
        invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)


def test_rejects_a_prior_of_another_shape(mask_problem):
    _, operator, y = mask_problem
    prior = GaussianPrior.squared_exponential((1, SIZE + 1, SIZE), length_scale=1.5)
    pattern = re.escape("prior.image_shape must equal the in_shape (1, 8, 8)") + r".*got \(1, 9, 8\)"
    with pytest.raises(ValueError, match=pattern):
        invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)


@pytest.mark.parametrize("shape", [(2, 1, SIZE, SIZE - 1), (SIZE, SIZE), (2, 2, SIZE, SIZE)])
def test_rejects_measurements_of_another_shape(mask_problem, shape):
    prior, operator, _ = mask_problem
    y = torch.zeros(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"y \(measurements of Mask.*\) must have shape \(B, 1, 8, 8\)"):
        invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)


def test_rejects_measurements_that_are_not_a_float_tensor(mask_problem):
    prior, operator, y = mask_problem
    with pytest.raises(TypeError, match="y must be a torch.Tensor, got list"):
        invsolve.gaussian_posterior(prior, operator, y.tolist(), NOISE_STD)
    with pytest.raises(TypeError, match="y must be a floating-point or complex tensor"):
        invsolve.gaussian_posterior(prior, operator, y.to(torch.int64), NOISE_STD)


def test_rejects_complex_measurements_of_a_real_operator(mask_problem):
    prior, operator, y = mask_problem
    with pytest.raises(ValueError, match="y must be real for Mask.*got dtype torch.complex128"):
        invsolve.gaussian_posterior(prior, operator, y.to(torch.complex128), NOISE_STD)


def test_rejects_non_finite_measurements(mask_problem):
    prior, operator, y = mask_problem
    y = y.clone()
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y must be finite, got 1 NaN or infinite entries"):
        invsolve.gaussian_posterior(prior, operator, y, NOISE_STD)


@pytest.mark.parametrize("noise_std", [0.0, -0.1, float("nan"), float("inf")])
def test_rejects_a_noise_std_that_is_not_positive_and_finite(mask_problem, noise_std):
    prior, operator, y = mask_problem
    with pytest.raises(ValueError, match="noise_std must be a finite number > 0"):
        invsolve.gaussian_posterior(prior, operator, y, noise_std)
