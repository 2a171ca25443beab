"""Steps that several samplers share: where they start, how they move between noise levels,
and how they hand an estimate to the data term.

Samplers keep their state in the prior's network range; the data term
(:class:`~invsolve.samplers.Problem`) is in physical units.  The
conversions live here, once:

* :func:`initial_state` — pure noise at ``t = 1``, or at ``start_time`` the
  problem's start image or a draw of the closed-form Gaussian posterior
  (the warm starts), noised to that time;
* :func:`ddim_step` — DDIM's update with stochasticity ``η`` for any schedule;
* :func:`time_at_level` — the time of a noise level, cached;
* :func:`denoise_at_level` — the denoiser seen as a variance-exploding one
  (``z = x₀ + s·ε``), the view of DAPS and PnP-DM, and
  :func:`sample_denoising_posterior`, a draw from ``p(x₀ | z)``;
* :func:`karras_levels` — noise levels with Karras et al.'s spacing;
* :func:`data_consistent` — a least-squares step on the data anchored at a
  network-range estimate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from invsolve._random import randn_like
from invsolve.operators import cg
from invsolve.priors import DiffusionPrior, EDMSchedule, NoiseSchedule

from .problem import Problem

__all__ = [
    "alpha_sigma_at",
    "diffused",
    "initial_state",
    "gaussian_posterior_draw",
    "ddim_step",
    "time_at_level",
    "denoise_at_level",
    "sample_denoising_posterior",
    "karras_levels",
    "data_consistent",
]

#: conjugate-gradient budget of the warm start's measurement-space solve
_WARM_START_ITERATIONS = 200
_WARM_START_TOL = 1e-6
#: the lowest level of a denoising-posterior draw, relative to its noise level
_DENOISING_FLOOR = 1e-3


def alpha_sigma_at(prior: DiffusionPrior, t: float) -> tuple[float, float]:
    """The prior's ``(α_t, σ_t)`` at one time ``t``, as floats."""
    alpha, sigma = prior.schedule.alpha_sigma(torch.tensor(float(t), dtype=torch.float64))
    return float(alpha), float(sigma)


def diffused(prior: DiffusionPrior, clean: torch.Tensor, t: float, noise: torch.Tensor) -> torch.Tensor:
    """``x_t = α_t·x + σ_t·ε``: the forward process's state at time ``t`` of ``clean`` (network range) for ``noise``.

    The one place a start image becomes a start state (:func:`initial_state`
    and the volume samplers' ``SliceAugmented3D._start``).
    """
    alpha, sigma = alpha_sigma_at(prior, t)
    return alpha * clean + sigma * noise


def initial_state(
    problem: Problem, prior: DiffusionPrior, start_time: float | None, generator: torch.Generator | None
) -> tuple[torch.Tensor, float]:
    """The state a sampler that starts from noise begins with, and its time.

    ``start_time=None``: ``σ_1·ε`` at ``t = 1``.  Otherwise
    ``x_t = α_t x + σ_t ε`` at ``t = start_time`` with ``x`` the problem's
    start image (Chung, Sim & Ye, "Come-Closer-Diffuse-Faster", CVPR 2022: a
    good estimate diffused forward to a small time contracts to the
    posterior in few reverse steps) or, without one, ``x`` drawn by
    :func:`gaussian_posterior_draw` — what the reverse process of a Gaussian
    prior would have reached at that time (Wang & Vastola, "Diffusion Models
    Generate Images Like Painters", arXiv:2303.02490, 2023: the early,
    high-noise part of a trained model's trajectory follows the Gaussian
    model of its data).
    """
    if start_time is None:
        return prior.initial_noise(problem.batch_size, generator), 1.0
    if problem.start_image is not None:
        clean = prior.to_network(problem.start_image.to(prior.dtype))
    else:
        clean = gaussian_posterior_draw(problem, prior, generator)
    return diffused(prior, clean, start_time, randn_like(clean, generator)), float(start_time)


