import pytest
import torch

import invsolve
from invsolve.operators import dot_test
from invsolve.operators.complex import (
    ComplexAsChannels,
    channels_to_complex,
    complex_to_channels,
    from_magnitude,
    magnitude_phase,
)
from invsolve.operators.mri import CartesianMRI, random_mask
from invsolve.priors import GaussianPrior


def random_complex(shape, seed=0, dtype=torch.complex128):
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def test_channel_layout_real_parts_then_imaginary_parts():
    x = random_complex((2, 3, 4, 5))
    channels = complex_to_channels(x)
    assert channels.shape == (2, 6, 4, 5) and channels.dtype == torch.float64
    assert torch.equal(channels[:, :3], x.real) and torch.equal(channels[:, 3:], x.imag)
    assert torch.equal(channels_to_complex(channels), x)
    assert channels_to_complex(channels.float()).dtype == torch.complex64
    real = torch.randn(1, 2, 3)
    assert torch.equal(complex_to_channels(real), torch.cat([real, torch.zeros_like(real)], dim=1))


def test_magnitude_with_phase_kept_round_trips():
    x = random_complex((2, 1, 4, 4))
    magnitude, phase = magnitude_phase(x)
    assert magnitude.dtype == phase.dtype == torch.float64
    assert bool((magnitude >= 0).all()) and bool((phase.abs() <= torch.pi).all())
    assert torch.allclose(from_magnitude(magnitude, phase), x, atol=1e-14)
    # one phase map for a batch of magnitudes broadcasts
    assert from_magnitude(magnitude, phase[:1]).shape == (2, 1, 4, 4)


@pytest.mark.parametrize("shape", [(1, 6, 5), (2, 3, 4, 5)])
def test_operator_is_an_orthogonal_map_with_exact_adjoint(shape):
    C = ComplexAsChannels(shape)
    assert C.in_shape == (2 * shape[0], *shape[1:]) and C.out_shape == shape
    assert not C.complex_domain and C.complex_range
    assert dot_test(C, torch.float64) <= 1e-12
    assert dot_test(C, torch.float32) <= 1e-6
    x = torch.randn(2, *C.in_shape, dtype=torch.float64)
    assert torch.equal(C.normal(x), C.adjoint(C(x)))
    y = random_complex((2, *shape))
    assert torch.equal(C.pinv(y), C.adjoint(y)) and torch.equal(C(C.pinv(y)), y)
    assert abs(C.norm() - 1.0) < 1e-6


def test_mri_on_channels_is_a_real_domain_operator_with_exact_adjoint():
    mri = CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8))
    A = mri @ ComplexAsChannels((1, 8, 8))
    assert A.in_shape == (2, 8, 8) and not A.complex_domain and A.complex_range
    assert dot_test(A, torch.float64) <= 1e-12
    assert dot_test(A, torch.float32) <= 1e-5
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    assert torch.allclose(A(x), mri(channels_to_complex(x)))
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-12)


@pytest.mark.parametrize("sampler", ["red-diff", "dps"])
def test_reconstruct_accepts_mri_through_complex_channels(sampler):
    prior = GaussianPrior.squared_exponential((2, 8, 8), length_scale=2.0)
    A = CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8)) @ ComplexAsChannels((1, 8, 8))
    y = A(prior.sample_exact(1, seed=0))
    assert y.is_complex()
    result = invsolve.reconstruct(y, A, prior, sampler, noise_std=0.01, steps=5, seed=0, progress=False)
    assert result.image.shape == (1, 2, 8, 8) and not result.image.is_complex()
    assert bool(torch.isfinite(result.image).all())


