"""3D reconstruction with a 2D diffusion prior: the slice-augmented samplers "mbir" and "dds-3d".

A 2D prior knows slices, not volumes.  Both methods apply it to every slice
of the volume along one axis (in batches of ``slice_batch`` slices, so the
network's memory is bounded by the batch, not the volume) and couple the
slices through total variation along that axis, inside the data step:

    x = argmin_x ½‖y − A x‖² + (γ/2)‖x − x̂‖² + λ‖D_a x‖₁,

solved by ADMM on ``v = D_a x`` (Boyd et al., "Distributed Optimization and
Statistical Learning via the Alternating Direction Method of Multipliers",
2011, §6.4.1): the x-update is a few warm-started conjugate-gradient
iterations on ``(AᴴA + γI + ρD_aᵀD_a) x = Aᴴy + γx̂ + ρD_aᵀ(v − u)``, then
``v = soft(D_a x + u, λ/ρ)`` and ``u += D_a x − v``.  ``v`` and ``u``
persist from one diffusion step to the next (the ADMM is warm-started
across the whole run).

* **"mbir"** — DiffusionMBIR (Chung, Kim, Kim & Ye, "Solving 3D Inverse
  Problems using Pre-trained 2D Diffusion Models", CVPR 2023, Algorithm 1):
  a predictor–corrector reverse diffusion (Song et al., "Score-Based
  Generative Modeling through Stochastic Differential Equations", ICLR 2021,
  Algorithm 5: an ancestral predictor, then one Langevin corrector step
  with step size ``2(r‖ξ‖/‖score‖)²``), with the ADMM-TV data step after
  the predictor and after the corrector.  The paper's VE-SDE states are
  noisy images ``x₀ + σε``; with this package's variance-preserving states
  ``x_t = α_t x₀ + σ_t ε`` the data step acts on ``x_t/α_t``, the same noisy
  image, and the result is scaled back.  Two network evaluations per step.
* **"dds-3d"** — DDS (Chung, Lee & Ye, ICLR 2024, Algorithm 1 with the
  ADMM-TV data step of its 3D experiments): DDIM with stochasticity ``η``,
  the data step on the Tweedie estimate ``x̂₀`` (anchored at it with
  weight ``γ``), then re-noising with the network's ``ε̂``.  One network
  evaluation per step, ~50 steps.

Units.  The data step runs in physical units; ``γ``, ``ρ`` and ``λ`` are
relative, so that one value suits operators and image units of any scale:
``γ_phys = γ‖A‖²``, ``ρ_phys = ρ‖A‖²`` and ``λ_phys = λ‖A‖²s`` with the
prior's normalisation scale ``s`` (``λ`` then weighs the TV of the image in
network units against the data term of an operator of unit norm).  The
defaults are DiffusionMBIR's CT values (``λ = 0.04``, ``ρ = 10`` for images
in [0, 1], i.e. ``s = 0.5``, and a 256², 8-view parallel-beam transform with
unit pixels, whose ``‖A‖² = 1975``) in these units: ``λ = 4·10⁻⁵``,
``ρ = 5·10⁻³``; its MRI values (``λ = 0.005``, ``ρ = 0.01``, an orthonormal
Fourier transform) are ``λ = 0.01``, ``ρ = 0.01``.

Volumes are ``(B, C, D, H, W)``; ``axis`` (0, 1 or 2, an index into
``(D, H, W)``) is the axis the slices are stacked along, and the prior's
images must be shaped like the slices: ``(C, H, W)`` for ``axis=0``.

Several processes: with ``slab=`` (:class:`invsolve.slabs.Slab`, processes
started by ``torchrun``) each rank holds a slab of slices and its part of a
slab-separable operator, or its slab's contribution to an operator summed over
the slabs (:class:`invsolve.slabs.SummedOverSlabs`, cone beam); the network calls stay local, ``D_a`` reads one
neighbouring slice from each side, CG inner products and the Langevin norms
are summed over the ranks, and every rank draws the whole volume's noise and
keeps its slab — so the result is the one-process volume to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_nonnegative, check_positive, check_unit_interval
from invsolve.operators import LinearOperator, cg
from invsolve.operators.slices import batch_as_slices, slices_as_batch
from invsolve.priors import DiffusionPrior
from invsolve.slabs import Slab

from .base import Report, Sampler, register_sampler
from .diffusion import alpha_sigma_at, ddim_step, diffused
from .problem import Problem

__all__ = ["SliceAugmented3D", "DiffusionMBIR", "DDS3D", "slice_shape", "check_operator_fits_slice_prior"]

#: spatial axes of a volume (C, D, H, W) after the channel axis
_SPATIAL_AXES = 3


def slice_shape(volume_shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """The shape ``(C, ·, ·)`` of one slice of a ``(C, D, H, W)`` volume stacked along spatial ``axis``."""
    channels, *spatial = volume_shape
    return (channels, *(n for index, n in enumerate(spatial) if index != axis))


def check_operator_fits_slice_prior(operator: LinearOperator, prior: DiffusionPrior, axis: int) -> None:
    """Raise one clear error unless ``operator`` takes volumes whose slices along ``axis`` the prior knows."""
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be an invsolve DiffusionPrior, got {type(prior).__name__}")
    if len(operator.in_shape) != 1 + _SPATIAL_AXES:
        raise ValueError(
            f"a slice-augmented sampler needs an operator on volumes (C, D, H, W), but {operator.describe()} takes "
            f"images shaped {operator.in_shape}; for 2D images use a 2D sampler such as 'dds'"
        )
    if len(prior.image_shape) != _SPATIAL_AXES:
        raise ValueError(f"a slice-augmented sampler needs a 2D prior (images (C, H, W)), got image shape {prior.image_shape}")
    expected = slice_shape(tuple(operator.in_shape), axis)
    if tuple(prior.image_shape) != expected:
        raise ValueError(
            f"the prior's images {tuple(prior.image_shape)} do not fit the slices along axis {axis} of the operator's "
            f"volumes {tuple(operator.in_shape)}, which are shaped {expected}; choose the axis whose slices the "
            "prior was trained on, or resample the volume"
        )
    if operator.complex_domain:
        raise ValueError(
            f"{operator.describe()} acts on complex volumes; compose it with an embedding of the prior's real "
            "images (invsolve.operators.RealAsComplex or ComplexAsChannels)"
        )
    if operator.device is not None and operator.device != prior.device:
        raise ValueError(f"the operator is on {operator.device} but the prior is on {prior.device}")


def predict_slices(
    prior: DiffusionPrior, volume: torch.Tensor, t: float, axis: int, slice_batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2D prior's ``(x̂₀, ε̂)`` for every slice of ``volume`` (network range), ``slice_batch`` slices per call.

    Parameters
    ----------
    volume : torch.Tensor
        ``(B, C, D, H, W)`` at diffusion time ``t``, network range.

    Returns
    -------
    tuple of torch.Tensor
        Both shaped like ``volume``.
    """
    estimates = [prior.predict(part, t) for part in slices_as_batch(volume, axis).split(slice_batch)]
    count = volume.shape[2 + axis]
    return tuple(batch_as_slices(torch.cat(parts), count, axis) for parts in zip(*estimates))


