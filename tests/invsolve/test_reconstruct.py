import pytest
import torch

import invsolve
from invsolve.operators import Mask, MatrixOperator, random_pixel_mask
from invsolve.priors import GaussianPrior


@pytest.fixture
def setup():
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5)
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0))
    y = operator(prior.sample_exact(2, seed=0))
    return y, operator, prior


@pytest.mark.parametrize("sampler", ["red-diff", "dps"])
def test_result_shapes_and_determinism(setup, sampler):
    y, operator, prior = setup
    one = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, steps=20, seed=3, progress=False)
    assert one.image.shape == (2, 1, 6, 6) and one.samples is None and one.std is None
    again = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, steps=20, seed=3, progress=False)
    assert torch.equal(one.image, again.image)
    other = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, steps=20, seed=4, progress=False)
    assert not torch.equal(one.image, other.image)
    many = invsolve.reconstruct(y, operator, prior, sampler, noise_std=0.01, steps=20, n_samples=3, progress=False)
    assert many.samples.shape == (2, 3, 1, 6, 6) and many.std.shape == (2, 1, 6, 6)
    assert torch.allclose(many.image, many.samples.mean(1))
    assert many.info["sampler"] == sampler and many.info["steps"] == 20


def test_unbatched_measurement_and_hyperparameters(setup):
    y, operator, prior = setup
    result = invsolve.reconstruct(y[0], operator, prior, noise_std=0.01, steps=5, lr=0.3, progress=False)
    assert result.image.shape == (1, 1, 6, 6)
    assert result.info["hyperparameters"]["lr"] == 0.3


def test_registry_lists_the_samplers():
    assert {"red-diff", "dps"} <= set(invsolve.available_samplers())
    assert invsolve.get_sampler("dps", step_size=0.5).step_size == 0.5


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(y=torch.zeros(2, 1, 6, 5)), ValueError, r"y \(measurements of Mask.*must have shape \(B, 1, 6, 6\).*got \(2, 1, 6, 5\)"),
        (dict(y=torch.full((1, 1, 6, 6), float("nan"))), ValueError, "y must be finite, got 36 NaN or infinite entries"),
        (dict(y=torch.full((1, 1, 6, 6), float("inf"))), ValueError, "y must be finite"),
        (dict(y=torch.zeros(1, 1, 6, 6, dtype=torch.int32)), TypeError, "y must be a floating-point or complex tensor"),
        (dict(noise_std=-0.1), ValueError, "noise_std must be a finite number >= 0, got -0.1"),
        (dict(noise_std=float("nan")), ValueError, "noise_std must be a finite number >= 0"),
        (dict(sampler="ddrm"), ValueError, "unknown sampler 'ddrm'; known samplers: dps, red-diff"),
        (dict(learning_rate=0.1), ValueError, "unknown hyperparameter.*learning_rate.*its hyperparameters are: lr, regularization"),
        (dict(lr=-1.0), ValueError, "lr must be a finite number > 0"),
        (dict(weighting="cubic"), ValueError, "weighting must be one of linear"),
        (dict(n_samples=0), ValueError, "n_samples must be an int >= 1, got 0"),
        (dict(steps=0), ValueError, "steps must be an int >= 1, got 0"),
        (dict(steps=5000), ValueError, r"steps must be in \[1, 1000\]"),
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


@pytest.mark.parametrize("sampler", ["red-diff", "dps"])
def test_samplers_work_in_network_units_through_the_normalization(sampler):
    """A prior in HU with a normalisation gives the HU version of the same run in network units."""
    from invsolve.priors import Normalization

    physical = GaussianPrior.squared_exponential(
        (1, 6, 6), length_scale=1.5, std=200.0, mean=40.0, normalization=Normalization.from_range(-1000, 1000, "HU")
    )
    network = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5, std=0.2, mean=0.04)
    operator = Mask(random_pixel_mask((6, 6), missing_fraction=0.3, seed=1))
    truth = physical.sample_exact(1, seed=2)
    in_hu = invsolve.reconstruct(operator(truth), operator, physical, sampler, steps=30, progress=False)
    in_network = invsolve.reconstruct(operator(truth / 1000), operator, network, sampler, steps=30, progress=False)
    assert torch.allclose(in_hu.image, 1000 * in_network.image, rtol=1e-6, atol=1e-6)
