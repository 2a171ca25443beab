"""Reconstruct a small volume with the slice-augmented samplers, in one process or as one of several.

Run by tests/invsolve/test_slabs.py, either alone::

    python slab_reconstruction.py OUT.pt

or as every rank of ``torchrun --nproc_per_node N slab_reconstruction.py OUT.pt``,
each rank holding a slab of the volume; rank 0 writes both samplers' volumes to OUT.pt.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

import invsolve
from invsolve.operators import SliceStack
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.priors import GaussianPrior
from invsolve.slabs import Slab

SLICES = 5


def main(out: str) -> None:
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    slab = Slab.of_this_process(SLICES) if distributed else Slab.whole(SLICES)
    prior = GaussianPrior.squared_exponential((1, 6, 6), length_scale=1.5, std=1.0, mean=0.3)
    projector = RayTransform(ParallelBeam2D((6, 6), sparse_view_angles(4))).double()
    truth = prior.sample_exact(SLICES, seed=0).reshape(SLICES, 1, 6, 6).movedim(0, 1)[None]  # (1, 1, 5, 6, 6)
    y = SliceStack(projector, SLICES)(truth)
    operator = SliceStack(projector, slab.size)
    volumes = {}
    for sampler, steps in (("dds-3d", 6), ("mbir", 4)):
        result = invsolve.reconstruct(
            slab.take(y, dim=2), operator, prior, sampler, slab=slab, tv_weight=0.05, rho=0.1,
            noise_std=0.01, steps=steps, seed=3, progress=False,
        )
        volumes[sampler] = slab.gather(result.image, dim=2)
    if not distributed or dist.get_rank() == 0:
        torch.save(volumes, out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
