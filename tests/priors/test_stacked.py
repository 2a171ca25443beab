"""StackedPrior: independent priors on groups of channels (issue 13, the two-prior state)."""

from __future__ import annotations

import pytest
import torch

import invsolve
from invsolve.operators.ultrasound import HazyMeasurement
from invsolve.priors import DiscreteVPSchedule, GaussianPrior, Normalization, StackedPrior


def _parts():
    tissue = GaussianPrior.squared_exponential((1, 5, 4), length_scale=0.8, std=1.0)
    haze = GaussianPrior.squared_exponential((1, 5, 4), length_scale=2.5, std=0.5, mean=0.1)
    return tissue, haze


@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_the_stacked_denoiser_is_the_joint_gaussian_s(t):
    """Independent unknowns: the joint posterior mean factorises, so the stack equals the block-diagonal Gaussian."""
    stacked = StackedPrior(_parts())
    joint = stacked.as_gaussian()
    assert stacked.image_shape == joint.image_shape == (2, 5, 4)
    x_t = torch.randn(3, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for mine, exact in zip(stacked.predict(x_t, t), joint.predict(x_t, t)):
        assert torch.allclose(mine, exact, atol=1e-10)
    tissue, haze = stacked.split(x_t)
    assert torch.equal(tissue, x_t[:, :1]) and torch.equal(haze, x_t[:, 1:])


@pytest.mark.parametrize("sampler", ["dds", "dps"])
def test_samplers_run_unchanged_on_the_stacked_state(sampler):
    """A sampler given the stack returns what it returns for the equivalent joint Gaussian, on y = x + γh."""
    stacked = StackedPrior(_parts())
    operator = HazyMeasurement((1, 5, 4), 0.4).double()
    truth = stacked.as_gaussian().sample_exact(1, seed=1)
    y = operator(truth) + 0.05 * torch.randn(1, 1, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    common = dict(noise_std=0.05, steps=20, seed=3, progress=False)
    mine = invsolve.reconstruct(y, operator, stacked, sampler, **common).image
    exact = invsolve.reconstruct(y, operator, stacked.as_gaussian(), sampler, **common).image
    assert mine.shape == (1, 2, 5, 4)
    assert torch.allclose(mine, exact, atol=1e-8)


def test_parts_that_do_not_stack_are_refused():
    tissue, haze = _parts()
    with pytest.raises(ValueError, match="at least two priors"):
        StackedPrior([tissue])
    with pytest.raises(TypeError, match=r"priors\[1\] must be an invsolve DiffusionPrior"):
        StackedPrior([tissue, "haze"])
    with pytest.raises(ValueError, match="one spatial shape"):
        StackedPrior([tissue, GaussianPrior.squared_exponential((1, 4, 4), length_scale=1.0)])
    with pytest.raises(ValueError, match="one noise schedule"):
        StackedPrior([tissue, GaussianPrior.squared_exponential((1, 5, 4), 1.0, schedule=DiscreteVPSchedule.cosine())])
    with pytest.raises(ValueError, match="one normalization"):
        StackedPrior([tissue, GaussianPrior.squared_exponential((1, 5, 4), 1.0, normalization=Normalization(2.0))])
    with pytest.raises(ValueError, match=r"x_t must be \(B, 2, ...\)"):
        StackedPrior([tissue, haze]).predict(torch.zeros(1, 3, 5, 4, dtype=torch.float64), 0.5)
