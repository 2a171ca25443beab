"""reconstruct(), the shared sampler interface and the bad-input errors of issue 9."""

import pytest
import torch

import invsolve
from invsolve.operators import ComplexAsChannels, GaussianLikelihood, Mask, MatrixOperator, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.mri_prior import prior_view
from invsolve.operators.mri import CartesianMRI, random_mask, simulated_coil_maps
from invsolve.priors import Conditioning, GaussianPrior, Normalization, UNetPrior
from invsolve.samplers import Problem, SamplerStep, get_sampler

SAMPLERS = ["red-diff", "dps", "dds", "diffpir", "dpir", "daps", "pnp-dm"]
#: a short run of each sampler for interface tests
QUICK = {
    "red-diff": dict(steps=8),
    "dps": dict(steps=8),
    "dds": dict(steps=8),
    "diffpir": dict(steps=8),
    "dpir": dict(steps=8),
    "daps": dict(steps=4, ode_steps=2, langevin_steps=3),
    "pnp-dm": dict(steps=4, denoise_steps=2),
}
TINY = {"channels": (16, 32), "attention_levels": (False, True), "num_head_channels": 16, "inference_dtype": "float32"}


@pytest.fixture
def setup():
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5)
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0))
    y = operator(prior.sample_exact(2, seed=0))
    return y, operator, prior


def test_every_sampler_is_registered():
    # the 3D ones are tested in test_slice3d.py, the two-prior one in test_joint_dehaze.py
    assert invsolve.available_samplers() == sorted([*SAMPLERS, "dds-3d", "mbir", "joint-dehaze"])
    assert get_sampler("dds", eta=0.5).eta == 0.5


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_result_shapes_determinism_and_callback(setup, sampler):
    y, operator, prior = setup
    steps = []
    one = invsolve.reconstruct(
        y, operator, prior, sampler, noise_std=0.01, seed=3, progress=False, callback=steps.append, **QUICK[sampler]
    )
    assert one.image.shape == (2, 1, 6, 6) and one.samples is None and one.std is None and one.run_spread is None
    assert bool(torch.isfinite(one.image).all())
    assert len(steps) >= 2 and all(isinstance(step, SamplerStep) for step in steps)
    assert steps[-1].index == steps[-1].total - 1 and steps[0].estimate.shape == (2, 1, 6, 6)
    assert steps[0].time >= steps[-1].time
    again = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, seed=3, progress=False, **QUICK[sampler])
    assert torch.equal(one.image, again.image)
    other = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, seed=4, progress=False, **QUICK[sampler])
    # only a method that draws nothing gives the same image for another seed
    assert torch.equal(one.image, other.image) == get_sampler(sampler).deterministic
    info = one.info
    assert info["sampler"] == sampler and info["steps"] == QUICK[sampler]["steps"] and info["network_evaluations"] >= 1


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_values_at_hidden_pixels_change_no_sampler(setup, sampler):
    """Noise simulated over the whole array is not data where the mask measures nothing (Mask.measured)."""
    y, operator, prior = setup
    stray = torch.where(operator.mask, torch.zeros_like(y), 50.0 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1)))
    clean = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, seed=3, progress=False, **QUICK[sampler])
    noisy = invsolve.reconstruct(
        y + stray, operator, prior, sampler, noise_std=0.01, seed=3, progress=False, **QUICK[sampler]
    )
    assert torch.allclose(noisy.image, clean.image, atol=1e-6)


def test_a_deterministic_sampler_refuses_several_samples(setup):
    y, operator, prior = setup
    with pytest.raises(ValueError, match="'dpir' is deterministic: every run gives the same image, so n_samples"):
        invsolve.reconstruct(y, operator, prior, "dpir", noise_std=0.01, n_samples=3, progress=False)


