"""The code every sampler shares (samplers/base.py, problem.py, diffusion.py) against its
contract written out: the surviving mutants of ``benchmarks/mutation.py --module shared``.

The sampler tests reach this code through every sampler, so a change that moves all samplers
alike, or only a random stream, or only a message, passed them: the warm start's Gaussian
draw is checked here against Matheron's rule solved densely, the denoising-posterior draw
against the closed-form posterior covariance, and the messages, the registry, ``Problem``'s
repeat and truncated prox and the run's record each on their own.
"""

import dataclasses

import pytest
import torch

from invsolve._random import randn_like
from invsolve.oracle import _realify, oracle_problem
from invsolve.operators import GaussianLikelihood
from invsolve.priors import GaussianPrior, UNetPrior
from invsolve.samplers import Problem, Sampler, get_sampler, register_sampler
from invsolve.samplers import base as sampler_base
from invsolve.samplers.diffusion import initial_state, karras_levels, sample_denoising_posterior


def _problem(name, noise_std=None):
    oracle = oracle_problem(name)
    noise_std = oracle.noise_std if noise_std is None else noise_std
    return oracle, Problem(oracle.y, GaussianLikelihood(oracle.operator, noise_std))


def _tiny_unet(size):
    """A small randomly initialised U-Net prior on ``(1, size, size)`` images, float32."""
    return UNetPrior(
        (1, size, size), channels=(8, 16), attention_levels=(False, False), num_head_channels=8, norm_num_groups=4
    )


def _realified(value):
    """Items flattened, complex values as their real then imaginary parts (the rows of ``_realify``)."""
    flat = value.reshape(value.shape[0], -1)
    return torch.cat([flat.real, flat.imag], dim=1) if flat.is_complex() else flat


def _warm_start_by_hand(problem, prior, t, seed):
    """Matheron's rule solved densely: ``x = x_p + s·Σ·Aᵀw`` with
    ``(s²AΣAᵀ + σ²I)w = y − A(s·x_p + o) − n`` (the real view of complex data), then
    ``α_t·x + σ_t·ε``, with the draws ``x_p``, ``n``, ``ε`` taken in that order from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    fit = prior.gaussian_fit
    prior_draw = fit.sample(problem.batch_size, generator)
    scale, offset = prior.normalization.scale, prior.normalization.offset
    residual = problem.y - problem.operator(scale * prior_draw + offset)
    sigma = problem.noise_std
    if sigma > 0:
        residual = residual - sigma * randn_like(residual, generator)
    matrix = _realify(problem.operator.to_dense())
    cov = fit.components.T @ torch.diag(fit.variances) @ fit.components
    gram = scale**2 * matrix @ cov @ matrix.T + sigma**2 * torch.eye(matrix.shape[0], dtype=torch.float64)
    weights = torch.linalg.solve(gram, _realified(residual).T)
    clean = prior_draw + (scale * cov @ matrix.T @ weights).T.reshape(prior_draw.shape)
    alpha, sigma_t = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    return alpha * clean + sigma_t * torch.randn(clean.shape, dtype=clean.dtype, generator=generator)


@pytest.mark.parametrize("name", ["mask", "mri", "ct"])
def test_the_gaussian_warm_start_is_matherons_rule_solved_densely(name):
    """The analytic warm start is Matheron's rule (``_warm_start_by_hand``): the same draws in the same order."""
    oracle, problem = _problem(name)
    prior, t, seed = oracle.prior, 0.3, 5
    state, start = initial_state(problem, prior, t, torch.Generator().manual_seed(seed))
    expected = _warm_start_by_hand(problem, prior, t, seed)

    assert start == t and state.dtype == prior.dtype
    torch.testing.assert_close(state, expected, rtol=0, atol=1e-5)


def test_noise_free_data_draw_no_data_noise_and_need_a_start_image_to_start_warm():
    """With ``σ = 0`` the Gaussian draw takes the prior draw and then the start noise, nothing
    between; the samplers refuse that warm start (its solve is singular, docs of
    gaussian_posterior_draw) unless a start image is given."""
    oracle, problem = _problem("mask", noise_std=0.0)
    generator = torch.Generator().manual_seed(2)
    state, _ = initial_state(problem, oracle.prior, 0.3, generator)
    by_hand = torch.Generator().manual_seed(2)
    oracle.prior.gaussian_fit.sample(1, by_hand)
    torch.randn(state.shape, dtype=state.dtype, generator=by_hand)
    assert torch.equal(generator.get_state(), by_hand.get_state())
    with pytest.raises(
        ValueError,
        match=r"^start_time without a start image starts from a draw of the Gaussian fit's posterior, which needs "
        r"noise_std > 0 \(with 0 its solve is singular\); give the data's noise level, however small, or a start "
        r"image \(start_image=\)$",
    ):
        get_sampler("dds").run(problem, oracle.prior, steps=2, start_time=0.3)
    start = Problem(oracle.y, problem.likelihood, start_image=oracle.mean.reshape(1, *oracle.prior.image_shape))
    assert get_sampler("dds").run(start, oracle.prior, steps=2, start_time=0.3).info["start_time"] == 0.3


