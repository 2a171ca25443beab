"""The slice-augmented 3D samplers "mbir" and "dds-3d" (issue 12): a 2D prior on every slice, TV along the stack."""

import pytest
import torch

import invsolve
from invsolve.metrics import psnr
from invsolve.operators import Mask, SliceStack, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.priors import GaussianPrior
from invsolve.samplers import get_sampler
from invsolve.samplers.slice3d import predict_slices

VOLUMETRIC = ["dds-3d", "mbir"]


def _slice_prior(size=6):
    return GaussianPrior.squared_exponential((1, size, size), length_scale=1.5, std=1.0, mean=0.3)


def test_the_3d_samplers_are_registered_and_volumetric():
    assert set(VOLUMETRIC) <= set(invsolve.available_samplers())
    for name in VOLUMETRIC:
        assert get_sampler(name).volumetric
    assert not get_sampler("dds").volumetric
    assert get_sampler("mbir").network_evaluations(10) == 19


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_the_prior_sees_every_slice_in_batches_of_the_chosen_size(axis):
    prior = _slice_prior()
    shape = [6, 6]
    shape.insert(axis, 5)
    volume = torch.randn(2, 1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    calls = []
    original = prior.predict

    def counting(x, t, condition=None):
        calls.append(x.shape[0])
        return original(x, t, condition)

    prior.predict = counting
    clean, noise = predict_slices(prior, volume, 0.5, axis, slice_batch=3)
    assert calls == [3, 3, 3, 1]  # 10 slices, never more than 3 at once
    for k in range(5):
        expected_clean, expected_noise = original(volume.select(2 + axis, k), 0.5)
        assert torch.allclose(clean.select(2 + axis, k), expected_clean)
        assert torch.allclose(noise.select(2 + axis, k), expected_noise)


@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_dds_3d_without_tv_is_dds_on_every_slice(gamma):
    """λ = 0: no coupling, the 2D least-squares step (anchored at x̂₀ with the same relative weight γ),
    the same random stream: 2D DDS slice by slice; every step reported in order."""
    prior = _slice_prior()
    mask = random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)
    volume = prior.sample_exact(4, seed=1).reshape(1, 1, 4, 6, 6)
    stack = SliceStack(Mask(mask), n_slices=4)
    y = stack(volume)
    common = dict(noise_std=0.01, steps=10, seed=5, progress=False, gamma=gamma)
    steps = []
    three_d = invsolve.reconstruct(y, stack, prior, "dds-3d", tv_weight=0.0, callback=steps.append, **common)
    slice_wise = invsolve.reconstruct(y[0].movedim(1, 0), Mask(mask), prior, "dds", **common)
    assert torch.allclose(three_d.image[0].movedim(1, 0), slice_wise.image, atol=1e-10)
    assert [(step.index, step.total) for step in steps] == [(k, 10) for k in range(10)]
    assert [step.time for step in steps] == prior.schedule.sampling_times(10).tolist()  # the network's times
    assert all(step.state.shape == volume.shape for step in steps)
    assert torch.equal(steps[-1].estimate, three_d.image)  # the last estimate is the result


def test_a_warm_start_of_dds_3d_without_tv_is_the_warm_start_of_dds_on_every_slice():
    """start_image + start_time: the volume starts at α_t x + σ_t ε like 2D DDS's start from the same image."""
    prior = _slice_prior()
    mask = random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)
    volume = prior.sample_exact(4, seed=1).reshape(1, 1, 4, 6, 6)
    start = volume + 0.3 * torch.randn(volume.shape, dtype=volume.dtype, generator=torch.Generator().manual_seed(2))
    stack = SliceStack(Mask(mask), n_slices=4)
    y = stack(volume)
    common = dict(noise_std=0.01, steps=5, seed=5, progress=False, start_time=0.3)
    three_d = invsolve.reconstruct(y, stack, prior, "dds-3d", tv_weight=0.0, start_image=start, **common)
    slice_wise = invsolve.reconstruct(y[0].movedim(1, 0), Mask(mask), prior, "dds", start_image=start[0].movedim(1, 0), **common)
    assert torch.allclose(three_d.image[0].movedim(1, 0), slice_wise.image, atol=1e-10)
    cold = invsolve.reconstruct(y, stack, prior, "dds-3d", tv_weight=0.0, noise_std=0.01, steps=5, seed=5, progress=False)
    assert not torch.allclose(cold.image, three_d.image, atol=1e-3)  # the start image is not ignored
    assert three_d.info["start_time"] == 0.3


