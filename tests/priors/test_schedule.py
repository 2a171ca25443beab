import math

import pytest
import torch

from invsolve.priors import DiscreteVPSchedule, EDMSchedule, VESchedule, schedule_from_config


def test_vp_linear_matches_ddpm_at_every_step():
    schedule = DiscreteVPSchedule.linear()
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    t = torch.arange(1000, dtype=torch.float64) / 999
    alpha, sigma = schedule.alpha_sigma(t)
    assert torch.allclose(alpha**2, alpha_bar, rtol=1e-10)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones(1000, dtype=torch.float64))
    assert float(sigma[0]) == pytest.approx(math.sqrt(1e-4))
    assert torch.allclose(schedule.network_time(t), torch.arange(1000, dtype=torch.float64))


def test_vp_interpolates_log_alpha_bar_between_steps():
    schedule = DiscreteVPSchedule.linear(num_steps=10)
    alpha, _ = schedule.alpha_sigma(torch.tensor([2.5 / 9], dtype=torch.float64))
    expected = 0.5 * (schedule.log_alpha_bar[2] + schedule.log_alpha_bar[3])
    assert float(alpha**2) == pytest.approx(math.exp(float(expected)), rel=1e-12)


def test_vp_cosine_follows_nichol_dhariwal():
    schedule = DiscreteVPSchedule.cosine()
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for step in (0, 100, 500, 900):
        alpha, _ = schedule.alpha_sigma(torch.tensor(step / 999, dtype=torch.float64))
        assert float(alpha**2) == pytest.approx(f((step + 1) / 1000) / f(0), rel=1e-6)
    assert float(schedule.betas.max()) <= 0.999


def test_ve_and_edm_endpoints():
    ve = VESchedule(0.01, 50.0)
    alpha, sigma = ve.alpha_sigma(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert torch.equal(alpha, torch.ones(3, dtype=torch.float64))
    assert torch.allclose(sigma, torch.tensor([0.01, math.sqrt(0.01 * 50), 50.0], dtype=torch.float64))
    edm = EDMSchedule()
    _, sigma = edm.alpha_sigma(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(sigma, torch.tensor([0.002, 80.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "schedule", [DiscreteVPSchedule.linear(), DiscreteVPSchedule.cosine(), VESchedule(), EDMSchedule()]
)
def test_sigma_increases_and_config_round_trips(schedule):
    times = schedule.sampling_times(50)
    assert times[0] == 1 and times[-1] == 0 and bool((times.diff() < 0).all())
    alpha, sigma = schedule.alpha_sigma(times)
    assert bool(((sigma / alpha).diff() < 0).all())  # noise-to-signal falls along the sampling path
    assert schedule_from_config(schedule.to_config()) == schedule


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown noise schedule 'vp-quadratic'; known: edm, ve-geometric"):
        schedule_from_config({"name": "vp-quadratic"})
    with pytest.raises(ValueError, match="bad parameters for noise schedule 've-geometric'"):
        schedule_from_config({"name": "ve-geometric", "sigma": 3})
    with pytest.raises(ValueError, match="sigma_max must exceed sigma_min"):
        VESchedule(1.0, 0.5)
    with pytest.raises(ValueError, match=r"steps must be in \[1, 1000\]"):
        DiscreteVPSchedule.linear().sampling_times(2000)


def test_reverse_steps_pair_consecutive_times_and_end_clean():
    schedule = DiscreteVPSchedule.linear(num_steps=10)
    pairs = schedule.reverse_steps(4)
    times = schedule.sampling_times(4).tolist()
    assert pairs == [(times[0], times[1]), (times[1], times[2]), (times[2], times[3]), (times[3], None)]
