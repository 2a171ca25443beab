"""Posterior samplers, registered by name (``reconstruct(..., sampler="dds")``).

Every sampler shares one interface (:class:`Sampler`, :class:`Problem`,
:class:`SamplerResult`; docs/design.md): RED-Diff and DPS, the CG-based DDS
and DiffPIR, the plug-and-play point estimator DPIR, the annealed DAPS, the
asymptotically exact split Gibbs sampler PnP-DM, for volumes with a 2D
prior the slice-augmented DiffusionMBIR ("mbir") and DDS-3D ("dds-3d"), and
for two unknowns with two priors (tissue and haze) "joint-dehaze".
"""

from .base import Sampler, SamplerResult, SamplerStep, available_samplers, get_sampler, register_sampler
from .daps import DAPS
from .dds import DDS
from .diffpir import DiffPIR
from .dpir import DPIR
from .dps import DPS
from .joint_dehaze import JointDehaze
from .pnp_dm import PnPDM
from .problem import Problem
from .red_diff import RedDiff
from .slice3d import DDS3D, DiffusionMBIR, SliceAugmented3D

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
    "SliceAugmented3D",
    "DiffusionMBIR",
    "DDS3D",
    "JointDehaze",
]
