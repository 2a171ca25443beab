"""RED-Diff and DDS step by step against their papers' updates written out (surviving
mutants of invsolve/samplers/, benchmarks/mutation.py).

The oracle tests hold each sampler to its measured error within Monte-Carlo margins, which
a data term without its ½ (RED-Diff) or a slightly different weight passes.  Here the same
random draws go through the update of the paper, written out independently (explicit
gradients and Adam's moments instead of autograd and torch.optim), so any change of what
the sampler computes shows.
"""

import math

import pytest
import torch

from invsolve.oracle import oracle_problem
from invsolve.operators import GaussianLikelihood
from invsolve.samplers import Problem, get_sampler


def red_diff_by_hand(
    problem, prior, steps, seed, *, lr=0.1, regularization=0.25, obs_weight=1.0, betas=(0.9, 0.99), weighting=lambda r: r
):
    """Mardani et al. 2024, Algorithm 1: Adam on ½·mean|y − Aμ|²/s² + λ·w(t)·mean(sg[ε̂ − ε]·μ)
    (μ in network units, x = s·μ + offset), from μ = A⁺y, one noise draw per step."""
    generator = torch.Generator().manual_seed(seed)
    scale = prior.normalization.scale
    operator, y = problem.operator, problem.y
    mu = prior.to_network(operator.pinv(y))
    first = torch.zeros_like(mu)
    second = torch.zeros_like(mu)
    times = prior.schedule.sampling_times(steps)
    alphas, sigmas = prior.schedule.alpha_sigma(times)
    n_data, n_image = y[0].numel(), mu[0].numel()
    for k, (t, alpha, sigma) in enumerate(zip(times.tolist(), alphas.tolist(), sigmas.tolist()), start=1):
        noise = torch.randn(mu.shape, dtype=mu.dtype, generator=generator)
        eps_hat = prior.eps(alpha * mu + sigma * noise, t)
        misfit = (operator(prior.to_physical(mu)) - y) / scale
        gradient = obs_weight * operator.adjoint(misfit).real / n_data
        gradient = gradient + regularization * weighting(sigma / alpha) * (eps_hat - noise) / n_image
        first = betas[0] * first + (1 - betas[0]) * gradient
        second = betas[1] * second + (1 - betas[1]) * gradient**2
        m_hat, v_hat = first / (1 - betas[0] ** k), second / (1 - betas[1] ** k)
        mu = mu - lr * m_hat / (v_hat.sqrt() + 1e-8)
    return prior.to_physical(mu)


def _run(name, problem, prior, steps, seed, **hyperparameters):
    sampler = get_sampler(name, **hyperparameters)
    return sampler.run(problem, prior, steps=steps, generator=torch.Generator().manual_seed(seed)).image


