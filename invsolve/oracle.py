"""Closed-form posterior of a Gaussian prior under a linear operator and Gaussian noise,
and the small problems every sampler is tested against (docs/design.md, "The exact oracle")."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from invsolve._checks import check_batched_shape, check_finite, check_positive, check_tensor
from invsolve.operators import LinearOperator, SliceStack
from invsolve.priors import DiffusionPrior, GaussianPrior, NoiseSchedule, StackedPrior

__all__ = [
    "gaussian_posterior",
    "OracleProblem",
    "ORACLE_PROBLEMS",
    "ORACLE_SETTINGS",
    "oracle_problems_for",
    "oracle_problem",
    "oracle_moments",
    "run_oracle",
]


def gaussian_posterior(
    prior: GaussianPrior, operator: LinearOperator, y: torch.Tensor, noise_std: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact posterior ``N(μ_post, Σ_post)`` of a real image ``x ~ N(μ, Σ)`` given ``y = Ax + σn``.

    The prior describes real images, so the data are read as the real vector
    ``ỹ = [Re y; Im y]`` with the real matrix ``Ã = [Re A; Im A]`` and white
    noise of variance ``σ²`` on every real component (what
    :class:`~invsolve.operators.GaussianNoise` adds to complex data).  For a
    real-range operator ``Ã = A`` and ``ỹ = y``.  Then

    ``Σ_post = (Σ⁻¹ + ÃᵀÃ/σ²)⁻¹ = (Σ⁻¹ + Re(AᴴA)/σ²)⁻¹`` and
    ``μ_post = Σ_post(Σ⁻¹μ + Ãᵀỹ/σ²)``,

    evaluated in the equivalent covariance form that never inverts ``Σ``:
    with ``S = ÃΣÃᵀ + σ²I = LLᵀ`` (Cholesky) and ``G = L⁻¹ÃΣ``,
    ``Σ_post = Σ − GᵀG`` and ``μ_post = μ + GᵀL⁻¹(ỹ − Ãμ)``.  Float64 on the
    CPU throughout; meant for small problems (the operator is made dense).

    Parameters
    ----------
    prior : GaussianPrior
        Prior over real images; ``prior.image_shape`` must equal
        ``operator.in_shape``.
    operator : LinearOperator
        Forward model ``A`` with a real domain (``complex_domain=False``); its
        range may be complex, e.g. ``CartesianMRI(...) @ ComplexAsChannels(...)``.
    y : torch.Tensor
        Measurements ``(B, *operator.out_shape)``, or one measurement shaped
        ``operator.out_shape`` (treated as ``B = 1``); finite; complex only
        for a complex-range operator.
    noise_std : float
        ``σ > 0`` in ``y``'s units (per real component for complex data).

    Returns
    -------
    mean : torch.Tensor
        ``(B, *operator.in_shape)``, float64.
    cov : torch.Tensor
        ``(n, n)`` with ``n = prod(operator.in_shape)``, float64, the same for
        every batch item.

    Raises
    ------
    TypeError
        If ``prior`` is not a :class:`GaussianPrior`, ``operator`` not a
        :class:`LinearOperator` or ``y`` not a floating or complex tensor.
    ValueError
        For an operator with a complex domain, mismatched shapes, an empty
        batch, complex ``y`` for a real-range operator, non-finite ``y``, a
        ``noise_std`` that is not a finite number > 0 (or whose square
        under- or overflows float64), data so large or a ``noise_std`` so
        small that the innovation covariance is not positive definite in
        float64, or a posterior that overflows float64.
    """
    if not isinstance(prior, GaussianPrior):
        raise TypeError(f"prior must be a GaussianPrior, got {type(prior).__name__}")
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
    if operator.complex_domain:
        raise ValueError(
            f"operator must have a real domain (the Gaussian prior describes real images), e.g. a "
            f"complex-image operator composed with ComplexAsChannels (operator @ ComplexAsChannels(...)), "
            f"got {operator.describe()}, which acts on complex images"
        )
    in_shape, out_shape = tuple(operator.in_shape), tuple(operator.out_shape)
    if tuple(prior.image_shape) != in_shape:
        raise ValueError(
            f"prior.image_shape must equal the in_shape {in_shape} of {operator.describe()}, "
            f"got {tuple(prior.image_shape)}"
        )
    check_tensor(y, "y")
    if tuple(y.shape) == out_shape:
        y = y.unsqueeze(0)
    check_batched_shape(y, out_shape, f"y (measurements of {operator.describe()})")
    if y.is_complex() and not operator.complex_range:
        raise ValueError(
            f"y must be real for {operator.describe()}, whose measurements are real, got dtype {y.dtype}"
        )
    check_finite(y, "y")
    sigma = check_positive(noise_std, "noise_std")
    if not 0 < sigma * sigma < math.inf:  # a float's ** raises OverflowError where * gives inf
        raise ValueError(f"noise_std must have a square that is a positive float64 number, got {noise_std!r}")

    dense = operator.to_dense(torch.float64).cpu()
    measurement_dtype = torch.complex128 if dense.is_complex() else torch.float64
    a = _realify(dense)  # Ã, (m, n) with m = 2·prod(out_shape) for complex data
    batch = y.shape[0]
    data = _realify(y.detach().cpu().reshape(batch, -1).to(measurement_dtype).T).T  # ỹ, (B, m)
    cov = prior.cov.detach().cpu().to(torch.float64)
    mean = prior.mean.detach().cpu().to(torch.float64).reshape(-1)
    check_finite(mean, "prior.mean")  # a prior whose buffers were changed after it was built
    check_finite(cov, "prior.cov")

    a_cov = a @ cov  # ÃΣ, (m, n)
    innovation_cov = a_cov @ a.T + sigma**2 * torch.eye(a.shape[0], dtype=torch.float64)
    innovation_cov = 0.5 * (innovation_cov + innovation_cov.T)
    factor, info = torch.linalg.cholesky_ex(innovation_cov)  # S = LLᵀ
    if int(info) != 0 or not bool(torch.isfinite(innovation_cov).all()):
        raise ValueError(
            f"noise_std={noise_std!r} is too small for this prior and operator: the innovation covariance "
            "AΣAᵀ + σ²I is not positive definite in float64 (rows of A that see nothing need σ > 0 well above "
            "rounding); give a larger noise_std"
        )
    whitened_gain = torch.linalg.solve_triangular(factor, a_cov, upper=False)  # G = L⁻¹ÃΣ
    residual = (data - mean @ a.T).T  # (m, B)
    whitened_residual = torch.linalg.solve_triangular(factor, residual, upper=False)
    post_mean = mean + (whitened_gain.T @ whitened_residual).T
    post_cov = cov - whitened_gain.T @ whitened_gain
    post_cov = 0.5 * (post_cov + post_cov.T)
    if not bool(torch.isfinite(post_cov).all()):
        raise ValueError(f"noise_std={noise_std!r} is too small: the posterior covariance overflows float64")
    if not bool(torch.isfinite(post_mean).all()):
        raise ValueError(
            f"y is too large: the posterior mean overflows float64 (largest |y| {float(y.abs().max()):.3g}); "
            "rescale y and the prior"
        )
    return post_mean.reshape(batch, *in_shape), post_cov


