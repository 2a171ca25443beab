import math

import numpy as np
import pytest
import torch

from invsolve.operators import dot_test
from invsolve.operators.base import conjugate_gradient_pinv
from invsolve.operators.mri import (
    CartesianMRI,
    estimate_coil_maps,
    fft_centered,
    ifft_centered,
    poisson_disc_mask,
    random_mask,
    rss,
)


def smooth_coil_maps(n_coils, spatial, normalise=True, dtype=torch.complex128):
    """Gaussian sensitivities around the image with a linear phase each, Σ|S_c|² = 1 if normalised."""
    axes = torch.meshgrid(*[torch.linspace(-1, 1, n, dtype=torch.float64) for n in spatial], indexing="ij")
    maps = []
    for c in range(n_coils):
        angle = 2 * math.pi * c / n_coils
        centre = [0.0] * (len(spatial) - 2) + [1.2 * math.cos(angle), 1.2 * math.sin(angle)]
        distance_sq = sum((a - p) ** 2 for a, p in zip(axes, centre))
        phase = 0.7 * c * axes[-1] + 0.3 * axes[-2]
        maps.append(torch.polar(torch.exp(-distance_sq / 1.5), phase))
    maps = torch.stack(maps)
    if normalise:
        maps = maps / torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))
    return maps.to(dtype)


def random_complex(shape, dtype=torch.complex128, seed=0):
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


# -- the centred FFT ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 10), (7, 9), (4, 5, 6), (5, 3, 4)])
def test_centred_fft_matches_numpy_fastmri_formula(shape):
    ndim = len(shape)
    x = random_complex((2, *shape))
    axes = tuple(range(-ndim, 0))
    expected = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x.numpy(), axes=axes), axes=axes, norm="ortho"), axes=axes)
    k = fft_centered(x, ndim)
    assert np.allclose(k.numpy(), expected, atol=1e-12)
    assert torch.allclose(ifft_centered(k, ndim), x, atol=1e-12)
    assert math.isclose(float(torch.linalg.vector_norm(k)), float(torch.linalg.vector_norm(x)), rel_tol=1e-12)


