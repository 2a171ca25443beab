import pytest
import torch

from invsolve.priors import (
    DiffusionPrior,
    DiscreteVPSchedule,
    GaussianPrior,
    Normalization,
    VESchedule,
)


@pytest.fixture
def prior():
    return GaussianPrior.squared_exponential((2, 3, 3), length_scale=1.2, std=0.7, mean=0.2)


def direct_posterior_mean(prior, x_t, t):
    """E[x | x_t] by a direct solve of μ + αΣ(α²Σ + σ²I)⁻¹(x_t − αμ)."""
    alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    cov, mean = prior.cov, prior.mean.reshape(-1)
    system = alpha**2 * cov + sigma**2 * torch.eye(len(mean), dtype=torch.float64)
    flat = x_t.reshape(x_t.shape[0], -1)
    return (mean + alpha * torch.linalg.solve(system, (flat - alpha * mean).T).T @ cov).reshape(x_t.shape)


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_denoiser_is_the_exact_posterior_mean(prior, t):
    x_t = torch.randn(4, *prior.image_shape, dtype=torch.float64)
    assert torch.allclose(prior.denoise(x_t, t), direct_posterior_mean(prior, x_t, t), atol=1e-9)


@pytest.mark.parametrize("t", [0.05, 0.5, 0.95])
def test_score_is_the_gradient_of_the_noisy_log_density(prior, t):
    x_t = torch.randn(3, *prior.image_shape, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(prior.log_prob_noisy(x_t, t).sum(), x_t)
    assert torch.allclose(prior.score(x_t.detach(), t), gradient, atol=1e-8)


class Reparametrised(DiffusionPrior):
    """The Gaussian prior's exact output re-expressed as ε or v prediction."""

    def __init__(self, inner: GaussianPrior, prediction: str):
        super().__init__(inner.schedule, inner.image_shape, prediction=prediction)
        self.inner = inner

    def network_output(self, x_t, t):
        alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in self.schedule.alpha_sigma(t))
        x0 = self.inner.network_output(x_t, t)
        eps = (x_t - alpha * x0) / sigma
        return eps if self.prediction == "eps" else alpha * eps - sigma * x0


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_prediction_types_give_the_same_estimates(prior, prediction):
    other = Reparametrised(prior, prediction)
    x_t = torch.randn(2, *prior.image_shape, dtype=torch.float64)
    t = torch.tensor([0.3, 0.8], dtype=torch.float64)
    for mine, theirs in zip(other.predict(x_t, t), prior.predict(x_t, t)):
        assert torch.allclose(mine, theirs, atol=1e-9)


def test_v_prediction_needs_a_variance_preserving_schedule(prior):
    with pytest.raises(ValueError, match="v-prediction needs a variance-preserving schedule, got 've-geometric'"):
        DiffusionPrior(VESchedule(), (1, 4, 4), prediction="v")
    with pytest.raises(ValueError, match=r"prediction must be one of \('eps', 'x0', 'v'\), got 'score'"):
        DiffusionPrior(DiscreteVPSchedule.linear(), (1, 4, 4), prediction="score")


def test_normalization_changes_coordinates_not_the_distribution():
    plain = GaussianPrior.squared_exponential((1, 3, 3), length_scale=1.0, std=300.0, mean=40.0)
    scaled = GaussianPrior.squared_exponential(
        (1, 3, 3), length_scale=1.0, std=300.0, mean=40.0, normalization=Normalization.from_range(-1000, 1000, "HU")
    )
    assert torch.allclose(scaled.mean, plain.mean) and torch.allclose(scaled.cov, plain.cov)
    assert torch.allclose(scaled.mean_network, (plain.mean_network - 0.0) / 1000.0)
    draws = scaled.sample_exact(2000, seed=0).reshape(2000, -1)
    assert torch.allclose(draws.mean(0), torch.full((9,), 40.0, dtype=torch.float64), atol=25.0)


