"""Tests of the finite-difference operator and total variation (operators/finite_difference.py)."""

from __future__ import annotations

import math

import pytest
import torch

from invsolve.operators import FiniteDifference, dot_test, total_variation


@pytest.mark.parametrize(
    "in_shape, axes",
    [
        ((1, 9), None),  # 1-D signal
        ((1, 7, 5), None),  # 2-D image
        ((3, 6, 4), (1,)),  # columns only, three channels
        ((2, 4, 6, 3), None),  # 3-D volume
        ((1, 5, 4, 3), (0,)),  # along z only
        ((1, 5, 4, 3), (2, 0)),  # a subset in another order
        ((1, 5, 4, 3), -1),  # negative index: the last spatial axis
        ((1, 1, 5), None),  # an axis of length 1
    ],
)
def test_adjoint_is_exact(in_shape, axes):
    op = FiniteDifference(in_shape, axes)
    assert dot_test(op, dtype=torch.float64) < 1e-12
    assert op.out_shape == (len(op.axes), *in_shape)


def test_ramp_gives_constant_differences_and_zero_on_the_far_edge():
    rows = torch.arange(4, dtype=torch.float64).reshape(4, 1)
    cols = torch.arange(5, dtype=torch.float64).reshape(1, 5)
    x = (2 * rows + 3 * cols).expand(4, 5).reshape(1, 1, 4, 5)
    g = FiniteDifference((1, 4, 5))(x)
    assert g.shape == (1, 2, 1, 4, 5)
    expected_rows = torch.full((4, 5), 2.0, dtype=torch.float64)
    expected_rows[-1] = 0
    expected_cols = torch.full((4, 5), 3.0, dtype=torch.float64)
    expected_cols[:, -1] = 0
    torch.testing.assert_close(g[0, 0, 0], expected_rows, rtol=0, atol=0)
    torch.testing.assert_close(g[0, 1, 0], expected_cols, rtol=0, atol=0)
    # One axis: the output keeps a difference axis of length 1.
    only_cols = FiniteDifference((1, 4, 5), axes=(1,))(x)
    assert only_cols.shape == (1, 1, 1, 4, 5)
    torch.testing.assert_close(only_cols[0, 0, 0], expected_cols, rtol=0, atol=0)


def test_z_axis_of_a_volume():
    z = torch.arange(3, dtype=torch.float64).reshape(3, 1, 1)
    x = (5 * z + torch.rand(1, 4, 2, dtype=torch.float64)).reshape(1, 1, 3, 4, 2)  # z ramp plus an (y, x) pattern
    g = FiniteDifference((1, 3, 4, 2), axes=0)(x)
    assert g.shape == (1, 1, 1, 3, 4, 2)
    torch.testing.assert_close(g[0, 0, 0, :2], torch.full((2, 4, 2), 5.0, dtype=torch.float64))
    assert bool((g[0, 0, 0, 2] == 0).all())