@pytest.mark.parametrize("shape", [(8, 10), (7, 9)])
def test_zero_frequency_and_image_centre_sit_at_n_over_2(shape):
    height, width = shape
    k = fft_centered(torch.ones(1, 1, height, width, dtype=torch.complex128))
    assert torch.isclose(k[0, 0, height // 2, width // 2], torch.tensor(math.sqrt(height * width), dtype=torch.complex128))
    k[0, 0, height // 2, width // 2] = 0
    assert float(k.abs().max()) < 1e-12
    delta = torch.zeros(1, 1, height, width, dtype=torch.complex128)
    delta[0, 0, height // 2, width // 2] = 1
    # an impulse at the image centre has a flat, real, positive spectrum
    assert torch.allclose(fft_centered(delta), torch.full_like(delta, 1 / math.sqrt(height * width)), atol=1e-12)


# -- the operator ---------------------------------------------------------------------


def random_plane(shape, seed):
    """A random 2-D mask, half sampled, with the centre sampled."""
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    mask[shape[0] // 2, shape[1] // 2] = True
    return mask


def operators():
    column = random_mask(10, 0.2, 2, seed=1)
    plane = poisson_disc_mask((16, 20), 2.5, center_fraction=0.25, seed=2)[::2, ::2]
    volume_plane = random_plane((6, 8), seed=3)
    readout_along_h = random_plane((5, 8), seed=4)[:, None, :]
    return {
        "single-2d-columns": CartesianMRI(column, shape=(8, 10)),
        "single-2d-odd": CartesianMRI(random_mask(9, 0.2, 2, seed=4), shape=(7, 9)),
        "single-2d-plane": CartesianMRI(plane),
        "single-2d-full": CartesianMRI(torch.ones(1, dtype=torch.bool), shape=(4, 6)),
        "sense-2d-columns": CartesianMRI(column, smooth_coil_maps(4, (8, 10))),
        "sense-2d-plane": CartesianMRI(plane, smooth_coil_maps(3, (8, 10), normalise=False)),
        "single-3d-plane": CartesianMRI(volume_plane, shape=(5, 6, 8)),
        "sense-3d-plane": CartesianMRI(volume_plane, smooth_coil_maps(3, (5, 6, 8))),
        "sense-3d-readout-H": CartesianMRI(readout_along_h, smooth_coil_maps(2, (5, 7, 8))),
    }


OPERATORS = operators()


@pytest.mark.parametrize("name", list(OPERATORS))
def test_adjoint_is_exact(name):
    A = OPERATORS[name]
    assert A.complex_domain and A.complex_range
    assert dot_test(A, torch.float64) <= 1e-12
    assert dot_test(A, torch.float32) <= 1e-5


@pytest.mark.parametrize("name", list(OPERATORS))
def test_fast_normal_equals_adjoint_of_forward(name):
    A = OPERATORS[name]
    x = random_complex((2, *A.in_shape), seed=5)
    assert torch.allclose(A.normal(x), A.adjoint(A(x)), atol=1e-12)
    x32 = x.to(torch.complex64)
    assert A.normal(x32).dtype == torch.complex64
    assert torch.allclose(A.normal(x32), A.adjoint(A(x32)), atol=1e-5)


def test_forward_is_masked_fft_of_each_coil_image():
    mask = random_mask(10, 0.2, 2, seed=0)
    maps = smooth_coil_maps(3, (8, 10))
    A = CartesianMRI(mask, maps)
    x = random_complex((2, 1, 8, 10))
    y = A(x)
    assert y.shape == (2, 3, 8, 10) and A.n_coils == 3
    for c in range(3):
        expected = fft_centered(x[:, 0] * maps[c]) * mask
        assert torch.allclose(y[:, c], expected, atol=1e-12)
    assert bool((y[..., ~mask] == 0).all())


def test_real_images_are_taken_as_complex():
    A = CartesianMRI(random_mask(10, 0.2, 2, seed=0), smooth_coil_maps(2, (8, 10)))
    x = torch.randn(1, 1, 8, 10, dtype=torch.float64)
    assert torch.allclose(A(x), A(x.to(torch.complex128)), atol=1e-14)


def test_single_coil_pinv_is_the_zero_filled_minimum_norm_solution():
    A = OPERATORS["single-2d-columns"]
    y = A(random_complex((2, *A.in_shape), seed=1)) + A(random_complex((2, *A.in_shape), seed=2))
    x = A.pinv(y)
    assert torch.allclose(x, A.adjoint(y))
    dense = A.to_dense()
    expected = (torch.linalg.pinv(dense) @ y.reshape(2, -1).T).T.reshape(x.shape)
    assert torch.allclose(x, expected, atol=1e-10)
    assert torch.allclose(x, conjugate_gradient_pinv(A, y, tol=1e-12), atol=1e-9)


def test_sense_pinv_by_conjugate_gradients_matches_the_dense_pseudo_inverse():
    mask = random_mask(8, 0.25, 2, seed=1)  # 4 of 8 columns: the normal operator's condition number is ~90
    A = CartesianMRI(mask, smooth_coil_maps(4, (8, 8)))
    y = A(random_complex((1, *A.in_shape), seed=2)) + 0.1 * random_complex((1, *A.out_shape), seed=3) * mask
    dense = A.to_dense()
    expected = (torch.linalg.pinv(dense) @ y.reshape(1, -1).T).T.reshape(1, *A.in_shape)
    assert torch.allclose(A.pinv(y), expected, rtol=0, atol=1e-4 * float(expected.abs().max()))


def test_norm_and_isometry_with_normalised_maps():
    assert math.isclose(OPERATORS["single-2d-columns"].norm(), 1.0, rel_tol=1e-6)
    full = torch.ones(10, dtype=torch.bool)
    A = CartesianMRI(full, smooth_coil_maps(4, (8, 10)))
    x = random_complex((2, *A.in_shape))
    assert torch.allclose(A.normal(x), x, atol=1e-12)
    assert math.isclose(A.norm(), 1.0, rel_tol=1e-6)
    assert A.acceleration == 1.0


def test_acceleration_counts_the_broadcast_mask():
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4, 5, 8, 9]] = True
    assert CartesianMRI(mask, shape=(6, 10)).acceleration == 2.0
    assert CartesianMRI(mask.reshape(2, 5), shape=(3, 2, 5)).acceleration == 2.0


def test_zero_filled_and_rss_follow_fastmri():
    maps = smooth_coil_maps(4, (8, 10))
    A = CartesianMRI(torch.ones(8, 10), maps)
    x = random_complex((2, *A.in_shape))
    y = A(x)
    coil_images = A.zero_filled(y)
    assert coil_images.shape == (2, 4, 8, 10)
    assert torch.allclose(coil_images, maps * x, atol=1e-12)
    # with Σ|S_c|² = 1 the root-sum-of-squares of full data is |x|
    assert torch.allclose(A.rss(y), x.abs(), atol=1e-12)
    assert torch.allclose(rss(coil_images), torch.sqrt((coil_images.abs() ** 2).sum(1, keepdim=True)))
    real = torch.randn(3, 5, 4, dtype=torch.float64)
    assert torch.allclose(rss(real, dim=0), torch.sqrt((real**2).sum(0, keepdim=True)))
    single = CartesianMRI(torch.ones(10), shape=(8, 10))
    assert torch.allclose(single.rss(single(x)), x.abs(), atol=1e-12)


def test_estimated_coil_maps_recover_smooth_sensitivities():
    spatial = (32, 32)
    maps = smooth_coil_maps(4, spatial)
    grid = torch.meshgrid(*[torch.linspace(-1, 1, n, dtype=torch.float64) for n in spatial], indexing="ij")
    image = torch.exp(-(grid[0] ** 2 + grid[1] ** 2) / 0.5).to(torch.complex128)
    mask = random_mask(32, 0.25, 2, seed=0)
    y = CartesianMRI(mask, maps)(image[None, None])[0]
    estimate = estimate_coil_maps(y, mask, threshold=0.05)
    assert estimate.shape == maps.shape
    inside = image.abs() > 0.3
    assert float((estimate - maps)[:, inside].abs().max()) < 0.05
    assert torch.allclose((estimate.abs() ** 2).sum(0)[inside], torch.ones(int(inside.sum()), dtype=torch.float64))
    # the estimate is immediately usable as SENSE maps
    assert dot_test(CartesianMRI(mask, estimate)) <= 1e-12


def test_coil_estimation_needs_centre_lines():
    mask = torch.zeros(16, dtype=torch.bool)
    mask[::3] = True
    mask[8] = False
    with pytest.raises(ValueError, match="no fully sampled centre lines"):
        estimate_coil_maps(random_complex((2, 8, 16)), mask)


def test_require_center():
    mask = random_mask(16, 0.125, 2, seed=0)
    CartesianMRI(mask, shape=(8, 16), require_center=True)
    mask[8] = False
    CartesianMRI(mask, shape=(8, 16))  # not asked: accepted
    with pytest.raises(ValueError, match=r"no fully sampled centre lines: the zero frequency at index \(8,\)"):
        CartesianMRI(mask, shape=(8, 16), require_center=True)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: CartesianMRI(torch.ones(10)), ValueError, r"the image shape is unknown: pass shape=\(H, W\)"),
        (lambda: CartesianMRI(torch.ones(9), shape=(8, 10)), ValueError, r"mask of shape \(9,\) does not broadcast to the image shape \(8, 10\)"),
        (lambda: CartesianMRI(torch.ones(2, 8, 10), shape=(8, 10)), ValueError, "does not broadcast"),
        (lambda: CartesianMRI(torch.full((10,), 0.5), shape=(8, 10)), ValueError, "mask must be boolean or hold only 0 and 1"),
        (lambda: CartesianMRI([1, 0], shape=(8, 2)), TypeError, "mask must be a torch.Tensor, got list"),
        (lambda: CartesianMRI(torch.ones(10), torch.ones(8, 10)), ValueError, r"coil_maps must be shaped \(coils, H, W\)"),
        (lambda: CartesianMRI(torch.ones(10), torch.ones(2, 8, 10), shape=(8, 9)), ValueError, r"shape \(8, 9\) disagrees"),
        (lambda: CartesianMRI(torch.ones(10), shape=(10,)), ValueError, r"shape must be a pair \(H, W\) or a triple"),
    ],
)
def test_constructor_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_call_errors_name_the_expected_shape():
    A = OPERATORS["sense-2d-columns"]
    with pytest.raises(ValueError, match=r"must have shape \(B, 1, 8, 10\)"):
        A(torch.zeros(1, 2, 8, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"must have shape \(B, 4, 8, 10\)"):
        A.adjoint(torch.zeros(1, 1, 8, 10, dtype=torch.complex64))
