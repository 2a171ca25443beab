"""The data term: batched CG, the Gaussian likelihood's least-squares steps, prox and exact draws."""

import math

import pytest
import torch

from invsolve.operators import (
    ComplexAsChannels,
    GaussianLikelihood,
    Mask,
    MatrixOperator,
    cg,
    random_pixel_mask,
)
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.mri import CartesianMRI, random_mask


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def test_cg_solves_each_batch_item_and_warm_starts():
    g = _generator()
    factors = torch.randn(3, 10, 10, dtype=torch.float64, generator=g)
    matrices = factors @ factors.transpose(1, 2) + 0.5 * torch.eye(10, dtype=torch.float64)
    b = torch.randn(3, 10, dtype=torch.float64, generator=g)
    exact = torch.linalg.solve(matrices, b)

    def matvec(v):
        return (matrices @ v[..., None])[..., 0]

    x = cg(matvec, b, iterations=50, tol=1e-12)
    assert torch.allclose(x, exact, atol=1e-9)
    # started at the answer, it stays there; a budget of 0 returns the start
    assert torch.allclose(cg(matvec, b, exact, iterations=3), exact, atol=1e-10)
    assert torch.equal(cg(matvec, b, iterations=0), torch.zeros_like(b))
    # CG is exact in n steps in exact arithmetic; 3 steps leave an error that a 4th reduces
    errors = [float((cg(matvec, b, iterations=k, tol=0) - exact).norm()) for k in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_cg_on_a_complex_hermitian_system():
    g = _generator(1)
    a = torch.randn(8, 8, dtype=torch.complex128, generator=g)
    matrix = a @ a.conj().T + torch.eye(8, dtype=torch.complex128)
    b = torch.randn(2, 8, dtype=torch.complex128, generator=g)
    x = cg(lambda v: v @ matrix.T, b, iterations=40, tol=1e-13)
    assert torch.allclose(x @ matrix.T, b, atol=1e-9)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(b=torch.zeros(3, dtype=torch.int64)), TypeError, "b must be a floating-point or complex tensor"),
        (dict(x0=torch.zeros(4)), ValueError, r"x0 must be shaped like b \(1, 3\), got \(4,\)"),
        (dict(iterations=-1), ValueError, "iterations must be an int >= 0, got -1"),
        (dict(tol=float("nan")), ValueError, "tol must be a finite number >= 0"),
    ],
)
def test_cg_bad_input(change, error, message):
    arguments = dict(matvec=lambda v: v, b=torch.ones(1, 3), x0=None, iterations=5, tol=1e-6)
    arguments.update(change)
    with pytest.raises(error, match=message):
        cg(**arguments)


def _operators():
    """Operators with and without a closed-form damped solve, real and complex data."""
    mask = Mask(random_pixel_mask((6, 6), missing_fraction=0.4, seed=0))
    mri = CartesianMRI(random_mask(8, 0.25, 2, seed=1), shape=(8, 8))
    g = _generator(2)
    coils = torch.randn(2, 8, 8, dtype=torch.complex128, generator=g)
    sense = CartesianMRI(random_mask(8, 0.25, 2, seed=1), coils)
    ct = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(5))).double()
    return {
        "mask": (mask, torch.float64),
        "scaled mask": (3.0 * mask, torch.float64),
        "mri@channels": (mri @ ComplexAsChannels((1, 8, 8)), torch.float64),
        "sense@channels": (sense @ ComplexAsChannels((1, 8, 8)), torch.float64),
        "ct": (ct, torch.float64),
    }


def _dense_least_squares(operator, z, weight, y):
    """argmin ½‖y − Ax‖² + (w/2)‖x − z‖² for real images, by dense linear algebra (pseudo-inverse at w = 0)."""
    a = operator.to_dense()
    flat_y = y.reshape(-1)
    if a.is_complex():
        a, flat_y = torch.cat([a.real, a.imag]), torch.cat([flat_y.real, flat_y.imag])
    normal = a.T @ a + weight * torch.eye(a.shape[1], dtype=a.dtype)
    correction = torch.linalg.pinv(normal) @ (a.T @ (flat_y - a @ z.reshape(-1)))
    return (z.reshape(-1) + correction).reshape(z.shape)