def test_normalization_round_trip_and_errors():
    norm = Normalization.from_range(-1000.0, 3000.0, unit="HU")
    x = torch.tensor([-1000.0, 1000.0, 3000.0])
    assert torch.allclose(norm.to_network(x), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(norm.to_physical(norm.to_network(x)), x)
    with pytest.raises(ValueError, match="need high > low"):
        Normalization.from_range(1.0, 1.0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        Normalization(scale=0.0)


def test_normalization_in_other_units_maps_the_same_points():
    per_unit = Normalization.from_range(0.0, 1.15, unit="a.u.")
    per_mm = per_unit.in_units(0.0384, "1/mm")
    x = torch.tensor([0.0, 0.5, 1.15])
    assert torch.allclose(per_mm.to_network(x * 0.0384), per_unit.to_network(x))
    assert per_mm.unit == "1/mm"
    with pytest.raises(ValueError, match="factor must be a finite number > 0"):
        per_unit.in_units(-1.0, "HU")


def test_gaussian_prior_input_errors():
    with pytest.raises(ValueError, match=r"cov must have shape \(4, 4\)"):
        GaussianPrior(torch.zeros(1, 2, 2), torch.eye(3))
    with pytest.raises(ValueError, match="cov must be symmetric"):
        GaussianPrior(torch.zeros(1, 1, 2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianPrior(torch.zeros(1, 1, 2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="mean must be finite"):
        GaussianPrior(torch.tensor([[[float("nan"), 0.0]]]), torch.eye(2))


@pytest.mark.parametrize("schedule", [DiscreteVPSchedule.linear(), DiscreteVPSchedule.cosine(), VESchedule(0.01, 20.0)])
def test_ancestral_sampling_reproduces_the_prior(schedule):
    """Exact denoiser + the DDPM reverse step ⇒ draws from the prior (up to discretisation)."""
    prior = GaussianPrior.squared_exponential((1, 4, 4), length_scale=1.0, std=1.0, mean=0.3, schedule=schedule)
    samples = prior.sample(4000, steps=250, seed=0, progress=False).reshape(4000, -1)
    # Monte Carlo std ≈ 0.016 (mean) and ≈ 0.02 (cov); measured max errors ≤ 0.045 and ≤ 0.079.
    assert torch.allclose(samples.mean(0), torch.full((16,), 0.3, dtype=torch.float64), atol=0.06)
    assert torch.allclose(torch.cov(samples.T), prior.cov, atol=0.1)


def test_seeded_exact_draws_do_not_depend_on_the_eigensolvers_basis():
    """A stationary prior on a grid has repeated eigenvalues, inside which LAPACK's basis changes with the
    thread count; the draws of a seed must not (they define the oracle problems on every machine)."""
    threads = torch.get_num_threads()
    try:
        draws = []
        for count in (1, 2):
            torch.set_num_threads(count)
            prior = GaussianPrior.squared_exponential((1, 12, 12), length_scale=1.5, std=1.0, mean=0.3)
            draws.append(prior.sample_exact(3, seed=0))
    finally:
        torch.set_num_threads(threads)
    assert torch.allclose(draws[0], draws[1], atol=1e-10)
    # and a rotation inside a repeated eigenvalue leaves them unchanged
    prior = GaussianPrior.squared_exponential((1, 12, 12), length_scale=1.5, std=1.0, mean=0.3)
    values = prior.eigenvalues
    first = int(torch.nonzero((values[1:] - values[:-1]).abs() < 1e-9 * values.max())[0])
    angle = torch.tensor(0.7, dtype=torch.float64)
    rotation = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    before = prior.sample_exact(2, seed=4)
    prior.eigenvectors[:, first : first + 2] = prior.eigenvectors[:, first : first + 2] @ rotation
    assert torch.allclose(prior.sample_exact(2, seed=4), before, atol=1e-10)