@pytest.mark.parametrize("sampler", [name for name in SAMPLERS if not get_sampler(name).deterministic])
def test_several_samples_without_tiling_and_std_only_for_samplers(setup, sampler):
    y, operator, prior = setup
    batches = []
    many = invsolve.reconstruct(
        y,
        operator,
        prior,
        sampler,
        noise_std=0.01,
        n_samples=3,
        progress=False,
        trajectory=True,
        callback=lambda step: batches.append(step.state.shape[0]),
        **QUICK[sampler],
    )
    assert set(batches) == {2}  # one sample per run: memory does not grow with n_samples
    assert many.samples.shape == (2, 3, 1, 6, 6)
    assert torch.allclose(many.image, many.samples.mean(1))
    assert many.trajectory.shape[1:] == (2, 1, 6, 6)
    if get_sampler(sampler).draws_samples:
        assert many.std.shape == (2, 1, 6, 6) and many.run_spread is None
    else:
        # a point estimator's runs differ by optimiser noise: never presented as posterior std
        assert many.std is None and many.run_spread.shape == (2, 1, 6, 6)
    chunked = []
    invsolve.reconstruct(
        y, operator, prior, sampler, noise_std=0.01, n_samples=3, max_batch=4, progress=False,
        callback=lambda step: chunked.append(step.state.shape[0]), **QUICK[sampler],
    )
    assert set(chunked) == {4, 2}  # two samples per run, then the one left


def _tiny_unet(image_shape):
    prior = UNetPrior(image_shape, prediction="v", normalization=Normalization.from_range(0.0, 2.0), **TINY)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in prior.parameters():
            if not parameter.any():
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    return prior


def _instruments():
    ct = RayTransform(ParallelBeam2D((16, 16), sparse_view_angles(6)))
    mri = CartesianMRI(random_mask(16, 0.25, 2, seed=0), shape=(16, 16)) @ ComplexAsChannels((1, 16, 16))
    mask = Mask(random_pixel_mask((16, 16), missing_fraction=0.5, seed=0))
    return {"ct": (ct, (1, 16, 16)), "mri": (mri, (2, 16, 16)), "inpainting": (mask, (1, 16, 16))}


@pytest.mark.parametrize("instrument", ["ct", "mri", "inpainting"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_on_ct_mri_and_inpainting_with_a_unet_prior(sampler, instrument):
    operator, shape = _instruments()[instrument]
    prior = _tiny_unet(shape)
    truth = torch.rand(2, *shape, generator=torch.Generator().manual_seed(1)) * 2
    y = operator(truth)
    result = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.05, progress=False, **QUICK[sampler])
    assert result.image.shape == (2, *shape) and result.image.dtype == torch.float32
    assert bool(torch.isfinite(result.image).all())


def test_samplers_work_in_physical_units_through_the_normalization():
    """A prior in HU with a normalisation gives the HU version of the same run in network units."""
    physical = GaussianPrior.squared_exponential(
        (1, 6, 6), length_scale=1.5, std=200.0, mean=40.0, normalization=Normalization.from_range(-1000, 1000, "HU")
    )
    network = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5, std=0.2, mean=0.04)
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.3, seed=1))
    truth = physical.sample_exact(1, seed=2)
    for sampler in SAMPLERS:
        in_hu = invsolve.reconstruct(operator(truth), operator, physical, sampler, noise_std=1.0, progress=False, **QUICK[sampler])
        in_network = invsolve.reconstruct(
            operator(truth / 1000), operator, network, sampler, noise_std=1e-3, progress=False, **QUICK[sampler]
        )
        assert torch.allclose(in_hu.image, 1000 * in_network.image, rtol=1e-6, atol=1e-5), sampler


@pytest.mark.parametrize("sampler", ["dds", "diffpir", "dps", "daps"])
def test_warm_start_runs_from_start_time(setup, sampler):
    y, operator, prior = setup
    times = []
    result = invsolve.reconstruct(
        y, operator, prior, sampler, noise_std=0.01, start_time=0.4, progress=False,
        callback=lambda step: times.append(step.time), **QUICK[sampler],
    )
    assert bool(torch.isfinite(result.image).all()) and result.info["start_time"] == 0.4
    assert max(times) <= 0.4 + 1e-9