@pytest.mark.parametrize("sampler", VOLUMETRIC)
def test_a_start_near_the_truth_at_a_small_time_beats_the_cold_start(sampler):
    """Starting from a good estimate (Chung, Sim & Ye 2022) keeps what it knows; three seeds."""
    for seed in range(3):
        prior, truth, operator, y = _z_constant_problem(seed)
        noisy_truth = truth + 0.05 * torch.randn(truth.shape, dtype=truth.dtype, generator=torch.Generator().manual_seed(seed))
        common = dict(noise_std=0.01, steps=10, seed=seed, progress=False, tv_weight=0.05, rho=0.1)
        warm = invsolve.reconstruct(y, operator, prior, sampler, start_time=0.05, start_image=noisy_truth, **common)
        cold = invsolve.reconstruct(y, operator, prior, sampler, **common)
        assert _scores(warm.image, truth)[0] > _scores(cold.image, truth)[0] + 5.0  # measured: +11.7 dB or more


def _z_constant_problem(seed):
    """A volume constant along the stack (one slice of the prior, 6 copies), 75 % of voxels hidden at random."""
    prior = _slice_prior()
    truth = prior.sample_exact(1, seed=seed).reshape(1, 1, 1, 6, 6).expand(1, 1, 6, 6, 6).clone()
    observed = torch.rand(6, 6, 6, generator=torch.Generator().manual_seed(seed + 100)) >= 0.75
    operator = Mask(observed, in_shape=(1, 6, 6, 6))
    return prior, truth, operator, operator(truth)


def _scores(image, truth):
    peak = float(psnr(image, truth, data_range=float(truth.max() - truth.min())))
    z_error = float((image.diff(dim=2) - truth.diff(dim=2)).abs().mean())
    return peak, z_error


@pytest.mark.parametrize("sampler, steps", [("dds-3d", 20), ("mbir", 40)])
def test_tv_along_the_stack_beats_the_slice_wise_reconstruction(sampler, steps):
    """Same prior, same budget, same seeds: with λ > 0 the slices inform each other (issue 12, point 4)."""
    coupled_scores, slice_scores = [], []
    for seed in range(3):
        prior, truth, operator, y = _z_constant_problem(seed)
        common = dict(noise_std=0.01, steps=steps, seed=seed, progress=False)
        coupled = invsolve.reconstruct(y, operator, prior, sampler, tv_weight=0.05, rho=0.1, **common)
        alone = invsolve.reconstruct(y, operator, prior, sampler, tv_weight=0.0, **common)
        coupled_scores.append(_scores(coupled.image, truth))
        slice_scores.append(_scores(alone.image, truth))
    # measured (README): dds-3d +12.0 to +16.2 dB, mbir +6.6 to +8.3 dB; z error at most 0.17 of slice-wise
    for (peak, z_error), (peak_alone, z_error_alone) in zip(coupled_scores, slice_scores):
        assert peak > peak_alone + 5.0, (coupled_scores, slice_scores)
        assert z_error < 0.3 * z_error_alone, (coupled_scores, slice_scores)