def _realify(matrix: torch.Tensor) -> torch.Tensor:
    """``[Re M; Im M]`` stacked along the rows for complex ``M``; real ``M`` unchanged."""
    if not matrix.is_complex():
        return matrix
    return torch.cat([matrix.real, matrix.imag], dim=0)


#: names accepted by :func:`oracle_problem`
ORACLE_PROBLEMS = ("mask", "ct", "mri", "haze")
#: the two-prior problem, for the two-prior sampler only
_TWO_PRIOR_PROBLEMS = ("haze",)
_TWO_PRIOR_SAMPLERS = ("joint-dehaze",)


def oracle_problems_for(sampler: str) -> tuple[str, ...]:
    """The oracle problems ``sampler`` runs on: the two-prior one for ``"joint-dehaze"``, the others otherwise."""
    if sampler in _TWO_PRIOR_SAMPLERS:
        return _TWO_PRIOR_PROBLEMS
    return tuple(name for name in ORACLE_PROBLEMS if name not in _TWO_PRIOR_PROBLEMS)


@dataclass(frozen=True)
class OracleProblem:
    """A small linear-Gaussian problem with its exact posterior.

    Attributes
    ----------
    name : str
        One of :data:`ORACLE_PROBLEMS`.
    prior : GaussianPrior or StackedPrior
        The prior the truth was drawn from (for ``"haze"`` two Gaussian parts;
        its closed form is ``prior.as_gaussian()``).
    operator : LinearOperator
        The forward model.
    y : torch.Tensor
        One noisy measurement ``(1, *operator.out_shape)``.
    noise_std : float
        ``σ`` of the noise in ``y`` (per real component).
    mean : torch.Tensor
        Exact posterior mean ``(1, *operator.in_shape)``.
    cov : torch.Tensor
        Exact posterior covariance ``(n, n)``.
    """

    name: str
    prior: DiffusionPrior
    operator: LinearOperator
    y: torch.Tensor
    noise_std: float
    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        """Exact per-pixel posterior standard deviation, shaped like :attr:`mean`."""
        return self.cov.diagonal().sqrt().reshape(self.mean.shape)


