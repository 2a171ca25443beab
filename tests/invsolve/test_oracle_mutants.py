"""invsolve/oracle.py beyond `gaussian_posterior`'s main path (surviving mutants,
benchmarks/mutation.py): the exact problems as their docstring describes them, the moments
against hand-computed values, `run_oracle`'s record, and the float64 limits of the
posterior with the exact wording of their refusals."""

import math
import re
import time

import pytest
import torch

import invsolve
from invsolve.oracle import ORACLE_SETTINGS, PNP_DM_RHO_MIN, gaussian_posterior, oracle_moments, oracle_problem, run_oracle
from invsolve.operators import ComplexAsChannels, GaussianNoise, Mask, MatrixOperator, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.mri import CartesianMRI
from invsolve.priors import EDMSchedule, GaussianPrior


def _squared_exponential_entry(distance_sq: float, length_scale: float = 1.5, std: float = 1.0) -> float:
    return std**2 * math.exp(-distance_sq / (2 * length_scale**2))


@pytest.mark.parametrize(
    "name, shape, mean, noise_std", [("mask", (1, 12, 12), 0.3, 0.05), ("ct", (1, 8, 8), 0.3, 0.1), ("mri", (2, 8, 8), 0.0, 0.1)]
)
def test_the_oracle_problems_are_the_documented_ones(name, shape, mean, noise_std):
    problem = oracle_problem(name)
    assert problem.name == name and problem.noise_std == noise_std
    assert tuple(problem.prior.image_shape) == shape
    assert bool((problem.prior.mean == mean).all())
    # correlation length 1.5 px, std 1: neighbours along a row and along a diagonal
    cov = problem.prior.cov
    width = shape[-1]
    assert cov[0, 1] == pytest.approx(_squared_exponential_entry(1.0), rel=1e-6)
    assert cov[0, width + 1] == pytest.approx(_squared_exponential_entry(2.0), rel=1e-6)
    assert cov[0, 0] == pytest.approx(1.0, rel=1e-3)
    if name == "mask":
        assert isinstance(problem.operator, Mask) and int(problem.operator.mask.sum()) == 72  # half of 144
        assert torch.equal(problem.operator.mask, random_pixel_mask((12, 12), missing_fraction=0.5, seed=0))
    elif name == "ct":
        transform = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(12))).double()
        assert tuple(problem.operator.out_shape) == tuple(transform.out_shape)  # sinograms, not flat vectors
        torch.testing.assert_close(problem.operator.to_dense(torch.float64), transform.to_dense(), rtol=0, atol=1e-12)
    else:
        full = CartesianMRI(torch.ones(8, dtype=torch.bool), shape=(8, 8)) @ ComplexAsChannels((1, 8, 8))
        torch.testing.assert_close(problem.operator.to_dense(torch.float64), full.to_dense(torch.float64), rtol=0, atol=1e-12)
    truth = problem.prior.sample_exact(1, seed=1)
    torch.testing.assert_close(problem.y, GaussianNoise(noise_std)(problem.operator(truth), seed=2), rtol=0, atol=0)
    mean_post, cov_post = gaussian_posterior(problem.prior, problem.operator, problem.y, noise_std)
    torch.testing.assert_close(problem.mean, mean_post, rtol=0, atol=0)
    torch.testing.assert_close(problem.cov, cov_post, rtol=0, atol=0)
    torch.testing.assert_close(problem.std, cov_post.diagonal().sqrt().reshape(1, *shape))


def test_an_oracle_problem_takes_the_schedule_and_refuses_unknown_names():
    schedule = EDMSchedule()
    for name in ("mask", "ct", "mri"):
        assert oracle_problem(name, schedule).prior.schedule is schedule
    # the two-prior problem hands the schedule to both parts
    assert all(part.schedule is schedule for part in oracle_problem("haze", schedule).prior.parts)
    with pytest.raises(ValueError, match=r"^unknown oracle problem 'cone'; known: mask, ct, mri, haze$"):
        oracle_problem("cone")


