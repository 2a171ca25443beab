"""Training a :class:`~invsolve.priors.UNetPrior` from a TOML config.

``invsolve.priors.train("run.toml")`` or ``invsolve train-prior run.toml``
builds the dataset of the ``[data]`` table, the prior of ``[prior]``, and
optimises :meth:`UNetPrior.training_loss` (the one training objective) with
AdamW, keeping an exponential moving average (EMA) of the weights; the EMA
prior is what gets saved.  A config::

    [data]                       # the keys of invsolve.datasets.training_dataset
    source = "phantoms"
    length = 20000
    size = [64, 64]
    flip = true

    [prior]                      # all optional
    prediction = "v"             # "eps", "x0" or "v"
    schedule = { name = "vp-linear", params = {} }
    normalization = "auto"       # or { low = 0.0, high = 1.15, unit = "a.u." }
    # physical_unit = { factor = 0.0384, unit = "1/mm" }   # one data unit is 0.0384 /mm
    # image_shape = [1, 64, 64]  # default: the data's shape (must match it)

    [prior.architecture]         # UNetPrior's network keyword arguments
    channels = [32, 64, 64]
    attention_levels = [false, false, true]

    [train]                      # only steps is required
    steps = 4000
    batch_size = 16

    [output]
    dir = "runs/ct-ellipses"

Sections and defaults
---------------------
``[data]``
    Passed to :func:`~invsolve.datasets.training_dataset`; a relative
    ``path`` is relative to the TOML file's folder (the working directory
    for a dict config).
``[prior]``
    ``image_shape`` (default: the dataset's ``shape``), ``prediction``
    (``"v"``), ``schedule`` (a table ``{name, params}``, names as in
    :func:`~invsolve.priors.schedule_from_config`; default ``vp-linear``),
    ``normalization`` (``"auto"``: the dataset's ``value_range`` onto
    ``[-1, 1]``; or ``{low, high, unit}``, in the data's units),
    ``physical_unit`` (a table ``{factor, unit}`` saying what one unit of
    the training data is: one data unit is ``factor`` ``unit``, ``factor
    > 0``, ``unit`` a non-empty string; the saved prior's normalization
    becomes ``normalization.in_units(factor, unit)``
    (:meth:`~invsolve.priors.Normalization.in_units`), so it takes and
    returns images in ``unit``; training, the network and its weights are
    the same with or without it; default: none, the prior stays in the
    data's units), ``architecture`` (the
    network keyword arguments of :class:`UNetPrior`; its defaults otherwise).
    ``conditioning`` (a table, for a conditional source such as
    ``"galaxy-world"``): ``kind = "vector"`` (the only kind: the source's
    conditioning vectors through an MLP added to the time embedding),
    ``drop`` (probability of replacing an item's condition by the learned
    null condition, for classifier-free guidance; 0.1) and
    ``guidance_scale`` (the saved prior's default guidance weight; 1.0) —
    see :func:`~invsolve.priors.recipe.parse_conditioning`.  Without it the
    prior is unconditional and a conditional source's conditions are unused.
``[train]``
    ======================  =====================================================
    ``steps``               optimiser steps (required)
    ``batch_size``          global batch, split evenly over processes (16)
    ``lr``                  AdamW learning rate (2e-4)
    ``weight_decay``        AdamW's decoupled weight decay (0)
    ``betas``               AdamW's ``[β₁, β₂]`` ([0.9, 0.999])
    ``grad_clip``           max global gradient norm, 0 for none (1.0)
    ``ema_decay``           EMA decay ``d`` in [0, 1) (0.999)
    ``warmup_steps``        linear learning-rate warm-up from 0 (0)
    ``bf16``                ``torch.autocast`` with bfloat16 on CPU or CUDA where the
                            device has native bfloat16 kernels (false; elsewhere
                            float32 with a warning, see
                            :func:`invsolve._precision.native_bfloat16`)
    ``seed``                seed of initial weights, noise, times and data order (0)
    ``num_workers``         ``DataLoader`` worker processes (0)
    ``sample_every``        PNG grid of EMA samples every N steps and at the
                            end, 0: never (0)
    ``sample_images``       images in that grid (8)
    ``sample_steps``        ancestral sampling steps of the grid (50)
    ``checkpoint_every``    ``train_state.pt`` and ``prior.pt`` every N steps,
                            0: at the end only (1000)
    ``log_every``           a ``log.json`` record every N steps and at the end (50)
    ``gaussian_rank``       principal components of the prior's Gaussian fit, 0:
                            no fit (64); fewer when the fit's images or pixels
                            allow fewer (at most ``images − 1`` and ``C·prod(spatial)``)
    ``gaussian_images``     the fit uses dataset items ``0 … N−1`` as augmented
                            in epoch 0, ``N = min(gaussian_images, len(data))``,
                            ``>= 2`` (2048)
    ``device``              ``"auto"`` (CUDA when available), ``"cpu"``,
                            ``"cuda"`` or ``"cuda:N"``
    ======================  =====================================================

    The EMA decay ramps up as ``min(d, (1 + k)/(10 + k))`` after ``k``
    steps, so that short runs do not average in the initial weights.

    The Gaussian fit (:class:`~invsolve.priors.gaussian_fit.LowRankGaussian`,
    :attr:`DiffusionPrior.gaussian_fit`) is the mean and top principal
    components of the fit's images in network units, computed once when a
    run starts (every process computes the same; a resume takes it from
    ``train_state.pt``) and attached to the saved EMA prior: samplers can
    start from its closed-form posterior (Wang & Vastola 2023,
    arXiv:2303.02490).  :func:`fit_gaussian_from_config` (``invsolve
    fit-gaussian``) adds one to a checkpoint trained without it.
``[output]``
    ``dir``: the output folder, relative to the working directory; the
    ``out`` argument (``--out``) replaces it.

Unknown sections or keys raise ``ValueError`` naming the key and the
section and listing the allowed keys.

Output folder
-------------
``prior.pt``
    The EMA prior (:func:`~invsolve.priors.save_prior`) with its Gaussian
    fit and, with ``physical_unit``, its normalization in that unit; its
    ``training`` metadata: the dataset's
    :meth:`~invsolve.datasets.TrainingDataset.describe`, the steps, the
    resolved config, a loss-curve summary and the fit's rank, image count
    and explained variance (``gaussian_fit``).  Written at every
    checkpoint and at the end.
``train_state.pt``
    Everything a resume needs, loadable with ``torch.load(weights_only=True)``
    (see :func:`load_train_state`), written atomically with ``prior.pt``.
``log.json``
    One record per ``log_every`` steps: mean loss, learning rate, images/s.
``config.json``
    The resolved config.
``samples/step_NNNNNNN.png``
    Grids of EMA samples in the prior's physical range.

Reproducibility and resume
--------------------------
No global random state is used: the initial weights come from the default
generator inside :func:`torch.random.fork_rng` (the caller's state is
restored), ``t`` and ``ε`` from a ``torch.Generator`` on the CPU, the data
order from :class:`~invsolve.datasets.EpochSampler` (consecutive epochs,
batches running across epoch boundaries) and the augmentations from the
dataset's ``(seed, epoch, index)`` contract.  All seeds derive from the
config.  ``resume=True`` loads ``train_state.pt`` — weights, EMA, AdamW
state, step, generator state, sampler position and loss history — and
continues bit for bit: a run stopped at any checkpoint and resumed ends
with the same weights, EMA weights and losses as one uninterrupted run (on
the same device and thread count).  A resume may change ``steps``,
``num_workers``, ``device``, the output folder and the sampling, checkpoint
and log intervals; any other change to the config or the data is an error.

Multiple processes
------------------
Under ``torchrun --nproc_per_node N -m invsolve.cli train-prior run.toml``
(``WORLD_SIZE > 1``) the processes join a ``torch.distributed`` group
(``gloo`` on the CPU, ``nccl`` on CUDA, one GPU per ``LOCAL_RANK``) and the
model runs in ``DistributedDataParallel``.  Every step takes the same
global batch as one process; rank ``r`` loads and runs rows
``[r·b, (r+1)·b)`` with ``b = batch_size / N``.  Every rank draws ``t`` and
``ε`` for the whole global batch from the same generator and keeps its
rows, so the noise of each image is that of a single-process run; DDP
averages the gradients of the per-rank mean losses, which is the gradient
of the global mean.  The logged loss is the all-reduced mean.  Only rank 0
writes files and shows progress.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from invsolve._precision import native_bfloat16
from invsolve.datasets.training import TrainingDataset
from invsolve.files import atomic_write, save_json, save_png

from .base import Normalization
from .checkpoint import save_prior
from .data_parallel import ShardBatches, process_group, rows_only
from .gaussian_fit import LowRankGaussian
from .recipe import (
    TrainSettings,
    build_dataset,
    build_prior,
    check_train,
    fit_gaussian,
    fit_record,
    fit_size,
    parse_conditioning,
    parse_physical_unit,
    read_config,
    resolve_output_dir,
    saved_normalization,
)
from .unet import UNetPrior

__all__ = [
    "train",
    "TrainingResult",
    "load_train_state",
    "save_sample_grid",
    "TRAIN_STATE_FORMAT",
]

#: value of the ``"format"`` key of ``train_state.pt``
TRAIN_STATE_FORMAT = "invsolve-train-state"
_TRAIN_STATE_VERSION = 1

# Config entries a resume may change: they do not alter the trained weights.
_RESUMABLE = {
    "train.steps",
    "train.num_workers",
    "train.device",
    "train.sample_every",
    "train.sample_images",
    "train.sample_steps",
    "train.checkpoint_every",
    "train.log_every",
    "output.dir",
}
# Streams of the seeds derived from [train] seed.
_INIT_STREAM = 0
_NOISE_STREAM = 1
_SAMPLES_STREAM = 2
_LOADER_STREAM = 3


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train` returns.

    Attributes
    ----------
    prior : UNetPrior
        The EMA prior (what ``prior.pt`` holds), in eval mode, on the training device.
    losses : torch.Tensor
        float64 ``(steps,)``: the loss of every step since the start of the
        run (before and after resumes), each the mean over the global batch.
    steps : int
        Steps done.
    output_dir : pathlib.Path
        The output folder.
    """

    prior: UNetPrior
    losses: torch.Tensor
    steps: int
    output_dir: Path