def oracle_problem(name: str, schedule: NoiseSchedule | None = None) -> OracleProblem:
    """One of the package's exact test problems, seeded (the same on every machine).

    * ``"mask"`` — a 12×12 stationary Gaussian prior (squared-exponential
      covariance, correlation length 1.5 px, std 1, mean 0.3), half of the
      pixels masked, ``σ = 0.05``: a diagonal operator with a null space.
    * ``"ct"`` — an 8×8 prior of the same kind seen by a 12-view
      parallel-beam ray transform (:class:`~invsolve.operators.ct.RayTransform`
      stored as its dense matrix, so that samplers with many operator calls
      stay fast), ``σ = 0.1``: a real, non-diagonal, non-symmetric operator.
    * ``"mri"`` — a 2×8×8 prior (real and imaginary parts, mean 0) seen
      through fully sampled single-coil Cartesian MRI
      (``CartesianMRI @ ComplexAsChannels``), ``σ = 0.1`` per real
      component: complex data from real unknowns, where a missing conjugate
      or a dropped imaginary part shows.
    * ``"haze"`` — two unknowns from their sum: an 8×8 "tissue" (correlation
      length 0.7 px, std 1) and an 8×8 "haze" (3 px, std 0.8) with
      independent Gaussian priors (:class:`~invsolve.priors.StackedPrior`),
      ``y = x + 0.5 h + n``
      (:class:`~invsolve.operators.ultrasound.HazyMeasurement`), ``σ = 0.1``:
      the joint posterior separates them only through their different
      smoothness.

    Parameters
    ----------
    name : str
        One of :data:`ORACLE_PROBLEMS`.
    schedule : NoiseSchedule, optional
        The diffusion schedule the prior presents to samplers (default DDPM's
        linear VP schedule).
    """
    from invsolve.operators import ComplexAsChannels, GaussianNoise, Mask, MatrixOperator, random_pixel_mask
    from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
    from invsolve.operators.mri import CartesianMRI

    if name not in ORACLE_PROBLEMS:
        raise ValueError(f"unknown oracle problem {name!r}; known: {', '.join(ORACLE_PROBLEMS)}")
    if name == "mask":
        prior = GaussianPrior.squared_exponential((1, 12, 12), length_scale=1.5, std=1.0, mean=0.3, schedule=schedule)
        operator: LinearOperator = Mask(random_pixel_mask((12, 12), missing_fraction=0.5, seed=0))
        noise_std = 0.05
    elif name == "ct":
        prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5, std=1.0, mean=0.3, schedule=schedule)
        transform = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(12))).double()
        operator = MatrixOperator(transform.to_dense(), transform.in_shape, transform.out_shape)
        noise_std = 0.1
    elif name == "mri":
        prior = GaussianPrior.squared_exponential((2, 8, 8), length_scale=1.5, std=1.0, mean=0.0, schedule=schedule)
        operator = CartesianMRI(torch.ones(8, dtype=torch.bool), shape=(8, 8)) @ ComplexAsChannels((1, 8, 8))
        noise_std = 0.1
    else:
        from invsolve.operators.ultrasound import HazyMeasurement

        tissue = GaussianPrior.squared_exponential((1, 8, 8), length_scale=0.7, std=1.0, schedule=schedule)
        haze = GaussianPrior.squared_exponential((1, 8, 8), length_scale=3.0, std=0.8, schedule=schedule)
        prior = StackedPrior([tissue, haze])
        operator = HazyMeasurement((1, 8, 8), 0.5).double()
        noise_std = 0.1
    exact = prior.as_gaussian() if isinstance(prior, StackedPrior) else prior
    truth = exact.sample_exact(1, seed=1)
    y = GaussianNoise(noise_std)(operator(truth), seed=2)
    mean, cov = gaussian_posterior(exact, operator, y, noise_std)
    return OracleProblem(name, prior, operator, y, noise_std, mean, cov)


