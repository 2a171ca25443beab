"""A volume split over torch.distributed ranks (issue 12, point 3): the same volume as one process."""

import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import invsolve
from invsolve.operators import FiniteDifference, GaussianLikelihood, Mask, SliceStack, dot_test, random_pixel_mask
from invsolve.operators.ct import ConeBeam3D, ConeBeamTransform, sparse_view_angles
from invsolve.priors import GaussianPrior
from invsolve.samplers import Problem
from invsolve.samplers.slice3d import AxisTVDataStep
from invsolve.slabs import Slab, SummedOverSlabs

SCRIPT = Path(__file__).with_name("slab_reconstruction.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_processes_give_the_volume_of_one(tmp_path):
    """torchrun with 2 CPU processes (gloo), the 5 slices split 2 + 3: halo exchange, all-reduced CG, whole-volume
    noise; slice-stacked parallel beam (sinograms split) and cone beam (projections summed over the ranks)."""
    # loopback only: gloo would otherwise pick the interface of the host name
    environment = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "GLOO_SOCKET_IFNAME": "lo"}
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, str(SCRIPT), str(one)], cwd=tmp_path, env=environment, check=True, timeout=300)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(_free_port()), str(SCRIPT), str(two)]
    subprocess.run(launch, cwd=tmp_path, env=environment, check=True, timeout=300, capture_output=True)
    alone, split = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    shapes = {"parallel": (1, 1, 5, 6, 6), "cone": (1, 1, 6, 6, 5)}
    assert sorted(alone) == sorted(split) == sorted(f"{scanner} {s}" for scanner in shapes for s in ("dds-3d", "mbir"))
    for name, volume in alone.items():
        assert split[name].shape == volume.shape == shapes[name.split()[0]]
        # measured 2e-9 (parallel dds-3d), 6e-9 (parallel mbir) and 5e-15 (cone) on volumes of magnitude ~2-8:
        # rounding of the reordered sums (and of the parallel slabs' own norm estimates, which the ranks max-reduce)
        assert torch.allclose(split[name], volume, atol=1e-6), (name, (split[name] - volume).abs().max())


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


def test_summed_over_slabs_in_one_process_is_the_operator():
    """With the whole volume on one rank the wrapper is the operator: forward, adjoint (dot test), norm and pinv."""
    geometry = ConeBeam3D((6, 5, 4), sparse_view_angles(3, 2 * math.pi), 4.0, 2.0)
    transform = ConeBeamTransform(geometry).double()
    summed = SummedOverSlabs(transform, Slab.whole(4, axis=2))
    x = torch.randn(2, 1, 6, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(summed(x), transform(x))
    assert dot_test(summed) < 1e-12
    # the start vector is the whole volume's draw, so the power iteration is the operator's own
    assert summed.norm() == pytest.approx(transform.norm(), rel=1e-12)
    y = transform(x)
    assert torch.allclose(summed.pinv(y), transform.pinv(y), atol=1e-10)
    assert "summed over slabs (0:4 of 4)" in summed.describe()


def test_summed_over_slabs_refuses_what_does_not_fit():
    geometry = ConeBeam3D((6, 5, 4), sparse_view_angles(3, 2 * math.pi), 4.0, 2.0)
    transform = ConeBeamTransform(geometry.slab(0, 2))
    with pytest.raises(ValueError, match=r"the slab holds 3 slices along axis 2 of volumes \(C, D, H, W\)"):
        SummedOverSlabs(transform, Slab(0, 3, 4, axis=2))
    with pytest.raises(ValueError, match="takes images shaped \\(1, 6, 6\\)"):
        SummedOverSlabs(Mask(random_pixel_mask((6, 6), missing_fraction=0.5, seed=0)), Slab.whole(6))
    with pytest.raises(TypeError, match="slab must be an invsolve.slabs.Slab"):
        SummedOverSlabs(transform, (0, 2))
    with pytest.raises(TypeError, match="operator must be an invsolve LinearOperator"):
        SummedOverSlabs(torch.nn.Identity(), Slab(0, 2, 4, axis=2))