def gaussian_posterior_draw(
    problem: Problem, prior: DiffusionPrior, generator: torch.Generator | None
) -> torch.Tensor:
    """One draw per item from the posterior of the prior's Gaussian fit given the data, network range.

    With the fit ``N(μ, Σ)`` in network units, the normalisation
    ``x_phys = s·x + o`` and ``y = A x_phys + n``, ``n ~ N(0, σ²I)``, the
    draw uses Matheron's rule (perturbation of the prior draw):

        x = x_p + s·Σ Aᴴ w,   (s² AΣAᴴ + σ²I) w = y − A(s·x_p + o) − n,

    with ``x_p ~ N(μ, Σ)`` and ``n ~ N(0, σ²I)``, solved by conjugate
    gradients in measurement space (it needs ``Σ`` only as a product, never
    its inverse).  It is an exact posterior draw when the solve converges
    (Doucet, "A note on efficient conditional simulation of Gaussian
    distributions", 2010).  For ``σ = 0`` the system is singular and, for
    a smooth prior, very badly conditioned: 200 CG iterations then leave the
    draw far from exact (measured on the 8×8 CT oracle problem with
    ``σ = 0``: 7.7 network units from ``A⁺y``, which the posterior collapses
    to there), so give the data's noise level, however small.

    Returns
    -------
    torch.Tensor
        ``(B, *image_shape)`` in network range, the prior's dtype.
    """
    fit = prior.gaussian_fit
    batch = problem.batch_size
    prior_draw = fit.sample(batch, generator).to(device=prior.device, dtype=prior.dtype)
    if problem.likelihood is None:
        return prior_draw
    scale = prior.normalization.scale
    operator, y, sigma = problem.operator, problem.y, problem.noise_std
    work = y.real.dtype if y.is_complex() else y.dtype
    prior_draw = prior_draw.to(work)

    def real_image(value: torch.Tensor) -> torch.Tensor:
        return value.real if value.is_complex() else value

    innovation = problem.residual(prior.to_physical(prior_draw))
    if sigma > 0:
        innovation = innovation - sigma * randn_like(innovation, generator)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return scale**2 * operator(fit.cov_matvec(real_image(operator.adjoint(v)))) + sigma**2 * v

    weights = cg(matvec, innovation, iterations=_WARM_START_ITERATIONS, tol=_WARM_START_TOL)
    update = scale * fit.cov_matvec(real_image(operator.adjoint(weights)))
    return (prior_draw + update).to(prior.dtype)