#: sampler → (keyword arguments of reconstruct, number of samples): the settings of the
#: oracle tests and of benchmarks/gaussian_oracle.py.  PnP-DM's final coupling ρ_min is set
#: per problem (:data:`PNP_DM_RHO_MIN`) and it runs on the EDM schedule, whose noise
#: levels reach 0.002 (DDPM's linear schedule stops at 0.01).
ORACLE_SETTINGS: dict[str, tuple[dict[str, Any], int]] = {
    "red-diff": ({"steps": 1000}, 64),
    "dps": ({"steps": 1000}, 256),
    "dds": ({"steps": 50}, 512),
    "diffpir": ({"steps": 100}, 512),
    "daps": ({"steps": 100}, 256),
    "pnp-dm": ({"steps": 200, "rho_start": 1.0, "denoise_steps": 10}, 1000),
    # volumetric samplers: n volumes of ORACLE_VOLUME_SLICES slices, each slice a draw (run_oracle)
    "dds-3d": ({"steps": 50, "tv_weight": 0.0}, 128),
    "mbir": ({"steps": 200, "tv_weight": 0.0}, 128),
    # on the two-prior problem only (oracle_problems_for)
    "joint-dehaze": ({"steps": 200}, 256),
}
#: slices of the volumes the slice-augmented samplers reconstruct on an oracle problem
ORACLE_VOLUME_SLICES = 4
#: PnP-DM's ρ_min per problem: small enough that the bias of the coupling (the data seen with
#: noise covariance σ²I + ρ²AAᴴ) stays below the Monte-Carlo error of 1000 samples, large
#: enough to mix in 200 iterations (the mask problem, whose unobserved pixels mix slowly at
#: any small ρ, runs at 0.05 and is reported, not held to exactness)
PNP_DM_RHO_MIN = {"mask": 0.05, "ct": 0.03, "mri": 0.02}


