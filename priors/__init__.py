"""Diffusion priors (installed as ``invsolve.priors``).

A prior is a :class:`NoiseSchedule` plus a denoiser; :class:`GaussianPrior` is
the exact reference every sampler is tested against, :class:`UNetPrior` the
learned one (MONAI's ``DiffusionModelUNet``).  Priors are stored as one
checkpoint file (:func:`save_prior`, :func:`load_prior`); those shipped with
the package load with :func:`pretrained`; :func:`train` trains a
:class:`UNetPrior` from a TOML config (``invsolve train-prior``).  A prior may
carry a :class:`LowRankGaussian` fit of its training data
(:attr:`DiffusionPrior.gaussian_fit`) for analytic warm starts;
:func:`fit_gaussian_from_config` (``invsolve fit-gaussian``) adds one to an
existing checkpoint.
"""

from .base import PREDICTION_TYPES, DiffusionPrior, Normalization
from .checkpoint import CheckpointError, load_prior, read_metadata, save_prior
from .gaussian import GaussianPrior
from .gaussian_fit import LowRankGaussian
from .stacked import StackedPrior
from .embedded import available_pretrained, pretrained
from .schedule import DiscreteVPSchedule, EDMSchedule, NoiseSchedule, VESchedule, schedule_from_config
from .recipe import fit_gaussian_from_config
from .trainer import train
from .unet import Conditioning, UNetPrior

__all__ = [
    "PREDICTION_TYPES",
    "DiffusionPrior",
    "Normalization",
    "GaussianPrior",
    "StackedPrior",
    "LowRankGaussian",
    "UNetPrior",
    "Conditioning",
    "NoiseSchedule",
    "DiscreteVPSchedule",
    "VESchedule",
    "EDMSchedule",
    "schedule_from_config",
    "save_prior",
    "load_prior",
    "read_metadata",
    "CheckpointError",
    "pretrained",
    "available_pretrained",
    "train",
    "fit_gaussian_from_config",
]