def test_moments_of_two_symmetric_samples_by_hand():
    """Samples m + e ± v: sample mean m + e, sample covariance 2vvᵀ (n − 1 = 1)."""
    variances = torch.tensor([4.0, 1.0, 9.0], dtype=torch.float64)
    cov, mean = torch.diag(variances), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    e, v = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    samples = torch.stack([mean + e + v, mean + e - v]).reshape(2, 1, 3)
    moments = oracle_moments(samples, mean.reshape(1, 1, 3), cov)
    rms_std = math.sqrt(float(variances.mean()))
    assert moments["mean_error"] == pytest.approx(math.sqrt(float((e**2).mean())) / rms_std)
    assert moments["max_mean_z"] == pytest.approx(float((e.abs() / (variances.sqrt() / math.sqrt(2))).max()))
    assert moments["spread_ratio"] == pytest.approx(math.sqrt(float((2 * v**2).mean())) / rms_std)
    assert moments["trace_ratio"] == pytest.approx(float(2 * (v**2).sum() / variances.sum()))
    # eigenvalues ascending 1, 4, 9 along pixels 1, 0, 2
    assert moments["top_variance_ratios"] == pytest.approx([2 * 4.0 / 1.0, 2 * 1.0 / 4.0, 2 * 9.0 / 9.0])
    # samples in float32 (a sampler's dtype) are read in float64
    for key, value in oracle_moments(samples.float(), mean.reshape(1, 1, 3), cov).items():
        assert value == pytest.approx(moments[key], rel=1e-6), key


@pytest.mark.parametrize("sampler, problem_name", [("red-diff", "mask"), ("pnp-dm", "ct")])
def test_run_oracle_records_the_reconstruction_it_ran(monkeypatch, capsys, sampler, problem_name):
    settings = {"red-diff": ({"steps": 10}, 3), "pnp-dm": ({"steps": 3, "rho_start": 1.0, "denoise_steps": 2}, 3)}[sampler]
    monkeypatch.setitem(ORACLE_SETTINGS, sampler, settings)
    started = time.perf_counter()
    record = run_oracle(sampler, problem_name, seed=5)
    assert 0 < record["seconds"] < time.perf_counter() - started
    assert capsys.readouterr().err == ""  # no progress bar
    expected_settings = dict(settings[0])
    schedule = None
    if sampler == "pnp-dm":
        expected_settings["rho_min"] = PNP_DM_RHO_MIN[problem_name]
        schedule = EDMSchedule()
    problem = oracle_problem(problem_name, schedule)
    result = invsolve.reconstruct(
        problem.y, problem.operator, problem.prior, sampler, noise_std=problem.noise_std, n_samples=3, max_batch=3,
        seed=5, progress=False, **expected_settings,
    )
    assert record["sampler"] == sampler and record["problem"] == problem_name and record["n_samples"] == 3
    assert record["settings"] == expected_settings
    assert record["network_evaluations_per_sample"] == result.info["network_evaluations"]
    assert record["seconds"] > 0
    for key, value in oracle_moments(result.samples[0], problem.mean, problem.cov).items():
        assert record[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    if sampler == "red-diff":  # a point estimator: also one run's error
        single = float((result.samples[0, 0] - problem.mean[0]).pow(2).mean().sqrt())
        assert record["single_run_error"] == pytest.approx(single / float(problem.std.pow(2).mean().sqrt()), rel=1e-9)
    else:
        assert "single_run_error" not in record
    assert run_oracle(sampler, problem_name)["mean_error"] == run_oracle(sampler, problem_name, seed=0)["mean_error"]


def test_run_oracle_refuses_a_sampler_without_settings():
    with pytest.raises(ValueError, match=r"^no oracle settings for sampler 'tv'; known: red-diff, dps"):
        run_oracle("tv", "mask")


def _identity_case(shape=(2, 3, 3)):
    prior = GaussianPrior.squared_exponential(shape, length_scale=1.0, std=1.0, mean=0.1)
    return prior, Mask(torch.ones(shape[1:], dtype=torch.bool), in_shape=shape)


def test_an_unbatched_measurement_with_several_channels_is_one_item():
    prior = GaussianPrior.squared_exponential((2, 6, 6), length_scale=1.5, mean=0.3)
    operator = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4)), channels=2)
    y = GaussianNoise(0.1)(operator(prior.sample_exact(1, seed=0)), seed=1)
    mean, cov = gaussian_posterior(prior, operator, y[0], 0.1)
    batched_mean, batched_cov = gaussian_posterior(prior, operator, y, 0.1)
    assert mean.shape == (1, 2, 6, 6)
    torch.testing.assert_close(mean, batched_mean, rtol=0, atol=0)
    torch.testing.assert_close(cov, batched_cov, rtol=0, atol=0)