def test_the_warm_start_draws_the_exact_noisy_posterior():
    """For a Gaussian prior the state at start_time is α·x_post + σ·ε, x_post ~ N(μ_post, Σ_post)."""
    from invsolve.samplers.diffusion import initial_state

    prior = GaussianPrior.squared_exponential((1, 5, 5), length_scale=1.2, std=1.0, mean=0.2)
    operator = RayTransform(ParallelBeam2D((5, 5), sparse_view_angles(3))).double()
    noise_std = 0.1
    y = operator(prior.sample_exact(1, seed=0)) + noise_std * torch.randn(1, *operator.out_shape, dtype=torch.float64)
    n, t = 6000, 0.3
    problem = Problem(y.expand(n, *y.shape[1:]), GaussianLikelihood(operator, noise_std))
    state, start = initial_state(problem, prior, t, torch.Generator().manual_seed(1))
    assert start == t
    alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, noise_std)
    expected_mean = alpha * mean.reshape(-1)
    expected_cov = alpha**2 * cov + sigma**2 * torch.eye(25, dtype=torch.float64)
    flat = state.reshape(n, -1)
    standard_errors = expected_cov.diagonal().sqrt() / n**0.5
    assert float(((flat.mean(0) - expected_mean) / standard_errors).abs().max()) < 4.5
    assert float((torch.cov(flat.T) - expected_cov).abs().max()) < 5 * float(expected_cov.diagonal().max()) * (2 / n) ** 0.5


