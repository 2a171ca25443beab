"""The sampler interface every method shares, and the registry ``reconstruct()`` looks names up in.

A sampler combines a :class:`~invsolve.samplers.Problem` (measurements and
their likelihood, in physical units) with a
:class:`~invsolve.priors.DiffusionPrior` (which works in its network
range).  :meth:`Sampler.run` validates the pair once, runs the method and
returns a :class:`SamplerResult`; a per-step ``callback`` sees every
intermediate state as a :class:`SamplerStep` (docs/design.md, "Samplers").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from invsolve._checks import check_int
from invsolve.operators import LinearOperator
from invsolve.priors import DiffusionPrior
from invsolve.priors.schedule import check_start_time

from .problem import Problem, check_operator_fits_prior

__all__ = [
    "Sampler",
    "SamplerResult",
    "SamplerStep",
    "register_sampler",
    "get_sampler",
    "available_samplers",
]

_REGISTRY: dict[str, type[Sampler]] = {}


@dataclass
class SamplerStep:
    """One step of a sampler, as a ``callback`` sees it.

    Attributes
    ----------
    index : int
        0-based step number.
    total : int
        Number of steps of the run.
    time : float
        Diffusion time ``t ∈ [0, 1]`` of ``state`` (the noise level the prior
        saw in this step).
    state : torch.Tensor
        The sampler's state ``(B, *image_shape)`` in the prior's network
        range (``x_t`` for diffusion samplers, the iterate for RED-Diff).
    estimate : torch.Tensor
        The current clean-image estimate ``(B, *image_shape)`` in physical units.
    """

    index: int
    total: int
    time: float
    state: torch.Tensor
    estimate: torch.Tensor


@dataclass
class SamplerResult:
    """What :meth:`Sampler.run` returns.

    Attributes
    ----------
    image : torch.Tensor
        ``(B, *image_shape)`` in physical units: a posterior sample, or a
        point estimate for point estimators (``Sampler.draws_samples`` false).
    samples : torch.Tensor or None
        ``(B, n, *image_shape)`` when a run draws several samples per item.
    trajectory : torch.Tensor or None
        ``(steps, B, *image_shape)`` clean-image estimates of every step
        (physical units) when recorded.
    info : dict
        Sampler name, hyperparameters, steps, network evaluations, start
        time and wall time in seconds.
    """

    image: torch.Tensor
    samples: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


#: what samplers call once per step; built by :meth:`Sampler.run` around the user's callback
Report = Callable[[int, int, float, torch.Tensor, torch.Tensor], None]


class Sampler:
    """A posterior sampler or estimator combining a problem and a prior.

    Subclasses are dataclasses whose fields are the method's
    hyperparameters, with defaults from the source paper, and implement
    :meth:`_run` in the prior's network range.
    """

    #: registry name, e.g. ``"red-diff"``
    name: ClassVar[str] = ""
    #: number of steps when the caller gives none
    default_steps: ClassVar[int] = 100
    #: the smallest step budget the method is defined for
    min_steps: ClassVar[int] = 1
    #: whether repeated runs draw different posterior samples (DPS) or
    #: estimate one point (RED-Diff): only samples give a posterior std
    draws_samples: ClassVar[bool] = True
    #: whether the method draws nothing at all, so that every run gives the same image (DPIR)
    deterministic: ClassVar[bool] = False
    #: whether the method starts from pure noise and so takes ``start_time``
    #: (a warm start from the problem's start image or the closed-form Gaussian posterior)
    takes_start_time: ClassVar[bool] = False
    #: whether the method needs ``noise_std > 0`` (its likelihood is used as a density)
    needs_noise: ClassVar[bool] = False

    #: whether the method reconstructs volumes ``(B, C, D, H, W)`` with a prior of their 2D slices
    volumetric: ClassVar[bool] = False

    def check_operator(self, operator: LinearOperator, prior: DiffusionPrior) -> None:
        """Raise one clear error unless ``operator`` takes what ``prior`` knows (its images, by default)."""
        check_operator_fits_prior(operator, prior)

    def network_evaluations(self, steps: int) -> int:
        """Denoiser calls of a run of ``steps`` steps (one per step unless overridden)."""
        return steps

    def check(self, problem: Problem, prior: DiffusionPrior, steps: int, start_time: float | None) -> None:
        """Raise one clear error if this sampler cannot run on ``problem`` and ``prior``."""
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be an invsolve Problem, got {type(problem).__name__}")
        problem.check_prior(prior, self.check_operator)
        steps = check_int(steps, "steps")
        if steps < self.min_steps:
            raise ValueError(f"steps must be >= {self.min_steps} for sampler {self.name!r}, got {steps}")
        if self.needs_noise and problem.likelihood is not None and problem.noise_std == 0:
            raise ValueError(
                f"sampler {self.name!r} uses the likelihood as a density and needs noise_std > 0, got 0; "
                "give the measurement noise (a small value for nearly clean data) or use 'dds' or 'diffpir'"
            )
        if start_time is not None:
            if not self.takes_start_time:
                raise ValueError(
                    f"sampler {self.name!r} does not start from pure noise and takes no start_time; "
                    f"samplers that do: {', '.join(n for n in available_samplers() if _REGISTRY[n].takes_start_time)}"
                )
            if isinstance(start_time, (str, bytes, bool)):  # not a string that float() would read
                raise TypeError(f"start_time must be a number in (0, 1], got {start_time!r}")
            check_start_time(start_time)
            if problem.start_image is None and prior.gaussian_fit is None:
                raise ValueError(
                    "start_time needs a start image (start_image=) or the Gaussian fit of the prior's training "
                    "data (prior.gaussian_fit), which this prior lacks; add it with "
                    "`invsolve fit-gaussian CONFIG.toml PRIOR.pt`"
                )
            if problem.start_image is None and problem.likelihood is not None and problem.noise_std == 0:
                raise ValueError(
                    "start_time without a start image starts from a draw of the Gaussian fit's posterior, which "
                    "needs noise_std > 0 (with 0 its solve is singular); give the data's noise level, however "
                    "small, or a start image (start_image=)"
                )
        elif problem.start_image is not None:
            raise ValueError(
                "start_image was given without start_time: give the diffusion time in (0, 1] at which the run starts "
                "from it (its noise level; small times keep more of the start image)"
            )

    def run(
        self,
        problem: Problem,
        prior: DiffusionPrior,
        *,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[SamplerStep], None] | None = None,
        start_time: float | None = None,
        trajectory: bool = False,
        progress: bool = False,
    ) -> SamplerResult:
        """Solve ``problem`` with ``prior``.

        Parameters
        ----------
        problem : Problem
            Measurements, likelihood and optional condition.
        prior : DiffusionPrior
            Its image shape must equal the operator's ``in_shape``.
        steps : int, optional
            Number of steps (:attr:`default_steps` if omitted).
        generator : torch.Generator, optional
            Source of every random draw (on the prior's device).
        callback : callable, optional
            Called after every step with a :class:`SamplerStep`.
        start_time : float, optional
            Samplers that start from pure noise (:attr:`takes_start_time`)
            start instead at this time in ``(0, 1]``, from the problem's
            ``start_image`` (Chung, Sim & Ye 2022) or else a draw of the
            closed-form posterior of the Gaussian fit of the prior's training
            data (Wang & Vastola 2023); ``steps`` then span ``[0, start_time]``.
        trajectory : bool
            Keep every step's clean-image estimate in ``SamplerResult.trajectory``.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        SamplerResult
        """
        steps = self.default_steps if steps is None else steps
        self.check(problem, prior, steps, start_time)

        estimates: list[torch.Tensor] = []

        def report(index: int, total: int, t: float, state: torch.Tensor, estimate: torch.Tensor) -> None:
            physical = prior.to_physical(estimate.detach())
            if trajectory:
                estimates.append(physical)
            if callback is not None:
                callback(SamplerStep(index, total, float(t), state.detach(), physical))

        started = time.perf_counter()
        image = self._run(problem, prior, steps, generator, report, start_time, progress)
        info = {
            "sampler": self.name,
            "hyperparameters": self.hyperparameters(),
            "steps": steps,
            "network_evaluations": self.network_evaluations(steps),
            "start_time": start_time,
            "seconds": time.perf_counter() - started,
        }
        return SamplerResult(image=image, trajectory=torch.stack(estimates) if estimates else None, info=info)

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
        """The method itself on validated input; returns ``(B, *image_shape)`` in physical units."""
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters of this instance as a dict."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty `name`")
    if cls.name in _REGISTRY:
        raise ValueError(f"a sampler named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def available_samplers() -> list[str]:
    """Names of the registered samplers."""
    return sorted(_REGISTRY)


def get_sampler(name: str, **hyperparameters: Any) -> Sampler:
    """Instantiate the sampler registered as ``name`` with ``hyperparameters``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or an unknown
        hyperparameter (the message lists the sampler's).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(available_samplers())}")
    cls = _REGISTRY[name]
    known = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(hyperparameters) - set(known))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for sampler {name!r}; "
            f"its hyperparameters are: {', '.join(known)}"
        )
    return cls(**hyperparameters)