@pytest.mark.parametrize("name", ["mask", "ct", "mri"])
def test_red_diff_is_algorithm_1_written_out(name):
    oracle = oracle_problem(name)
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    torch.testing.assert_close(
        _run("red-diff", problem, oracle.prior, 12, seed=3), red_diff_by_hand(problem, oracle.prior, 12, seed=3), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize(
    "hyperparameters, by_hand",
    [
        (
            {"lr": 0.05, "regularization": 0.7, "obs_weight": 2.0, "adam_betas": (0.8, 0.95)},
            {"lr": 0.05, "regularization": 0.7, "obs_weight": 2.0, "betas": (0.8, 0.95)},
        ),
        ({"weighting": "sqrt"}, {"weighting": math.sqrt}),
        ({"weighting": "square"}, {"weighting": lambda r: r * r}),
        ({"weighting": "log"}, {"weighting": math.log1p}),
        ({"weighting": "trunc_linear"}, {"weighting": lambda r: min(r, 1.0)}),
        ({"weighting": "const"}, {"weighting": lambda r: 1.0}),
    ],
    ids=["hyperparameters", "sqrt", "square", "log", "trunc_linear", "const"],
)
def test_red_diff_hyperparameters_enter_as_in_the_paper(hyperparameters, by_hand):
    oracle = oracle_problem("mask")
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    torch.testing.assert_close(
        _run("red-diff", problem, oracle.prior, 8, seed=1, **hyperparameters),
        red_diff_by_hand(problem, oracle.prior, 8, seed=1, **by_hand),
        rtol=0,
        atol=1e-10,
    )


def test_dds_least_squares_step_is_the_closed_form_with_its_weight():
    """A = 3·M (a mask, ‖A‖ = 3): with γ the weight is w = γ‖A‖², and the data step of
    Chung et al. 2024 (CG, converged: AᴴA has two eigenvalues) is per pixel
    argmin ½(y − 3x)² + (w/2)(x − a)² = (3y + w·a)/(9 + w) where observed, a elsewhere,
    with a = x̂₀ of the state before the step (physical units)."""
    oracle = oracle_problem("mask")
    mask = oracle.operator.mask
    operator = 3.0 * oracle.operator
    y = 3.0 * oracle.y
    problem = Problem(y, GaussianLikelihood(operator, oracle.noise_std))
    prior, gamma = oracle.prior, 0.3
    weight = gamma * 9.0
    steps = []
    sampler = get_sampler("dds", gamma=gamma, eta=0.5)
    sampler.run(problem, prior, steps=6, generator=torch.Generator().manual_seed(2), callback=steps.append)
    state = prior.initial_noise(1, torch.Generator().manual_seed(2))
    for step in steps:
        anchor = prior.to_physical(prior.predict(state, step.time)[0])
        expected = torch.where(mask, (3 * y + weight * anchor) / (9 + weight), anchor)
        torch.testing.assert_close(step.estimate, expected, rtol=0, atol=1e-9)
        state = step.state


def test_dds_and_red_diff_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^eta must be a number in \[0, 1\], got 1\.5$"):
        get_sampler("dds", eta=1.5)
    with pytest.raises(ValueError, match=r"^cg_iterations must be an int >= 0, got -1$"):
        get_sampler("dds", cg_iterations=-1)
    assert get_sampler("dds", cg_iterations=0).cg_iterations == 0
    with pytest.raises(ValueError, match=r"^gamma must be"):
        get_sampler("dds", gamma=-1.0)
    with pytest.raises(ValueError, match=r"^weighting must be one of linear, sqrt, square, log, trunc_linear, const, got 'cubic'$"):
        get_sampler("red-diff", weighting="cubic")
    for name in ("lr", "regularization", "obs_weight"):
        with pytest.raises(ValueError, match=rf"^{name} must be"):
            get_sampler("red-diff", **{name: -1.0})


#: the 2D samplers (the slice-augmented ones reconstruct volumes: test_slice3d.py)
PLANAR = ["red-diff", "dps", "dds", "diffpir", "dpir", "daps", "pnp-dm"]


@pytest.mark.parametrize("name", PLANAR)
def test_progress_is_shown_only_when_asked(capsys, name):
    oracle = oracle_problem("mask")
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    get_sampler(name).run(problem, oracle.prior, steps=3, generator=torch.Generator().manual_seed(0))
    assert capsys.readouterr().err == ""
    get_sampler(name).run(problem, oracle.prior, steps=3, generator=torch.Generator().manual_seed(0), progress=True)
    assert f"{name}: 100%" in capsys.readouterr().err


@pytest.mark.parametrize("name", PLANAR)
def test_the_condition_reaches_the_prior(name):
    """A class-conditional UNet (random weights, so that every input reaches the output):
    the same data and draws with class 0 or class 1 give different images."""
    from invsolve.operators import Mask, random_pixel_mask
    from invsolve.priors import Conditioning, UNetPrior

    prior = UNetPrior(
        (1, 8, 8), channels=(8, 16), attention_levels=(False, False), num_head_channels=8, norm_num_groups=4,
        conditioning=Conditioning("class", 2), inference_dtype="float32",
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in prior.parameters():
            if not parameter.any():
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    operator = Mask(random_pixel_mask((8, 8), missing_fraction=0.5, seed=0))
    y = operator(torch.rand(1, 1, 8, 8, generator=generator))
    conditions = []
    predict = prior.predict

    def recording_predict(x_t, t, condition=None):
        conditions.append(condition)
        return predict(x_t, t, condition)

    prior.predict = recording_predict
    images = [
        get_sampler(name).run(
            Problem(y, GaussianLikelihood(operator, 0.05), torch.tensor([label])), prior, steps=3,
            generator=torch.Generator().manual_seed(1),
        ).image
        for label in (0, 1)
    ]
    assert float((images[0] - images[1]).abs().max()) > 1e-4
    # every network call of both runs saw its run's condition, not just some of them
    assert conditions and all(condition is not None for condition in conditions)
    assert sorted({int(condition) for condition in conditions}) == [0, 1]


@pytest.mark.parametrize(
    "name, argument, value",
    [
        ("dpir", "regularization", 0.0),
        ("dpir", "highest_level", -1.0),
        ("dpir", "lowest_level", -0.1),
        ("dpir", "cg_iterations", 0),
        ("diffpir", "regularization", 0.0),
        ("dps", "step_size", -1.0),
        ("daps", "sigma_max", -1.0),
        ("daps", "sigma_min", 0.0),
        ("daps", "ode_steps", 0),
        ("daps", "langevin_steps", -1),
        ("daps", "step", 0.0),
        ("daps", "r_scale", -0.5),
        ("pnp-dm", "rho_start", 0.0),
        ("pnp-dm", "rho_min", -1.0),
        ("pnp-dm", "denoise_steps", 0),
        ("pnp-dm", "decay", float("nan")),
    ],
)
def test_sampler_argument_errors_name_the_argument(name, argument, value):
    with pytest.raises(ValueError, match=rf"^{argument} must be"):
        get_sampler(name, **{argument: value})


def test_daps_and_pnp_dm_ranges_are_refused_at_their_bounds():
    with pytest.raises(ValueError, match=r"^sigma_min must be below sigma_max \(1.0\), got 1.0$"):
        get_sampler("daps", sigma_max=1.0, sigma_min=1.0)
    with pytest.raises(ValueError, match=r"^step must be below 2 \(Langevin is unstable beyond 2/L\), got 2.0$"):
        get_sampler("daps", step=2.0)
    assert get_sampler("daps", step=1.99, langevin_steps=0).langevin_steps == 0
    with pytest.raises(ValueError, match=r"^rho_min must not exceed rho_start \(1.0\), got 2.0$"):
        get_sampler("pnp-dm", rho_start=1.0, rho_min=2.0)
    assert get_sampler("pnp-dm", rho_start=1.0, rho_min=1.0, decay=1.0).couplings(2) == [1.0, 1.0]
    for decay in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"^decay must lie in \(0, 1\], got {decay}$"):
            get_sampler("pnp-dm", decay=decay)


def test_dpir_levels_may_reach_the_ends_of_the_schedule_and_no_further():
    """The schedule's floor and ceiling are allowed levels; an empty range is refused."""
    prior = oracle_problem("ct").prior
    floor, ceiling = prior.schedule.noise_ratio_range()
    assert get_sampler("dpir", cg_iterations=1).cg_iterations == 1
    levels = get_sampler("dpir", highest_level=ceiling, lowest_level=floor * (1 - 1e-9)).noise_levels(prior, 5)
    assert float(levels[0]) == pytest.approx(ceiling) and float(levels[-1]) == pytest.approx(floor)
    with pytest.raises(ValueError, match="lowest_level < highest_level"):
        get_sampler("dpir", highest_level=floor).noise_levels(prior, 5)  # lowest defaults to the floor
    with pytest.raises(ValueError, match="highest_level <="):
        get_sampler("dpir", highest_level=ceiling * 1.01).noise_levels(prior, 5)


def test_dpir_truncated_cg_is_not_the_exact_data_step():
    """cg_iterations=None solves each data step exactly; a count truncates it (on CT, a visible difference)."""
    oracle = oracle_problem("ct")
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    exact, truncated = (
        get_sampler("dpir", cg_iterations=iterations).run(problem, oracle.prior, steps=10).image for iterations in (None, 1)
    )
    assert float((exact - truncated).abs().max()) > 1e-3


def _gaussian_denoiser(prior):
    """``D(z, σ) = μ + U diag(λ/(λ + σ²)) Uᵀ (z − μ)``: the exact posterior mean of a Gaussian prior's
    image under ``z = x₀ + σε`` (network units), from its eigendecomposition, without the schedule."""
    mean, values, vectors = prior.mean_network, prior.eigenvalues, prior.eigenvectors

    def denoise(z, level):
        flat = z.reshape(z.shape[0], -1) - mean
        shrunk = ((flat @ vectors) * (values / (values + level**2))) @ vectors.T
        return (mean + shrunk).reshape(z.shape)

    return denoise


def _karras(high, low, count, rho=7.0):
    """Karras et al. (2022) eq. 5: ``count`` levels from ``high`` to ``low``."""
    if count == 1:
        return [high]
    return [(high ** (1 / rho) + i / (count - 1) * (low ** (1 / rho) - high ** (1 / rho))) ** rho for i in range(count)]


def daps_by_hand(problem, prior, steps, seed, *, sigma_max=100.0, sigma_min=0.1, ode_steps=5, langevin_steps=50,
                 step=0.5, r_scale=1.0, start_time=None):
    """Zhang et al. 2025, Algorithm 1, in the variance-exploding view ``z = x₀ + σε``: Karras levels from
    σ_max (or a warm start's own level) to σ_min; per level the probability-flow ODE's Euler steps to the
    schedule's floor and a denoising call give x̂₀, Langevin on ``‖x₀ − x̂₀‖²/2r² + ‖y − A x‖²/2σ_n²`` with
    step ``step/L``, then ``z = x₀ + σ_next ε``.  The denoiser is the Gaussian prior's closed form."""
    generator = torch.Generator().manual_seed(seed)
    denoise = _gaussian_denoiser(prior)
    floor = float(prior.schedule.noise_ratio_range()[0])
    start = 1.0 if start_time is None else start_time
    alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(start, dtype=torch.float64)))
    shape = (problem.batch_size, *prior.image_shape)
    if start_time is None:
        high = min(sigma_max, sigma / alpha)
        z = high * torch.randn(shape, dtype=torch.float64, generator=generator)
    else:
        high = sigma / alpha
        z = prior.to_network(problem.start_image) + high * torch.randn(shape, dtype=torch.float64, generator=generator)
    scale, operator, y, noise_std = prior.normalization.scale, problem.operator, problem.y, problem.noise_std
    curvature = (scale * operator.norm() / noise_std) ** 2
    levels = _karras(high, max(sigma_min, floor), steps)
    for index, level in enumerate(levels):
        grid = _karras(level, floor, ode_steps)
        for here, there in zip(grid[:-1], grid[1:]):
            z = z + (there - here) * (z - denoise(z, here)) / here
        x0_hat = denoise(z, grid[-1])
        r = r_scale * level
        eta = step / (1 / r**2 + curvature)
        x0 = x0_hat
        for _ in range(langevin_steps):
            misfit = operator.adjoint(operator(prior.to_physical(x0)) - y)
            gradient = (x0 - x0_hat) / r**2 + scale * (misfit.real if misfit.is_complex() else misfit) / noise_std**2
            x0 = x0 - eta * gradient + math.sqrt(2 * eta) * torch.randn(shape, dtype=torch.float64, generator=generator)
        if index + 1 < len(levels):
            z = x0 + levels[index + 1] * torch.randn(shape, dtype=torch.float64, generator=generator)
    return prior.to_physical(x0)


