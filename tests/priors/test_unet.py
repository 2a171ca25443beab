import json

import pytest
import torch

from invsolve.operators import GaussianLikelihood, Mask, random_pixel_mask
from invsolve.priors import (
    PREDICTION_TYPES,
    Conditioning,
    DiscreteVPSchedule,
    EDMSchedule,
    Normalization,
    UNetPrior,
    VESchedule,
)
from invsolve.samplers import Problem, get_sampler

TINY = {"channels": (16, 32), "attention_levels": (False, True), "num_head_channels": 16}
KINDS = {
    "class": (Conditioning("class", 3), lambda b: torch.tensor([0, 2, 1, 2])[:b]),
    "vector": (Conditioning("vector", 5), lambda b: torch.randn(b, 5)),
    "image": (Conditioning("image", 2), lambda b: torch.randn(b, 2, 16, 16)),
}


def tiny(image_shape=(1, 16, 16), **kwargs) -> UNetPrior:
    """A ~180k-parameter UNetPrior that computes in float32 (exact comparisons)."""
    return UNetPrior(image_shape, **{**TINY, "inference_dtype": "float32", **kwargs})


def wake(prior: UNetPrior, seed: int = 0) -> UNetPrior:
    """Random weights for the layers MONAI starts at zero (the output and each residual
    block's last convolution) and for the null condition, so every input reaches the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in prior.parameters():
            if not parameter.any():
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    return prior


def test_a_new_network_predicts_zero_and_has_about_the_design_size():
    prior = UNetPrior((1, 64, 64))
    assert 1.0e6 < sum(p.numel() for p in prior.parameters()) < 1.2e6  # the 1.1 M-parameter net of docs/design.md's benchmarks
    small = tiny()
    assert 50_000 < sum(p.numel() for p in small.parameters()) < 200_000
    assert torch.equal(small.network_output(torch.randn(2, 1, 16, 16), torch.rand(2)), torch.zeros(2, 1, 16, 16))


@pytest.mark.parametrize("image_shape", [(1, 16, 16), (2, 8, 16, 8)], ids=["2d", "3d"])
@pytest.mark.parametrize("prediction", PREDICTION_TYPES)
def test_shapes_and_derived_quantities(image_shape, prediction):
    prior = wake(tiny(image_shape, prediction=prediction, normalization=Normalization.from_range(-1000, 1000, "HU")))
    x_t = torch.randn(3, *image_shape)
    t = torch.tensor([0.1, 0.5, 0.9])
    x0_hat, eps_hat = prior.predict(x_t, t)
    alpha, sigma = (v.reshape(-1, *[1] * len(image_shape)) for v in prior.schedule.alpha_sigma(t))
    assert x0_hat.shape == eps_hat.shape == x_t.shape and x0_hat.dtype == torch.float32
    assert torch.allclose(alpha * x0_hat + sigma * eps_hat, x_t, atol=1e-5)
    assert torch.allclose(prior.score(x_t, t), -eps_hat / sigma)
    assert prior.training_loss(x_t).shape == (3,)
    samples = prior.sample(2, steps=3, seed=0, progress=False)
    assert samples.shape == (2, *image_shape) and bool(torch.isfinite(samples).all())


def test_architecture_is_json_and_rebuilds_the_network():
    prior = tiny(num_res_blocks=(1, 2), norm_num_groups=4, resblock_updown=True)
    architecture = json.loads(json.dumps(prior.architecture()))
    assert architecture == {
        "channels": [16, 32],
        "attention_levels": [False, True],
        "num_res_blocks": [1, 2],
        "num_head_channels": [16, 16],
        "norm_num_groups": 4,
        "resblock_updown": True,
        "use_flash_attention": False,
    }
    twin = UNetPrior(prior.image_shape, **architecture)
    twin.load_state_dict(wake(prior).state_dict())
    x_t = torch.randn(2, 1, 16, 16)
    assert torch.equal(twin(x_t, 0.4), prior(x_t, 0.4))


@pytest.mark.parametrize(
    "schedule", [DiscreteVPSchedule.linear(num_steps=100), VESchedule(), EDMSchedule()], ids=lambda s: s.name
)
def test_the_network_sees_the_schedules_network_time(schedule, monkeypatch):
    prior = tiny(schedule=schedule, prediction="x0")
    seen = []
    inner = prior.unet.forward

    def recording(x, timesteps, **kwargs):
        seen.append(timesteps)
        return inner(x, timesteps, **kwargs)

    monkeypatch.setattr(prior.unet, "forward", recording)
    t = torch.tensor([0.0, 0.25, 1.0])
    prior.denoise(torch.randn(3, 1, 16, 16), t)
    assert torch.allclose(seen[0], schedule.network_time(t))


def delta_oracle(prior: UNetPrior, image: torch.Tensor, output: str):
    """The exact ε, x₀ or v network for the one-point distribution at ``image``."""

    def network(x_t, t, condition, drop_condition):
        alpha, sigma = (v.reshape(-1, 1, 1, 1) for v in prior.schedule.alpha_sigma(t))
        eps = (x_t - alpha * image) / sigma
        return {"eps": eps, "x0": image.expand_as(x_t), "v": alpha * eps - sigma * image}[output]

    return network


@pytest.mark.parametrize("prediction", PREDICTION_TYPES)
def test_training_loss_targets_the_prediction_type(prediction):
    prior = tiny(prediction=prediction)
    image = torch.linspace(-1, 1, 256, dtype=torch.float64).reshape(1, 1, 16, 16)
    x0 = image.expand(64, 1, 16, 16)
    for output in PREDICTION_TYPES:
        loss = prior.training_loss(x0, torch.Generator().manual_seed(1), network=delta_oracle(prior, image, output))
        assert loss.shape == (64,) and loss.dtype == torch.float32
        if output == prediction:
            assert float(loss.max()) < 1e-10
        else:
            assert float(loss.mean()) > 0.05


def test_training_loss_is_seeded_and_draws_times_uniformly():
    prior = tiny()
    x0 = torch.zeros(4000, 1, 16, 16)
    times = []
    prior.training_loss(x0, torch.Generator().manual_seed(3), network=lambda x_t, t, c, d: times.append(t) or x_t)
    assert float(times[0].min()) >= 0 and float(times[0].max()) <= 1
    assert float(times[0].mean()) == pytest.approx(0.5, abs=0.02)
    assert float(times[0].var()) == pytest.approx(1 / 12, abs=0.005)
    first = prior.training_loss(x0[:4], torch.Generator().manual_seed(7))
    assert torch.equal(first, prior.training_loss(x0[:4], torch.Generator().manual_seed(7)))


def test_training_can_run_under_bfloat16_autocast():
    prior = wake(tiny(prediction="v", conditioning=Conditioning("vector", 3)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = prior.training_loss(torch.randn(4, 1, 16, 16), condition=torch.randn(4, 3)).mean()
    loss.backward()
    assert loss.dtype == torch.float32
    assert all(bool(torch.isfinite(p.grad).all()) for p in prior.parameters() if p.grad is not None)


@pytest.mark.parametrize("kind", KINDS)
def test_each_conditioning_path_changes_the_output(kind):
    spec, make = KINDS[kind]
    prior = wake(tiny(conditioning=spec))
    x_t, t = torch.randn(4, 1, 16, 16), torch.full((4,), 0.5)
    first, second = make(4), make(4)
    if kind == "class":
        second = (first + 1) % 3
    conditional = prior(x_t, t, first)
    assert not torch.allclose(conditional, prior(x_t, t, second), atol=1e-4)
    unconditional = prior(x_t, t)
    assert not torch.allclose(conditional, unconditional, atol=1e-4)
    # dropping every condition is the null condition; dropping some drops those only
    assert torch.equal(prior(x_t, t, first, torch.ones(4, dtype=torch.bool)), unconditional)
    partial = prior(x_t, t, first, torch.tensor([True, False, True, False]))
    assert torch.allclose(partial[0::2], unconditional[0::2], atol=1e-6)
    assert torch.allclose(partial[1::2], conditional[1::2], atol=1e-6)
    # one condition serves the whole batch
    assert torch.allclose(prior(x_t, t, first[:1]), prior(x_t, t, first[:1].expand(4, *first.shape[1:])), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_classifier_free_guidance(kind):
    spec, make = KINDS[kind]
    prior = wake(tiny(conditioning=spec, prediction="v"))
    x_t, t, condition = torch.randn(4, 1, 16, 16), torch.full((4,), 0.3), make(4)
    conditional, unconditional = prior(x_t, t, condition), prior(x_t, t)
    assert prior.guidance_scale == 0
    assert torch.equal(prior.network_output(x_t, t, condition), conditional)
    prior.guidance_scale = 1.5
    guided = prior.network_output(x_t, t, condition)
    assert torch.allclose(guided, 2.5 * conditional - 1.5 * unconditional, atol=1e-5)
    assert torch.equal(prior.network_output(x_t, t), unconditional)  # no condition: no guidance
    assert torch.allclose(prior.denoise(x_t, t, condition), prior.predict(x_t, t, condition)[0])


@pytest.fixture
def native_bfloat16(monkeypatch):
    """Take the bfloat16 autocast path of network_output on any CPU (AVX2 ones too)."""
    monkeypatch.setattr("invsolve.priors.unet.native_bfloat16", lambda device: True)


def test_bfloat16_inference_is_close_to_float32_and_differentiable(native_bfloat16):
    prior = wake(tiny((1, 32, 32), prediction="v"))
    x_t = torch.randn(4, 1, 32, 32, requires_grad=True)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95])
    reference = prior.network_output(x_t, t)
    prior.inference_dtype = "bfloat16"
    output = prior.network_output(x_t, t)
    assert output.dtype == torch.float32
    relative = float((output - reference).detach().norm() / reference.detach().norm())
    assert 0 < relative < 3e-2  # bfloat16 keeps 8 bits of mantissa; measured 1.5e-2
    (gradient,) = torch.autograd.grad(prior.denoise(x_t, t).square().sum(), x_t)  # DPS backpropagates
    assert bool(torch.isfinite(gradient).all())


def test_bfloat16_inference_falls_back_to_float32_where_bfloat16_is_slow(monkeypatch):
    prior = wake(tiny((1, 16, 16), prediction="v"))
    x_t, t = torch.randn(2, 1, 16, 16), torch.tensor([0.2, 0.7])
    reference = prior.network_output(x_t, t)
    prior.inference_dtype = "bfloat16"
    asked = []
    monkeypatch.setattr("invsolve.priors.unet.native_bfloat16", lambda device: asked.append(device) or False)
    assert torch.equal(prior.network_output(x_t, t), reference)
    assert asked == [x_t.device]
    monkeypatch.setattr("invsolve.priors.unet.native_bfloat16", lambda device: True)
    assert not torch.equal(prior.network_output(x_t, t), reference)


def test_a_few_hundred_steps_learn_a_two_point_distribution():
    """Class 0 is the constant image −0.5, class 1 is +0.5; 50 % of the labels are dropped,
    so the same network also learns the unconditional two-point mixture."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 16² net is fastest on one thread
    try:
        prior = UNetPrior(
            (1, 16, 16),
            prediction="v",
            channels=(16, 32),
            attention_levels=(False, False),
            num_head_channels=32,
            conditioning=Conditioning("class", 2),
            inference_dtype="float32",
        )
        optimizer = torch.optim.Adam(prior.parameters(), lr=2e-3)
        generator = torch.Generator().manual_seed(0)
        levels = torch.tensor([-0.5, 0.5])
        losses = []
        for _ in range(300):
            labels = torch.randint(0, 2, (32,), generator=generator)
            x0 = levels[labels].reshape(-1, 1, 1, 1).expand(32, 1, 16, 16)
            drop = torch.rand(32, generator=generator) < 0.5
            loss = prior.training_loss(x0, generator, labels, drop).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert sum(losses[-30:]) < 0.25 * sum(losses[:30])

        def check(samples, targets):
            assert float((samples.mean(dim=(1, 2, 3)) - targets).abs().max()) < 0.2
            assert float(samples.std(dim=(1, 2, 3)).max()) < 0.15

        for label in (0, 1):
            check(prior.sample(8, steps=50, seed=1, progress=False, condition=torch.tensor([label])), levels[label])
        prior.inference_dtype = "bfloat16"  # the default precision samples as well
        prior.guidance_scale = 1.0
        check(prior.sample(8, steps=50, seed=2, progress=False, condition=torch.tensor([1])), levels[1])
        mixture = prior.sample(16, steps=50, seed=3, progress=False)
        nearest = levels[(mixture.mean(dim=(1, 2, 3)) > 0).long()]
        check(mixture, nearest)
        assert 3 <= int((nearest > 0).sum()) <= 13  # both modes, not one
    finally:
        torch.set_num_threads(threads)


