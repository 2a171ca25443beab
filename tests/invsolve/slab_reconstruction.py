"""Reconstruct small volumes with the slice-augmented samplers, in one process or as one of several.

Run by tests/invsolve/test_slabs.py, either alone::

    python slab_reconstruction.py OUT.pt

or as every rank of ``torchrun --nproc_per_node N slab_reconstruction.py OUT.pt``,
each rank holding a slab of the volume; rank 0 writes the volumes to OUT.pt.

Two scanners: slice-stacked parallel beam (slab-separable: each rank gets its
slices' sinograms) and cone beam (every projection sees every slab: each rank
gets the whole projections and its slab's transform, summed over the ranks).
"""

from __future__ import annotations

import math
import os
import sys

import torch
import torch.distributed as dist

import invsolve
from invsolve.operators import SliceStack
from invsolve.operators.ct import ConeBeam3D, ConeBeamTransform, ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.priors import GaussianPrior
from invsolve.slabs import Slab, SummedOverSlabs

SLICES = 5
SAMPLERS = (("dds-3d", 6), ("mbir", 4))


def reconstruct_all(y, operator, prior, slab, axis):
    """Both samplers' whole volumes (gathered on every rank)."""
    volumes = {}
    for sampler, steps in SAMPLERS:
        result = invsolve.reconstruct(
            y, operator, prior, sampler, axis=axis, slab=slab, tv_weight=0.05, rho=0.1,
            noise_std=0.01, steps=steps, seed=3, progress=False,
        )
        volumes[sampler] = slab.gather(result.image, dim=2 + axis)
    return volumes


def main(out: str) -> None:
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5, std=1.0, mean=0.3)
    slices = prior.sample_exact(SLICES, seed=0).reshape(SLICES, 1, 6, 6)
    volumes = {}

    # parallel beam along axis 0: each rank measures its own slices
    slab = Slab.of_this_process(SLICES) if distributed else Slab.whole(SLICES)
    projector = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double()
    truth = slices.movedim(0, 1)[None]  # (1, 1, 5, 6, 6)
    y = SliceStack(projector, SLICES)(truth)
    for sampler, volume in reconstruct_all(slab.take(y, dim=2), SliceStack(projector, slab.size), prior, slab, 0).items():
        volumes[f"parallel {sampler}"] = volume

    # cone beam along z (axis 2): every rank sees the whole projections
    geometry = ConeBeam3D((6, 6, SLICES), sparse_view_angles(4, 2 * math.pi), 4.0, 2.0)
    slab = Slab.of_this_process(SLICES, axis=2) if distributed else Slab.whole(SLICES, axis=2)
    truth = slices.permute(1, 2, 3, 0)[None]  # (1, 1, 6, 6, 5): the slices are (x, y) planes
    y = ConeBeamTransform(geometry).double()(truth)
    if distributed:
        operator = SummedOverSlabs(ConeBeamTransform(geometry.slab(slab.start, slab.stop)).double(), slab)
    else:
        operator = ConeBeamTransform(geometry).double()
    for sampler, volume in reconstruct_all(y, operator, prior, slab, 2).items():
        volumes[f"cone {sampler}"] = volume

    if not distributed or dist.get_rank() == 0:
        torch.save(volumes, out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