@pytest.mark.parametrize("name", list(_operators()))
@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_least_squares_matches_dense_linear_algebra(name, weight):
    operator, dtype = _operators()[name]
    g = _generator(3)
    z = torch.randn(1, *operator.in_shape, dtype=dtype, generator=g)
    y = operator(torch.randn(1, *operator.in_shape, dtype=dtype, generator=g))
    y = y + 0.1 * torch.randn(y.shape, dtype=y.dtype, generator=g)
    likelihood = GaussianLikelihood(operator, noise_std=0.1)
    solved = likelihood.least_squares(z, weight, y)
    assert solved.dtype == z.dtype and solved.shape == z.shape
    assert torch.allclose(solved, _dense_least_squares(operator, z, weight, y), atol=1e-6)
    # the closed form (where there is one) and conjugate gradients agree
    by_cg = likelihood.least_squares(z, weight, y, iterations=300)
    assert torch.allclose(by_cg, solved, atol=1e-6)


def test_closed_forms_exist_where_documented():
    operators = _operators()
    rhs = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    assert operators["mask"][0]._solve_normal(rhs, 0.5) is not None
    assert operators["scaled mask"][0]._solve_normal(rhs, 0.5) is not None
    assert operators["mri@channels"][0]._solve_normal(torch.randn(1, 2, 8, 8, dtype=torch.float64), 0.5) is not None
    assert operators["sense@channels"][0]._solve_normal(torch.randn(1, 2, 8, 8, dtype=torch.float64), 0.5) is None
    assert operators["ct"][0]._solve_normal(torch.randn(1, 1, 8, 8, dtype=torch.float64), 0.5) is None


def test_prox_is_the_minimiser_and_noise_free_data_are_a_constraint():
    operator = _operators()["ct"][0]
    g = _generator(4)
    z = torch.randn(2, *operator.in_shape, dtype=torch.float64, generator=g)
    y = operator(torch.randn(2, *operator.in_shape, dtype=torch.float64, generator=g))
    likelihood = GaussianLikelihood(operator, noise_std=0.2)
    rho = 4.0
    x = likelihood.prox(z, rho, y).requires_grad_(True)
    objective = likelihood.nll(x, y).sum() + 0.5 * rho * ((x - z) ** 2).sum()
    (gradient,) = torch.autograd.grad(objective, x)
    assert float(gradient.abs().max()) < 1e-5
    # σ = 0: the point of {Ax = y} nearest to z (a mask keeps the observed pixels exactly)
    mask = _operators()["mask"][0]
    z = torch.randn(1, 1, 6, 6, dtype=torch.float64, generator=g)
    y = mask(torch.randn(1, 1, 6, 6, dtype=torch.float64, generator=g))
    projected = GaussianLikelihood(mask, 0.0).prox(z, 10.0, y)
    assert torch.allclose(mask(projected), y) and torch.allclose(projected[:, :, ~mask.mask], z[:, :, ~mask.mask])


def test_nll_and_grad_agree_with_autograd_on_complex_data():
    operator = _operators()["sense@channels"][0]
    g = _generator(5)
    x = torch.randn(2, *operator.in_shape, dtype=torch.float64, generator=g, requires_grad=True)
    y = operator(torch.randn(2, *operator.in_shape, dtype=torch.float64, generator=g))
    likelihood = GaussianLikelihood(operator, noise_std=0.3)
    nll = likelihood.nll(x, y)
    expected = ((y - operator(x)).abs() ** 2).reshape(2, -1).sum(1) / (2 * 0.3**2)
    assert torch.allclose(nll, expected)
    (gradient,) = torch.autograd.grad(nll.sum(), x)
    assert torch.allclose(likelihood.grad(x.detach(), y), gradient, atol=1e-9)