def train(
    config: Mapping[str, Any] | str | os.PathLike,
    *,
    resume: bool | str | os.PathLike = False,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train a :class:`UNetPrior` as a config describes (module docstring: the format).

    Parameters
    ----------
    config : mapping or path-like
        A TOML file, or the same tables as a dict (``{"data": {...},
        "prior": {...}, "train": {...}, "output": {...}}``).
    resume : bool or path-like
        ``True``: continue from ``train_state.pt`` in the output folder;
        a path: continue from that file; ``False``: start afresh (an output
        folder that already holds a ``train_state.pt`` is refused).
    progress : bool
        Show a progress bar with the loss (rank 0 only).
    out : path-like, optional
        Output folder, instead of ``[output] dir``.
    callback : callable, optional
        Called as ``callback(step, loss)`` on every process after each step
        and after that step's files are written; an exception it raises
        stops training (the files of the last checkpoint stay valid).

    Returns
    -------
    TrainingResult
        The EMA prior, the loss history, the steps and the output folder.

    Raises
    ------
    ValueError
        Unknown sections or keys (the message names the section and lists
        the allowed keys), bad values, a ``batch_size`` not divisible by the
        number of processes, or a checkpoint whose config or data differ
        from this run's in more than what a resume may change.
    TypeError
        Values of the wrong type.
    FileNotFoundError
        A missing config file, data path or resume file.
    FileExistsError
        ``resume=False`` with an output folder that holds a run.
    """
    tables, root = read_config(config)
    settings = check_train(tables["train"])
    output_dir = resolve_output_dir(tables.get("output", {}), out)
    dataset = build_dataset(tables["data"], root)
    description = dataset.describe()
    prior_table = tables.get("prior", {})
    conditioning = parse_conditioning(prior_table.get("conditioning"), dataset)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(_stream_seed(settings.seed, _INIT_STREAM))
        prior = build_prior(prior_table, dataset, conditioning)
    physical_unit = parse_physical_unit(prior_table.get("physical_unit"))
    resolved = {
        "data": description["config"],
        "prior": {
            "image_shape": list(prior.image_shape),
            "prediction": prior.prediction,
            "schedule": prior.schedule.to_config(),
            "normalization": prior.normalization.to_config(),
            "physical_unit": physical_unit,
            "architecture": prior.architecture(),
            "conditioning": conditioning,
        },
        "train": settings.to_config(),
        # as given (relative to the working directory, usually): no path of this machine in the checkpoint
        "output": {"dir": str(out if out is not None else tables.get("output", {}).get("dir"))},
    }
    state = _resume_state(resume, output_dir, resolved, description)
    with process_group(settings.device) as (rank, world_size, device):
        if settings.batch_size % world_size:
            raise ValueError(
                f"[train] batch_size = {settings.batch_size} must be divisible by the number of processes, "
                f"{world_size}"
            )
        fit_rank, fit_images = fit_size(settings.gaussian_rank, settings.gaussian_images, dataset)
        if fit_rank == 0:
            fit = None
        elif state is None:
            fit = fit_gaussian(dataset, prior.normalization, fit_rank, fit_images, progress and rank == 0)
        else:  # the fit of the run's start, restored with the EMA weights of the state
            fit = LowRankGaussian(prior.image_shape, fit_rank)
        trainer = _Trainer(prior, dataset, description, resolved, settings, output_dir, rank, world_size, device)
        trainer.prepare_saved_prior(saved_normalization(prior.normalization, physical_unit), fit, fit_images)
        return trainer.run(state, progress, callback)


def load_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``train_state.pt`` with ``torch.load(weights_only=True)`` and check its layout.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``step``, ``config`` (the resolved
        config), ``data`` (the dataset's ``describe()``), ``model`` and
        ``ema`` (state dicts), ``optimizer`` (AdamW's state dict),
        ``generator`` (the noise generator's state, uint8), ``sampler``
        (``{"epoch", "start"}``: where the data order continues),
        ``losses`` (float64, one per step) and ``log`` (the log records).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        For a file that is not a readable training state.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training state at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        raise ValueError(f"{path} is not a readable torch file: {type(error).__name__}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{path} is not an invsolve training state (no 'format': {TRAIN_STATE_FORMAT!r})")
    if state.get("format_version") != _TRAIN_STATE_VERSION:
        raise ValueError(
            f"{path} has format_version {state.get('format_version')!r}; this invsolve reads {_TRAIN_STATE_VERSION}"
        )
    expected = ("step", "config", "data", "model", "ema", "optimizer", "generator", "sampler", "losses", "log")
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}")
    return state


class _Trainer:
    """One training run: the model, its EMA, AdamW, the noise generator and the data order."""

    def __init__(
        self,
        prior: UNetPrior,
        dataset: TrainingDataset,
        description: dict[str, Any],
        resolved: dict[str, Any],
        settings: TrainSettings,
        output_dir: Path,
        rank: int,
        world_size: int,
        device: torch.device,
    ) -> None:
        self.prior = prior.to(device).train()
        self.ema = copy.deepcopy(self.prior).requires_grad_(False).eval()
        self.ema.inference_dtype = "bfloat16" if settings.bf16 else "float32"
        self.dataset = dataset
        self.description = description
        self.resolved = resolved
        self.settings = settings
        self.output_dir = output_dir
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.optimizer = torch.optim.AdamW(
            self.prior.parameters(), lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay
        )
        self.generator = torch.Generator().manual_seed(_stream_seed(settings.seed, _NOISE_STREAM))
        self.network: Callable[..., torch.Tensor] = self.prior
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.network = DistributedDataParallel(
                self.prior, device_ids=[device.index] if device.type == "cuda" else None
            )
        shard = settings.batch_size // world_size
        self.rows = (rank * shard, (rank + 1) * shard)
        self.losses: list[float] = []
        self.log: list[dict[str, Any]] = []
        self.fit_images = 0
        conditioning = resolved["prior"]["conditioning"]
        self.condition_drop = None if conditioning is None else conditioning["drop"]
        self.autocast = settings.bf16 and native_bfloat16(device)
        if settings.bf16 and not self.autocast and rank == 0:
            found = f"CPU capability {torch.backends.cpu.get_cpu_capability()}" if device.type == "cpu" else str(device)
            warnings.warn(
                f"[train] bf16 = true, but {device.type} has no native bfloat16 kernels ({found}): training in "
                "float32 instead, which is far faster there",
                stacklevel=2,
            )

    def prepare_saved_prior(
        self, normalization: Normalization, fit: LowRankGaussian | None, fit_images: int
    ) -> None:
        """Give the EMA prior (the one saved) its physical normalization and Gaussian fit.

        The trained prior keeps the data's normalization: it maps the batches
        to network units.  The two differ only in the unit label of the same map.
        """
        self.ema.normalization = normalization
        self.ema.set_gaussian_fit(fit)
        self.fit_images = fit_images if fit is not None else 0

    # -- the loop ------------------------------------------------------------------
    def run(
        self, state: dict[str, Any] | None, progress: bool, callback: Callable[[int, float], None] | None
    ) -> TrainingResult:
        settings = self.settings
        start = self._load(state) if state is not None else 0
        if start > settings.steps:
            raise ValueError(
                f"the training state is at step {start}, beyond [train] steps = {settings.steps}; "
                "raise steps to continue it"
            )
        if self.rank == 0:
            save_json(self.output_dir / "config.json", self.resolved)
        position = start * settings.batch_size
        batches = ShardBatches(
            len(self.dataset),
            seed=settings.seed,
            batch_size=settings.batch_size,
            rows=self.rows,
            epoch=position // len(self.dataset),
            start=position % len(self.dataset),
            count=settings.steps - start,
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=settings.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(_stream_seed(settings.seed, _LOADER_STREAM)),
        )
        bar = tqdm(
            total=settings.steps, initial=start, desc="training", unit="step", disable=not progress or self.rank != 0
        )
        clock, logged = time.perf_counter(), start
        with bar:
            for step, batch in enumerate(loader, start=start + 1):
                loss = self._update(step - 1, batch)
                self.losses.append(loss)
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                bar.update()
                if step % settings.log_every == 0 or step == settings.steps:
                    now = time.perf_counter()
                    self._log(step, logged, (step - logged) * settings.batch_size / (now - clock))
                    clock, logged = now, step
                if self.rank == 0:
                    self._write(step)
                if callback is not None:
                    callback(step, loss)
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
        return TrainingResult(
            self.ema, torch.tensor(self.losses, dtype=torch.float64), len(self.losses), self.output_dir
        )

    def _update(self, step: int, local: torch.Tensor | dict[str, torch.Tensor]) -> float:
        """One AdamW update (number ``step``, 0-based) on this rank's rows of the global batch.

        ``local`` is this rank's rows: images, or ``{"image", "condition"}``
        from a conditional source.  For a conditional prior the condition
        dropout mask is drawn for the whole global batch from the run's
        noise generator (the same on every rank), before ``t`` and ``ε``.
        """
        settings = self.settings
        low, high = self.rows
        images = local["image"] if isinstance(local, dict) else local
        x0 = torch.zeros((settings.batch_size, *self.prior.image_shape), dtype=torch.float32, device=self.device)
        x0[low:high] = self.prior.to_network(images.to(self.device, non_blocking=True))
        condition = drop = None
        if self.condition_drop is not None:
            size = self.prior.conditioning.size
            condition = torch.zeros((settings.batch_size, size), dtype=torch.float32, device=self.device)
            condition[low:high] = local["condition"].to(self.device, non_blocking=True)
            drop = (torch.rand(settings.batch_size, generator=self.generator) < self.condition_drop).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            per_item = self.prior.training_loss(
                x0, self.generator, condition, drop, network=rows_only(self.network, low, high)
            )
        loss = per_item[low:high].mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.prior.parameters(), settings.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = settings.learning_rate(step)
        self.optimizer.step()
        weight = 1.0 - settings.ema_decay_at(step)
        with torch.no_grad():
            for average, current in zip(self.ema.parameters(), self.prior.parameters()):
                average.lerp_(current, weight)
            averages = dict(self.ema.named_buffers())  # by name: the EMA also holds the Gaussian fit
            for name, current in self.prior.named_buffers():
                averages[name].copy_(current)
        reported = loss.detach().clone()
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(reported)
            reported /= self.world_size
        return float(reported)

    def _log(self, step: int, since: int, images_per_second: float) -> None:
        self.log.append(
            {
                "step": step,
                "loss": float(np.mean(self.losses[since:])),
                "lr": self.settings.learning_rate(step - 1),
                "images_per_s": images_per_second,
            }
        )
        if self.rank == 0:
            save_json(self.output_dir / "log.json", self.log)

    # -- files ---------------------------------------------------------------------
    def _write(self, step: int) -> None:
        """Rank 0's files after ``step``: sample grid and checkpoint, when due."""
        settings = self.settings
        final = step == settings.steps
        if settings.sample_every and (step % settings.sample_every == 0 or final):
            condition = None
            if self.condition_drop is not None:  # the conditions of the first items, as a reference
                count = min(settings.sample_images, len(self.dataset))
                items = [self.dataset.item(index, 0)["condition"] for index in range(count)]
                condition = torch.stack(items * math.ceil(settings.sample_images / count))[: settings.sample_images]
                condition = condition.to(self.device)
            samples = self.ema.sample(
                settings.sample_images,
                steps=settings.sample_steps,
                seed=_stream_seed(settings.seed, _SAMPLES_STREAM),
                progress=False,
                condition=condition,
            )
            normalization = self.ema.normalization
            low, high = normalization.offset - normalization.scale, normalization.offset + normalization.scale
            save_sample_grid(
                self.output_dir / "samples" / f"step_{step:07d}.png", samples, (low, high), unit=normalization.unit,
                title=f"Samples of the EMA prior after {step} training steps ({settings.sample_steps} sampling steps)",
            )
        if (settings.checkpoint_every and step % settings.checkpoint_every == 0) or final:
            self._checkpoint(step)

    def _checkpoint(self, step: int) -> None:
        position = step * self.settings.batch_size
        state = {
            "format": TRAIN_STATE_FORMAT,
            "format_version": _TRAIN_STATE_VERSION,
            "step": step,
            "config": self.resolved,
            "data": self.description,
            "model": self.prior.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": {"epoch": position // len(self.dataset), "start": position % len(self.dataset)},
            "losses": torch.tensor(self.losses, dtype=torch.float64),
            "log": self.log,
        }
        atomic_write(self.output_dir / "train_state.pt", lambda temporary: torch.save(state, temporary))
        training = {
            "data": self.description,
            "steps": step,
            "world_size": self.world_size,
            "config": self.resolved,
            "loss": _loss_summary(self.losses),
            "gaussian_fit": fit_record(self.ema.gaussian_fit, self.fit_images),
        }
        save_prior(self.output_dir / "prior.pt", self.ema, training=training)

    def _load(self, state: dict[str, Any]) -> int:
        """Restore a :func:`load_train_state` dict; returns its step."""
        self.prior.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.losses = state["losses"].tolist()
        self.log = list(state["log"])
        step = int(state["step"])
        position = step * self.settings.batch_size
        expected = {"epoch": position // len(self.dataset), "start": position % len(self.dataset)}
        if state["sampler"] != expected or len(self.losses) != step:
            raise ValueError(
                f"inconsistent training state at step {step}: sampler position {state['sampler']} "
                f"(expected {expected}) and {len(self.losses)} losses"
            )
        return step


# -- the config ------------------------------------------------------------------------
def _resume_state(
    resume: bool | str | os.PathLike, output_dir: Path, resolved: dict[str, Any], description: dict[str, Any]
) -> dict[str, Any] | None:
    """The training state to continue, checked against this run's config and data; ``None`` to start afresh."""
    default = output_dir / "train_state.pt"
    if resume is False:
        if default.exists():
            raise FileExistsError(
                f"{output_dir} already holds a training run ({default.name}); resume it (resume=True, --resume) "
                "or choose another output folder"
            )
        return None
    if resume is True:
        path = default
    elif isinstance(resume, (str, os.PathLike)):
        path = Path(resume)
    else:
        raise TypeError(f"resume must be a bool or the path of a train_state.pt, got {resume!r}")
    state = load_train_state(path)
    changed = [key for key in _differences(state["config"], resolved) if key not in _RESUMABLE]
    if changed:
        raise ValueError(
            f"cannot resume {path}: the config differs in {', '.join(changed)} (a resume may change only "
            f"{', '.join(sorted(_RESUMABLE))})"
        )
    changed = _differences(state["data"], description)
    if changed:
        raise ValueError(f"cannot resume {path}: the training data differ in {', '.join(changed)}")
    return state


def _differences(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted names of the entries in which two JSON-like values differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        names = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else str(key)
            names += _differences(old.get(key), new.get(key), name) if key in old and key in new else [name]
        return names
    return [] if old == new else [prefix or "(the whole value)"]


# -- seeds, summaries --------------------------------------------------------
def _stream_seed(seed: int, stream: int) -> int:
    """A 64-bit seed for one random stream of a run, from ``SeedSequence((seed, stream))``."""
    high, low = np.random.SeedSequence((seed, stream)).generate_state(2, np.uint32)
    return (int(high) << 32) | int(low)


def _loss_summary(losses: Sequence[float]) -> dict[str, Any]:
    """First, last and lowest window mean and a curve of at most 100 window means ``[end step, mean]``."""
    window = max(1, math.ceil(len(losses) / 100))
    curve = [
        [min(start + window, len(losses)), float(np.mean(losses[start : start + window]))]
        for start in range(0, len(losses), window)
    ]
    means = [mean for _, mean in curve]
    return {"window": window, "first": means[0], "last": means[-1], "min": min(means), "curve": curve}


def save_sample_grid(
    path: str | os.PathLike,
    images: torch.Tensor,
    value_range: tuple[float, float],
    columns: int | None = None,
    *,
    unit: str = "",
    title: str = "",
) -> Path:
    """Tile images into one PNG with a colour bar stating the window, atomically (through ``save_png``).

    Parameters
    ----------
    path : path-like
        The PNG file.
    images : torch.Tensor
        ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (the central ``D`` slice is
        shown).  Three channels are shown as RGB (the window in each title);
        other channel counts as one grey panel per channel, side by side.
    value_range : (float, float)
        The window, in ``unit``: values mapped to the ends of the grey scale
        (clipped).
    columns : int, optional
        Images per row (default: about the square root of ``N``).
    unit : str
        The images' unit, the colour bar's label (e.g. ``"a.u."``).
    title : str
        Figure title (default: the number of samples).
    """
    if images.dim() not in (4, 5):
        raise ValueError(f"images must be (N, C, H, W) or (N, C, D, H, W), got shape {tuple(images.shape)}")
    if images.dim() == 5:
        images = images[:, :, images.shape[2] // 2]
    count, channels = images.shape[:2]
    per_row = columns or math.ceil(math.sqrt(count))
    if channels == 3:
        panels, titles = list(images), [f"sample {number + 1}" for number in range(count)]
    else:
        panels = list(images.flatten(0, 1))
        titles = [
            f"sample {number + 1}" + (f", channel {channel + 1}" if channels > 1 else "")
            for number in range(count)
            for channel in range(channels)
        ]
        per_row *= channels
    return save_png(
        path, panels, titles, value_range=tuple(value_range), columns=per_row,
        figure_title=title or f"{count} samples", unit=unit,
    )