def _matches_by_hand(sampler, by_hand, problem_name, steps, seed, atol, **settings):
    """``sampler`` on an oracle problem equals its written-out reference with the same seed."""
    oracle = oracle_problem(problem_name)
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    torch.testing.assert_close(
        _run(sampler, problem, oracle.prior, steps, seed=seed, **settings),
        by_hand(problem, oracle.prior, steps, seed=seed, **settings), rtol=0, atol=atol,
    )


@pytest.mark.parametrize("name", ["mask", "ct", "mri"])
def test_daps_is_algorithm_1_written_out(name):
    _matches_by_hand("daps", daps_by_hand, name, 6, 2, 1e-8, ode_steps=3, langevin_steps=4)


@pytest.mark.parametrize(
    "settings",
    [
        {"sigma_max": 20.0, "sigma_min": 0.3, "ode_steps": 1, "langevin_steps": 3, "step": 1.2, "r_scale": 0.5},
        {"sigma_max": 500.0, "ode_steps": 4, "langevin_steps": 0},
    ],
    ids=["hyperparameters", "above-the-schedule"],
)
def test_daps_hyperparameters_enter_as_in_the_paper(settings):
    _matches_by_hand("daps", daps_by_hand, "ct", 5, 4, 1e-8, **settings)


def test_daps_warm_start_begins_at_its_own_level_from_the_start_image():
    oracle = oracle_problem("mask")
    start_image = oracle.mean + 0.1
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std), start_image=start_image)
    settings = {"ode_steps": 2, "langevin_steps": 3}
    sampler = get_sampler("daps", **settings)
    image = sampler.run(problem, oracle.prior, steps=4, generator=torch.Generator().manual_seed(5), start_time=0.3).image
    torch.testing.assert_close(
        image, daps_by_hand(problem, oracle.prior, 4, seed=5, start_time=0.3, **settings), rtol=0, atol=1e-8
    )