def test_a_cone_like_axis_choice_reconstructs_slices_along_the_last_axis():
    """Volumes (C, X, Y, Z) with axial slices along Z (ConeBeam3D's layout): axis=2."""
    prior = _slice_prior()
    operator2d = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double()
    stack = SliceStack(operator2d, n_slices=3, axis=2)
    truth = prior.sample_exact(3, seed=0).reshape(3, 1, 6, 6).permute(1, 2, 3, 0)[None]  # (1, 1, 6, 6, 3)
    result = invsolve.reconstruct(stack(truth), stack, prior, "dds-3d", axis=2, steps=10, seed=0, noise_std=0.01, progress=False)
    assert result.image.shape == (1, 1, 6, 6, 3)
    assert bool(torch.isfinite(result.image).all())


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(sampler="dds"), ValueError, "does not fit the operator"),
        (dict(hyperparameters=dict(axis=1)), ValueError, r"do not fit the slices along axis 1"),
        (dict(hyperparameters=dict(axis=3)), ValueError, "axis must be 0, 1 or 2"),
        (dict(hyperparameters=dict(slice_batch=0)), ValueError, "slice_batch"),
        (dict(hyperparameters=dict(rho=0.0)), ValueError, "rho"),
        (dict(hyperparameters=dict(tv_weight=-1.0)), ValueError, "tv_weight"),
        (dict(hyperparameters=dict(eta=1.5)), ValueError, r"^eta must be"),
        (dict(sampler="mbir", hyperparameters=dict(snr=0.0)), ValueError, r"^snr must be"),
        (dict(operator="2d"), ValueError, r"needs an operator on volumes \(C, D, H, W\)"),
        (dict(y="nan"), ValueError, "y must be finite"),
        (dict(y="2d"), ValueError, r"y \(measurements of"),
        (dict(start_time=0.5), ValueError, "starts at start_time from a start image of the volume"),
        (dict(start_image="zeros"), ValueError, "start_image was given without start_time"),
        (dict(start_image="2d", start_time=0.5), ValueError, r"start_image must be shaped \(1, 1, 4, 6, 6\)"),
        (dict(start_image="nan", start_time=0.5), ValueError, "start_image must be finite"),
        (dict(start_image="int", start_time=0.5), TypeError, "start_image must be a floating-point tensor"),
    ],
)
def test_bad_input_gets_one_clear_error(change, error, message):
    prior = _slice_prior()
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=4)
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)) if change.get("operator") == "2d" else stack
    y = torch.zeros(1, *operator.out_shape, dtype=torch.float64)
    if change.get("y") == "nan":
        y[0, 0, 2, 3, 1] = float("nan")
    elif change.get("y") == "2d":
        y = y[:, :, 0]
    start = {
        None: None,
        "zeros": torch.zeros(1, 1, 4, 6, 6, dtype=torch.float64),
        "2d": torch.zeros(1, 1, 6, 6, dtype=torch.float64),
        "nan": torch.full((1, 1, 4, 6, 6), float("nan"), dtype=torch.float64),
        "int": torch.zeros(1, 1, 4, 6, 6, dtype=torch.int64),
    }[change.get("start_image")]
    with pytest.raises(error, match=message):
        invsolve.reconstruct(
            y, operator, prior, change.get("sampler", "dds-3d"), noise_std=0.01, steps=4, progress=False,
            start_time=change.get("start_time"), start_image=start, **change.get("hyperparameters", {}),
        )


@pytest.mark.parametrize("sampler", VOLUMETRIC)
def test_progress_is_shown_only_when_asked_and_ends_at_100_percent(capsys, sampler):
    prior = _slice_prior()
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=3)
    y = stack(prior.sample_exact(3, seed=0).reshape(1, 1, 3, 6, 6))
    invsolve.reconstruct(y, stack, prior, sampler, noise_std=0.01, steps=3, progress=False)
    assert capsys.readouterr().err == ""
    invsolve.reconstruct(y, stack, prior, sampler, noise_std=0.01, steps=3, progress=True)
    assert f"{sampler}: 100%" in capsys.readouterr().err


def test_the_3d_preset_takes_a_stack_of_ray_transforms():
    """preset="ct-sparse-3d" finds the RayTransform inside a SliceStack and supplies dds-3d's validated settings."""
    from invsolve.presets import preset_settings

    stack = SliceStack(RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double(), n_slices=3)
    settings = preset_settings("ct-sparse-3d", "dds-3d", stack)
    assert settings == {"steps": 50, "n_samples": 1, "tv_weight": 4e-4, "rho": 5e-3, "cg_iterations": 5}
    with pytest.raises(ValueError, match="tuned for"):
        preset_settings("ct-sparse-3d", "dds-3d", SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), 3))


def test_the_3d_mri_preset_takes_a_3d_cartesian_acquisition_of_real_volumes():
    from invsolve.operators import RealAsComplex
    from invsolve.operators.mri import CartesianMRI, poisson_disc_mask
    from invsolve.presets import preset_settings

    operator = CartesianMRI(poisson_disc_mask((8, 8), 2, seed=0), shape=(4, 8, 8)) @ RealAsComplex((1, 4, 8, 8))
    settings = preset_settings("mri-cartesian-3d", "dds-3d", operator)
    assert settings == {"steps": 50, "n_samples": 1, "tv_weight": 1e-3, "rho": 0.1, "cg_iterations": 5}
    with pytest.raises(ValueError, match="preset 'mri-cartesian-3d' has no validated settings for sampler 'mbir'"):
        preset_settings("mri-cartesian-3d", "mbir", operator)


