import math

import pytest
import torch

from invsolve.operators import LinearOperator, Mask, MatrixOperator, dot_test, random_pixel_mask, stack


def random_matrix_operator(rows=6, in_shape=(1, 2, 4), seed=0, complex_=False):
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.complex128 if complex_ else torch.float64
    matrix = torch.randn(rows, math.prod(in_shape), generator=generator, dtype=dtype)
    return MatrixOperator(matrix, in_shape)


def operators():
    mask = Mask(random_pixel_mask((2, 4), missing_fraction=0.5, seed=1))
    a = random_matrix_operator(seed=0)
    b = random_matrix_operator(seed=1)
    square = random_matrix_operator(rows=8, seed=2)
    return {
        "matrix": a,
        "complex matrix": random_matrix_operator(seed=3, complex_=True),
        "mask": mask,
        "adjoint": a.T,
        "composition": a @ Mask(mask.mask),
        "chain": square @ a.T @ b,
        "scaled": 2.5 * a,
        "complex scaled": (1 - 2j) * a,
        "negated": -a,
        "sum": a + b,
        "difference": a - b,
        "stack": stack(a, mask, b),
    }


@pytest.mark.parametrize("name", list(operators()))
@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_dot_test(name, dtype, bound):
    assert dot_test(operators()[name], dtype=dtype) <= bound


@pytest.mark.parametrize("name", list(operators()))
def test_dense_matrix_norm_and_normal(name):
    op = operators()[name]
    dense = op.to_dense()
    x = torch.randn(3, *op.in_shape, dtype=dense.dtype)
    assert torch.allclose(op(x).reshape(3, -1), x.reshape(3, -1) @ dense.T, atol=1e-10)
    assert torch.allclose(op.normal(x).reshape(3, -1), x.reshape(3, -1) @ (dense.conj().T @ dense).T, atol=1e-10)
    assert op.norm() == pytest.approx(float(torch.linalg.matrix_norm(dense, ord=2)), rel=1e-5)


def test_norm_is_cached():
    op = random_matrix_operator()
    first = op.norm()
    op.matrix.mul_(2)  # the cache is keyed on the operator, not its tensors
    assert op.norm() == first


@pytest.mark.parametrize("name", ["matrix", "mask", "composition", "sum", "stack", "scaled"])
def test_pinv_is_minimum_norm_least_squares(name):
    op = operators()[name]
    dense = op.to_dense()
    y = torch.randn(2, *op.out_shape, dtype=dense.dtype)
    expected = y.reshape(2, -1) @ torch.linalg.pinv(dense).T
    assert torch.allclose(op.pinv(y).reshape(2, -1), expected, atol=1e-6)


def test_stack_concatenates_flattened_measurements():
    a = random_matrix_operator(rows=3)
    mask = Mask(torch.tensor([[True, False, True, True], [False, True, True, False]]))
    op = stack(a, mask)
    x = torch.randn(2, 1, 2, 4, dtype=torch.float64)
    assert op.out_shape == (3 + 8,)
    assert torch.equal(op(x), torch.cat([a(x), mask(x).reshape(2, -1)], dim=1))


def test_shape_and_type_errors_are_clear():
    op = random_matrix_operator()
    with pytest.raises(ValueError, match=r"must have shape \(B, 1, 2, 4\).*got \(2, 8\)"):
        op(torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"measurement of MatrixOperator.*got \(1, 5\)"):
        op.adjoint(torch.zeros(1, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point or complex tensor, got dtype torch.int64"):
        op(torch.zeros(1, 1, 2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        op([1.0])
    with pytest.raises(ValueError, match="cannot compose"):
        op @ op
    with pytest.raises(ValueError, match="cannot add"):
        op + random_matrix_operator(rows=5)
    with pytest.raises(ValueError, match="one in_shape"):
        stack(op, random_matrix_operator(in_shape=(1, 8)))
    with pytest.raises(TypeError):
        op * "two"


def test_matrix_operator_checks_its_matrix():
    with pytest.raises(ValueError, match=r"matrix must have shape \(6, 8\)"):
        MatrixOperator(torch.zeros(6, 7), in_shape=(1, 2, 4))
    with pytest.raises(ValueError, match="in_shape must be a non-empty sequence of positive ints"):
        MatrixOperator(torch.zeros(6, 8), in_shape=(0, 8))


def test_dot_test_catches_a_wrong_adjoint():
    class Broken(LinearOperator):
        def __init__(self):
            super().__init__((1, 4), (1, 4))

        def _forward(self, x):
            return torch.cumsum(x, dim=-1)

        def _adjoint(self, y):
            return torch.cumsum(y, dim=-1)  # should be the reversed cumsum

    assert dot_test(Broken()) > 1e-3


def test_operators_follow_their_tensors_to_the_device_and_dtype():
    mask = Mask(random_pixel_mask((4, 4), missing_fraction=0.5, seed=0))
    x32 = torch.randn(1, 1, 4, 4)
    assert mask(x32).dtype == torch.float32
    assert mask(x32.double()).dtype == torch.float64
    assert mask.to("cpu").device == torch.device("cpu")


def test_autograd_flows_through_operators():
    op = random_matrix_operator() @ Mask(torch.ones(2, 4, dtype=torch.bool), in_shape=(1, 2, 4))
    x = torch.randn(1, 1, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op(v), (x,))
    y = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op.adjoint(v), (y,))
