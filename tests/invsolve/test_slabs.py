"""A volume split over torch.distributed ranks (issue 12, point 3): the same volume as one process."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import invsolve
from invsolve.operators import FiniteDifference, GaussianLikelihood, Mask, SliceStack, random_pixel_mask
from invsolve.priors import GaussianPrior
from invsolve.samplers import Problem
from invsolve.samplers.slice3d import AxisTVDataStep
from invsolve.slabs import Slab

SCRIPT = Path(__file__).with_name("slab_reconstruction.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_processes_give_the_volume_of_one(tmp_path):
    """torchrun with 2 CPU processes (gloo), the 5 slices split 2 + 3: halo exchange, all-reduced CG, whole-volume noise."""
    # loopback only: gloo would otherwise pick the interface of the host name
    environment = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "GLOO_SOCKET_IFNAME": "lo"}
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, str(SCRIPT), str(one)], cwd=tmp_path, env=environment, check=True, timeout=300)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(_free_port()), str(SCRIPT), str(two)]
    subprocess.run(launch, cwd=tmp_path, env=environment, check=True, timeout=300, capture_output=True)
    alone, split = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    for sampler in ("dds-3d", "mbir"):
        assert split[sampler].shape == alone[sampler].shape == (1, 1, 5, 6, 6)
        # measured 2e-9 (dds-3d) and 6e-9 (mbir) on volumes of magnitude ~5: rounding of the reordered sums
        assert torch.allclose(split[sampler], alone[sampler], atol=1e-6), (sampler, (split[sampler] - alone[sampler]).abs().max())


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_the_slab_difference_is_the_finite_difference_with_its_exact_adjoint(axis):
    shape = [5, 4, 3]
    operator = Mask(torch.ones(*shape, dtype=torch.bool), in_shape=(1, *shape))
    problem = Problem(torch.zeros(1, 1, *shape, dtype=torch.float64), GaussianLikelihood(operator, 0.1))
    step = AxisTVDataStep(problem, Slab.whole(shape[axis], axis), gamma=0, rho=1, tv_weight=1, admm_iterations=1, cg_iterations=1)
    g = torch.Generator().manual_seed(axis)
    x = torch.randn(2, 1, *shape, dtype=torch.float64, generator=g)
    d = torch.randn(2, 1, *shape, dtype=torch.float64, generator=g)
    reference = FiniteDifference((1, *shape), axes=(axis,))
    assert torch.allclose(step.difference(x), reference(x)[:, 0])
    # ⟨Dx, d⟩ = ⟨x, Dᵀd⟩ for every d, including entries at the far edge, where D's row is zero
    assert torch.allclose((step.difference(x) * d).sum(), (x * step.difference_adjoint(d)).sum())
    assert torch.allclose(step.difference_adjoint(d), reference.adjoint(d[:, None]))


def test_a_slab_is_refused_where_it_does_not_fit():
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5)
    stack = SliceStack(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), n_slices=4)
    y = torch.zeros(1, *stack.out_shape, dtype=torch.float64)
    common = dict(noise_std=0.01, steps=4, progress=False)
    with pytest.raises(ValueError, match="the slab holds 3 slices \\(of 8\\) but the operator's volumes have 4"):
        invsolve.reconstruct(y, stack, prior, "dds-3d", slab=Slab(0, 3, 8), **common)
    with pytest.raises(ValueError, match="the slab splits axis 1 but the sampler's slices lie along axis 0"):
        invsolve.reconstruct(y, stack, prior, "dds-3d", slab=Slab(0, 4, 4, axis=1), **common)
    with pytest.raises(TypeError, match="slab must be an invsolve.slabs.Slab"):
        invsolve.reconstruct(y, stack, prior, "dds-3d", slab=(0, 4), **common)
    with pytest.raises(RuntimeError, match="start the processes with torchrun"):
        Slab.of_this_process(8)
    with pytest.raises(ValueError, match="expected the volume's 8"):
        Slab(0, 4, 8).take(torch.zeros(1, 1, 6), dim=2)
    result = invsolve.reconstruct(y, stack, prior, "dds-3d", slab=Slab.whole(4), **common)
    assert result.info["hyperparameters"]["slab"] == [0, 4, 4]
