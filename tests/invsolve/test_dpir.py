"""DPIR (plug-and-play HQS with the annealed diffusion denoiser) against the exact Gaussian posterior.

With an exact Gaussian prior ``N(μ, Σ)`` the denoiser at level ``σ_k`` is the
proximal map of ``½(x − μ)ᵀΣ⁻¹(x − μ)``, so DPIR's splitting minimises
``½‖y − Ax‖² + (λσ_n²/2)(x − μ)ᵀΣ⁻¹(x − μ)`` as its levels fall: the posterior
mean for ``λ = 1``, and for other ``λ`` the posterior mean of the prior
``N(μ, Σ/λ)``.  Errors are RMS over the pixels, in units of the RMS posterior
std; the values of ``MEASURED`` are the README's (seed-free: DPIR draws nothing).
"""

import pytest
import torch

import invsolve
from invsolve.oracle import gaussian_posterior, oracle_problem
from invsolve.priors import GaussianPrior
from invsolve.samplers import DPIR

#: problem → RMS error of 200 iterations (λ = 1, σ_1 = 1) / RMS posterior std, as measured
MEASURED = {"mask": 0.3746, "ct": 0.0117, "mri": 0.0127}


def relative_error(image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> float:
    return float((image - mean).pow(2).mean().sqrt() / cov.diagonal().mean().sqrt())


def run_dpir(problem, prior=None, **settings) -> torch.Tensor:
    settings = {"regularization": 1.0, "highest_level": 1.0, **settings}
    steps = settings.pop("steps", 200)
    result = invsolve.reconstruct(
        problem.y, problem.operator, prior or problem.prior, "dpir", noise_std=problem.noise_std, steps=steps,
        progress=False, **settings,
    )
    return result.image


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_dpir_reaches_the_exact_posterior_mean(name):
    problem = oracle_problem(name)
    error = relative_error(run_dpir(problem), problem.mean, problem.cov)
    # deterministic: the measured value up to floating-point reordering
    assert error == pytest.approx(MEASURED[name], rel=0.02)


@pytest.mark.parametrize("name", ["ct", "mask"])
def test_dpir_error_falls_with_more_iterations(name):
    """Half-quadratic splitting converges: the fixed point's bias shrinks as the levels are refined."""
    problem = oracle_problem(name)
    coarse, fine = (relative_error(run_dpir(problem, steps=steps), problem.mean, problem.cov) for steps in (50, 400))
    assert fine < 0.6 * coarse


def test_regularization_scales_the_prior_precision():
    """λ = 4 is the posterior mean of the prior N(μ, Σ/4), not of N(μ, Σ)."""
    problem = oracle_problem("ct")
    prior = problem.prior
    image = run_dpir(problem, regularization=4.0, steps=400)
    sharper = GaussianPrior(prior.mean, prior.cov / 4.0)
    mean, cov = gaussian_posterior(sharper, problem.operator, problem.y, problem.noise_std)
    assert relative_error(image, mean, cov) < 0.02
    assert relative_error(image, problem.mean, problem.cov) > 0.3


def test_dpir_is_deterministic_and_counts_one_evaluation_per_iteration():
    problem = oracle_problem("ct")
    runs = [
        invsolve.reconstruct(problem.y, problem.operator, problem.prior, "dpir", noise_std=problem.noise_std,
                             steps=20, seed=seed, progress=False)
        for seed in (0, 1)
    ]
    assert torch.equal(runs[0].image, runs[1].image)
    assert runs[0].info["network_evaluations"] == 20
    assert runs[0].std is None


def test_noise_free_data_keep_the_observed_pixels():
    """σ_n = 0 makes the data step a projection: after the last step's prox the observed pixels equal y."""
    problem = oracle_problem("mask")
    clean = problem.operator(problem.prior.sample_exact(1, seed=5))
    states = []
    invsolve.reconstruct(clean, problem.operator, problem.prior, "dpir", steps=30, progress=False,
                         callback=lambda step: states.append(step.state))
    last = problem.prior.to_physical(states[-1])
    assert torch.allclose(problem.operator(last), clean, atol=1e-10)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"regularization": 0.0}, "regularization"),
        ({"highest_level": -1.0}, "highest_level"),
        ({"lowest_level": 0.5, "highest_level": 0.5}, "lowest_level must be below highest_level"),
        ({"cg_iterations": 0}, "cg_iterations"),
    ],
)
def test_bad_hyperparameters_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DPIR(**settings)


@pytest.mark.parametrize(
    "settings", [{"highest_level": 1000.0}, {"highest_level": 0.5, "lowest_level": 1e-4}, {"highest_level": 0.005}]
)
def test_levels_outside_the_schedule_are_refused_before_any_work(settings):
    problem = oracle_problem("ct")
    with pytest.raises(ValueError, match="the levels the prior's vp-linear schedule covers"):
        invsolve.reconstruct(problem.y, problem.operator, problem.prior, "dpir", noise_std=problem.noise_std,
                             steps=5, progress=False, **settings)


def test_dpir_takes_no_start_time():
    problem = oracle_problem("ct")
    with pytest.raises(ValueError, match="takes no start_time"):
        invsolve.reconstruct(problem.y, problem.operator, problem.prior, "dpir", noise_std=problem.noise_std,
                             steps=5, start_time=0.5, progress=False)