def test_a_float32_prior_is_read_in_float64():
    prior, operator = _identity_case()
    y = prior.sample_exact(1, seed=0)
    mean, cov = gaussian_posterior(prior.float(), operator, y, 0.1)
    reference_mean, reference_cov = gaussian_posterior(prior.float().double(), operator, y, 0.1)
    assert mean.dtype == cov.dtype == torch.float64
    torch.testing.assert_close(mean, reference_mean, rtol=0, atol=1e-5)  # cov is rebuilt from float32 factors
    torch.testing.assert_close(cov, reference_cov, rtol=0, atol=1e-5)


def test_noise_std_whose_square_is_a_positive_float64_number():
    prior, operator = _identity_case()
    y = prior.sample_exact(1, seed=0)
    # σ² = 1e-220 is representable (σ³ would not be): the data are taken as exact
    mean, _ = gaussian_posterior(prior, operator, y, 1e-110)
    torch.testing.assert_close(mean, y, rtol=0, atol=1e-9)
    for noise_std in (1e-200, 1e160):  # σ² under- and overflows float64
        message = "^noise_std must have a square that is a positive float64 number, got " + re.escape(repr(noise_std)) + "$"
        with pytest.raises(ValueError, match=message):
            gaussian_posterior(prior, operator, y, noise_std)


def test_a_prior_whose_buffers_became_non_finite_is_refused():
    prior, operator = _identity_case((1, 2, 2))
    y = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    prior.mean_network[0] = math.nan
    with pytest.raises(ValueError, match=r"^prior\.mean must be finite"):
        gaussian_posterior(prior, operator, y, 0.1)
    prior, _ = _identity_case((1, 2, 2))
    prior.eigenvalues[0] = math.inf
    with pytest.raises(ValueError, match=r"^prior\.cov must be finite"):
        gaussian_posterior(prior, operator, y, 0.1)


def test_a_noise_std_below_rounding_for_repeated_rows_is_refused():
    """Two identical rows make AΣAᵀ singular; σ² = 1e-18 is below its rounding."""
    prior = GaussianPrior.squared_exponential((1, 2, 2), length_scale=1.0, mean=0.0)
    row = torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64)
    operator = MatrixOperator(torch.stack([row, row]), (1, 2, 2))
    message = (
        r"^noise_std=1e-09 is too small for this prior and operator: the innovation covariance AΣAᵀ \+ σ²I is not "
        r"positive definite in float64 \(rows of A that see nothing need σ > 0 well above rounding\); give a larger noise_std$"
    )
    with pytest.raises(ValueError, match=message):
        gaussian_posterior(prior, operator, torch.ones(1, 2, dtype=torch.float64), 1e-9)
    mean, _ = gaussian_posterior(prior, operator, torch.ones(1, 2, dtype=torch.float64), 1e-3)
    assert bool(torch.isfinite(mean).all())


def test_data_whose_posterior_mean_overflows_are_refused():
    prior, operator = _identity_case((1, 2, 2))
    y = torch.full((1, 1, 2, 2), 1.7e308, dtype=torch.float64)
    y[0, 0, 0, 0] = -1.7e308
    message = r"^y is too large: the posterior mean overflows float64 \(largest \|y\| 1\.7e\+308\); rescale y and the prior$"
    with pytest.raises(ValueError, match=message):
        gaussian_posterior(prior, operator, y, 1e-3)
