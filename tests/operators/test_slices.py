"""SliceStack: a 2D operator on every slice of a volume, exact adjoint, slice-wise solves."""

import pytest
import torch

from invsolve.operators import GaussianLikelihood, Mask, SliceStack, dot_test, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.mri import CartesianMRI, random_mask


def _ray_transform():
    return RayTransform(ParallelBeam2D((8, 6), sparse_view_angles(5))).double()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_each_slice_is_measured_by_the_2d_operator(axis):
    operator2d = _ray_transform()
    volume_shape = [8, 6]
    volume_shape.insert(axis, 4)
    stack = SliceStack(operator2d, n_slices=4, axis=axis)
    assert stack.in_shape == (1, *volume_shape)
    assert stack.out_shape == (1, 4, *operator2d.out_shape[1:])
    x = torch.randn(2, 1, *volume_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = stack(x)
    for k in range(4):
        expected = operator2d(x.select(2 + axis, k))
        assert torch.allclose(y[:, :, k], expected)
    assert dot_test(stack) < 1e-12
    back = stack.adjoint(y)
    for k in range(4):
        assert torch.allclose(back.select(2 + axis, k), operator2d.adjoint(y[:, :, k]))


def test_closed_forms_pinv_and_measured_entries_pass_through_slice_by_slice():
    mask = random_pixel_mask((6, 6), missing_fraction=0.5, seed=1)
    stack = SliceStack(Mask(mask), n_slices=3)
    g = torch.Generator().manual_seed(2)
    rhs = torch.randn(1, 1, 3, 6, 6, dtype=torch.float64, generator=g)
    solved = stack._solve_normal(rhs, 0.5)
    assert solved is not None
    assert torch.allclose(solved, torch.where(mask, rhs / 1.5, rhs / 0.5))
    y = torch.randn(1, 1, 3, 6, 6, dtype=torch.float64, generator=g)
    assert torch.equal(stack.measured(y), y * mask)
    assert torch.equal(stack.pinv(y), y * mask)
    mri = SliceStack(CartesianMRI(random_mask(8, 0.25, 2, seed=0), shape=(8, 8)), n_slices=2)
    assert dot_test(mri) < 1e-12
    assert mri.complex_domain and mri.complex_range
    likelihood = GaussianLikelihood(SliceStack(_ray_transform(), n_slices=3), noise_std=0.1)
    assert likelihood.operator._solve_normal(torch.zeros(1, 1, 3, 8, 6, dtype=torch.float64), 0.1) is None


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(operator="ray", n_slices=0), ValueError, "n_slices"),
        (dict(operator="ray", n_slices=3, axis=3), ValueError, "axis must be 0, 1 or 2"),
        (dict(operator=None, n_slices=3), TypeError, "operator must be an invsolve LinearOperator"),
        (dict(operator="volume", n_slices=3), ValueError, r"must take 2D images \(C, h, w\)"),
    ],
)
def test_bad_arguments_get_one_clear_error(arguments, error, message):
    arguments = dict(arguments)
    if arguments["operator"] == "ray":
        arguments["operator"] = _ray_transform()
    elif arguments["operator"] == "volume":
        arguments["operator"] = SliceStack(_ray_transform(), n_slices=2)
    with pytest.raises(error, match=message):
        SliceStack(**arguments)
