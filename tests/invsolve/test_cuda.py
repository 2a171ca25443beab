"""CPU and CUDA run one code path: every sampler gives the same reconstruction on both (skipped without CUDA).

Each sampler solves a small problem twice, once on the CPU and once on the GPU,
drawing its noise from the same seeded CPU generator (``seed=torch.Generator()``:
:func:`invsolve._random.randn_like` draws on the generator's device and moves the
noise), so that the two runs see the same random numbers and may differ only by
floating-point rounding, which the samplers' iterations carry forward.  A code
path that differs between the devices (noise from another stream, a branch
taken on one device only) moves the result by the image's own scale.

Bounds, relative to the image's peak, from a run on an H200 (README, "CPU and
CUDA"): 1e-8 where every step is exact in float64 (there the runs agreed to
that); DiffPIR stops its conjugate gradients at a relative residual of 1e-6
(measured 1e-7); PnP-DM's Langevin loop carries those CG solves (measured
2e-6); RED-Diff's Adam divides by the gradients' running RMS, which magnifies
rounding where a gradient is near zero (measured 1.5e-5); the U-Net prior runs
in float32, whose CUDA convolutions use TF32 (10 mantissa bits) by default
(measured 2.4e-4 over 10 DDS steps).
"""

from __future__ import annotations

import pytest
import torch

import invsolve
from invsolve.operators import GaussianNoise, Mask, SliceStack, random_pixel_mask
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.ultrasound import HazyMeasurement
from invsolve.priors import GaussianPrior, StackedPrior, UNetPrior
from invsolve.samplers import available_samplers, get_sampler

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ("cpu", "cuda")

PLANAR = [name for name in available_samplers() if not get_sampler(name).volumetric and name != "joint-dehaze"]
#: settings that keep the inner loops short
SHORT = {"daps": {"ode_steps": 2, "langevin_steps": 5}, "pnp-dm": {"denoise_steps": 2}}
#: agreement bounds relative to the image's peak, where a sampler's iterations stop short of exact (module docstring)
RELATIVE_BOUND = {"diffpir": 1e-6, "pnp-dm": 1e-5, "red-diff": 1e-4}


def _on_both_devices(y, operator, prior, sampler, **settings):
    """The reconstruction on the CPU and on CUDA, with the same CPU random stream."""
    cpu, cuda = (
        invsolve.reconstruct(y.to(device), operator.to(device), prior.to(device), sampler,
                             seed=torch.Generator().manual_seed(3), progress=False, **settings)
        for device in DEVICES
    )
    assert cuda.image.device.type == DEVICES[1] and cpu.image.device.type == "cpu"
    return cpu, cuda


def _assert_same(cpu, cuda, relative: float = 1e-8) -> None:
    """The two runs' images (and samples, where drawn) agree to ``relative`` times their peak magnitude."""
    assert (cpu.samples is None) == (cuda.samples is None)
    for mine, theirs in ((cuda.image, cpu.image), (cuda.samples, cpu.samples)):
        if theirs is not None:
            bound = relative * float(theirs.abs().max())
            torch.testing.assert_close(mine.cpu(), theirs, rtol=relative, atol=bound)


@pytest.mark.parametrize("sampler", PLANAR)
def test_every_planar_sampler_gives_the_cpu_result_on_cuda(sampler):
    prior = GaussianPrior.squared_exponential((1, 8, 8), length_scale=1.5, std=1.0, mean=0.2)
    operator = RayTransform(ParallelBeam2D((8, 8), sparse_view_angles(5))).double()
    y = GaussianNoise(0.05)(operator(prior.sample_exact(2, seed=0)), seed=1)
    chosen = get_sampler(sampler)
    cpu, cuda = _on_both_devices(y, operator, prior, sampler, noise_std=0.05, steps=max(chosen.min_steps, 6),
                                 n_samples=1 if chosen.deterministic else 2, **SHORT.get(sampler, {}))
    _assert_same(cpu, cuda, RELATIVE_BOUND.get(sampler, 1e-8))


@pytest.mark.parametrize("sampler", ["dds-3d", "mbir"])
def test_the_3d_samplers_give_the_cpu_result_on_cuda(sampler):
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5, std=1.0, mean=0.3)
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=4)
    y = GaussianNoise(0.02)(stack(prior.sample_exact(4, seed=1).reshape(1, 1, 4, 6, 6)), seed=2)
    cpu, cuda = _on_both_devices(y, stack, prior, sampler, noise_std=0.02, steps=8, tv_weight=0.05, rho=0.1,
                                 slice_batch=3)
    _assert_same(cpu, cuda)


def test_joint_dehaze_gives_the_cpu_result_on_cuda():
    parts = [GaussianPrior.squared_exponential((1, 8, 8), length_scale=scale, std=1.0) for scale in (0.7, 2.0)]
    prior = StackedPrior(parts)
    operator = HazyMeasurement((1, 8, 8), 0.3).double()
    y = GaussianNoise(0.05)(operator(torch.cat([p.sample_exact(1, seed=k) for k, p in enumerate(parts)], dim=1)),
                            seed=4)
    cpu, cuda = _on_both_devices(y, operator, prior, "joint-dehaze", noise_std=0.05, steps=6, n_samples=2)
    _assert_same(cpu, cuda)


def test_a_unet_prior_gives_the_cpu_result_on_cuda():
    """A (random, small) MONAI U-Net in float32 on both devices: equal to TF32 rounding over the run."""
    torch.manual_seed(0)
    prior = UNetPrior((1, 16, 16), channels=(8, 16), attention_levels=(False, True), num_head_channels=8,
                      norm_num_groups=4, inference_dtype="float32")
    with torch.no_grad():  # MONAI zeroes the last convolution: give it weights so the network matters
        prior.unet.out[-1].conv.weight.normal_(0, 0.05)
    operator = RayTransform(ParallelBeam2D((16, 16), sparse_view_angles(6)))
    y = GaussianNoise(0.05)(operator(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))), seed=1)
    cpu, cuda = _on_both_devices(y, operator, prior, "dds", noise_std=0.05, steps=10, n_samples=2)
    assert float(cpu.samples.std()) > 0
    _assert_same(cpu, cuda, relative=1e-3)