def oracle_moments(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> dict[str, Any]:
    """Moments of ``samples`` ``(n, *shape)`` against the exact posterior ``mean`` and ``cov``.

    Returns
    -------
    dict
        ``mean_error`` (RMS error of the sample mean over the RMS posterior
        std; its Monte-Carlo floor is about ``spread_ratio/√n``),
        ``max_mean_z`` (largest per-pixel |error of the mean| in standard
        errors ``std_i/√n``), ``spread_ratio`` (RMS std of the samples over
        the exact one), ``trace_ratio`` (total variance over the exact one)
        and ``top_variance_ratios`` (the samples' variance along the three
        leading eigenvectors of ``cov`` over those eigenvalues; each has a
        relative standard error of about ``√(2/n)``).
    """
    n = samples.shape[0]
    flat = samples.reshape(n, -1).to(torch.float64).cpu()
    exact_std = cov.diagonal().sqrt()
    error = flat.mean(0) - mean.reshape(-1).cpu()
    rms_std = float(exact_std.pow(2).mean().sqrt())
    sample_cov = torch.cov(flat.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    top = eigenvectors[:, -3:]
    return {
        "mean_error": float(error.pow(2).mean().sqrt()) / rms_std,
        "max_mean_z": float((error / (exact_std / math.sqrt(n))).abs().max()),
        "spread_ratio": float(sample_cov.diagonal().mean().sqrt()) / rms_std,
        "trace_ratio": float(sample_cov.trace() / cov.trace()),
        "top_variance_ratios": ((top.T @ sample_cov @ top).diagonal() / eigenvalues[-3:]).tolist(),
    }


def run_oracle(sampler: str, problem_name: str, seed: int = 0) -> dict[str, Any]:
    """Run a registered sampler on an oracle problem with :data:`ORACLE_SETTINGS`; its moments as a dict.

    Adds ``single_run_error`` (one run's RMS error over the RMS posterior
    std) for point estimators, whose runs are not posterior samples.

    A slice-augmented (volumetric) sampler reconstructs volumes of
    :data:`ORACLE_VOLUME_SLICES` slices, each measured like the problem's
    image (:class:`~invsolve.operators.SliceStack`), with no TV (``λ = 0``):
    its slices are then independent draws of the 2D posterior, and
    ``n_samples`` counts slices.
    """
    from invsolve.priors import EDMSchedule
    from invsolve.reconstruct import reconstruct
    from invsolve.samplers import get_sampler

    if sampler not in ORACLE_SETTINGS:
        raise ValueError(f"no oracle settings for sampler {sampler!r}; known: {', '.join(ORACLE_SETTINGS)}")
    if problem_name not in oracle_problems_for(sampler):
        raise ValueError(
            f"sampler {sampler!r} runs on the oracle problems {', '.join(oracle_problems_for(sampler))}, not {problem_name!r}"
        )
    settings, n = ORACLE_SETTINGS[sampler]
    settings = dict(settings)
    schedule = None
    if sampler == "pnp-dm":
        schedule = EDMSchedule()
        settings["rho_min"] = PNP_DM_RHO_MIN[problem_name]
    problem = oracle_problem(problem_name, schedule)
    operator, y = problem.operator, problem.y
    volumetric = get_sampler(sampler).volumetric
    if volumetric:
        operator = SliceStack(problem.operator, ORACLE_VOLUME_SLICES)
        y = y.unsqueeze(2).expand(-1, -1, ORACLE_VOLUME_SLICES, *y.shape[2:]).contiguous()
    started = time.perf_counter()
    result = reconstruct(
        y,
        operator,
        problem.prior,
        sampler,
        noise_std=problem.noise_std,
        n_samples=n,
        max_batch=n,
        seed=seed,
        progress=False,
        **settings,
    )
    samples = result.samples[0]
    if volumetric:  # (n, C, slices, H, W) -> (n·slices, C, H, W)
        samples = samples.movedim(2, 1).reshape(-1, *problem.prior.image_shape)
    record: dict[str, Any] = {
        "sampler": sampler,
        "problem": problem_name,
        "n_samples": samples.shape[0],
        "settings": settings,
        "network_evaluations_per_sample": result.info["network_evaluations"],
        "seconds": time.perf_counter() - started,
        **oracle_moments(samples, problem.mean, problem.cov),
    }
    if not get_sampler(sampler).draws_samples:
        single = float((result.samples[0, 0] - problem.mean[0]).pow(2).mean().sqrt())
        record["single_run_error"] = single / float(problem.std.pow(2).mean().sqrt())
    return record
