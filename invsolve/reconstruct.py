"""``reconstruct()``: one call from a measurement to an image with error bars."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from invsolve._checks import check_int, check_tensor
from invsolve._random import make_generator
from invsolve.operators import GaussianLikelihood, LinearOperator
from invsolve.presets import PRESETS, preset_settings
from invsolve.sample_checkpoint import SampleCheckpoint, run_fingerprint
from invsolve.priors import DiffusionPrior
from invsolve.samplers import Problem, SamplerStep, get_sampler

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
        Per-pixel standard deviation of the posterior samples,
        ``(B, *in_shape)``, when ``n_samples > 1`` and the sampler draws
        posterior samples.  ``None`` for point estimators (RED-Diff), whose
        runs differ by optimiser noise only.
    run_spread : torch.Tensor or None
        For point estimators with ``n_samples > 1``: the per-pixel standard
        deviation across runs, ``(B, *in_shape)`` — optimiser noise, *not*
        posterior uncertainty.
    trajectory : torch.Tensor or None
        ``(steps, B, *in_shape)`` clean-image estimates of every step of the
        first run (physical units) when ``trajectory=True``.
    info : dict
        Sampler name, hyperparameters, steps, network evaluations per run,
        start time, seed and wall time in seconds.
    """

    image: torch.Tensor
    samples: torch.Tensor | None = None
    std: torch.Tensor | None = None
    run_spread: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


