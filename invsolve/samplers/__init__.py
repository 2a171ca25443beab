"""Posterior samplers, registered by name (``reconstruct(..., sampler="dds")``).

Every sampler shares one interface (:class:`Sampler`, :class:`Problem`,
:class:`SamplerResult`; docs/design.md): RED-Diff and DPS, the CG-based DDS
and DiffPIR, the plug-and-play point estimator DPIR, the annealed DAPS, and
the asymptotically exact split Gibbs sampler PnP-DM.
"""

from .base import Sampler, SamplerResult, SamplerStep, available_samplers, get_sampler, register_sampler
from .daps import DAPS
from .dds import DDS
from .diffpir import DiffPIR
from .dpir import DPIR
from .dps import DPS
from .pnp_dm import PnPDM
from .problem import Problem
from .red_diff import RedDiff

__all__ = [
    "Sampler",
    "SamplerResult",
    "SamplerStep",
    "Problem",
    "available_samplers",
    "get_sampler",
    "register_sampler",
    "RedDiff",
    "DPS",
    "DDS",
    "DiffPIR",
    "DPIR",
    "DAPS",
    "PnPDM",
]
