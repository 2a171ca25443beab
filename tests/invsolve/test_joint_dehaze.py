"""The two-prior sampler "joint-dehaze" (issue 13, point 3); its oracle row is in test_sampler_oracle.py."""

from __future__ import annotations

import pytest
import torch

import invsolve
from invsolve.operators import Mask
from invsolve.operators.ultrasound import HazyMeasurement, mu_law_expand
from invsolve.priors import GaussianPrior, StackedPrior


def _stack(size: int = 4, std: float = 1.0, **settings) -> StackedPrior:
    """A fine-grained tissue and a smooth haze prior; ``settings`` (schedule, normalization) go to both."""
    tissue = GaussianPrior.squared_exponential((1, size, size), length_scale=0.7, std=std, **settings)
    haze = GaussianPrior.squared_exponential((1, size, size), length_scale=2.0, std=std, **settings)
    return StackedPrior([tissue, haze])


def test_without_guidance_it_samples_the_two_priors():
    """λ = κ = 0 leaves plain ancestral sampling of the stack: the priors' moments come back."""
    prior = _stack()
    operator = HazyMeasurement((1, 4, 4), 0.3).double()
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    result = invsolve.reconstruct(
        y, operator, prior, "joint-dehaze", noise_std=0.1, steps=200, n_samples=2000, max_batch=2000, seed=0,
        progress=False, tissue_weight=0.0, haze_weight=0.0,
    )
    samples = result.samples[0].reshape(2000, -1)
    # Monte-Carlo std of these estimates: about 0.022 (mean) and 0.03 (covariance)
    assert float(samples.mean(0).abs().max()) < 0.1
    assert torch.allclose(torch.cov(samples.T), prior.as_gaussian().cov, atol=0.15)


def test_each_part_moves_with_its_own_weight():
    """κ = 0 leaves the haze unguided: it keeps the prior's spread while the tissue's shrinks to the data."""
    prior = _stack()
    operator = HazyMeasurement((1, 4, 4), 0.3).double()
    y = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    common = dict(noise_std=0.05, steps=100, n_samples=400, max_batch=400, seed=1, progress=False)
    result = invsolve.reconstruct(y, operator, prior, "joint-dehaze", tissue_weight=1.0, haze_weight=0.0, **common)
    tissue, haze = prior.split(result.samples[0])
    assert float(haze.mean()) == pytest.approx(0.0, abs=0.1) and float(haze.std()) == pytest.approx(1.0, rel=0.1)
    assert float(tissue.std()) < 0.5 and float((tissue + 0.3 * haze).mean()) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("guidance", ["pigdm", "dps"])
def test_companded_priors_meet_rf_data(guidance):
    """With mu the Tweedie estimates are expanded before the sum: the result, expanded, explains the RF data."""
    prior = _stack(std=0.3)
    gamma = 0.2
    operator = HazyMeasurement((1, 4, 4), gamma).double()
    truth = prior.as_gaussian().sample_exact(1, seed=3).clamp(-1, 1)
    rf = mu_law_expand(truth)
    y = rf[:, :1] + gamma * rf[:, 1:]
    result = invsolve.reconstruct(
        y, operator, prior, "joint-dehaze", noise_std=1e-4, steps=100, seed=0, progress=False, mu=255.0,
        tau=0.5, guidance=guidance, tissue_weight=0.3 if guidance == "dps" else 1.0, haze_weight=0.3 if guidance == "dps" else 1.0,
    )
    tissue, haze = prior.split(result.image)
    explained = mu_law_expand(tissue) + gamma * mu_law_expand(haze)
    assert float((explained - y).norm()) < 0.05 * float(y.norm())  # measured 0.4 % (pigdm), 1.6 % (dps)


