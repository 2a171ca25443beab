"""Volumes split into slabs along one axis over torch.distributed ranks.

A slice-augmented 3D sampler (``"dds-3d"``, ``"mbir"``) can run on several
processes — CPU cores with the ``gloo`` backend, GPUs with ``nccl``, one node
or many — each holding a contiguous slab of slices.  The network calls are
local; what couples the slabs is small: the difference along the slab axis
needs one slice of each neighbour (a halo), and the conjugate-gradient inner
products are summed over the ranks (all-reduce), so every rank takes the same
steps.  The random draws are those of the whole volume (each rank draws the
whole volume's noise and keeps its slab), so ``n`` processes give the volume
of one process to floating-point tolerance.

The processes are started by ``torchrun`` (never by this package)::

    torchrun --nproc_per_node 4 my_recon.py                       # one node, 4 processes
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 my_recon.py                 # two nodes

and each process runs::

    torch.distributed.init_process_group("gloo")          # "nccl" on GPUs
    slab = Slab.of_this_process(total=n_slices, axis=0)
    A = SliceStack(A2d, n_slices=slab.size)               # this rank's slices
    result = invsolve.reconstruct(slab.take(y, dim=2), A, prior, "dds-3d", slab=slab, seed=0)
    volume = slab.gather(result.image, dim=2)             # the whole volume, on every rank

The operator of a slab is either the slab's part of a slab-separable operator
(each slice measured on its own: :class:`~invsolve.operators.SliceStack`,
masks, multi-slice MRI; ``y`` is split like the volume), or — where every
measurement sees every slab, as in cone-beam CT — the slab's contribution
wrapped in :class:`SummedOverSlabs`, whose projections are summed over the
ranks (``y`` is whole on every rank)::

    slab = Slab.of_this_process(total=geometry.volume_shape[2], axis=2)   # z slabs
    A = SummedOverSlabs(ConeBeamTransform(geometry.slab(slab.start, slab.stop)), slab)
    result = invsolve.reconstruct(y, A, prior, "dds-3d", axis=2, slab=slab, seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from invsolve._checks import check_int, check_nonnegative
from invsolve._random import randn_like
from invsolve.operators import LinearOperator
from invsolve.operators.base import conjugate_gradient_pinv, power_iteration

__all__ = ["Slab", "SummedOverSlabs"]


@dataclass(frozen=True)
class Slab:
    """Slices ``[start, stop)`` of ``total`` along spatial ``axis`` of a volume ``(B, C, D, H, W)``.

    Attributes
    ----------
    start, stop, total : int
        This rank's slices and the volume's number of slices.
    axis : int
        Spatial axis (0, 1 or 2 of ``(D, H, W)``) the volume is split along.
    group : torch.distributed.ProcessGroup or None
        The ranks sharing the volume (``None``: the default group); unused for
        :meth:`whole`.
    distributed : bool
        Whether the slab is part of a volume split over processes.
    """

    start: int
    stop: int
    total: int
    axis: int = 0
    group: Any = None
    distributed: bool = False

    @classmethod
    def whole(cls, total: int, axis: int = 0) -> Slab:
        """The whole volume in this one process (no communication)."""
        total = check_int(total, "total", minimum=1)
        return cls(0, total, total, axis)

    @classmethod
    def of_this_process(cls, total: int, axis: int = 0, group: Any = None) -> Slab:
        """This rank's share of ``total`` slices, split as evenly as possible (needs an initialised process group).

        Raises
        ------
        RuntimeError
            If torch.distributed is not initialised (start the processes with
            ``torchrun`` and call ``torch.distributed.init_process_group``).
        ValueError
            If there are fewer slices than ranks.
        """
        total = check_int(total, "total", minimum=1)
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "Slab.of_this_process needs torch.distributed: start the processes with torchrun and call "
                "torch.distributed.init_process_group('gloo') (or 'nccl' on GPUs) first; for one process use "
                "Slab.whole(total)"
            )
        rank, world = dist.get_rank(group), dist.get_world_size(group)
        if world > total:
            raise ValueError(f"cannot split {total} slices over {world} ranks: every rank needs at least one slice")
        return cls(rank * total // world, (rank + 1) * total // world, total, axis, group, True)

    @property
    def size(self) -> int:
        """Number of slices in this slab."""
        return self.stop - self.start

    def take(self, volume: torch.Tensor, dim: int) -> torch.Tensor:
        """This slab's part of a whole-volume tensor, along tensor dimension ``dim``."""
        if volume.shape[dim] != self.total:
            raise ValueError(
                f"the tensor has {volume.shape[dim]} entries along dimension {dim}, expected the volume's {self.total}"
            )
        return volume.narrow(dim, self.start, self.size)

    def sum_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (a copy; identity for :meth:`whole`)."""
        if not self.distributed:
            return values
        total = values.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group)
        return total

    def max_over_ranks(self, value: float) -> float:
        """The largest of every rank's ``value`` (so that all ranks use the same number)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.group)
        return float(tensor)

    def randn_like(self, local: torch.Tensor, dim: int, generator: torch.Generator | None) -> torch.Tensor:
        """Standard normal noise shaped like ``local``: this slab's part of a draw for the whole volume.

        Every rank draws the whole volume's noise from the same generator
        state and keeps its slab, so the result does not depend on how the
        volume is split (at the cost of one volume of noise per rank).
        """
        if not self.distributed:
            return randn_like(local, generator)
        shape = list(local.shape)
        shape[dim] = self.total
        return self.take(randn_like(local.new_empty(shape), generator), dim)

    def neighbours(self, local: torch.Tensor, dim: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The previous rank's last slice and the next rank's first slice along ``dim`` (``None`` at the ends)."""
        if not self.distributed:
            return None, None
        edges = torch.stack([local.select(dim, 0), local.select(dim, -1)]).contiguous()
        gathered = [torch.empty_like(edges) for _ in range(dist.get_world_size(self.group))]
        dist.all_gather(gathered, edges, group=self.group)
        rank, world = dist.get_rank(self.group), len(gathered)
        previous = gathered[rank - 1][1] if rank > 0 else None
        following = gathered[rank + 1][0] if rank + 1 < world else None
        return previous, following

    def gather(self, local: torch.Tensor, dim: int) -> torch.Tensor:
        """The whole volume from every rank's slab along ``dim``, on every rank."""
        if not self.distributed:
            return local
        world = dist.get_world_size(self.group)
        largest = -(-self.total // world)
        shape = list(local.shape)
        shape[dim] = largest
        padded = local.new_zeros(shape)
        padded.narrow(dim, 0, self.size).copy_(local)
        pieces = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(pieces, padded, group=self.group)
        sizes = [(rank + 1) * self.total // world - rank * self.total // world for rank in range(world)]
        return torch.cat([piece.narrow(dim, 0, size) for piece, size in zip(pieces, sizes)], dim=dim)

    def _device(self) -> torch.device:
        backend = dist.get_backend(self.group)
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


class SummedOverSlabs(LinearOperator):
    """A slab's part ``A_r`` of a volume operator whose measurement sums every slab's: ``A x = Σ_r A_r x_r``.

    Cone-beam projections see every slice, so a cone-beam volume split into
    ``z`` slabs is measured as the sum of the slabs' projections
    (:meth:`~invsolve.operators.ct.ConeBeam3D.slab`; exact, Joseph's
    interpolation is linear with zeros outside a slab).  On each rank this
    operator takes the rank's slab and returns the *whole* measurement: the
    forward sums ``A_r x_r`` over the ranks (an all-reduce of one
    measurement-sized tensor per call), the adjoint is ``A_rᵀ y`` on the
    whole ``y`` (no communication), so ``⟨A x, y⟩ = Σ_r ⟨x_r, A_rᵀ y⟩``: the
    adjoint is exact for the volume's inner product, which the slab samplers
    sum over the ranks.  :meth:`norm` and :meth:`pinv` also sum their inner
    products over the ranks, so every rank gets the volume's numbers.  With
    :meth:`Slab.whole` it is ``operator`` itself.

    Parameters
    ----------
    operator : LinearOperator
        ``A_r`` on this rank's slab ``(C, …)`` (the slab's size along
        ``slab.axis``), to the whole measurement.
    slab : Slab
        This rank's slices.
    """

    def __init__(self, operator: LinearOperator, slab: Slab) -> None:
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
        if not isinstance(slab, Slab):
            raise TypeError(f"slab must be an invsolve.slabs.Slab, got {type(slab).__name__}")
        if len(operator.in_shape) != 4 or operator.in_shape[1 + slab.axis] != slab.size:
            raise ValueError(
                f"{operator.describe()} takes images shaped {operator.in_shape}, but the slab holds {slab.size} slices "
                f"along axis {slab.axis} of volumes (C, D, H, W): give each rank the operator of its own slices"
            )
        super().__init__(
            operator.in_shape,
            operator.out_shape,
            complex_domain=operator.complex_domain,
            complex_range=operator.complex_range,
        )
        self.operator, self.slab = operator, slab

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.slab.sum_over_ranks(self.operator(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(y)

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.measured(y)

    def _pinv(self, y: torch.Tensor) -> torch.Tensor:
        return conjugate_gradient_pinv(self, y, reduce=self.slab.sum_over_ranks)

    def norm(self, iterations: int = 200, tol: float = 1e-7, seed: int = 0) -> float:
        """The volume operator's ``‖A‖₂`` on every rank (power iteration with norms summed over the ranks; cached).

        The start vector is this slab's part of the whole volume's draw from
        ``seed``, so the estimate equals the one of the whole operator in one
        process to rounding.
        """
        if self._cached_norm is None:
            iterations = check_int(iterations, "iterations")
            tol = check_nonnegative(tol, "tol")
            generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
            dtype = torch.complex128 if self.complex_domain else torch.float64
            start = self.slab.randn_like(torch.empty((1, *self.in_shape), dtype=dtype), 2 + self.slab.axis, generator)

            def vector_norm(value: torch.Tensor) -> float:
                return float(self.slab.sum_over_ranks(value.abs().square().sum()).sqrt())

            self._cached_norm = power_iteration(self._normal, start.to(self.device or start.device), iterations, tol, vector_norm)
        return self._cached_norm

    def describe(self) -> str:
        return f"{self.operator.describe()} summed over slabs ({self.slab.start}:{self.slab.stop} of {self.slab.total})"