def test_conditional_priors_take_a_condition():
    prior = UNetPrior((1, 16, 16), conditioning=Conditioning("class", 3), **TINY)
    operator = Mask(random_pixel_mask((16, 16), missing_fraction=0.5, seed=0))
    y = operator(torch.rand(2, 1, 16, 16))
    result = invsolve.reconstruct(y, operator, prior, "dds", steps=3, condition=torch.tensor([0, 2]), progress=False)
    assert result.image.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"condition must have batch size 2 like y, got shape \(3,\)"):
        invsolve.reconstruct(y, operator, prior, "dds", steps=3, condition=torch.tensor([0, 2, 1]), progress=False)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(y=torch.zeros(2, 1, 6, 5)), ValueError, r"y \(measurements of Mask.*must have shape \(B, 1, 6, 6\).*got \(2, 1, 6, 5\)"),
        (dict(y=torch.full((1, 1, 6, 6), float("nan"))), ValueError, "y must be finite, got 36 NaN or infinite entries"),
        (dict(y=torch.full((1, 1, 6, 6), float("inf"))), ValueError, "y must be finite"),
        (dict(y=torch.zeros(1, 1, 6, 6, dtype=torch.int32)), TypeError, "y must be a floating-point or complex tensor"),
        (dict(noise_std=-0.1), ValueError, "noise_std must be a finite number >= 0, got -0.1"),
        (dict(noise_std=float("nan")), ValueError, "noise_std must be a finite number >= 0"),
        (dict(sampler="ddrm"), ValueError, "unknown sampler 'ddrm'; known samplers: daps, dds, dds-3d, diffpir, dpir, dps, joint-dehaze, mbir, pnp-dm, red-diff"),
        (dict(learning_rate=0.1), ValueError, "unknown hyperparameter.*learning_rate.*its hyperparameters are: lr, regularization"),
        (dict(lr=-1.0), ValueError, "lr must be a finite number > 0"),
        (dict(weighting="cubic"), ValueError, "weighting must be one of linear"),
        (dict(n_samples=0), ValueError, "n_samples must be an int >= 1, got 0"),
        (dict(max_batch=0), ValueError, "max_batch must be an int >= 1, got 0"),
        (dict(steps=0), ValueError, "steps must be an int >= 1, got 0"),
        (dict(steps=5000), ValueError, r"steps must be in \[1, 1000\]"),
        (dict(sampler="dds", steps=1), ValueError, "steps must be >= 2 for sampler 'dds', got 1"),
        (dict(sampler="daps", steps=1), ValueError, "steps must be >= 2 for sampler 'daps', got 1"),
        (dict(sampler="dds", eta=1.5), ValueError, r"eta must be a number in \[0, 1\], got 1.5"),
        (dict(sampler="diffpir", zeta=-0.1), ValueError, r"zeta must be a number in \[0, 1\], got -0.1"),
        (dict(sampler="pnp-dm", decay=0.0), ValueError, r"decay must lie in \(0, 1\], got 0.0"),
        (dict(sampler="daps", step=2.5), ValueError, "step must be below 2"),
        (dict(sampler="dds", start_time=0.0), ValueError, r"start_time must lie in \(0, 1\]"),
        (dict(sampler="dds", start_time=1.5), ValueError, r"start_time must lie in \(0, 1\]"),
        (dict(sampler="dds", start_time="late"), TypeError, r"start_time must be a number in \(0, 1\]"),
        (dict(start_time=0.5), ValueError, "sampler 'red-diff' does not start from pure noise and takes no start_time; samplers that do: daps, dds, dds-3d, diffpir, dps, mbir"),
        (dict(sampler="pnp-dm", start_time=0.5), ValueError, "sampler 'pnp-dm' does not start from pure noise"),
        (dict(sampler="daps", noise_std=0.0), ValueError, "sampler 'daps' uses the likelihood as a density and needs noise_std > 0, got 0"),
        (dict(sampler="pnp-dm", noise_std=0.0), ValueError, "sampler 'pnp-dm' uses the likelihood as a density"),
        (dict(sampler="pnp-dm", rho_min=0.001, rho_start=0.5), ValueError, "rho_min must be at least the lowest noise level of the prior's vp-linear schedule"),
        (dict(condition=torch.tensor([1, 2])), ValueError, "a condition was given but the GaussianPrior is unconditional"),
        (dict(prior=GaussianPrior.squared_exponential((1, 5, 5), length_scale=1.0)), ValueError,
         r"the prior's image shape \(1, 5, 5\) does not fit the operator, whose images are shaped \(1, 6, 6\)"),
        (dict(prior="gaussian"), TypeError, "prior must be an invsolve DiffusionPrior, got str"),
        (dict(operator=torch.eye(36)), TypeError, "operator must be an invsolve LinearOperator, got Tensor"),
        (dict(operator=MatrixOperator(torch.eye(36, dtype=torch.complex64), (1, 6, 6))), ValueError, "acts on complex images"),
    ],
)
def test_bad_input_gets_one_clear_error(setup, change, error, message):
    y, operator, prior = setup
    arguments = dict(y=y, operator=operator, prior=prior, sampler="red-diff", noise_std=0.01, steps=5, progress=False)
    arguments.update(change)
    with pytest.raises(error, match=message):
        invsolve.reconstruct(**arguments)


def test_start_time_needs_a_start_image_or_the_priors_gaussian_fit():
    prior = UNetPrior((1, 16, 16), **TINY)
    operator = Mask(random_pixel_mask((16, 16), missing_fraction=0.5, seed=0))
    y = operator(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"start_time needs a start image \(start_image=\) or the Gaussian fit of the prior"):
        invsolve.reconstruct(y, operator, prior, "dds", start_time=0.5, progress=False)
    # one measurement without its batch axis takes a start image without one
    result = invsolve.reconstruct(y[0], operator, prior, "dds", start_time=0.5, start_image=operator.adjoint(y)[0],
                                  steps=3, progress=False)
    assert result.image.shape == (1, 1, 16, 16)