def _unet_problem():
    """A woken tiny UNet in a 0–4 window (network scale 2, offset 2) and half-masked data."""
    prior = wake(tiny(normalization=Normalization.from_range(0.0, 4.0)))
    operator = Mask(random_pixel_mask((16, 16), missing_fraction=0.5, seed=0))
    y = operator(4 * torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)))
    return prior, operator, Problem(y, GaussianLikelihood(operator, 0.01))


def test_red_diffs_first_step_with_a_unet_prior():
    """Adam's first step is lr·g/(|g| + 1e-8) per pixel (Kingma & Ba 2015).  At μ = A⁺y the
    data term of a mask has no gradient, so g = λ·(σ/α)·(ε̂(αμ + σε) − ε)/n (Mardani et al.
    2024): the UNet's noise estimate at the first draw, in network units."""
    prior, operator, problem = _unet_problem()
    sampler = get_sampler("red-diff", lr=0.1, regularization=0.25)
    result = sampler.run(problem, prior, steps=1, generator=torch.Generator().manual_seed(3)).image
    mu = prior.to_network(operator.pinv(problem.y))
    noise = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    t = float(prior.schedule.sampling_times(1)[0])
    alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    gradient = 0.25 * (sigma / alpha) * (prior.eps(alpha * mu + sigma * noise, t) - noise) / mu[0].numel()
    expected = prior.to_physical(mu - 0.1 * gradient / (gradient.abs() + 1e-8))
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-5)
    assert float((result - operator.pinv(problem.y)).abs().min()) > 0.19  # every pixel moved by lr·scale