def ddim_step(
    prior: DiffusionPrior,
    x0: torch.Tensor,
    eps: torch.Tensor,
    s: float | None,
    t: float,
    eta: float,
    generator: torch.Generator | None,
    draw_noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDIM's move from time ``t`` to ``s < t`` given estimates ``x̂₀`` and ``ε̂`` (network range).

    ``x_s = α_s x̂₀ + √(σ_s² − c²)·ε̂ + c·ε`` with ``c = η·σ_s·σ_{t|s}/σ_t`` and
    ``σ²_{t|s} = σ_t² − (α_t/α_s)²σ_s²`` (Song, Meng & Ermon, "Denoising
    Diffusion Implicit Models", ICLR 2021, eq. 12, written for any
    schedule): ``η = 0`` is the deterministic DDIM step, ``η = 1`` DDPM's
    ancestral step.  ``s=None`` is the clean end and returns ``x̂₀``.
    ``draw_noise(x̂₀)`` draws ``ε`` (default: from ``generator``; a volume
    split over processes draws its slab of the whole volume's noise).
    """
    if s is None:
        return x0
    alpha_t, sigma_t = alpha_sigma_at(prior, t)
    alpha_s, sigma_s = alpha_sigma_at(prior, s)
    conditional_var = max(sigma_t**2 - (alpha_t / alpha_s) ** 2 * sigma_s**2, 0.0)
    c = eta * sigma_s * math.sqrt(conditional_var) / sigma_t
    x_s = alpha_s * x0 + math.sqrt(max(sigma_s**2 - c**2, 0.0)) * eps
    if c == 0:
        return x_s
    return x_s + c * (randn_like(x0, generator) if draw_noise is None else draw_noise(x0))


@functools.lru_cache(maxsize=4096)
def time_at_level(schedule: NoiseSchedule, level: float) -> float:
    """The time ``t`` at which ``schedule``'s noise level ``σ_t/α_t`` is ``level`` (network units).

    :meth:`~invsolve.priors.NoiseSchedule.time_at_noise_ratio` (a float64
    bisection, about 2 ms, a tenth of a 64² network call on a CPU), cached:
    samplers that move between noise levels revisit theirs — for the
    denoiser call and for the step they report, and in every run of
    ``n_samples``.
    """
    return float(schedule.time_at_noise_ratio(float(level)))


def denoise_at_level(
    prior: DiffusionPrior, z: torch.Tensor, level: float, condition: torch.Tensor | None = None
) -> torch.Tensor:
    """``E[x₀ | z]`` for ``z = x₀ + level·ε`` (network range): the prior as a variance-exploding denoiser.

    The time ``t`` with ``σ_t/α_t = level`` is found once
    (:func:`time_at_level`) and the prior is called on ``x_t = α_t·z``.
    """
    t = time_at_level(prior.schedule, level)
    alpha, _ = alpha_sigma_at(prior, t)
    return prior.denoise(alpha * z, t, condition)


def karras_levels(high: float, low: float, count: int, rho: float = 7.0) -> torch.Tensor:
    """``count`` noise levels from ``high`` down to ``low`` with Karras et al.'s spacing, float64.

    ``σ_i = (high^{1/ρ} + i/(count − 1)·(low^{1/ρ} − high^{1/ρ}))^ρ``
    (Karras, Aittala, Aila & Laine, "Elucidating the Design Space of
    Diffusion-Based Generative Models", NeurIPS 2022, eq. 5).
    These are the noise levels of :class:`~invsolve.priors.EDMSchedule` at
    evenly spaced times from 1 to 0 (from 0 to 1 when ``high < low``).
    """
    if count == 1 or high == low:
        return torch.full((count,), float(high), dtype=torch.float64)
    times = torch.linspace(1.0, 0.0, count, dtype=torch.float64)
    schedule = EDMSchedule(sigma_min=min(low, high), sigma_max=max(low, high), rho=rho)
    return schedule.alpha_sigma(times if high > low else times.flip(0))[1]


@functools.lru_cache(maxsize=64)
def _denoising_times(schedule: NoiseSchedule, level: float, steps: int) -> tuple[float, ...]:
    """The times of :func:`sample_denoising_posterior`'s levels (cached: samplers repeat ``level``)."""
    lowest, _ = schedule.noise_ratio_range()
    floor = max(lowest, level * _DENOISING_FLOOR)
    levels = karras_levels(level, floor, steps) if level > floor else torch.tensor([level], dtype=torch.float64)
    return tuple(schedule.time_at_noise_ratio(levels).tolist())


def sample_denoising_posterior(
    prior: DiffusionPrior,
    z: torch.Tensor,
    level: float,
    steps: int,
    generator: torch.Generator | None,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """A draw from ``p(x₀ | z) ∝ p(x₀)·exp(−‖x₀ − z‖²/(2·level²))`` (network range).

    ``z`` observed at noise ``level`` is ``x_{t*}/α_{t*}`` at the time with
    ``σ_{t*}/α_{t*} = level``, so reverse diffusion started at
    ``x_{t*} = α_{t*}·z`` samples the denoising posterior.  ``steps``
    ancestral steps run on noise levels with Karras et al.'s spacing from
    ``level`` down to ``max(level/1000, lowest level of the schedule)``
    (continuous times, not rounded to a discrete schedule's training
    steps); the last step returns the denoised image, so the variance below
    the lowest level (0.01 for DDPM's linear schedule) is not drawn.

    The steps use DDPM's *forward* reverse variance (β, not β̃; see
    :meth:`~invsolve.priors.DiffusionPrior.ancestral_step`): the usual β̃
    ignores the uncertainty of ``x̂₀`` and under-disperses badly in few
    steps.  Measured on a smooth 8×8 Gaussian prior at levels 0.03 and 0.1
    (EDM schedule, 4000 draws), the covariance trace of the draws relative
    to the exact ``(Σ⁻¹ + I/level²)⁻¹`` was 0.51–0.59 with β̃ and 1.01–1.05
    with β in 10 steps (0.73–0.78 and 1.00–1.02 in 20).
    """
    times = _denoising_times(prior.schedule, float(level), int(steps))
    alpha, _ = alpha_sigma_at(prior, times[0])
    x = alpha * z
    for t, s in zip(times, [*times[1:], None]):
        x = prior.ancestral_step(x, prior.denoise(x, t, condition), t, s, generator, variance="forward")
    return x


def data_consistent(
    problem: Problem,
    prior: DiffusionPrior,
    x0: torch.Tensor,
    weight: float,
    iterations: int | None = None,
) -> torch.Tensor:
    """``argmin_x ½‖y − A·phys(x)‖² + (w/2)·‖phys(x) − phys(x̂₀)‖²``, returned in network range.

    The least-squares step of DDS and DiffPIR, solved in physical units:
    ``w`` is in ``y``'s squared units per squared physical image unit (a
    weight ``w_net`` per squared network unit is ``w_net / s²`` with the
    normalisation scale ``s``).  Warm-started at ``x̂₀``;
    ``iterations=None`` solves exactly (closed form where the operator has
    one).
    """
    anchor = prior.to_physical(x0)
    solved = problem.least_squares(anchor, weight, iterations=iterations)  # CG starts at the anchor
    return prior.to_network(solved.to(x0.dtype))