def test_a_start_image_is_diffused_to_the_start_time():
    """Chung, Sim & Ye 2022: the run starts at α_t·x + σ_t·ε with x the start image in network units."""
    from invsolve.samplers.diffusion import initial_state

    prior = UNetPrior((1, 8, 8), normalization=Normalization(1000.0, 0.0, "HU"), **TINY).double()
    operator = Mask(random_pixel_mask((8, 8), missing_fraction=0.5, seed=0)).double()
    start = 400.0 * torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    problem = Problem(operator(start), GaussianLikelihood(operator, 1.0), start_image=start)
    state, time = initial_state(problem, prior, 0.3, torch.Generator().manual_seed(1))
    alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(0.3, dtype=torch.float64)))
    noise = torch.randn(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert time == 0.3
    torch.testing.assert_close(state, alpha * start / 1000.0 + sigma * noise)
    # repeated for several samples per run, item-major like y
    repeated = problem.repeat(3)
    assert torch.equal(repeated.start_image[3:6], start[1:2].expand(3, 1, 8, 8))


def test_problem_errors():
    operator = Mask(torch.ones(3, 3, dtype=torch.bool))
    likelihood = GaussianLikelihood(operator, 0.1)
    with pytest.raises(TypeError, match="likelihood must be an invsolve GaussianLikelihood or None, got Mask"):
        Problem(torch.zeros(1, 1, 3, 3), operator)
    with pytest.raises(ValueError, match="y was given without a likelihood"):
        Problem(torch.zeros(1, 1, 3, 3), None, torch.tensor([0]))
    with pytest.raises(ValueError, match="a problem needs measurements with a likelihood, or a condition"):
        Problem(None, None)
    with pytest.raises(ValueError, match=r"y must be a tensor of measurements of Mask"):
        Problem(None, likelihood)
    generation = Problem(None, None, torch.tensor([0, 1]))
    assert generation.batch_size == 2
    with pytest.raises(ValueError, match="this sampler needs measurements: the problem has no likelihood"):
        generation.prox(torch.zeros(2, 1, 3, 3), 1.0)
    with pytest.raises(ValueError, match="start_image needs measurements"):
        Problem(None, None, torch.tensor([0]), start_image=torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"start_image must be shaped \(2, 1, 3, 3\) \(the batch of y"):
        Problem(torch.zeros(2, 1, 3, 3), likelihood, start_image=torch.zeros(1, 1, 3, 3))


def test_a_preset_supplies_steps_samples_and_hyperparameters():
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5)
    operator = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(4))).double()
    y = operator(prior.sample_exact(1, seed=0))
    result = invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.01, preset="ct-sparse", progress=False)
    assert result.info["steps"] == 100 and result.info["n_samples"] == 4 and result.info["preset"] == "ct-sparse"
    assert result.info["hyperparameters"]["cg_iterations"] == 10 and result.std is not None
    # explicit arguments win over the preset
    mine = invsolve.reconstruct(
        y, operator, prior, "dds", noise_std=0.01, preset="ct-sparse", steps=10, n_samples=1, cg_iterations=2,
        progress=False,
    )
    assert mine.info["steps"] == 10 and mine.info["n_samples"] == 1 and mine.info["hyperparameters"]["cg_iterations"] == 2
    assert "ct-sparse" in invsolve.available_presets()


@pytest.mark.parametrize(
    "preset, sampler, message",
    [
        ("ct-sparse", "dds", r"preset 'ct-sparse' is tuned for parallel-beam CT .* but the operator is Mask"),
        ("ct-sparse", "daps", None),
        ("mri-8x", "dds", "unknown preset 'mri-8x'; known presets: ct-limited, ct-sparse, ct-sparse-3d, ct-sparse-8-from-tv, ct-sparse-from-tv, inpainting, mri-cartesian, mri-cartesian-3d"),
        ("mri-cartesian", "dds", r"preset 'mri-cartesian' is tuned for Cartesian multi-coil MRI .* the operator is Mask"),
    ],
)
def test_a_preset_refuses_what_it_was_not_tuned_for(setup, preset, sampler, message):
    y, operator, prior = setup
    if message is None:  # the right instrument, but a sampler the sweep did not cover
        operator = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double()
        y = operator(prior.sample_exact(1, seed=0))
        message = "preset 'ct-sparse' has no validated settings for sampler 'daps'; its sweep covered: dds, dpir, dps, red-diff"
    with pytest.raises(ValueError, match=message):
        invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, preset=preset, progress=False)


