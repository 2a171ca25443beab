"""Diffusion priors (installed as ``invsolve.priors``).

A prior is a :class:`NoiseSchedule` plus a denoiser; :class:`GaussianPrior` is
the exact reference every sampler is tested against.
"""

from .base import PREDICTION_TYPES, DiffusionPrior, Normalization
from .gaussian import GaussianPrior
from .schedule import DiscreteVPSchedule, EDMSchedule, NoiseSchedule, VESchedule, schedule_from_config

__all__ = [
    "PREDICTION_TYPES",
    "DiffusionPrior",
    "Normalization",
    "GaussianPrior",
    "NoiseSchedule",
    "DiscreteVPSchedule",
    "VESchedule",
    "EDMSchedule",
    "schedule_from_config",
]