def test_dps_guidance_is_the_gradient_through_the_unet():
    """With one step, DPS(ζ) − DPS(0) on the same draws is −ζ·s·∇ₓ‖(y − A x̂₀(x))/s‖ at the
    initial noise x (Chung et al. 2023, Algorithm 1), the gradient taken through the UNet."""
    prior, operator, problem = _unet_problem()
    guided, free = (
        get_sampler("dps", step_size=zeta).run(problem, prior, steps=1, generator=torch.Generator().manual_seed(4)).image
        for zeta in (0.7, 0.0)
    )
    x = prior.initial_noise(2, torch.Generator().manual_seed(4)).requires_grad_(True)
    residual = (problem.y - operator(prior.to_physical(prior.denoise(x, 1.0)))) / prior.normalization.scale
    (gradient,) = torch.autograd.grad(residual.flatten(1).norm(dim=1).sum(), x)
    assert float(gradient.abs().max()) > 0.01
    # float32 throughout, and the untrained network's x̂₀ reaches ~10³: agreement to ~1e-6 relative
    torch.testing.assert_close(guided - free, -0.7 * prior.normalization.scale * gradient, rtol=1e-4, atol=1e-4)


def test_argument_errors():
    with pytest.raises(ValueError, match=r"image_shape must be a triple \(C, H, W\) or"):
        UNetPrior((16, 16))
    with pytest.raises(ValueError, match="channels\\[1\\] = 20 must be a multiple of norm_num_groups = 8"):
        UNetPrior((1, 16, 16), channels=(16, 20), attention_levels=(False, False))
    with pytest.raises(ValueError, match="attention_levels must be 2 bools"):
        UNetPrior((1, 16, 16), channels=(16, 32), attention_levels=(True,))
    with pytest.raises(ValueError, match="num_head_channels\\[1\\] = 24 must divide channels\\[1\\] = 32"):
        UNetPrior((1, 16, 16), channels=(16, 32), attention_levels=(False, True), num_head_channels=24)
    with pytest.raises(ValueError, match="num_res_blocks must be an int or 2 ints"):
        UNetPrior((1, 16, 16), **TINY, num_res_blocks=(1, 1, 1))
    with pytest.raises(ValueError, match="must be divisible by 4 for 3 levels"):
        UNetPrior((1, 18, 16), channels=(16, 32, 32), attention_levels=(False, False, False), num_head_channels=16)
    with pytest.raises(ValueError, match="inference_dtype must be one of"):
        tiny(inference_dtype="float16")
    with pytest.raises(ValueError, match="guidance_scale must be a finite number >= 0"):
        tiny(guidance_scale=-1)
    with pytest.raises(ValueError, match="conditioning kind must be one of"):
        Conditioning("text", 4)
    with pytest.raises(TypeError, match="conditioning must be a Conditioning"):
        tiny(conditioning={"kind": "class", "size": 3})
    with pytest.raises(ValueError, match="v-prediction needs a variance-preserving schedule"):
        tiny(prediction="v", schedule=VESchedule())


def test_condition_errors():
    x_t = torch.randn(2, 1, 16, 16)
    with pytest.raises(ValueError, match="condition must be None for the unconditional UNetPrior"):
        tiny().denoise(x_t, 0.5, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional: condition and drop_condition must be None"):
        tiny().training_loss(x_t, drop_condition=torch.tensor([True, False]))
    prior = tiny(conditioning=Conditioning("class", 3))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\), got values from 0 to 3"):
        prior(x_t, 0.5, torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="class labels must be an integer tensor"):
        prior(x_t, 0.5, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"condition \(class\) must have shape \(2\) or a batch of 1, got \(3,\)"):
        prior(x_t, 0.5, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"drop_condition must be a boolean tensor shaped \(2,\)"):
        prior(x_t, 0.5, torch.tensor([0, 1]), torch.tensor([1, 0]))
    image = tiny(conditioning=Conditioning("image", 2))
    with pytest.raises(ValueError, match=r"condition \(image\) must have shape \(2, 2, 16, 16\)"):
        image(x_t, 0.5, torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 1, 16, 16\)"):
        image(torch.randn(2, 1, 8, 8), 0.5)