def _count_network_calls(prior):
    """Make every network call of ``prior`` append to the returned list."""
    calls = []
    predict = prior.predict

    def counting_predict(x_t, t, condition=None):
        calls.append(1)
        return predict(x_t, t, condition)

    prior.predict = counting_predict
    return calls


def test_daps_counts_its_network_calls():
    oracle = oracle_problem("mask")
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    calls = _count_network_calls(oracle.prior)
    sampler = get_sampler("daps", ode_steps=3, langevin_steps=1)
    result = sampler.run(problem, oracle.prior, steps=4, generator=torch.Generator().manual_seed(0))
    assert len(calls) == result.info["network_evaluations"] == sampler.network_evaluations(4) == 12


def pnp_dm_by_hand(problem, prior, steps, seed, *, rho_start=10.0, rho_min=0.05, decay=0.9, denoise_steps=10):
    """Wu et al. 2024, Algorithm 1, from x = A⁺y: per Gibbs iteration k the coupling
    ``ρ_k = max(ρ_0 d^k, ρ_min)`` (at most the schedule's top level), the likelihood step drawn by
    perturb-and-solve with coupling precision ``1/(sρ_k)²`` in physical units, then the prior step, a
    draw of the denoising posterior at level ``ρ_k`` (the shared building blocks, tested on their own)."""
    from invsolve.samplers.diffusion import sample_denoising_posterior

    generator = torch.Generator().manual_seed(seed)
    scale = prior.normalization.scale
    highest = prior.schedule.noise_ratio_range()[1]
    x = prior.to_network(problem.operator.pinv(problem.y).real)
    for k in range(steps):
        rho = min(max(rho_start * decay**k, rho_min), highest)
        z = prior.to_network(problem.sample_proximal(prior.to_physical(x), 1 / (scale * rho) ** 2, generator))
        x = sample_denoising_posterior(prior, z, rho, denoise_steps, generator)
    return prior.to_physical(x)


