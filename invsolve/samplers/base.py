"""Sampler base class and the registry that ``reconstruct()`` looks names up in."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from invsolve.operators import LinearOperator
from invsolve.priors import DiffusionPrior

__all__ = [
    "Sampler",
    "register_sampler",
    "get_sampler",
    "available_samplers",
    "network_residual",
    "per_item_mean",
]

_REGISTRY: dict[str, type[Sampler]] = {}


class Sampler:
    """A posterior sampler or estimator combining an operator and a prior.

    Subclasses are dataclasses whose fields are the method's hyperparameters,
    with defaults from the source paper, and implement :meth:`run`.
    """

    #: registry name, e.g. ``"red-diff"``
    name: ClassVar[str] = ""
    #: number of steps when the caller gives none
    default_steps: ClassVar[int] = 100
    #: whether repeated runs draw different posterior samples (DPS) or
    #: estimate one point (RED-Diff)
    draws_samples: ClassVar[bool] = True

    def check_compatible(self, operator: LinearOperator, prior: DiffusionPrior) -> None:
        """Raise ``TypeError``/``ValueError`` if this sampler cannot combine them."""
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
        if not isinstance(prior, DiffusionPrior):
            raise TypeError(f"prior must be an invsolve DiffusionPrior, got {type(prior).__name__}")
        if tuple(prior.image_shape) != tuple(operator.in_shape):
            raise ValueError(
                f"the prior's image shape {prior.image_shape} does not fit the operator, whose "
                f"images are shaped {operator.in_shape}"
            )
        if operator.complex_domain:
            raise ValueError(
                f"{operator.describe()} acts on complex images; compose it with "
                f"invsolve.operators.ComplexAsChannels({operator.in_shape}) (operator @ ComplexAsChannels(...)) "
                "so that it takes the prior's real image with real and imaginary parts as channels"
            )
        if operator.device is not None and operator.device != prior.device:
            raise ValueError(f"the operator is on {operator.device} but the prior is on {prior.device}")

    def run(
        self,
        y: torch.Tensor,
        operator: LinearOperator,
        prior: DiffusionPrior,
        *,
        noise_std: float,
        steps: int,
        generator: torch.Generator,
        progress: bool,
    ) -> torch.Tensor:
        """Reconstruct each item of ``y`` ``(B, *out_shape)``; returns ``(B, *in_shape)`` in physical units."""
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


def network_residual(
    y: torch.Tensor, operator: LinearOperator, prior: DiffusionPrior, x_network: torch.Tensor
) -> torch.Tensor:
    """``(y − A·physical(x)) / scale``: the data residual in the prior's network units.

    Dividing by the normalisation scale keeps step sizes and weights
    independent of the physical units of the measurement.
    """
    return (y - operator(prior.to_physical(x_network))) / prior.normalization.scale


def per_item_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch dimension, shape ``(B,)``."""
    return values.reshape(values.shape[0], -1).mean(dim=1)