def test_mbir_reports_every_step_in_order_and_ends_on_its_result():
    prior = _slice_prior()
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=4)
    y = stack(prior.sample_exact(4, seed=1).reshape(1, 1, 4, 6, 6))
    steps = []
    result = invsolve.reconstruct(y, stack, prior, "mbir", noise_std=0.01, steps=4, seed=0, progress=False, callback=steps.append)
    assert [(step.index, step.total) for step in steps] == [(k, 4) for k in range(4)]
    times = [step.time for step in steps]
    assert times == sorted(times, reverse=True) and times[0] < 1.0
    assert torch.equal(steps[-1].estimate, result.image)


@pytest.mark.parametrize("sampler", VOLUMETRIC)
def test_the_3d_samplers_do_not_depend_on_the_data_units(sampler):
    """Relative hyperparameters (γ, ρ, λ scaled by ‖A‖² and λ by the prior's scale): the operator
    times 3 and the physical unit times 2.5 (data 7.5·y, noise 7.5·σ) give 2.5 times the result."""
    from invsolve.priors import Normalization

    prior = _slice_prior()
    scaled_prior = GaussianPrior.squared_exponential(
        (1, 6, 6), length_scale=1.5, std=2.5, mean=0.75, normalization=Normalization(scale=2.5)
    )
    operator2d = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double()
    stack = SliceStack(operator2d, n_slices=3)
    y = stack(prior.sample_exact(3, seed=0).reshape(1, 1, 3, 6, 6))
    settings = dict(tv_weight=0.01, gamma=0.2) if sampler == "dds-3d" else dict(tv_weight=0.01)
    common = dict(steps=10, seed=0, progress=False, **settings)
    result = invsolve.reconstruct(y, stack, prior, sampler, noise_std=0.01, **common).image
    scaled = invsolve.reconstruct(7.5 * y, 3.0 * stack, scaled_prior, sampler, noise_std=0.075, **common).image
    torch.testing.assert_close(scaled, 2.5 * result, rtol=0, atol=1e-9)


def test_tv_acts_along_the_chosen_axis():
    """With slices along axis 2 (the last), a large λ (10 ADMM iterations a step) shrinks the volume's variation along that axis
    the most (measured: to 0.27 of λ = 0's, against 0.50 and 0.58 along the other two)."""
    prior = _slice_prior()
    stack = SliceStack(RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double(), n_slices=4, axis=2)
    truth = prior.sample_exact(4, seed=0).reshape(4, 1, 6, 6).permute(1, 2, 3, 0)[None]  # (1, 1, 6, 6, 4)
    variation = []
    for tv_weight in (0.0, 10.0):
        image = invsolve.reconstruct(
            stack(truth), stack, prior, "dds-3d", axis=2, tv_weight=tv_weight, admm_iterations=10, steps=10, seed=0, noise_std=0.01,
            progress=False,
        ).image
        variation.append({dim: float(image.diff(dim=dim).abs().mean()) for dim in (2, 3, 4)})
    shrink = {dim: variation[1][dim] / variation[0][dim] for dim in (2, 3, 4)}
    assert shrink[4] < 0.7 * min(shrink[2], shrink[3]), shrink


def test_the_hyperparameters_are_the_settings_with_the_slab_as_its_slices():
    from invsolve.slabs import Slab

    settings = get_sampler("dds-3d", axis=1, tv_weight=0.5).hyperparameters()
    assert settings["slab"] is None and settings["axis"] == 1 and settings["tv_weight"] == 0.5
    assert set(settings) == {"axis", "slice_batch", "tv_weight", "rho", "gamma", "admm_iterations", "cg_iterations", "eta", "slab"}
    assert get_sampler("mbir", slab=Slab(2, 5, 8, 0)).hyperparameters()["slab"] == [2, 5, 8]  # not the process group