@pytest.mark.parametrize(
    "name, settings",
    [
        ("mask", {"denoise_steps": 2}),
        ("ct", {"rho_start": 500.0, "rho_min": 0.2, "decay": 0.5, "denoise_steps": 3}),  # above the schedule's top
        ("mri", {"rho_start": 1.0, "decay": 1.0, "denoise_steps": 1}),
    ],
)
def test_pnp_dm_is_algorithm_1_written_out(name, settings):
    _matches_by_hand("pnp-dm", pnp_dm_by_hand, name, 6, 7, 1e-10, **settings)


def test_pnp_dm_counts_its_network_calls_and_refuses_a_coupling_below_the_schedule():
    oracle = oracle_problem("mask")
    problem = Problem(oracle.y, GaussianLikelihood(oracle.operator, oracle.noise_std))
    calls = _count_network_calls(oracle.prior)
    sampler = get_sampler("pnp-dm", denoise_steps=3)
    result = sampler.run(problem, oracle.prior, steps=4, generator=torch.Generator().manual_seed(0))
    assert len(calls) == result.info["network_evaluations"] == sampler.network_evaluations(4) == 12
    lowest = oracle.prior.schedule.noise_ratio_range()[0]
    assert get_sampler("pnp-dm", rho_min=lowest).run(problem, oracle.prior, steps=1).image.isfinite().all()
    with pytest.raises(ValueError, match=r"rho_min must be at least the lowest noise level of the prior's"):
        get_sampler("pnp-dm", rho_min=lowest * 0.99).run(problem, oracle.prior, steps=1)