def test_bad_settings_are_refused():
    prior = _stack()
    operator = HazyMeasurement((1, 4, 4), 0.3).double()
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    common = dict(noise_std=0.1, steps=4, progress=False)
    with pytest.raises(ValueError, match=r"needs invsolve.priors.StackedPrior\(\[tissue, haze\]\) \(two parts\), got GaussianPrior"):
        invsolve.reconstruct(y, Mask(torch.ones(4, 4, dtype=torch.bool)), prior.parts[0], "joint-dehaze", **common)
    with pytest.raises(ValueError, match="two parts"):
        triple = StackedPrior([*prior.parts, prior.parts[0]])
        invsolve.reconstruct(y, HazyMeasurement((1, 4, 4), 0.3), triple, "joint-dehaze", **common)
    with pytest.raises(ValueError, match="guidance must be one of pigdm, dps, got 'projection'"):
        invsolve.reconstruct(y, operator, prior, "joint-dehaze", guidance="projection", **common)
    with pytest.raises(ValueError, match=r"tau must be in \(0, 1\]"):
        invsolve.reconstruct(y, operator, prior, "joint-dehaze", tau=1.5, **common)
    stacked_mask = Mask(torch.ones(4, 4, dtype=torch.bool), in_shape=(2, 4, 4))
    stacked_y = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    with pytest.raises(
        ValueError,
        match=r"^tau < 1 starts the tissue from the measurement, which must then be shaped like the tissue \(1, 4, 4\); "
        r"got y shaped \(2, 4, 4\) \(use tau=1\)$",
    ):
        invsolve.reconstruct(stacked_y, stacked_mask, prior, "joint-dehaze", tau=0.5, **common)
    # from noise (tau = 1) the measurement may have any shape its operator gives
    assert invsolve.reconstruct(stacked_y, stacked_mask, prior, "joint-dehaze", **common).image.shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"^sampler 'joint-dehaze' does not start from pure noise and takes no start_time"):
        invsolve.reconstruct(y, operator, prior, "joint-dehaze", start_time=0.5, **common)


def _joint_dehaze_by_hand(y, gamma, prior, steps, seed, *, noise_std, tissue_weight, haze_weight, guidance, tau, mu):
    """Stevens et al. 2024, Algorithm 1, written out for y = x + γh with two Gaussian priors: per step
    the Tweedie estimate x̂₀ (expanded by E = μ-law when companded), then PiGDM's step
    ``r_t²·∇ₓ⟨A·E(x̂₀), w⟩`` with ``r_t² = σ_t²/(α_t² + σ_t²)`` and
    ``w = (y − A·E(x̂₀)) / (r_t²s²(E'ₓ² + γ²E'ₕ²) + σ²)`` (A Aᵀ is diagonal here), or DPS's
    ``−∇ₓ Σ_items ‖C(y) − C(A·E(x̂₀))‖/s``, added with weights (λ, κ) to DDPM's ancestral step."""
    from invsolve.operators.ultrasound import mu_law_compress, mu_law_slope

    generator = torch.Generator().manual_seed(seed)
    expand = (lambda v: v) if mu is None else (lambda v: mu_law_expand(v, mu))
    slope = (lambda v: torch.ones_like(v)) if mu is None else (lambda v: mu_law_slope(v, mu))
    scale, batch = prior.normalization.scale, y.shape[0]
    shape = (batch, 2, *prior.image_shape[1:])
    if tau == 1:
        x = prior.initial_noise(batch, generator)
    else:
        noise = torch.randn(shape, dtype=torch.float64, generator=generator)
        tissue = y if mu is None else mu_law_compress(y.clamp(-1.0, 1.0), mu)
        alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(tau, dtype=torch.float64)))
        x = torch.cat([alpha * prior.to_network(tissue) + sigma * noise[:, :1], noise[:, 1:]], dim=1)
    weights = torch.tensor([tissue_weight, haze_weight], dtype=torch.float64).reshape(1, 2, 1, 1)
    for t, s in prior.schedule.reverse_steps(steps, tau):
        x = x.detach().requires_grad_(True)
        x0_hat = prior.denoise(x, t)
        physical = prior.to_physical(x0_hat)
        measured = expand(physical)
        mixture = measured[:, :1] + gamma * measured[:, 1:]
        if guidance == "pigdm":
            alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
            spread = sigma**2 / (alpha**2 + sigma**2)
            grade = slope(physical.detach()) ** 2
            weighted = (y - mixture.detach()) / (spread * scale**2 * (grade[:, :1] + gamma**2 * grade[:, 1:]) + noise_std**2)
            (gradient,) = torch.autograd.grad((mixture * weighted).sum(), x)
            step = spread * gradient
        else:
            residual = y - mixture
            if mu is not None:
                residual = mu_law_compress(y.clamp(-1.0, 1.0), mu) - mu_law_compress(mixture.clamp(-1.0, 1.0), mu)
            distances = (residual / scale).reshape(batch, -1).norm(dim=1)
            (gradient,) = torch.autograd.grad(distances.sum(), x)
            step = -gradient
        with torch.no_grad():
            x = prior.ancestral_step(x, x0_hat.detach(), t, s, generator) + weights * step
    return prior.to_physical(x.detach())