def test_a_start_image_in_single_precision_starts_where_its_double_precision_twin_does():
    oracle, problem = _problem("mask")
    image = oracle.mean.reshape(1, *oracle.prior.image_shape)
    states = [
        initial_state(
            Problem(oracle.y, problem.likelihood, start_image=image.to(dtype)), oracle.prior, 0.2,
            torch.Generator().manual_seed(0),
        )[0]
        for dtype in (torch.float64, torch.float32)
    ]
    assert states[1].dtype == torch.float64
    torch.testing.assert_close(states[1], states[0], rtol=0, atol=1e-6)


def test_every_sampler_computes_in_the_priors_precision_from_single_precision_data():
    """float32 measurements with a float64 prior: the image comes back in float64, and where the
    sampler draws nothing shaped like the data it equals the float64 run to float32 rounding
    (PnP-DM perturbs the data, in the data's precision: another draw of the same law)."""
    oracle, problem = _problem("mask")
    single = Problem(oracle.y.float(), problem.likelihood)
    for name in ("red-diff", "dps", "dds", "diffpir", "dpir", "daps", "pnp-dm"):
        images = [
            get_sampler(name).run(p, oracle.prior, steps=4, generator=torch.Generator().manual_seed(0)).image
            for p in (problem, single)
        ]
        assert images[1].dtype == torch.float64, name
        if name != "pnp-dm":
            torch.testing.assert_close(images[1], images[0], rtol=0, atol=1e-6, msg=name)


def test_every_sampler_computes_in_the_priors_precision_from_double_precision_data():
    """float64 measurements with a float32 network: the samplers' states and the image stay float32."""
    from invsolve.operators import Mask, random_pixel_mask

    prior = _tiny_unet(8)
    operator = Mask(random_pixel_mask((8, 8), missing_fraction=0.5, seed=0))
    y = operator(torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    problem = Problem(y, GaussianLikelihood(operator, 0.05))
    for name in ("red-diff", "dps", "dds", "diffpir", "dpir", "daps", "pnp-dm"):
        image = get_sampler(name).run(problem, prior, steps=3, generator=torch.Generator().manual_seed(0)).image
        assert image.dtype == torch.float32 and bool(torch.isfinite(image).all()), name


def test_a_denoising_posterior_draw_has_the_closed_form_covariance():
    """``p(x₀ | z)`` for ``z = x₀ + ℓε`` and a Gaussian prior ``N(μ, Σ)`` is Gaussian with covariance
    ``(Σ⁻¹ + I/ℓ²)⁻¹`` and mean ``D(z, ℓ)``; ten ancestral steps with DDPM's forward variance
    reach its trace within a few per cent (the posterior variance β̃ gives about half of it)."""
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5, std=1.0, mean=0.0)
    level, count = 0.1, 3000
    generator = torch.Generator().manual_seed(0)
    z = prior.sample_exact(1, seed=1) + level * torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=generator)
    draws = sample_denoising_posterior(prior, z.expand(count, -1, -1, -1).contiguous(), level, 10, generator)
    values, vectors = prior.eigenvalues, prior.eigenvectors
    exact_cov = vectors @ torch.diag(values * level**2 / (values + level**2)) @ vectors.T
    exact_mean = ((z.reshape(1, -1) @ vectors) * values / (values + level**2)) @ vectors.T
    flat = draws.reshape(count, -1)
    ratio = float(torch.cov(flat.T).trace() / exact_cov.trace())
    assert 0.95 < ratio < 1.1
    standard_errors = exact_cov.diagonal().sqrt() / count**0.5
    assert float(((flat.mean(0) - exact_mean[0]) / standard_errors).abs().max()) < 4.5


