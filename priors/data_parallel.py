"""Data-parallel training over ``torch.distributed`` ranks: the process group and each rank's rows.

:func:`~invsolve.priors.train` runs one process, or one per rank under
``torchrun`` (the trainer's module docstring states the scheme): every rank
takes the same global batch, loads its own rows of it
(:class:`ShardBatches`) and runs only those rows through the network
(:func:`rows_only`), so the noise of each image is that of a
single-process run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from invsolve.datasets.training import EpochSampler

__all__ = ["ShardBatches", "process_group", "rows_only"]


@contextlib.contextmanager
def process_group(device_setting: str) -> Iterator[tuple[int, int, torch.device]]:
    """``(rank, world_size, device)``, joining a ``torch.distributed`` group when ``WORLD_SIZE > 1``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_setting == "auto":
        device_setting = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(f"cuda:{local_rank}" if device_setting == "cuda" else device_setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"[train] device = {device_setting!r}, but CUDA is not available")
        torch.cuda.set_device(device)
    if world_size == 1:
        yield 0, 1, device
        return
    import torch.distributed as dist

    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if owner:
            dist.destroy_process_group()


class ShardBatches(Sampler):
    """One rank's rows of consecutive global batches of ``(index, epoch)`` pairs.

    The global sequence runs through the :class:`EpochSampler` orders of
    epochs ``epoch, epoch + 1, …`` from position ``start`` of the first;
    global batches of ``batch_size`` pairs cross epoch boundaries, and
    ``rows = (low, high)`` picks this rank's part of each.  ``count``
    batches are yielded.
    """

    def __init__(
        self,
        length: int,
        *,
        seed: int,
        batch_size: int,
        rows: tuple[int, int],
        epoch: int,
        start: int,
        count: int,
    ) -> None:
        self.length = length
        self.seed = seed
        self.batch_size = batch_size
        self.rows = rows
        self.epoch = epoch
        self.start = start
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        sampler = EpochSampler(self.length, seed=self.seed, epoch=self.epoch, start=self.start)
        epoch, batch, produced = self.epoch, [], 0
        while produced < self.count:
            for pair in sampler:
                batch.append(pair)
                if len(batch) == self.batch_size:
                    yield batch[self.rows[0] : self.rows[1]]
                    batch, produced = [], produced + 1
                    if produced == self.count:
                        return
            epoch += 1
            sampler.set_epoch(epoch)


def rows_only(network: Callable[..., torch.Tensor], low: int, high: int) -> Callable[..., torch.Tensor]:
    """``network`` run on rows ``[low, high)`` of a batch; the other rows of the output are zero.

    :meth:`UNetPrior.training_loss` draws ``t`` and ``ε`` for the whole
    global batch (the same numbers on every rank); only this rank's rows
    reach the network and the loss that is back-propagated.
    """

    def run(
        x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None, drop: torch.Tensor | None
    ) -> torch.Tensor:
        rows = slice(low, high)
        output = network(
            x_t[rows], t[rows], None if condition is None else condition[rows], None if drop is None else drop[rows]
        )
        before = output.new_zeros((low, *output.shape[1:]))
        after = output.new_zeros((x_t.shape[0] - high, *output.shape[1:]))
        return torch.cat([before, output, after])

    return run
