"""Posterior samplers, registered by name (``reconstruct(..., sampler="dps")``)."""

from .base import Sampler, available_samplers, get_sampler, register_sampler
from .dps import DPS
from .red_diff import RedDiff

__all__ = ["Sampler", "available_samplers", "get_sampler", "register_sampler", "DPS", "RedDiff"]