def test_karras_levels_keep_rho_and_equal_ends():
    def by_hand(high, low, count, rho):
        return [(high ** (1 / rho) + i / (count - 1) * (low ** (1 / rho) - high ** (1 / rho))) ** rho for i in range(count)]

    torch.testing.assert_close(karras_levels(10.0, 0.1, 5, rho=3.0), torch.tensor(by_hand(10.0, 0.1, 5, 3.0), dtype=torch.float64))
    torch.testing.assert_close(karras_levels(0.1, 10.0, 4, rho=2.0), torch.tensor(by_hand(0.1, 10.0, 4, 2.0), dtype=torch.float64))
    equal = karras_levels(2.5, 2.5, 3)
    assert equal.tolist() == [2.5, 2.5, 2.5] and equal.dtype == torch.float64
    assert karras_levels(4.0, 1.0, 1).tolist() == [4.0]


def test_a_problem_repeats_its_condition_item_by_item():
    oracle, problem = _problem("mask")
    y = oracle.y.expand(2, *oracle.y.shape[1:])
    condition = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    repeated = Problem(y, problem.likelihood, condition).repeat(3)
    assert torch.equal(repeated.condition, torch.tensor([[1.0, 2.0]] * 3 + [[3.0, 4.0]] * 3))
    assert repeated.y.shape[0] == 6


def test_a_problems_prox_passes_its_iteration_budget():
    oracle, problem = _problem("ct")
    anchor = torch.zeros(1, *oracle.prior.image_shape, dtype=torch.float64)
    truncated = problem.prox(anchor, 2.0, iterations=1)
    torch.testing.assert_close(truncated, problem.likelihood.prox(anchor, 2.0, oracle.y, iterations=1), rtol=0, atol=0)
    assert float((truncated - problem.prox(anchor, 2.0)).abs().max()) > 1e-3


def test_a_run_records_its_settings_and_duration():
    oracle, problem = _problem("mask")
    info = get_sampler("dds").run(problem, oracle.prior, steps=3, generator=torch.Generator().manual_seed(0)).info
    assert set(info) == {"sampler", "hyperparameters", "steps", "network_evaluations", "start_time", "seconds"}
    assert info["sampler"] == "dds" and info["steps"] == 3 and info["start_time"] is None
    assert 0 <= info["seconds"] < 60


def test_the_run_checks_name_what_they_refuse():
    oracle, problem = _problem("mask")
    sampler = get_sampler("dds")
    with pytest.raises(TypeError, match=r"^steps must be an int >= 1, got 2.5$"):
        sampler.run(problem, oracle.prior, steps=2.5)
    start = Problem(oracle.y, problem.likelihood, start_image=oracle.mean.reshape(1, *oracle.prior.image_shape))
    with pytest.raises(
        ValueError,
        match=r"^start_image was given without start_time: give the diffusion time in \(0, 1\] at which the run starts "
        r"from it \(its noise level; small times keep more of the start image\)$",
    ):
        sampler.run(start, oracle.prior, steps=2)
    with pytest.raises(TypeError, match=r"^problem must be an invsolve Problem, got str$"):
        sampler.run("y", oracle.prior, steps=2)
    with pytest.raises(
        ValueError,
        match=r"^sampler 'daps' uses the likelihood as a density and needs noise_std > 0, got 0; give the measurement "
        r"noise \(a small value for nearly clean data\) or use 'dds' or 'diffpir'$",
    ):
        get_sampler("daps").run(Problem(oracle.y, GaussianLikelihood(oracle.operator, 0.0)), oracle.prior, steps=2)
    with pytest.raises(
        ValueError,
        match=r"^a condition was given but the GaussianPrior is unconditional; pass condition=None or a conditional prior$",
    ):
        sampler.run(Problem(oracle.y, problem.likelihood, torch.tensor([1])), oracle.prior, steps=2)
    with pytest.raises(
        ValueError,
        match=r"^this sampler needs measurements: the problem has no likelihood \(conditional generation only\)$",
    ):
        Problem(None, None, torch.tensor([1])).residual(oracle.mean)
    network = _tiny_unet(12)
    with pytest.raises(
        ValueError,
        match=r"^start_time needs a start image \(start_image=\) or the Gaussian fit of the prior's training data "
        r"\(prior.gaussian_fit\), which this prior lacks; add it with `invsolve fit-gaussian CONFIG.toml PRIOR.pt`$",
    ):
        sampler.run(problem, network, steps=2, start_time=0.5)