def reconstruct(
    y: torch.Tensor,
    operator: LinearOperator,
    prior: DiffusionPrior,
    sampler: str = "red-diff",
    noise_std: float = 0.0,
    steps: int | None = None,
    n_samples: int | None = None,
    seed: int | torch.Generator | None = 0,
    progress: bool = True,
    *,
    preset: str | None = None,
    condition: torch.Tensor | None = None,
    start_time: float | None = None,
    start_image: torch.Tensor | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
    trajectory: bool = False,
    max_batch: int | None = None,
    checkpoint: str | os.PathLike | None = None,
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
        Standard deviation of the measurement noise, in ``y``'s units (per
        real component for complex data).
    steps : int, optional
        Number of steps; the preset's or else the sampler's default if omitted.
    n_samples : int, optional
        Reconstructions per measurement (the preset's, else 1).  With more than one, ``image`` is
        their mean and ``std`` their per-pixel standard deviation (for
        samplers that draw posterior samples; point estimators report
        ``run_spread`` instead).  Deterministic samplers (``dpir``) take 1 only.
    seed : int or torch.Generator or None
        Seed of all random draws (``None``: not reproducible).
    progress : bool
        Show a tqdm progress bar.
    preset : str, optional
        Named settings validated for a task (:mod:`invsolve.presets`, e.g.
        ``"ct-sparse"``): the sampler's steps, number of samples and
        hyperparameters, and for presets tuned from a start image (e.g.
        ``"ct-sparse-from-tv"``) the start time, which then needs
        ``start_image``; explicit arguments win.  Refused for an operator or
        a sampler the preset was not tuned for.
    condition : torch.Tensor, optional
        What a conditional prior is conditioned on, one per measurement.
    start_time : float, optional
        For samplers that start from pure noise: start at this time in
        ``(0, 1]`` from ``start_image`` or else a draw of the closed-form
        posterior of the prior's Gaussian fit, saving the early steps (see
        :meth:`Sampler.run`).
    start_image : torch.Tensor, optional
        With ``start_time``: the image the run starts from, diffused to that
        time — a classical reconstruction such as
        :func:`invsolve.tv_reconstruct`'s (Chung, Sim & Ye, CVPR 2022).
        ``(B, *operator.in_shape)`` like ``y``'s batch (or ``operator.in_shape``
        for one measurement), physical units.  The 3D samplers need it for a
        warm start.
    callback : callable, optional
        Called with a :class:`~invsolve.samplers.SamplerStep` after every step.
    trajectory : bool
        Keep the clean-image estimate of every step of the first run.
    max_batch : int, optional
        The most images one sampler run may hold: samples are drawn
        ``max(1, max_batch // B)`` at a time.  Default ``B``: one sample per
        run, so memory does not grow with ``n_samples``.
    checkpoint : path, optional
        Make a long run resumable: after every sampler run the samples drawn
        so far and the random generator's state are written to this file
        (atomically; :mod:`invsolve.sample_checkpoint`).  If the file exists
        and holds the start of this same run (same ``y``, operator, prior,
        sampler settings and seed), only the missing samples are drawn, from
        the random state the file kept, and the result equals an
        uninterrupted run's.  The file is left in place;
        delete it once the result is safe.  Not with ``trajectory=True``.
    **hyperparameters
        Passed to the sampler (e.g. ``eta=0.5`` for DDS).

    Returns
    -------
    Reconstruction

    Raises
    ------
    TypeError
        For an ``operator`` that is not a :class:`LinearOperator`, a
        ``prior`` that is not a :class:`DiffusionPrior`, a ``y`` that is not
        a float32/float64 (or complex) tensor, or non-integer counts.
    ValueError
        Before any computation, for every input the sampler cannot run on:
        ``y`` of the wrong shape, empty or with NaN/Inf; a prior that does
        not fit the operator; a negative or non-finite ``noise_std``; an
        unknown sampler, preset or hyperparameter, or one out of its range;
        ``steps``, ``n_samples`` or ``max_batch`` below their minimum; a
        ``start_time`` outside ``(0, 1]``; a ``start_image`` of the wrong
        shape, with NaN/Inf, or without ``start_time``; a preset that starts
        from an image without ``start_image``; mismatched devices.
    FloatingPointError
        If the sampler diverged: its image holds NaN or Inf although the
        inputs were finite (e.g. a step size too large for the data's
        scale).  Never a silent NaN.
    """
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
    check_tensor(y, "y")
    if preset is not None:
        settings = preset_settings(preset, sampler, operator)
        preset_steps, preset_samples = settings.pop("steps"), settings.pop("n_samples")
        preset_start_time = settings.pop("start_time", None)
        steps = preset_steps if steps is None else steps
        n_samples = preset_samples if n_samples is None else n_samples
        hyperparameters = {**settings, **hyperparameters}
        if start_time is None and preset_start_time is not None:
            if start_image is None:
                weight = PRESETS[preset].start_tv_weight
                raise ValueError(
                    f"preset {preset!r} starts {sampler} at start_time={preset_start_time} from an image: its settings "
                    f"were tuned starting from the TV reconstruction of weight {weight}; give start_image= (e.g. "
                    f"invsolve.tv_reconstruct(y, operator, {weight})), or start_time= to start elsewhere"
                )
            start_time = preset_start_time
    n_samples = 1 if n_samples is None else n_samples
    chosen = get_sampler(sampler, **hyperparameters)
    chosen.check_operator(operator, prior)
    likelihood = GaussianLikelihood(operator, noise_std)
    if tuple(y.shape) == tuple(operator.out_shape):
        y = y.unsqueeze(0)
        if isinstance(start_image, torch.Tensor) and tuple(start_image.shape) == tuple(operator.in_shape):
            start_image = start_image.unsqueeze(0)
    problem = Problem(y, likelihood, condition, start_image)
    n_samples = check_int(n_samples, "n_samples")
    if chosen.deterministic and n_samples > 1:
        raise ValueError(
            f"sampler {sampler!r} is deterministic: every run gives the same image, so n_samples must be 1, "
            f"got {n_samples}"
        )
    steps = check_int(chosen.default_steps if steps is None else steps, "steps")
    chosen.check(problem, prior, steps, start_time)
    batch = y.shape[0]
    max_batch = check_int(batch if max_batch is None else max_batch, "max_batch")
    per_run = min(n_samples, max(1, max_batch // batch))

    generator = make_generator(seed, y.device)
    started = time.perf_counter()
    draws: list[torch.Tensor] = []
    path = None
    run_info: dict[str, Any] = {}
    store = None
    if checkpoint is not None:
        if trajectory:
            raise ValueError("trajectory=True cannot be resumed from a checkpoint: pass one of them, not both")
        settings = {
            "sampler": sampler, "hyperparameters": chosen.hyperparameters(), "steps": steps, "n_samples": n_samples,
            "per_run": per_run, "seed": seed if isinstance(seed, int) or seed is None else "torch.Generator", "noise_std": likelihood.noise_std,
            "start_time": start_time,
        }
        store = SampleCheckpoint(checkpoint, run_fingerprint(y, operator, prior, condition, settings, start_image))
        resumed = store.load()
        if resumed is not None:
            finished, generator_state, run_info = resumed
            draws = [draw.to(y.device) for draw in finished]
            if generator_state is not None:
                generator.set_state(generator_state)
    done = sum(draw.shape[1] for draw in draws)
    for first in range(done, n_samples, per_run):
        count = min(per_run, n_samples - first)
        repeated = problem if count == 1 else problem.repeat(count)
        result = chosen.run(
            repeated,
            prior,
            steps=steps,
            generator=generator,
            callback=callback,
            start_time=start_time,
            trajectory=trajectory and first == 0,
            progress=progress,
        )
        draws.append(result.image.reshape(batch, count, *result.image.shape[1:]))
        if result.trajectory is not None:
            path = result.trajectory[:, ::count]  # the first sample of each item
        run_info = result.info
        if store is not None:
            store.save(draws, generator, run_info)
    samples = torch.cat(draws, dim=1)
    if not bool(torch.isfinite(samples).all()):
        raise FloatingPointError(
            f"sampler {sampler!r} diverged: its result holds {int((~torch.isfinite(samples)).sum())} NaN or "
            f"infinite entries although y was finite (steps={steps}, hyperparameters {chosen.hyperparameters()}); "
            "lower the step size or the data weight, or check that noise_std and y's scale match the prior's units"
        )
    info = {
        **run_info,
        "n_samples": n_samples,
        "preset": preset,
        "noise_std": likelihood.noise_std,
        "seed": seed if isinstance(seed, int) else None,
        "seconds": time.perf_counter() - started,
    }
    if n_samples == 1:
        return Reconstruction(image=samples[:, 0], trajectory=path, info=info)
    spread = samples.std(dim=1)
    if chosen.draws_samples:
        return Reconstruction(image=samples.mean(dim=1), samples=samples, std=spread, trajectory=path, info=info)
    return Reconstruction(image=samples.mean(dim=1), samples=samples, run_spread=spread, trajectory=path, info=info)
