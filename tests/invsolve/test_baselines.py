"""Tests of the total-variation baseline (invsolve/baselines.py)."""

from __future__ import annotations

import pytest
import torch

from invsolve.baselines import tv_reconstruct
from invsolve.datasets.phantoms import shepp_logan
from invsolve.operators import FiniteDifference, Mask, MatrixOperator
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.noise import PoissonNoise


def _identity(shape) -> Mask:
    return Mask(torch.ones(shape, dtype=torch.bool))


def _tv(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV per batch item, written out independently of the module."""
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    squares = torch.zeros_like(x)
    for dim in range(2, x.dim()):
        diff = torch.diff(x, dim=dim)
        squares.narrow(dim, 0, x.shape[dim] - 1).add_(diff**2)
    total += squares.sqrt().reshape(x.shape[0], -1).sum(dim=1)
    return total


def _blocks(shape) -> torch.Tensor:
    """Piecewise-constant image (two rectangles on a background), ``(1, 1, *shape)``."""
    x = torch.full((1, 1, *shape), 0.2, dtype=torch.float64)
    first = tuple(slice(n // 4, n // 2 + 1) for n in shape)
    second = tuple(slice(n // 2, n - 1) for n in shape[:-1]) + (slice(1, shape[-1] // 2),)
    x[(..., *first)] = 1.0
    x[(..., *second)] = 0.6
    return x


def _dual_lower_bound(y: torch.Tensor, weight: float, iterations: int) -> torch.Tensor:
    """Lower bound on min ½‖x − y‖² + λ TV(x), x >= 0, from a dual feasible point.

    For ``‖q‖₂,∞ <= λ``, ``D(q) = min_{x>=0} ½‖x − y‖² + ⟨x, ∇ᵀq⟩`` (attained
    at ``x = max(0, y − ∇ᵀq)``) never exceeds the primal minimum (weak
    duality).  ``q`` comes from projected gradient ascent on ``D`` (step
    1/‖∇‖², Chambolle 2004), an algorithm independent of PDHG.
    """
    spatial = y.dim() - 2
    grad = FiniteDifference(y.shape[1:])
    q = torch.zeros((y.shape[0], *grad.out_shape), dtype=y.dtype)
    for _ in range(iterations):
        x = (y - grad.adjoint(q)).clamp_min(0)
        q = q + grad(x) / (4 * spatial)
        q = q / (torch.linalg.vector_norm(q, dim=1, keepdim=True) / weight).clamp_min(1)
    x = (y - grad.adjoint(q)).clamp_min(0)
    return 0.5 * ((x - y) ** 2).reshape(y.shape[0], -1).sum(1) + (x * grad.adjoint(q)).reshape(y.shape[0], -1).sum(1)


def test_gradient_adjoint_and_norm_bound():
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 7, 5), (1, 2, 4, 6, 3)]:
        grad = FiniteDifference(shape[1:])  # the ∇ of tv_reconstruct, (B, d, C, *spatial)
        x = torch.randn(shape, generator=generator, dtype=torch.float64)
        g = torch.randn((shape[0], len(shape) - 2, *shape[1:]), generator=generator, dtype=torch.float64)
        assert float((grad(x) * g).sum()) == pytest.approx(float((x * grad.adjoint(g)).sum()), rel=1e-12)
        # Power iteration on ∇ᵀ∇ stays below the bound 4d.
        v = x / torch.linalg.vector_norm(x)
        for _ in range(300):
            w = grad.adjoint(grad(v))
            v = w / torch.linalg.vector_norm(w)
        assert float(torch.linalg.vector_norm(grad.adjoint(grad(v)))) <= 4 * (len(shape) - 2)


@pytest.mark.parametrize("nonnegative", [True, False])
def test_small_weight_gives_the_least_squares_solution(nonnegative):
    generator = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator, dtype=torch.float64))
    singular = torch.linspace(0.5, 2.0, 16, dtype=torch.float64)
    operator = MatrixOperator(q * singular @ q.T, in_shape=(1, 4, 4))
    truth = torch.rand(1, 1, 4, 4, generator=generator, dtype=torch.float64) + 0.5
    if not nonnegative:
        truth = truth - 1.0  # mixed signs: only the unconstrained problem recovers it
    y = operator(truth)
    x = tv_reconstruct(y, operator, weight=1e-9, iterations=1500, nonnegative=nonnegative, progress=False)
    assert float(torch.linalg.vector_norm(x - truth) / torch.linalg.vector_norm(truth)) < 1e-5


@pytest.mark.parametrize("shape, weight", [((8, 8), 0.15), ((4, 5, 4), 0.1)])
def test_tv_denoising_reaches_the_certified_minimum(shape, weight):
    generator = torch.Generator().manual_seed(2)
    truth = _blocks(shape)
    y = truth + 0.2 * torch.randn(truth.shape, generator=generator, dtype=torch.float64)
    operator = _identity(shape)
    x, history = tv_reconstruct(y, operator, weight, iterations=1000, progress=False, return_history=True)
    assert history.shape == (1000, 1)
    primal = 0.5 * ((x - y) ** 2).sum() + weight * _tv(x)
    torch.testing.assert_close(history[-1], primal, rtol=1e-12, atol=0)
    lower = _dual_lower_bound(y, weight, iterations=3000)
    assert float(primal - lower) <= 1e-6 * float(primal)
    # The certificate is tight enough to fail for a non-optimal image: the truth
    # and a 20-iteration PDHG run both lie above it by far more than the tolerance.
    short = tv_reconstruct(y, operator, weight, iterations=20, progress=False)
    for other in (truth, short):
        assert float(0.5 * ((other - y) ** 2).sum() + weight * _tv(other) - lower) > 1e-4 * float(primal)


def test_tv_denoising_lowers_the_error():
    generator = torch.Generator().manual_seed(3)
    truth = _blocks((32, 32))
    y = truth + 0.2 * torch.randn(truth.shape, generator=generator, dtype=torch.float64)
    x = tv_reconstruct(y, _identity((32, 32)), weight=0.2, iterations=300, progress=False)
    assert float(torch.linalg.vector_norm(x - truth)) < 0.4 * float(torch.linalg.vector_norm(y - truth))
    assert float(x.min()) >= 0


def test_sparse_view_ct_beats_linear_reconstructions():
    truth = shepp_logan((32, 32), dtype=torch.float64)
    operator = RayTransform(ParallelBeam2D((32, 32), sparse_view_angles(16)))
    y = PoissonNoise(incident_flux=1e5)(operator(truth), seed=0)
    x = tv_reconstruct(y, operator, weight=3e-4, iterations=400, progress=False)

    def error(image: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(image - truth) / torch.linalg.vector_norm(truth))

    backprojection = operator.adjoint(y)
    best_scale = (backprojection * truth).sum() / (backprojection**2).sum()  # oracle scaling
    assert error(x) < 0.7 * error(operator.pinv(y))
    assert error(x) < 0.5 * error(best_scale * backprojection)
    assert error(x) < 0.35


def test_batch_items_are_independent():
    generator = torch.Generator().manual_seed(4)
    truth = torch.cat([_blocks((12, 12)), 2 * _blocks((12, 12)).flip(-1)], dim=1)
    y = truth.repeat(2, 1, 1, 1) + 0.1 * torch.randn(2, 2, 12, 12, generator=generator, dtype=torch.float64)
    y[1] *= 3.0  # a different scale changes the primal weight of item 1 only
    operator = Mask(torch.ones(12, 12, dtype=torch.bool), in_shape=(2, 12, 12))
    both = tv_reconstruct(y, operator, 0.1, iterations=60, progress=False)
    for item in range(2):
        alone = tv_reconstruct(y[item : item + 1], operator, 0.1, iterations=60, progress=False)
        torch.testing.assert_close(both[item : item + 1], alone, rtol=1e-10, atol=1e-12)


def test_float32_and_starting_image():
    operator = _identity((16, 16))
    truth = _blocks((16, 16)).float()
    x = tv_reconstruct(truth, operator, 0.05, iterations=50, progress=False)
    assert x.dtype == torch.float32 and x.shape == truth.shape
    warm = tv_reconstruct(truth, operator, 0.05, iterations=1, x0=x, progress=False)
    assert float((warm - x).abs().max()) < 0.05


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"weight": -1.0}, ValueError, "weight"),
        ({"weight": float("nan")}, ValueError, "weight"),
        ({"iterations": 0}, ValueError, "iterations"),
        ({"y": torch.full((1, 1, 8, 8), float("nan"), dtype=torch.float64)}, ValueError, "y must be finite"),
        ({"y": torch.zeros(1, 1, 8, 7, dtype=torch.float64)}, ValueError, r"y \(measurement of Mask"),
        ({"y": torch.zeros(1, 8, 8, dtype=torch.float64)}, ValueError, r"y \(measurement of Mask"),
        ({"x0": torch.zeros(1, 1, 4, 4, dtype=torch.float64)}, ValueError, "x0"),
        ({"x0": torch.zeros(2, 1, 8, 8, dtype=torch.float64)}, ValueError, "x0 must have batch size 1"),
        ({"y": torch.zeros(1, 1, 8, 8, dtype=torch.int64)}, TypeError, "floating-point"),
        ({"operator": torch.eye(64)}, TypeError, "LinearOperator"),
        ({"operator": Mask(torch.zeros(8, 8, dtype=torch.bool))}, ValueError, "norm 0"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    arguments = {"y": torch.zeros(1, 1, 8, 8, dtype=torch.float64), "operator": _identity((8, 8)), "weight": 0.1}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        tv_reconstruct(**arguments, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    truth = _blocks((16, 16))
    cpu = tv_reconstruct(truth, _identity((16, 16)), 0.1, iterations=50, progress=False)
    cuda = tv_reconstruct(truth.cuda(), _identity((16, 16)).cuda(), 0.1, iterations=50, progress=False)
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-9, atol=1e-9)


# -- CG-SENSE -----------------------------------------------------------------------


def test_cg_sense_solves_the_damped_normal_equations():
    from invsolve import cg_sense
    from invsolve.operators import MatrixOperator

    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(20, 12, dtype=torch.complex128, generator=generator)
    operator = MatrixOperator(matrix, in_shape=(1, 3, 4))
    y = torch.randn(2, 20, dtype=torch.complex128, generator=generator)
    for damping in (0.0, 0.5):
        expected = torch.linalg.solve(matrix.conj().T @ matrix + damping * torch.eye(12), matrix.conj().T @ y.T).T
        result = cg_sense(y, operator, iterations=50, tol=1e-12, damping=damping)
        assert torch.allclose(result.reshape(2, 12), expected, atol=1e-9)


def test_cg_sense_with_full_sampling_is_the_sense_combination():
    from invsolve import cg_sense
    from invsolve.operators.mri import CartesianMRI, ifft_centered

    generator = torch.Generator().manual_seed(1)
    maps = torch.randn(4, 8, 8, dtype=torch.complex128, generator=generator)
    image = torch.randn(1, 1, 8, 8, dtype=torch.complex128, generator=generator)
    operator = CartesianMRI(torch.ones(8, dtype=torch.bool), maps)
    y = operator(image)
    combined = (maps.conj() * ifft_centered(y)).sum(1, keepdim=True) / maps.abs().pow(2).sum(0)
    assert torch.allclose(cg_sense(y, operator, iterations=100, tol=1e-14), combined, atol=1e-9)
    assert torch.allclose(combined, image, atol=1e-9)


def test_cg_sense_errors():
    from invsolve import cg_sense
    from invsolve.operators.mri import CartesianMRI

    operator = CartesianMRI(torch.ones(8, dtype=torch.bool), shape=(8, 8))
    with pytest.raises(ValueError, match=r"y \(measurement of CartesianMRI.*must have shape \(B, 1, 8, 8\)"):
        cg_sense(torch.zeros(1, 1, 8, 7, dtype=torch.complex64), operator)
    with pytest.raises(ValueError, match="y must be finite"):
        cg_sense(torch.full((1, 1, 8, 8), complex("nan"), dtype=torch.complex64), operator)
    with pytest.raises(ValueError, match="damping must be a finite number >= 0"):
        cg_sense(torch.zeros(1, 1, 8, 8, dtype=torch.complex64), operator, damping=-1.0)
    with pytest.raises(TypeError, match="operator must be an invsolve LinearOperator"):
        cg_sense(torch.zeros(1, 1, 8, 8, dtype=torch.complex64), "sense")