@pytest.mark.parametrize(
    "guidance, tau, mu",
    [("pigdm", 1.0, None), ("pigdm", 0.6, 100.0), ("dps", 1.0, None), ("dps", 0.6, 100.0)],
    ids=["pigdm", "pigdm-companded-warm", "dps", "dps-companded-warm"],
)
def test_joint_dehaze_is_algorithm_1_written_out(guidance, tau, mu):
    """The same draws through the update written out, on two measurements at once, with an EDM
    schedule (α ≠ 1 − σ², so r_t² is not σ_t²), priors in units of scale 2, companded with μ = 100
    (not the default 255) and data and mixtures beyond ±1 (so that the clamps act); every step reported."""
    from invsolve.priors import EDMSchedule, Normalization

    prior = _stack(std=1.5, schedule=EDMSchedule(sigma_max=20.0), normalization=Normalization(scale=2.0))
    gamma, noise_std = 0.4, 0.07
    operator = HazyMeasurement((1, 4, 4), gamma).double()
    y = 1.5 * torch.linspace(-1, 1, 32, dtype=torch.float64).reshape(2, 1, 4, 4)
    y[1] = y[1].flip(-1) * 0.5
    settings = dict(noise_std=noise_std, tissue_weight=0.3, haze_weight=0.7, guidance=guidance, tau=tau, mu=mu)
    steps = []
    result = invsolve.reconstruct(y, operator, prior, "joint-dehaze", steps=6, seed=2, progress=False, callback=steps.append, **settings)
    expected = _joint_dehaze_by_hand(y, gamma, prior, 6, 2, **settings)
    torch.testing.assert_close(result.image, expected, rtol=0, atol=1e-9)
    assert [(step.index, step.total) for step in steps] == [(k, 6) for k in range(6)]
    assert [step.time for step in steps] == prior.schedule.sampling_times(6, tau).tolist()
    assert torch.equal(prior.to_physical(steps[-1].state), result.image)


def test_joint_dehaze_refuses_bad_settings_naming_them():
    for name, value in [("tissue_weight", -1.0), ("haze_weight", -0.5), ("tau", 0.0), ("mu", -255.0)]:
        with pytest.raises(ValueError, match=rf"^{name} must be"):
            invsolve.get_sampler("joint-dehaze", **{name: value})
    from invsolve.samplers import Problem

    with pytest.raises(ValueError, match=r"^sampler 'joint-dehaze' reconstructs from measurements: the problem has none$"):
        invsolve.get_sampler("joint-dehaze").run(Problem(None, None, torch.tensor([0])), _stack(), steps=2)


def test_joint_dehaze_shows_progress_only_when_asked(capsys):
    prior = _stack()
    operator = HazyMeasurement((1, 4, 4), 0.3).double()
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    invsolve.reconstruct(y, operator, prior, "joint-dehaze", noise_std=0.1, steps=3, progress=False)
    assert capsys.readouterr().err == ""
    invsolve.reconstruct(y, operator, prior, "joint-dehaze", noise_std=0.1, steps=3, progress=True)
    assert "joint-dehaze: 100%" in capsys.readouterr().err