def test_raw_complex_operator_is_refused_with_a_pointer_to_the_wrapper():
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=2.0)
    A = CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8))
    y = A(torch.zeros(1, 1, 8, 8, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"acts on complex images.*ComplexAsChannels"):
        invsolve.reconstruct(y, A, prior, steps=5, progress=False)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: channels_to_complex(torch.zeros(1, 3, 4, 4)), ValueError, r"x must have an even number of channels .* got shape \(1, 3, 4, 4\)"),
        (lambda: channels_to_complex(torch.zeros(1, 2, 4, dtype=torch.complex64)), TypeError, "x must be a floating-point tensor"),
        (lambda: complex_to_channels(torch.zeros(4, dtype=torch.complex64)), ValueError, r"x must be batched \(B, C, \*spatial\)"),
        (lambda: complex_to_channels(torch.zeros(1, 2, dtype=torch.int64)), TypeError, "x must be a floating-point or complex tensor"),
        (lambda: from_magnitude(torch.ones(2), torch.ones(2, dtype=torch.complex64)), TypeError, "phase must be a floating-point tensor"),
        (lambda: ComplexAsChannels(()), ValueError, r"shape must be a sequence \(C, \*spatial\) of ints, got \(\)"),
        (lambda: ComplexAsChannels((0, 4, 4)), ValueError, r"shape\[0\] \(channels\) must be an int >= 1, got 0"),
        (lambda: ComplexAsChannels((1, 4, 4))(torch.zeros(1, 1, 4, 4)), ValueError, r"must have shape \(B, 2, 4, 4\)"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_real_as_complex_embeds_with_a_fixed_phase():
    from invsolve.operators import RealAsComplex

    phase = torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 6
    for operator in (RealAsComplex((2, 6, 5)), RealAsComplex((2, 6, 5), phase)):
        assert dot_test(operator) < 1e-13
        x = torch.randn(3, 2, 6, 5, dtype=torch.float64)
        assert torch.allclose(operator.normal(x), x) and torch.allclose(operator.adjoint(operator(x)), x)
        assert operator.in_shape == operator.out_shape == (2, 6, 5)
        assert not operator.complex_domain and operator.complex_range
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64)
    assert torch.allclose(RealAsComplex((2, 6, 5), phase)(x), x * torch.exp(1j * phase))
    assert torch.equal(RealAsComplex((2, 6, 5))(x).real, x)
    assert RealAsComplex((1, 4, 4))(torch.ones(1, 1, 4, 4)).dtype == torch.complex64


def test_real_as_complex_errors():
    from invsolve.operators import RealAsComplex

    with pytest.raises(ValueError, match=r"phase must broadcast to the image shape \(1, 4, 4\), got shape \(3, 4\)"):
        RealAsComplex((1, 4, 4), torch.zeros(3, 4))
    with pytest.raises(TypeError, match="phase must be a floating-point tensor"):
        RealAsComplex((1, 4, 4), torch.zeros(4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="phase must be finite"):
        RealAsComplex((1, 4, 4), torch.full((4, 4), float("nan")))


def test_a_magnitude_prior_reconstructs_mri_through_real_as_complex():
    """A one-channel (magnitude) prior with single-coil MRI: the exact posterior and a sampler agree."""
    from invsolve.operators import GaussianNoise, RealAsComplex

    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5, std=1.0, mean=0.5)
    phase = torch.linspace(0, 1, 8, dtype=torch.float64)[None, :].expand(8, 8)
    operator = CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8)) @ RealAsComplex((1, 8, 8), phase)
    truth = prior.sample_exact(1, seed=0)
    y = GaussianNoise(0.05)(operator(truth), seed=1)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, 0.05)
    rms_std = float(cov.diagonal().mean().sqrt())
    assert float((mean - truth).pow(2).mean().sqrt()) < 0.15  # measured 0.059
    # with the phase ignored the same data give a posterior mean 0.34 from the truth
    ignored = CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8)) @ RealAsComplex((1, 8, 8))
    assert float((invsolve.gaussian_posterior(prior, ignored, y, 0.05)[0] - truth).pow(2).mean().sqrt()) > 0.3
    result = invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.05, steps=30, n_samples=64, max_batch=64, progress=False)
    # the mean of 64 DDS samples: measured 0.63 RMS posterior stds from the posterior mean, the same for
    # every seed (DDS's data step fits these data exactly, see the README's oracle section); a dropped
    # phase or conjugate puts it several posterior stds away
    assert float((result.image - mean).pow(2).mean().sqrt()) < 0.9 * rms_std
