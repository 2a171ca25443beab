"""The inpainting demo's problem and its per-region errors (the figures behind its known biases)."""

from __future__ import annotations

import torch

from invsolve.demo import inpainting_problem, region_errors
from invsolve.oracle import gaussian_posterior


def test_the_regions_split_the_image_into_observed_scattered_and_box_pixels():
    problem = inpainting_problem(16, seed=3)
    regions = problem.regions
    stacked = torch.stack([regions["observed"], regions["hidden_scattered"], regions["hidden_box"]]).int()
    assert bool((stacked.sum(0) == 1).all())  # disjoint and covering
    assert torch.equal(regions["observed"], problem.operator.mask.reshape(16, 16))
    # the simulation's noise lands on hidden pixels too; the likelihood reads only the measured ones
    assert bool((problem.y[0, 0][~regions["observed"]] != 0).all())
    assert bool((problem.operator.measured(problem.y)[0, 0][~regions["observed"]] == 0).all())
    assert 10 <= int(regions["hidden_box"].sum()) <= 30  # a 4-5 pixel rectangle of 16²
    # the measured pixels carry the truth plus 10 HU of noise
    noise = (problem.y - problem.truth)[0, 0][regions["observed"]]
    assert 7.0 < float(noise.std()) < 13.0


def test_the_prior_is_fitted_to_the_observed_pixels_unless_given():
    problem = inpainting_problem(16, seed=3)
    seen = problem.y[0, 0][problem.regions["observed"]]
    drawn = problem.prior.sample_exact(1, seed=0)
    assert abs(float(problem.prior.to_physical(problem.prior.mean_network.reshape(1, 1, 16, 16)).mean()) - float(seen.mean())) < 1e-6
    again = inpainting_problem(16, seed=3, truth=drawn, prior=problem.prior)
    assert again.prior is problem.prior
    assert torch.equal(again.truth, drawn)


def test_region_errors_are_rms_errors_and_distances_in_posterior_std():
    problem = inpainting_problem(16, seed=3)
    mean, covariance = gaussian_posterior(problem.prior, problem.operator, problem.y, problem.noise_std)
    std = covariance.diagonal().sqrt().reshape(mean.shape)
    shifted = mean + 5.0
    errors = region_errors(shifted, problem, mean, std)
    for name, region in problem.regions.items():
        assert abs(errors[name]["to_exact_mean_hu"] - 5.0) < 1e-9
        expected_truth = float((shifted - problem.truth)[0, 0][region].pow(2).mean().sqrt())
        assert abs(errors[name]["to_truth_hu"] - expected_truth) < 1e-9
        assert abs(errors[name]["to_exact_mean_in_std"] - 5.0 / float(std[0, 0][region].pow(2).mean().sqrt())) < 1e-9
    # the posterior is tightest where pixels are measured and widest inside the hidden rectangle
    exact = region_errors(mean, problem, mean, std)
    assert all(values["to_exact_mean_hu"] == 0.0 for values in exact.values())
    rms_std = {name: float(std[0, 0][region].pow(2).mean().sqrt()) for name, region in problem.regions.items()}
    assert rms_std["observed"] < problem.noise_std < rms_std["hidden_scattered"] < rms_std["hidden_box"]