@pytest.mark.parametrize("name", invsolve.available_presets())
def test_every_preset_names_real_instruments_samplers_and_a_sweep(name):
    import invsolve.operators as operators
    import invsolve.operators.ct as ct
    import invsolve.operators.mri as mri
    import invsolve.operators.ultrasound as ultrasound
    from invsolve.presets import PRESETS
    from invsolve.samplers import get_sampler

    preset = PRESETS[name]
    classes = {getattr(module, name).__name__ for module in (operators, ct, mri, ultrasound) for name in module.__all__
               if isinstance(getattr(module, name), type)}
    assert set(preset.instruments) <= classes
    assert preset.samplers and "benchmarks/" in preset.source
    for sampler, settings in preset.samplers.items():
        settings = dict(settings)
        steps, n_samples = settings.pop("steps"), settings.pop("n_samples")
        start_time = settings.pop("start_time", None)
        chosen = get_sampler(sampler, **settings)  # the hyperparameters exist and are valid
        assert steps >= chosen.min_steps and n_samples >= 1
        assert n_samples == 1 or chosen.draws_samples  # a point estimator's runs are not posterior samples
        if start_time is not None:  # a start from the TV image the sweep started from, of a stated weight
            assert chosen.takes_start_time and 0 < start_time <= 1 and preset.start_tv_weight > 0


def test_a_preset_tuned_from_the_tv_image_starts_from_the_given_image_at_its_start_time():
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5)
    truth = prior.sample_exact(1, seed=0)
    operator = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(4))).double()
    y = operator(truth)
    with pytest.raises(ValueError, match=r"preset 'ct-sparse-from-tv' starts dds at start_time=0.05 from an image: "
                                         r"its settings were tuned starting from the TV reconstruction of weight 0.01; "
                                         r"give start_image= \(e.g. invsolve.tv_reconstruct\(y, operator, 0.01\)\)"):
        invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.01, preset="ct-sparse-from-tv", progress=False)
    settings = dict(steps=4, n_samples=2, progress=False, seed=3)
    from_preset = invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.01, preset="ct-sparse-from-tv",
                                       start_image=truth, **settings)
    assert from_preset.info["start_time"] == 0.05 and from_preset.info["hyperparameters"]["eta"] == 1.0
    by_hand = invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.01, start_time=0.05, start_image=truth,
                                   cg_iterations=2, eta=1.0, **settings)
    torch.testing.assert_close(from_preset.samples, by_hand.samples, rtol=0, atol=0)
    # an explicit start time wins over the preset's
    later = invsolve.reconstruct(y, operator, prior, "dds", noise_std=0.01, preset="ct-sparse-from-tv",
                                 start_image=truth, start_time=0.5, **settings)
    assert later.info["start_time"] == 0.5


def test_the_mri_and_inpainting_presets_take_their_instruments_seen_through_a_prior():
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5)
    truth = prior.sample_exact(1, seed=0) + 1.0
    mask = random_mask(8, 0.25, 2, seed=0)
    operator = CartesianMRI(mask, simulated_coil_maps((8, 8), 2))
    y = operator(truth.to(torch.complex128))
    view = prior_view(y, operator, prior, mask)  # CartesianMRI @ RealAsComplex
    result = invsolve.reconstruct(
        y * view.scale, view.operator, prior, "dds", noise_std=0.01, preset="mri-cartesian", steps=3, n_samples=2,
        progress=False,
    )
    assert result.info["preset"] == "mri-cartesian" and result.info["hyperparameters"]["cg_iterations"] == 2
    observed = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) > 0.5
    masked = Mask(observed).double()
    result = invsolve.reconstruct(masked(truth), masked, prior, "diffpir", noise_std=0.01, preset="inpainting",
                                  steps=3, progress=False)
    assert result.info["n_samples"] == 4 and result.info["hyperparameters"]["regularization"] == 7.0