@pytest.mark.parametrize("name", ["mask", "ct", "mri@channels"])
def test_sample_proximal_draws_the_exact_gaussian(name):
    """Mean prox(z) and covariance (AᴴA/σ² + ρI)⁻¹, within Monte-Carlo error (4000 draws)."""
    operator, dtype = _operators()[name]
    g = _generator(6)
    n = 4000
    z = torch.randn(1, *operator.in_shape, dtype=dtype, generator=g)
    y = operator(torch.randn(1, *operator.in_shape, dtype=dtype, generator=g))
    sigma, rho = 0.5, 2.0
    likelihood = GaussianLikelihood(operator, noise_std=sigma)
    draws = likelihood.sample_proximal(z.expand(n, *z.shape[1:]), rho, y.expand(n, *y.shape[1:]), _generator(7))
    a = operator.to_dense()
    if a.is_complex():
        a = torch.cat([a.real, a.imag])
    cov = torch.linalg.inv(a.T @ a / sigma**2 + rho * torch.eye(a.shape[1], dtype=torch.float64))
    mean = likelihood.prox(z, rho, y).reshape(-1)
    flat = draws.reshape(n, -1)
    standard_errors = cov.diagonal().sqrt() / math.sqrt(n)
    assert float(((flat.mean(0) - mean) / standard_errors).abs().max()) < 4.5
    # the sample covariance's entries have standard error ≈ √((c_ii c_jj + c_ij²)/n) ≤ max c_ii·√(2/n)
    assert float((torch.cov(flat.T) - cov).abs().max()) < 5 * float(cov.diagonal().max()) * math.sqrt(2 / n)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: GaussianLikelihood(torch.eye(3), 0.1), TypeError, "operator must be an invsolve LinearOperator, got Tensor"),
        (lambda: GaussianLikelihood(Mask(torch.ones(2, 2)), -1.0), ValueError, "noise_std must be a finite number >= 0"),
        (
            lambda: GaussianLikelihood(Mask(torch.ones(2, 2)), 0.0).nll(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)),
            ValueError,
            "nll needs noise_std > 0",
        ),
        (
            lambda: GaussianLikelihood(Mask(torch.ones(2, 2)), 0.1).sample_proximal(
                torch.zeros(1, 1, 2, 2), 0.0, torch.zeros(1, 1, 2, 2), None
            ),
            ValueError,
            "rho must be > 0",
        ),
        (
            lambda: GaussianLikelihood(Mask(torch.ones(2, 2)), 0.1).least_squares(
                torch.zeros(1, 1, 2, 2), -1.0, torch.zeros(1, 1, 2, 2)
            ),
            ValueError,
            "weight must be a finite number >= 0",
        ),
        (
            lambda: GaussianLikelihood(Mask(torch.ones(2, 2)), 0.1).check_measurement(torch.zeros(1, 1, 2, 3)),
            ValueError,
            r"y \(measurements of Mask.*must have shape \(B, 1, 2, 2\)",
        ),
    ],
)
def test_bad_input_gets_one_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_matrix_operator_shares_the_ray_transforms_solutions():
    """The dense copy of a ray transform (the CT oracle problem's operator) is the same linear map."""
    ct = _operators()["ct"][0]
    dense = MatrixOperator(ct.to_dense(), ct.in_shape, ct.out_shape)
    g = _generator(8)
    z = torch.randn(2, *ct.in_shape, dtype=torch.float64, generator=g)
    y = ct(torch.randn(2, *ct.in_shape, dtype=torch.float64, generator=g))
    # run CG to rounding level on both (the default stops at a relative residual of 1e-7)
    one = GaussianLikelihood(ct, 0.1).prox(z, 3.0, y, iterations=500)
    other = GaussianLikelihood(dense, 0.1).prox(z, 3.0, y, iterations=500)
    assert torch.allclose(one, other, atol=1e-10)


@pytest.mark.parametrize("name", list(_operators()))
def test_the_likelihood_reads_only_the_entries_an_operator_measures(name):
    """Noise a simulation adds at a mask's hidden pixels or in unsampled k-space is not data.

    ``measured`` keeps every entry ``A x`` can reach and nothing else: it fixes
    ``A x``, leaves ``Aᴴ y`` unchanged, and where ``A`` has structurally zero
    outputs (masks, undersampled Cartesian MRI, also composed and scaled) it is
    the orthogonal projection ``A A⁺`` onto the range.  The residual and the
    negative log-likelihood therefore ignore whatever ``y`` holds elsewhere.
    """
    operator, dtype = _operators()[name]
    g = _generator(5)
    x = torch.randn(2, *operator.in_shape, dtype=dtype, generator=g)
    clean = operator(x)
    stray = torch.randn(clean.shape, dtype=clean.dtype, generator=g)
    y = clean + stray
    kept = operator.measured(y)
    assert torch.allclose(operator.measured(kept), kept)
    assert torch.allclose(operator.measured(clean), clean, atol=1e-10)
    assert torch.allclose(operator.adjoint(kept), operator.adjoint(y), atol=1e-10)
    structurally_zero = name in ("mask", "scaled mask", "mri@channels", "sense@channels")
    if structurally_zero:
        projection = operator(operator.pinv(y))  # A A⁺ y
        assert torch.allclose(kept, projection, atol=1e-6)
        assert not torch.allclose(kept, y)  # something was dropped
    else:
        assert torch.equal(kept, y)
    likelihood = GaussianLikelihood(operator, noise_std=0.5)
    z = torch.randn(x.shape, dtype=dtype, generator=g)
    assert torch.allclose(likelihood.residual(z, y), likelihood.residual(z, kept))
    assert torch.allclose(likelihood.nll(z, y), likelihood.nll(z, kept))
    assert torch.allclose(likelihood.residual(x, y), operator.measured(stray), atol=1e-10)
