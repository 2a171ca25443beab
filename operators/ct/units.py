"""Hounsfield units and linear attenuation.

CT scanners report ``HU = 1000·(μ − μ_water)/μ_water`` (air −1000, water 0,
dense bone about +1000); projectors work on the linear attenuation
coefficient ``μ`` itself, whose line integrals are the post-log
measurements.  ``μ_water`` depends on the X-ray spectrum: 0.0192 /mm is the
value near 70 keV, the effective energy of a 120 kVp tube (NIST XCOM).
"""

from __future__ import annotations

import torch

__all__ = ["MU_WATER_PER_MM", "hounsfield_to_attenuation", "attenuation_to_hounsfield"]

#: linear attenuation coefficient of water near 70 keV, in 1/mm
MU_WATER_PER_MM = 0.0192


def hounsfield_to_attenuation(hounsfield: torch.Tensor, mu_water: float = MU_WATER_PER_MM) -> torch.Tensor:
    """``μ = μ_water·(1 + HU/1000)``, clipped at 0 (nothing attenuates less than vacuum).

    Parameters
    ----------
    hounsfield : torch.Tensor
        Any shape, in HU.
    mu_water : float
        Attenuation of water in the units wanted for ``μ`` (default 1/mm at 70 keV).

    Returns
    -------
    torch.Tensor
        Same shape, in the units of ``mu_water``.
    """
    return (mu_water * (1 + hounsfield / 1000)).clamp_min(0)


def attenuation_to_hounsfield(attenuation: torch.Tensor, mu_water: float = MU_WATER_PER_MM) -> torch.Tensor:
    """``HU = 1000·(μ/μ_water − 1)``, the inverse of :func:`hounsfield_to_attenuation` above −1000 HU."""
    return 1000 * (attenuation / mu_water - 1)