def test_mbir_corrector_is_the_langevin_step_written_out():
    """Song et al. 2021's corrector per batch item: ``x + εₛ·score + √(2εₛ)·ξ`` with
    ``εₛ = 2(r‖ξ‖/‖score‖)²``, ``score = −ε̂/σ_s`` (norms over each item's whole volume)."""
    from invsolve.slabs import Slab

    prior = _slice_prior()
    generator = torch.Generator().manual_seed(0)
    x, eps, noise = (torch.randn(2, 1, 3, 6, 6, dtype=torch.float64, generator=generator) for _ in range(3))
    eps[1] *= 4.0  # the items' norms differ
    sampler = get_sampler("mbir", snr=0.3)
    s = 0.4
    stepped = sampler._langevin(prior, x, eps, s, lambda like: noise, Slab.whole(3))
    sigma = float(prior.schedule.alpha_sigma(torch.tensor(s, dtype=torch.float64))[1])
    score = -eps / sigma
    for item in range(2):
        size = 2 * (0.3 * noise[item].norm() / score[item].norm()) ** 2
        expected = x[item] + size * score[item] + (2 * size).sqrt() * noise[item]
        torch.testing.assert_close(stepped[item], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampler", VOLUMETRIC)
@pytest.mark.parametrize("tv_weight", [0.0, 0.01])
def test_the_3d_samplers_compute_in_the_priors_precision(sampler, tv_weight):
    """float32 data with a float64 prior: a float64 volume equal to the float64 data's to float32 rounding."""
    prior = _slice_prior()
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=3)
    y = stack(prior.sample_exact(3, seed=0).reshape(1, 1, 3, 6, 6))
    common = dict(steps=4, seed=0, progress=False, noise_std=0.01, tv_weight=tv_weight)
    double = invsolve.reconstruct(y, stack, prior, sampler, **common).image
    single = invsolve.reconstruct(y.float(), stack, prior, sampler, **common).image
    assert single.dtype == torch.float64
    torch.testing.assert_close(single, double, rtol=0, atol=1e-5)


def test_the_3d_checks_name_what_they_refuse():
    """Each message whole (anchored), so that a changed or dropped part shows."""
    from invsolve.operators import GaussianLikelihood
    from invsolve.samplers import Problem

    prior = _slice_prior()
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=4)
    y = torch.zeros(1, *stack.out_shape, dtype=torch.float64)
    problem = Problem(y, GaussianLikelihood(stack, 0.01))
    sampler = get_sampler("dds-3d")
    with pytest.raises(TypeError, match=r"^prior must be an invsolve DiffusionPrior, got str$"):
        sampler.run(problem, "ct-ellipses", steps=2)
    flat_prior = GaussianPrior.squared_exponential((1, 4, 6, 6), length_scale=1.5)
    with pytest.raises(ValueError, match=r"^a slice-augmented sampler needs a 2D prior \(images \(C, H, W\)\), got image shape \(1, 4, 6, 6\)$"):
        sampler.run(problem, flat_prior, steps=2)
    with pytest.raises(ValueError, match=r"choose the axis whose slices the prior was trained on, or resample the volume$"):
        sampler.run(problem, _slice_prior(5), steps=2)
    from invsolve.operators.mri import CartesianMRI

    complex_stack = SliceStack(CartesianMRI(torch.ones(6, dtype=torch.bool), shape=(6, 6)), n_slices=4)
    complex_y = torch.zeros(1, *complex_stack.out_shape, dtype=torch.complex128)
    with pytest.raises(ValueError, match=r"acts on complex volumes; compose it with an embedding of the prior's real images \(invsolve.operators.RealAsComplex or ComplexAsChannels\)$"):
        sampler.run(Problem(complex_y, GaussianLikelihood(complex_stack, 0.01)), prior, steps=2)
    with pytest.raises(ValueError, match=r"^sampler 'dds-3d' reconstructs from measurements: the problem has none$"):
        sampler.run(Problem(None, None, torch.tensor([0])), prior, steps=2)
    with pytest.raises(ValueError, match=r"^sampler 'mbir' takes no condition \(one would be needed per slice\), got one$"):
        get_sampler("mbir").run(Problem(y, problem.likelihood, torch.tensor([0])), prior, steps=2)
    with pytest.raises(ValueError, match=r"warm start is for 2D images only$"):
        sampler.run(problem, prior, steps=2, start_time=0.5)
    for name, value, expected in [
        ("axis", -1, r"^axis must be an int >= 0, got -1$"),
        ("slice_batch", 0, r"^slice_batch must be an int >= 1, got 0$"),
        ("tv_weight", -1.0, r"^tv_weight must be"),
        ("rho", 0.0, r"^rho must be"),
        ("gamma", -1.0, r"^gamma must be"),
        ("admm_iterations", 0, r"^admm_iterations must be an int >= 1, got 0$"),
        ("cg_iterations", 0, r"^cg_iterations must be an int >= 1, got 0$"),
    ]:
        with pytest.raises(ValueError, match=expected):
            get_sampler("dds-3d", **{name: value})
    with pytest.raises(TypeError, match=r"^slab must be an invsolve.slabs.Slab, got str$"):
        get_sampler("dds-3d", slab="0:4")
    assert get_sampler("dds-3d", slice_batch=1).slice_batch == 1