def test_matrix_in_one_dimension():
    dense = FiniteDifference((1, 4)).to_dense()
    expected = torch.tensor(
        [[-1, 1, 0, 0], [0, -1, 1, 0], [0, 0, -1, 1], [0, 0, 0, 0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(dense, expected, rtol=0, atol=0)
    # The adjoint is minus the divergence: Dᵀy = (−y₀, y₀ − y₁, y₁ − y₂, y₂).
    y = torch.tensor([[[[1.0, 2.0, 4.0, 8.0]]]], dtype=torch.float64)
    adjoint = FiniteDifference((1, 4)).adjoint(y)
    torch.testing.assert_close(adjoint, torch.tensor([[[-1.0, -1.0, -2.0, 4.0]]], dtype=torch.float64))


def test_channels_and_batch_items_are_differenced_separately():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=generator, dtype=torch.float64)
    op = FiniteDifference((3, 5, 6))
    whole = op(x)
    for b in range(2):
        for c in range(3):
            alone = FiniteDifference((1, 5, 6))(x[b : b + 1, c : c + 1])
            torch.testing.assert_close(whole[b : b + 1, :, c : c + 1], alone, rtol=0, atol=0)


@pytest.mark.parametrize("in_shape, axes", [((1, 8, 8), None), ((1, 5, 6, 4), None), ((2, 5, 6, 4), (0, 2))])
def test_norm_bound(in_shape, axes):
    op = FiniteDifference(in_shape, axes)
    d = len(op.axes)
    assert op.norm_bound() == pytest.approx(math.sqrt(4 * d))
    assert op.norm() <= op.exact_norm() * (1 + 1e-9)
    assert op.norm() <= math.sqrt(4 * d)
    assert op.norm() >= 0.9 * op.exact_norm()  # the power iteration gets close
    largest = float(torch.linalg.matrix_norm(op.to_dense(), ord=2))
    assert op.exact_norm() == pytest.approx(largest, rel=1e-10)
    assert op.exact_norm() <= op.norm_bound()


def test_gradients_flow_through_the_adjoint():
    generator = torch.Generator().manual_seed(1)
    op = FiniteDifference((2, 4, 5))
    x = torch.randn(2, 2, 4, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, *op.out_shape, generator=generator, dtype=torch.float64)
    (op(x) * g).sum().backward()
    torch.testing.assert_close(x.grad, op.adjoint(g))


def test_total_variation_by_hand():
    # Channel 0: [[0, 1], [2, 4]]; pixel by pixel (row difference, column difference):
    # (0,0): (2, 1) -> √5; (0,1): (3, 0) -> 3; (1,0): (0, 2) -> 2; (1,1): (0, 0) -> 0.
    # Channel 1: [[1, 1], [1, 1]] has TV 0.  Item 1 is item 0 times −2.
    first = torch.tensor([[[0.0, 1.0], [2.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    x = torch.stack([first, -2 * first])
    expected = math.sqrt(5) + 5
    torch.testing.assert_close(total_variation(x), torch.tensor([expected, 2 * expected], dtype=torch.float64))
    # Along the columns only: |1 − 0| + |4 − 2| = 3 per unit scale.
    torch.testing.assert_close(total_variation(x, axes=1), torch.tensor([3.0, 6.0], dtype=torch.float64))


def test_total_variation_of_a_volume_matches_a_loop():
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(2, 2, 3, 4, 5, generator=generator, dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    for b in range(2):
        for c in range(2):
            for i in range(3):
                for j in range(4):
                    for k in range(5):
                        here = x[b, c, i, j, k]
                        dz = x[b, c, i + 1, j, k] - here if i < 2 else 0.0
                        dy = x[b, c, i, j + 1, k] - here if j < 3 else 0.0
                        dx = x[b, c, i, j, k + 1] - here if k < 4 else 0.0
                        expected[b] += math.sqrt(float(dz) ** 2 + float(dy) ** 2 + float(dx) ** 2)
    result = total_variation(x)
    assert result.shape == (2,) and result.dtype == torch.float64
    torch.testing.assert_close(result, expected, rtol=1e-12, atol=0)
    # Constant images have TV 0.
    assert float(total_variation(torch.ones(1, 1, 3, 4, 5)).abs().max()) == 0


@pytest.mark.parametrize(
    "in_shape, axes, error, match",
    [
        ((1, 4, 4), 2, ValueError, r"axes must be .*ints in \[-2, 2\) \(spatial axes of in_shape \(1, 4, 4\)\), got 2"),
        ((1, 4, 4), (0, -3), ValueError, r"axes must be .*in \[-2, 2\).*got \(0, -3\)"),
        ((1, 4, 4, 4), (0, 1, 0), ValueError, r"axes must be .*distinct.*got \(0, 1, 0\): spatial axis 0 is named"),
        ((1, 4, 4), (1, -1), ValueError, r"got \(1, -1\): spatial axis 1 is named twice"),
        ((1, 4, 4), (), ValueError, r"axes must name at least one spatial axis of in_shape \(1, 4, 4\), got \(\)"),
        ((1, 4, 4), (0.5,), TypeError, r"axes must be None, an int or a sequence of distinct ints"),
        ((1, 4, 4), True, TypeError, r"axes must be None, an int"),
        ((5,), None, ValueError, r"in_shape must be \(C, \*spatial\) .*at least one spatial axis, got \(5,\)"),
        ((1, 0, 4), None, ValueError, r"in_shape must be \(C, \*spatial\) of ints >= 1.*got \(1, 0, 4\)"),
        ((1, 4.0), None, TypeError, r"in_shape must be \(C, \*spatial\)"),
        (4, None, TypeError, r"in_shape must be \(C, \*spatial\).*got 4"),
    ],
)
def test_bad_arguments(in_shape, axes, error, match):
    with pytest.raises(error, match=match):
        FiniteDifference(in_shape, axes)


def test_bad_inputs():
    op = FiniteDifference((1, 4, 4))
    with pytest.raises(ValueError, match=r"x \(input of FiniteDifference.*must have shape \(B, 1, 4, 4\)"):
        op(torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match=r"y \(measurement of FiniteDifference.*must have shape \(B, 2, 1, 4, 4\)"):
        op.adjoint(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"x must be real images \(B, C, \*spatial\).*got shape \(4, 4\)"):
        total_variation(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        total_variation(torch.zeros(1, 1, 4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"axes must be .*got 3"):
        total_variation(torch.zeros(1, 1, 4, 4), axes=3)


def test_float32_keeps_its_dtype():
    x = torch.rand(2, 1, 6, 6)
    assert FiniteDifference((1, 6, 6))(x).dtype == torch.float32
    assert total_variation(x).dtype == torch.float32
    torch.testing.assert_close(total_variation(x), total_variation(x.double()).float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 5, 6, 7, generator=generator, dtype=torch.float64)
    op = FiniteDifference((1, 5, 6, 7), axes=(0, 2))
    torch.testing.assert_close(op(x.cuda()).cpu(), op(x), rtol=0, atol=0)
    g = op(x)
    torch.testing.assert_close(op.adjoint(g.cuda()).cpu(), op.adjoint(g), rtol=0, atol=0)
    torch.testing.assert_close(total_variation(x.cuda()).cpu(), total_variation(x), rtol=1e-12, atol=0)
