"""``reconstruct()``: one call from a measurement to an image with error bars."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from invsolve._checks import check_batched_shape, check_finite, check_int, check_nonnegative, check_tensor
from invsolve._random import make_generator
from invsolve.operators import LinearOperator
from invsolve.priors import DiffusionPrior
from invsolve.samplers import get_sampler

__all__ = ["Reconstruction", "reconstruct"]


@dataclass
class Reconstruction:
    """The result of :func:`reconstruct`.

    Attributes
    ----------
    image : torch.Tensor
        ``(B, *in_shape)`` in physical units: the estimate, or the mean of
        the samples when more than one was drawn.
    samples : torch.Tensor or None
        ``(B, n_samples, *in_shape)`` when ``n_samples > 1``.
    std : torch.Tensor or None
        Per-pixel standard deviation of the samples, ``(B, *in_shape)``, when
        ``n_samples > 1``.
    info : dict
        Sampler name, hyperparameters, steps, seed and wall time in seconds.
    """

    image: torch.Tensor
    samples: torch.Tensor | None = None
    std: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


def reconstruct(
    y: torch.Tensor,
    operator: LinearOperator,
    prior: DiffusionPrior,
    sampler: str = "red-diff",
    noise_std: float = 0.0,
    steps: int | None = None,
    n_samples: int = 1,
    seed: int | torch.Generator | None = 0,
    progress: bool = True,
    **hyperparameters: Any,
) -> Reconstruction:
    """Reconstruct images from measurements ``y = A x + noise`` with a diffusion prior.

    Parameters
    ----------
    y : torch.Tensor
        Measurements, ``(B, *operator.out_shape)`` or one measurement shaped
        ``operator.out_shape``; physical units; finite.
    operator : LinearOperator
        The forward model ``A``.
    prior : DiffusionPrior
        The image prior; its image shape must equal ``operator.in_shape``.
    sampler : str
        Registered sampler name (see :func:`invsolve.available_samplers`).
    noise_std : float
        Standard deviation of the measurement noise, in ``y``'s units.
    steps : int, optional
        Number of diffusion steps; the sampler's default if omitted.
    n_samples : int
        Reconstructions per measurement.  With more than one, ``image`` is
        their mean and ``std`` their per-pixel standard deviation.
    seed : int or torch.Generator or None
        Seed of all random draws (``None``: not reproducible).
    progress : bool
        Show a tqdm progress bar.
    **hyperparameters
        Passed to the sampler (e.g. ``lr=0.2`` for RED-Diff).

    Returns
    -------
    Reconstruction
    """
    chosen = get_sampler(sampler, **hyperparameters)
    chosen.check_compatible(operator, prior)
    check_tensor(y, "y")
    if tuple(y.shape) == tuple(operator.out_shape):
        y = y.unsqueeze(0)
    check_batched_shape(y, operator.out_shape, f"y (measurements of {operator.describe()})")
    check_finite(y, "y")
    noise_std = check_nonnegative(noise_std, "noise_std")
    if operator.device is not None and y.device != operator.device:
        raise ValueError(f"y is on {y.device} but the operator is on {operator.device}")
    if y.device != prior.device:
        raise ValueError(f"y is on {y.device} but the prior is on {prior.device}")
    n_samples = check_int(n_samples, "n_samples")
    steps = check_int(chosen.default_steps if steps is None else steps, "steps")

    batch = y.shape[0]
    repeated = y.repeat_interleave(n_samples, dim=0) if n_samples > 1 else y
    generator = make_generator(seed, y.device)
    started = time.perf_counter()
    result = chosen.run(
        repeated, operator, prior, noise_std=noise_std, steps=steps, generator=generator, progress=progress
    )
    info = {
        "sampler": chosen.name,
        "hyperparameters": chosen.hyperparameters(),
        "steps": steps,
        "n_samples": n_samples,
        "noise_std": noise_std,
        "seed": seed if isinstance(seed, int) else None,
        "seconds": time.perf_counter() - started,
    }
    if n_samples == 1:
        return Reconstruction(image=result, info=info)
    samples = result.reshape(batch, n_samples, *result.shape[1:])
    return Reconstruction(image=samples.mean(dim=1), samples=samples, std=samples.std(dim=1), info=info)