def test_a_complex_operator_is_refused_with_the_composition_that_fits():
    from invsolve.operators.mri import CartesianMRI

    operator = CartesianMRI(torch.ones(8, dtype=torch.bool), shape=(8, 8))
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5, std=1.0)
    y = operator(torch.zeros(1, 1, 8, 8, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"so that it takes the prior's real image with real and imaginary parts as channels$"):
        get_sampler("dds").run(Problem(y, GaussianLikelihood(operator, 0.1)), prior, steps=2)


def test_a_users_sampler_registers_under_its_name():
    @dataclasses.dataclass
    class PseudoInverse(Sampler):
        name = "test-pseudo-inverse"

        def _run(self, problem, prior, steps, generator, report, start_time, progress):
            return problem.operator.pinv(problem.y).real

    oracle, problem = _problem("mask")
    try:
        assert register_sampler(PseudoInverse) is PseudoInverse
        sampler = get_sampler("test-pseudo-inverse")
        assert isinstance(sampler, PseudoInverse)
        torch.testing.assert_close(sampler.run(problem, oracle.prior, steps=1).image, oracle.operator.pinv(oracle.y))
        with pytest.raises(ValueError, match=r"^a sampler named 'test-pseudo-inverse' is already registered \(PseudoInverse\)$"):
            register_sampler(PseudoInverse)
    finally:
        sampler_base._REGISTRY.pop("test-pseudo-inverse", None)


def test_problem_and_registry_errors_name_what_they_refuse():
    oracle, problem = _problem("mask")
    with pytest.raises(ValueError, match=r"^unknown hyperparameter\(s\) alpha, beta for sampler 'dds'; its hyperparameters are: eta, "):
        get_sampler("dds", beta=1, alpha=2)
    with pytest.raises(ValueError, match=r"^y was given without a likelihood: pass the likelihood that explains it$"):
        Problem(oracle.y, None)
    with pytest.raises(ValueError, match=r"^a problem needs measurements with a likelihood, or a condition to generate from$"):
        Problem(None, None)
    with pytest.raises(TypeError, match=r"^condition must be a torch.Tensor or None, got list$"):
        Problem(oracle.y, problem.likelihood, [1])
    with pytest.raises(ValueError, match=r"^condition must have a batch axis first, B >= 1, got shape \(0,\)$"):
        Problem(None, None, torch.zeros(0))
    with pytest.raises(ValueError, match=r"^condition must be finite, got 1 NaN or infinite entries"):
        Problem(oracle.y, problem.likelihood, torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match=r"^start_image needs measurements: a start image is an estimate of what y measured$"):
        Problem(None, None, torch.tensor([1]), start_image=torch.zeros(1, 1, 12, 12))
    image = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^start_image must be a floating-point tensor, got dtype torch.complex128$"):
        Problem(oracle.y, problem.likelihood, start_image=image.to(torch.complex128))
    with pytest.raises(ValueError, match=r"^start_image must be finite, got 1 NaN or infinite entries"):
        Problem(oracle.y, problem.likelihood, start_image=image.index_put((torch.tensor([0]),) * 4, torch.tensor(float("nan"), dtype=torch.float64)))
    with pytest.raises(TypeError, match=r"^prior must be an invsolve DiffusionPrior, got str$"):
        get_sampler("dds").run(Problem(None, None, torch.tensor([1])), "ct-ellipses", steps=2)


def test_dds_is_ddim_with_the_data_step_written_out():
    """Chung, Lee & Ye 2024 on a mask (the data step per pixel, ``w = γ‖A‖² = γ``) with DDIM's
    η-update written out (Song, Meng & Ermon 2021, eq. 12): ``x_s = α_s·x̂₀' + √(σ_s² − c²)·ε̂ + c·ξ``,
    ``c = η·σ_s·√(σ_t² − (α_t/α_s)²σ_s²)/σ_t``, the clean end returning ``x̂₀'``."""
    oracle, problem = _problem("mask")
    prior, mask, gamma, eta, steps = oracle.prior, oracle.operator.mask, 0.3, 0.7, 6
    result = get_sampler("dds", gamma=gamma, eta=eta).run(problem, prior, steps=steps, generator=torch.Generator().manual_seed(4))

    generator = torch.Generator().manual_seed(4)
    x = prior.initial_noise(1, generator)
    times = prior.schedule.sampling_times(steps).tolist()
    for t, s in zip(times, [*times[1:], None]):
        x0_hat, eps_hat = prior.predict(x, t)
        anchor = prior.to_physical(x0_hat)
        x0_hat = prior.to_network(torch.where(mask, (oracle.y + gamma * anchor) / (1 + gamma), anchor))
        if s is None:
            x = x0_hat
            break
        (alpha_t, alpha_s), (sigma_t, sigma_s) = (v.tolist() for v in prior.schedule.alpha_sigma(torch.tensor([t, s], dtype=torch.float64)))
        c = eta * sigma_s * (sigma_t**2 - (alpha_t / alpha_s) ** 2 * sigma_s**2) ** 0.5 / sigma_t
        noise = torch.randn(x.shape, dtype=x.dtype, generator=generator)
        x = alpha_s * x0_hat + (sigma_s**2 - c**2) ** 0.5 * eps_hat + c * noise
    torch.testing.assert_close(result.image, prior.to_physical(x), rtol=0, atol=1e-9)
    assert result.trajectory is None  # kept only when asked for


def test_a_scaled_prior_warm_starts_with_its_scale():
    """Matheron's rule with a normalisation ``x_phys = s·x + o`` (s = 2.5, o = 0.4): the dense solve agrees."""
    from invsolve.operators import Mask, random_pixel_mask
    from invsolve.priors import Normalization

    prior = GaussianPrior.squared_exponential(
        (1, 6, 6), length_scale=1.5, std=1.0, normalization=Normalization(scale=2.5, offset=0.4)
    )
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0))
    y = operator(prior.sample_exact(1, seed=0))
    problem = Problem(y, GaussianLikelihood(operator, 0.1))
    assert (prior.normalization.scale, prior.normalization.offset) == (2.5, 0.4)
    state, _ = initial_state(problem, prior, 0.4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(state, _warm_start_by_hand(problem, prior, 0.4, 3), rtol=0, atol=1e-5)


def test_a_single_precision_network_warm_starts_in_single_precision():
    from invsolve.operators import Mask, random_pixel_mask
    from invsolve.priors import LowRankGaussian

    prior = _tiny_unet(8)
    images = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    prior.set_gaussian_fit(LowRankGaussian.fit(prior.to_network(images), rank=4))
    operator = Mask(random_pixel_mask((8, 8), missing_fraction=0.5, seed=0))
    problem = Problem(operator(images[:1].double()), GaussianLikelihood(operator, 0.05))
    state, _ = initial_state(problem, prior, 0.5, torch.Generator().manual_seed(1))
    assert state.dtype == torch.float32 and bool(torch.isfinite(state).all())


def test_a_run_without_steps_takes_the_samplers_default():
    oracle, problem = _problem("mask")
    sampler = get_sampler("dds", cg_iterations=1)
    assert sampler.run(problem, oracle.prior, generator=torch.Generator().manual_seed(0)).info["steps"] == sampler.default_steps


def test_a_problem_passes_its_warm_start_and_budget_to_the_likelihood():
    oracle, problem = _problem("ct")
    likelihood, y = problem.likelihood, oracle.y
    shape = (1, *oracle.prior.image_shape)
    anchor = torch.zeros(shape, dtype=torch.float64)
    start = torch.full(shape, 0.5, dtype=torch.float64)
    for method in ("least_squares", "prox"):
        own = getattr(problem, method)(anchor, 2.0, x0=start, iterations=1)
        torch.testing.assert_close(own, getattr(likelihood, method)(anchor, 2.0, y, x0=start, iterations=1), rtol=0, atol=0)
        assert float((own - getattr(problem, method)(anchor, 2.0, iterations=1)).abs().max()) > 1e-3, method
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(problem.nll(x), likelihood.nll(x, y), rtol=0, atol=0)
    assert problem.nll(x).shape == (1,)


def test_a_problem_without_data_repeats_its_condition():
    repeated = Problem(None, None, torch.tensor([2, 5])).repeat(2)
    assert repeated.y is None and repeated.condition.tolist() == [2, 2, 5, 5]


def test_a_nameless_sampler_is_refused():
    @dataclasses.dataclass
    class Nameless(Sampler):
        pass

    with pytest.raises(ValueError, match=r"^Nameless needs a non-empty `name`$"):
        register_sampler(Nameless)


def test_deterministic_ddim_draws_nothing_after_its_start():
    """η = 0: the run's only draw is its start noise, so the generator is left where that draw left it
    (a second sample from the same generator starts right after the first's start)."""
    oracle, problem = _problem("mask")
    generator = torch.Generator().manual_seed(6)
    get_sampler("dds", eta=0.0).run(problem, oracle.prior, steps=5, generator=generator)
    by_hand = torch.Generator().manual_seed(6)
    oracle.prior.initial_noise(1, by_hand)
    assert torch.equal(generator.get_state(), by_hand.get_state())
