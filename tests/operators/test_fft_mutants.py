"""The centred FFT's edge cases, which the operator tests never reach (surviving mutants of
operators/mri/fft.py, benchmarks/mutation.py): one transformed axis, inputs with exactly
``ndim`` dimensions, an empty axis list, the default axes of the inverse, and its errors."""

import numpy as np
import pytest
import torch

from invsolve.operators.mri import fft_centered, ifft_centered


def _numpy_centred(x: torch.Tensor, axes, inverse=False) -> np.ndarray:
    transform = np.fft.ifftn if inverse else np.fft.fftn
    shifted = np.fft.ifftshift(x.numpy(), axes=axes)
    return np.fft.fftshift(transform(shifted, axes=axes, norm="ortho"), axes=axes)


def test_one_transformed_axis():
    x = torch.randn(3, 5, 7, dtype=torch.complex128)
    np.testing.assert_allclose(fft_centered(x, ndim=1).numpy(), _numpy_centred(x, (-1,)), atol=1e-12)
    np.testing.assert_allclose(ifft_centered(x, ndim=1).numpy(), _numpy_centred(x, (-1,), inverse=True), atol=1e-12)


def test_an_input_with_exactly_ndim_dimensions():
    x = torch.randn(6, 5, dtype=torch.complex128)
    np.testing.assert_allclose(fft_centered(x).numpy(), _numpy_centred(x, (0, 1)), atol=1e-12)
    volume = torch.randn(4, 6, 5, dtype=torch.complex128)
    np.testing.assert_allclose(ifft_centered(volume, 3).numpy(), _numpy_centred(volume, (0, 1, 2), True), atol=1e-12)


def test_the_inverse_transforms_the_last_two_axes_by_default():
    k = torch.randn(4, 6, 5, dtype=torch.complex128)
    np.testing.assert_allclose(ifft_centered(k).numpy(), _numpy_centred(k, (-2, -1), inverse=True), atol=1e-12)


@pytest.mark.parametrize("transform", [fft_centered, ifft_centered])
@pytest.mark.parametrize("dtype, expected", [(torch.float32, torch.complex64), (torch.float64, torch.complex128)])
def test_no_axes_is_the_identity_in_complex(transform, dtype, expected):
    x = torch.randn(2, 3, dtype=dtype)
    out = transform(x, dims=())
    assert out.dtype == expected
    torch.testing.assert_close(out.real, x, rtol=0, atol=0)
    assert not out.imag.any()
    z = x.to(expected)
    assert transform(z, dims=()) is z


@pytest.mark.parametrize("transform, name", [(fft_centered, "x"), (ifft_centered, "k")])
def test_errors_name_ndim_and_the_argument(transform, name):
    with pytest.raises(ValueError, match=r"ndim must be 1, 2 or 3 .* got 4"):
        transform(torch.zeros(2, 2, 2, 2, 2, dtype=torch.complex64), ndim=4)
    with pytest.raises(ValueError, match=rf"^{name} must have at least 3 dimensions for ndim=3, got shape \(4, 4\)"):
        transform(torch.zeros(4, 4, dtype=torch.complex64), ndim=3)
