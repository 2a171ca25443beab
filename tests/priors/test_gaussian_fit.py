"""LowRankGaussian: the fit, its covariance, its samples, and how priors carry it."""

import math

import pytest
import torch

from invsolve.datasets import random_ellipse_phantoms
from invsolve.priors import GaussianPrior, LowRankGaussian, Normalization, UNetPrior

SHAPE = (1, 4, 4)
PIXELS = 16


def known_gaussian(seed=0):
    """Mean, rows U (3 × 16, orthonormal), λ = (4, 2, 1) and s² = 0.05 of a probabilistic-PCA Gaussian."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.linalg.qr(torch.randn(PIXELS, 3, generator=generator, dtype=torch.float64))[0].T
    mean = torch.randn(SHAPE, generator=generator, dtype=torch.float64)
    return mean, rows, torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64), 0.05


def draws(count, seed=1):
    mean, rows, variances, residual = known_gaussian()
    generator = torch.Generator().manual_seed(seed)
    low_rank = (torch.randn(count, 3, generator=generator, dtype=torch.float64) * variances.sqrt()) @ rows
    noise = math.sqrt(residual) * torch.randn(count, PIXELS, generator=generator, dtype=torch.float64)
    return mean + (low_rank + noise).reshape(count, *SHAPE)


def dense(rows, variances, residual):
    return (rows.T * variances) @ rows + residual * torch.eye(rows.shape[1], dtype=torch.float64)


def test_fit_recovers_a_known_low_rank_gaussian():
    count = 20_000
    mean, rows, variances, residual = known_gaussian()
    fit = LowRankGaussian.fit(draws(count), rank=3)
    assert fit.image_shape == SHAPE and fit.rank == 3
    assert all(buffer.dtype == torch.float32 for buffer in fit.buffers())
    # Sampling error: a mean pixel has std sqrt(Σ_ii / N) <= sqrt(4.05 / 2e4) = 0.014, a covariance entry
    # std <= sqrt(2)·4.05 / sqrt(N) = 0.04; the bounds are 5 standard deviations (measured 0.007 and 0.014).
    mean_bound, entry_bound = 5 * math.sqrt(4.05 / count), 5 * math.sqrt(2) * 4.05 / math.sqrt(count)
    assert float((fit.mean.double() - mean).abs().max()) < mean_bound
    assert float((fit.to_dense() - dense(rows, variances, residual)).abs().max()) < entry_bound
    assert torch.allclose(fit.variances.double(), variances, rtol=0.1)
    assert float(fit.residual_variance) == pytest.approx(residual, rel=0.05)
    # orthonormal rows spanning the true components' space
    assert torch.allclose(fit.components @ fit.components.T, torch.eye(3), atol=1e-6)
    overlap = torch.linalg.svdvals(fit.components.double() @ rows.T)
    assert float(overlap.min()) > 0.99
    # the model keeps the sample's total variance; the top 3 eigenvalues are 7.15 of 7.8
    sample = draws(count).reshape(count, -1)
    assert float(fit.to_dense().trace()) == pytest.approx(float(sample.var(dim=0).sum()), rel=1e-6)
    assert fit.explained_variance == pytest.approx(7.15 / 7.8, abs=0.02)


def test_fit_is_deterministic_and_sign_normalised():
    images = draws(50)
    first, second = LowRankGaussian.fit(images, 4), LowRankGaussian.fit(-images.flip(0) + 0, 4)
    for name, buffer in first.named_buffers():
        assert torch.equal(buffer, LowRankGaussian.fit(images, 4).get_buffer(name))
    # negated data: same components (signs fixed by the largest entry), negated mean
    assert torch.allclose(second.components, first.components, atol=1e-5)
    assert torch.allclose(second.mean, -first.mean, atol=1e-6)
    peaks = first.components.abs().argmax(dim=1)
    assert bool((first.components.gather(1, peaks[:, None]) > 0).all())


def test_full_rank_fit_is_the_sample_covariance():
    images = draws(40)
    fit = LowRankGaussian.fit(images, PIXELS)
    assert float(fit.residual_variance) == 0.0
    sample = torch.cov(images.reshape(40, -1).T)
    assert torch.allclose(fit.to_dense(), sample, atol=1e-5)


def test_cov_matvec_is_the_dense_covariance():
    fit = LowRankGaussian.fit(draws(60), 5)
    generator = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        v = torch.randn(3, *SHAPE, generator=generator, dtype=dtype)
        out = fit.cov_matvec(v)
        assert out.shape == v.shape and out.dtype == dtype
        expected = (v.reshape(3, -1).double() @ fit.to_dense()).reshape(v.shape)
        tolerance = 1e-5 if dtype == torch.float32 else 1e-12
        assert torch.allclose(out.double(), expected, atol=tolerance * float(expected.abs().max()))
    assert fit.to_dense().dtype == torch.float64 and fit.to_dense().shape == (PIXELS, PIXELS)


def test_samples_have_the_model_covariance():
    mean, rows, variances, residual = known_gaussian()
    gaussian = LowRankGaussian(SHAPE, 3)
    gaussian.mean.copy_(mean)
    gaussian.components.copy_(rows)
    gaussian.variances.copy_(variances)
    gaussian.residual_variance.fill_(residual)
    count = 20_000
    samples = gaussian.sample(count, torch.Generator().manual_seed(0))
    assert samples.shape == (count, *SHAPE) and samples.dtype == torch.float32
    assert torch.equal(samples, gaussian.sample(count, torch.Generator().manual_seed(0)))  # seeded
    flat = samples.reshape(count, -1).double()
    # same 5-standard-deviation bounds as for the fit (measured 0.009 and 0.011)
    assert float((flat.mean(0) - mean.reshape(-1)).abs().max()) < 5 * math.sqrt(4.05 / count)
    error = torch.cov(flat.T) - gaussian.to_dense()
    assert float(error.abs().max()) < 5 * math.sqrt(2) * 4.05 / math.sqrt(count)


def test_gaussian_prior_fit_is_its_exact_distribution():
    prior = GaussianPrior.squared_exponential(
        (1, 3, 3), length_scale=1.5, std=2.0, mean=1.0, normalization=Normalization(scale=3.0, offset=1.0)
    )
    fit = prior.gaussian_fit
    assert isinstance(fit, LowRankGaussian) and fit.rank == 9 and fit.image_shape == (1, 3, 3)
    assert torch.equal(fit.components, prior.eigenvectors.T) and torch.equal(fit.variances, prior.eigenvalues)
    assert float(fit.residual_variance) == 0.0 and fit.components.dtype == torch.float64
    assert torch.equal(fit.mean, prior.to_network(prior.mean))
    assert torch.allclose(fit.to_dense() * prior.normalization.scale**2, prior.cov, rtol=0, atol=1e-12)
    assert "gaussian_fit_module.mean" not in prior.state_dict()  # built on the fly, not stored
    with pytest.raises(TypeError, match="a GaussianPrior's gaussian_fit is its own exact distribution"):
        prior.set_gaussian_fit(fit)


def test_a_prior_carries_its_fit():
    prior = UNetPrior((1, 8, 8), channels=(8, 16), attention_levels=(False, False), num_head_channels=8)
    assert prior.gaussian_fit is None
    fit = LowRankGaussian.fit(torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)), 3)
    prior.set_gaussian_fit(fit)
    assert prior.gaussian_fit is fit
    keys = {name for name in prior.state_dict() if name.startswith("gaussian_fit_module.")}
    assert keys == {f"gaussian_fit_module.{name}" for name in ("mean", "components", "variances", "residual_variance")}
    assert next(prior.parameters()).dtype == torch.float32 and prior.dtype == torch.float32
    prior.to(torch.float64)
    assert prior.gaussian_fit.components.dtype == torch.float64
    prior.set_gaussian_fit(None)
    assert prior.gaussian_fit is None and not any(name.startswith("gaussian_fit") for name in prior.state_dict())
    with pytest.raises(ValueError, match=r"the Gaussian fit is for images of shape \(1, 4, 4\), but the prior's "
                                         r"image_shape is \(1, 8, 8\)"):
        prior.set_gaussian_fit(LowRankGaussian(SHAPE, 2))
    with pytest.raises(TypeError, match="fit must be a LowRankGaussian or None, got Tensor"):
        prior.set_gaussian_fit(torch.zeros(3))


def test_empty_gaussian_for_loading():
    empty = LowRankGaussian((2, 3, 4), 5)
    assert empty.image_shape == (2, 3, 4) and empty.rank == 5
    shapes = {name: tuple(buffer.shape) for name, buffer in empty.named_buffers()}
    assert shapes == {"mean": (2, 3, 4), "components": (5, 24), "variances": (5,), "residual_variance": ()}
    assert all(not buffer.any() for buffer in empty.buffers()) and empty.explained_variance == 0.0
    fit = LowRankGaussian.fit(torch.randn(30, 2, 3, 4, generator=torch.Generator().manual_seed(0)), 5)
    empty.load_state_dict(fit.state_dict())
    assert torch.equal(empty.to_dense(), fit.to_dense())


def test_errors():
    images = draws(5)
    with pytest.raises(ValueError, match=r"rank must be at most min\(N - 1, n\) = min\(4, 16\) = 4 for N = 5 "
                                         r"images of shape \(1, 4, 4\) \(n = 16 pixels\), got 5"):
        LowRankGaussian.fit(images, 5)
    with pytest.raises(ValueError, match=r"rank must be an int >= 1, got 0"):
        LowRankGaussian.fit(images, 0)
    with pytest.raises(TypeError, match=r"rank must be an int >= 1, got 2.0"):
        LowRankGaussian.fit(images, 2.0)
    with pytest.raises(ValueError, match=r"need at least 2 images to estimate a covariance, got 1"):
        LowRankGaussian.fit(images[:1], 1)
    with pytest.raises(ValueError, match=r"images must be shaped \(N, C, \*spatial\), got shape \(5, 16\)"):
        LowRankGaussian.fit(images.reshape(5, 16), 2)
    with pytest.raises(ValueError, match="images"):
        LowRankGaussian.fit(torch.full((3, 1, 2, 2), math.nan), 1)
    with pytest.raises(ValueError, match=r"rank must be at most the number of pixels n = 16 of an image of shape "
                                         r"\(1, 4, 4\), got 17"):
        LowRankGaussian(SHAPE, 17)
    with pytest.raises(ValueError, match=r"image_shape must be \(C, \*spatial\) with at least one spatial axis, got"):
        LowRankGaussian((16,), 2)
    fit = LowRankGaussian.fit(images, 2)
    with pytest.raises(ValueError, match=r"v must be shaped \(B, \*image_shape\) = \(B, 1, 4, 4\), got \(1, 16\)"):
        fit.cov_matvec(torch.zeros(1, 16))


def low_frequency_fraction(images):
    """Fraction of the images' spectral energy (mean removed) at spatial frequencies |k| <= side / 8."""
    centred = (images - images.mean(dim=(-2, -1), keepdim=True)).double()
    power = torch.fft.fftshift(torch.fft.fft2(centred), dim=(-2, -1)).abs() ** 2
    side = images.shape[-1]
    ky, kx = torch.meshgrid(torch.arange(side) - side // 2, torch.arange(side) - side // 2, indexing="ij")
    return float(power[..., kx**2 + ky**2 <= (side / 8) ** 2].sum() / power.sum())


def test_phantom_fit_gives_blurry_averages():
    """The Gaussian of ellipse phantoms: its components are smooth blobs, so its samples are blurry averages."""
    phantoms = random_ellipse_phantoms(300, (32, 32), seed=0)
    fit = LowRankGaussian.fit(phantoms, 16)
    assert 0.3 < fit.explained_variance < 0.7  # measured 0.49: 16 components carry the outlines only
    assert torch.allclose(fit.mean, phantoms.mean(dim=0), atol=1e-6)
    xi = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    outlines = fit.mean + ((xi * fit.variances.sqrt()) @ fit.components).reshape(300, 1, 32, 32)
    # measured: 0.96 of the low-rank part's energy is at low frequencies, 0.72 of the sharp-edged phantoms'
    assert low_frequency_fraction(outlines) > 0.9 and low_frequency_fraction(phantoms) < 0.8
    samples = fit.sample(300, torch.Generator().manual_seed(0))
    assert float(samples.mean()) == pytest.approx(float(phantoms.mean()), abs=0.02)