class AxisTVDataStep:
    """ADMM for ``argmin ½‖y − A x‖² + (γ/2)‖x − x̂‖² + λ‖D_a x‖₁``, warm-started from call to call.

    Physical units throughout; ``gamma``, ``rho`` and ``tv_weight`` are the
    physical weights (the samplers scale their relative hyperparameters, see
    the module docstring).  ``v`` (the split variable ``D_a x``) and ``u``
    (its scaled dual) live across calls, both starting at zero (as in
    DiffusionMBIR's reference code).  ``D_a`` is the forward difference along
    the slab axis with the far edge set to zero (the discretisation of
    :class:`~invsolve.operators.FiniteDifference`); on a volume split over
    processes it reads one slice of each neighbour (:meth:`Slab.neighbours`)
    and the CG inner products are summed over the ranks.  With ``λ = 0`` the
    slices are uncoupled and the step is plain least squares, DDS's data step
    on the whole volume: slice by slice the same where the CG steps are exact
    (a mask), while truncated CG on another operator takes its inner products
    over the volume rather than per slice.

    Parameters
    ----------
    problem : Problem
        Measurements and likelihood on volumes (or slabs) ``(B, C, D, H, W)``.
    slab : Slab
        This process's slices (:meth:`Slab.whole` when there is one process).
    """

    def __init__(
        self,
        problem: Problem,
        slab: Slab,
        gamma: float,
        rho: float,
        tv_weight: float,
        admm_iterations: int,
        cg_iterations: int,
    ) -> None:
        self.problem, self.slab, self.dim = problem, slab, 2 + slab.axis
        self.gamma, self.rho, self.tv_weight = gamma, rho, tv_weight
        self.admm_iterations, self.cg_iterations = admm_iterations, cg_iterations
        operator = problem.operator
        back = operator.adjoint(operator.measured(problem.y))
        self.back_projection = back.real if back.is_complex() else back
        self.split: torch.Tensor | None = None
        self.dual: torch.Tensor | None = None

    def difference(self, x: torch.Tensor) -> torch.Tensor:
        """``D_a x``: ``x[i+1] − x[i]``, 0 at the volume's last slice."""
        dim, count = self.dim, x.shape[self.dim]
        _, following = self.slab.neighbours(x, dim)
        last = x.narrow(dim, count - 1, 1) if following is None else following.unsqueeze(dim)
        return torch.cat([x.narrow(dim, 1, count - 1), last], dim=dim) - x

    def difference_adjoint(self, g: torch.Tensor) -> torch.Tensor:
        """``D_aᵀ g``: ``g[i−1] − g[i]`` with ``g[−1] = 0``, ignoring ``g`` at the volume's last slice."""
        dim, count = self.dim, g.shape[self.dim]
        if self.slab.stop == self.slab.total:  # D's last row is zero: its entry of g does not count
            g = torch.cat([g.narrow(dim, 0, count - 1), torch.zeros_like(g.narrow(dim, 0, 1))], dim=dim)
        previous, _ = self.slab.neighbours(g, dim)
        first = torch.zeros_like(g.narrow(dim, 0, 1)) if previous is None else previous.unsqueeze(dim)
        return torch.cat([first, g.narrow(dim, 0, count - 1)], dim=dim) - g

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        normal = self.problem.operator.normal(x)
        normal = normal.real if normal.is_complex() else normal
        if self.tv_weight > 0:
            normal = normal + self.rho * self.difference_adjoint(self.difference(x))
        return normal + self.gamma * x if self.gamma > 0 else normal

    def _solve(self, rhs: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return cg(self._normal, rhs, x0=start, iterations=self.cg_iterations, tol=0.0, reduce=self.slab.sum_over_ranks)

    def __call__(self, start: torch.Tensor, anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Run the ADMM iterations from ``start``; ``anchor`` is ``x̂`` (needed when ``γ > 0``)."""
        x = start.to(self.back_projection.dtype)
        rhs = self.back_projection
        if self.gamma > 0:
            rhs = rhs + self.gamma * anchor.to(rhs.dtype)
        if self.tv_weight == 0:
            return self._solve(rhs, x).to(start.dtype)
        if self.split is None:
            self.split = torch.zeros_like(x)
            self.dual = torch.zeros_like(x)
        threshold = self.tv_weight / self.rho
        for _ in range(self.admm_iterations):
            x = self._solve(rhs + self.rho * self.difference_adjoint(self.split - self.dual), x)
            shifted = self.difference(x) + self.dual
            self.split = torch.sign(shifted) * torch.clamp(shifted.abs() - threshold, min=0.0)
            self.dual = shifted - self.split
        return x.to(start.dtype)


@dataclass
class SliceAugmented3D(Sampler):
    """A 2D diffusion prior on every slice of a volume, slices coupled by TV along ``axis`` (module docstring).

    Parameters
    ----------
    axis : int
        Spatial axis of ``(D, H, W)`` along which the slices are stacked (and
        TV couples them); the prior's images are the slices.
    slice_batch : int
        Slices per network call; bounds the network's memory.
    tv_weight : float
        ``λ``, relative (module docstring), ``>= 0``; 0 leaves the slices uncoupled.
        Default: DiffusionMBIR's CT value.
    rho : float
        ADMM penalty ``ρ``, relative, ``> 0``.  Default: DiffusionMBIR's CT value.
    gamma : float
        Weight ``γ`` of the anchor ``‖x − x̂‖²``, relative, ``>= 0``.
    admm_iterations : int
        ADMM iterations per data step, ``>= 1``.
    cg_iterations : int
        Conjugate-gradient iterations per ADMM x-update, ``>= 1``.
    slab : Slab, optional
        This process's slices when the volume is split over torch.distributed
        ranks (:class:`invsolve.slabs.Slab`, launched with ``torchrun``); the
        problem then holds this slab's operator and measurements.  Default:
        the whole volume here.
    """

    volumetric: ClassVar[bool] = True
    takes_start_time: ClassVar[bool] = True

    axis: int = 0
    slice_batch: int = 16
    tv_weight: float = 4e-5
    rho: float = 5e-3
    gamma: float = 0.0
    admm_iterations: int = 1
    cg_iterations: int = 5
    slab: Slab | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_int(self.axis, "axis", minimum=0)
        if self.axis >= _SPATIAL_AXES:
            raise ValueError(f"axis must be 0, 1 or 2 (an axis of (D, H, W)), got {self.axis}")
        check_int(self.slice_batch, "slice_batch", minimum=1)
        check_nonnegative(self.tv_weight, "tv_weight")
        check_positive(self.rho, "rho")
        check_nonnegative(self.gamma, "gamma")
        check_int(self.admm_iterations, "admm_iterations", minimum=1)
        check_int(self.cg_iterations, "cg_iterations", minimum=1)
        if self.slab is not None:
            if not isinstance(self.slab, Slab):
                raise TypeError(f"slab must be an invsolve.slabs.Slab, got {type(self.slab).__name__}")
            if self.slab.axis != self.axis:
                raise ValueError(f"the slab splits axis {self.slab.axis} but the sampler's slices lie along axis {self.axis}")

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters; a slab as its ``[start, stop, total]`` (its process group is not data)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["slab"] = None if self.slab is None else [self.slab.start, self.slab.stop, self.slab.total]
        return values

    def _slab_of(self, problem: Problem) -> Slab:
        """The slab the problem holds: :attr:`slab`, checked against the operator, or the whole volume."""
        local = problem.operator.in_shape[1 + self.axis]
        if self.slab is None:
            return Slab.whole(local, self.axis)
        if self.slab.size != local:
            raise ValueError(
                f"the slab holds {self.slab.size} slices (of {self.slab.total}) but the operator's volumes have {local} "
                f"along axis {self.axis}: give each rank the operator of its own slices"
            )
        return self.slab

    def check_operator(self, operator: LinearOperator, prior: DiffusionPrior) -> None:
        """The prior must know the slices of the operator's volumes along :attr:`axis`."""
        check_operator_fits_slice_prior(operator, prior, self.axis)

    def check(self, problem: Problem, prior: DiffusionPrior, steps: int, start_time: float | None) -> None:
        """:meth:`Sampler.check`, and the problem must hold measurements and no condition."""
        if isinstance(problem, Problem) and problem.likelihood is None:
            raise ValueError(f"sampler {self.name!r} reconstructs from measurements: the problem has none")
        if isinstance(problem, Problem) and problem.condition is not None:
            raise ValueError(f"sampler {self.name!r} takes no condition (one would be needed per slice), got one")
        if isinstance(problem, Problem) and start_time is not None and problem.start_image is None:
            raise ValueError(
                f"sampler {self.name!r} starts at start_time from a start image of the volume (start_image=, e.g. "
                "invsolve.tv_reconstruct(y, operator, weight)); the Gaussian-fit warm start is for 2D images only"
            )
        super().check(problem, prior, steps, start_time)

    def _data_step(self, problem: Problem, prior: DiffusionPrior, slab: Slab) -> AxisTVDataStep:
        # every rank must weigh alike: the largest of the slabs' norms (a slab-separable operator's norm;
        # SummedOverSlabs already gives every rank the volume's norm)
        norm_squared = slab.max_over_ranks(problem.operator.norm()) ** 2
        return AxisTVDataStep(
            problem,
            slab,
            gamma=self.gamma * norm_squared,
            rho=self.rho * norm_squared,
            tv_weight=self.tv_weight * norm_squared * prior.normalization.scale,
            admm_iterations=self.admm_iterations,
            cg_iterations=self.cg_iterations,
        )

    def _start(
        self, problem: Problem, prior: DiffusionPrior, steps: int, generator: torch.Generator | None,
        start_time: float | None,
    ) -> tuple[AxisTVDataStep, torch.Tensor, list[tuple[float, float | None]], Callable[[torch.Tensor], torch.Tensor]]:
        """The data step, the initial volume (network range), the reverse steps and the noise source (this
        slab's part of whole-volume draws).

        The initial volume is ``σ_1·ε`` at ``t = 1``, or with ``start_time``
        the problem's start image diffused to that time, ``α_t x + σ_t ε``
        (Chung, Sim & Ye, "Come-Closer-Diffuse-Faster: Accelerating
        Conditional Diffusion Models for Inverse Problems through Stochastic
        Contraction", CVPR 2022).
        """
        slab = self._slab_of(problem)

        def draw_noise(like: torch.Tensor) -> torch.Tensor:
            return slab.randn_like(like, 2 + self.axis, generator)

        shape = (problem.batch_size, *problem.operator.in_shape)
        start = 1.0 if start_time is None else float(start_time)
        noise = draw_noise(torch.empty(shape, dtype=prior.dtype, device=prior.device))
        if start_time is None:
            volume = alpha_sigma_at(prior, start)[1] * noise
        else:
            volume = diffused(prior, prior.to_network(problem.start_image.to(prior.dtype)), start, noise)
        return self._data_step(problem, prior, slab), volume, prior.schedule.reverse_steps(steps, start), draw_noise

    def _predict(self, prior: DiffusionPrior, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        return predict_slices(prior, x, t, self.axis, self.slice_batch)


@register_sampler
@dataclass
class DDS3D(SliceAugmented3D):
    """DDS on volumes: DDIM on every slice, the ADMM-TV data step on the Tweedie estimate (module docstring).

    Parameters
    ----------
    eta : float
        DDIM stochasticity in ``[0, 1]``.
    gamma : float
        Anchor weight (relative); the default 0 is DDS's noiseless setting,
        where the few CG iterations warm-started at ``x̂₀`` are the regulariser.

    The other parameters are :class:`SliceAugmented3D`'s.
    """

    name = "dds-3d"
    default_steps = 50
    min_steps = 2

    eta: float = 0.85

    def __post_init__(self) -> None:
        super().__post_init__()
        check_unit_interval(self.eta, "eta")

    def _run(
        self,
        problem: Problem,
        prior: DiffusionPrior,
        steps: int,
        generator: torch.Generator | None,
        report: Report,
        start_time: float | None,
        progress: bool,
    ) -> torch.Tensor:
        data_step, x, pairs, draw_noise = self._start(problem, prior, steps, generator, start_time)
        with torch.no_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x0_hat, eps_hat = self._predict(prior, x, t)
                anchor = prior.to_physical(x0_hat)
                x0_hat = prior.to_network(data_step(anchor, anchor))
                x = ddim_step(prior, x0_hat, eps_hat, s, t, self.eta, generator, draw_noise)
                report(index, len(pairs), t, x, x0_hat)
        return prior.to_physical(x)


@register_sampler
@dataclass
class DiffusionMBIR(SliceAugmented3D):
    """DiffusionMBIR: predictor–corrector on every slice, ADMM-TV after each (module docstring).

    Parameters
    ----------
    snr : float
        ``r`` of the Langevin corrector's step size ``2(r‖ξ‖/‖score‖)²``
        (Song et al. 2021; DiffusionMBIR uses 0.16).

    The other parameters are :class:`SliceAugmented3D`'s, with the paper's CT
    defaults (module docstring) and its one ADMM iteration of one CG iteration per data step: the data step's
    objective does not contain the noisy state, only the warm start does, so
    a short solve is what keeps it near the state.
    """

    name = "mbir"
    default_steps = 1000
    min_steps = 2

    cg_iterations: int = 1
    snr: float = 0.16

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self.snr, "snr")

    def network_evaluations(self, steps: int) -> int:
        """One predictor call per step and one corrector call per step but the last."""
        return 2 * steps - 1

    def _consistent(self, prior: DiffusionPrior, data_step: AxisTVDataStep, x: torch.Tensor, t: float) -> torch.Tensor:
        """The data step on the noisy image ``x_t/α_t`` (physical units), scaled back to the state."""
        alpha = alpha_sigma_at(prior, t)[0]
        return alpha * prior.to_network(data_step(prior.to_physical(x / alpha)))

    def _run(
        self,
        problem: Problem,
        prior: DiffusionPrior,
        steps: int,
        generator: torch.Generator | None,
        report: Report,
        start_time: float | None,
        progress: bool,
    ) -> torch.Tensor:
        data_step, x, pairs, draw_noise = self._start(problem, prior, steps, generator, start_time)
        with torch.no_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x0_hat, eps_hat = self._predict(prior, x, t)
                if s is None:  # the clean end (the last pair): the Tweedie estimate, made consistent
                    x = prior.to_network(data_step(prior.to_physical(x0_hat)))
                    report(index, len(pairs), t, x, x)
                    continue
                x = ddim_step(prior, x0_hat, eps_hat, s, t, 1.0, generator, draw_noise)  # ancestral predictor
                x = self._consistent(prior, data_step, x, s)
                _, eps_corrector = self._predict(prior, x, s)
                x = self._langevin(prior, x, eps_corrector, s, draw_noise, data_step.slab)
                x = self._consistent(prior, data_step, x, s)
                report(index, len(pairs), s, x, x0_hat)
        return prior.to_physical(x)

    def _langevin(
        self,
        prior: DiffusionPrior,
        x: torch.Tensor,
        eps: torch.Tensor,
        s: float,
        draw_noise: Callable[[torch.Tensor], torch.Tensor],
        slab: Slab,
    ) -> torch.Tensor:
        """One Langevin step on ``p_s`` with the score ``−ε̂/σ_s`` and the SNR step size, per batch item
        (norms over the whole volume: summed over the slabs)."""
        sigma = alpha_sigma_at(prior, s)[1]
        score = -eps / sigma
        noise = draw_noise(x)
        batch = x.shape[0]

        def norm(value: torch.Tensor) -> torch.Tensor:
            return slab.sum_over_ranks(value.reshape(batch, -1).square().sum(dim=1)).sqrt()

        score_norm = norm(score).clamp_min(torch.finfo(x.dtype).tiny)
        step = (2 * (self.snr * norm(noise) / score_norm) ** 2).reshape(batch, *([1] * (x.dim() - 1)))
        return x + step * score + (2 * step).sqrt() * noise
