"""Magnetic resonance imaging: Cartesian sampling, single-coil and SENSE.

:mod:`.fft` holds fastMRI's centred orthonormal Fourier transforms,
:mod:`.cartesian` the forward model :class:`CartesianMRI` (Pruessmann et al.
1999 for SENSE) and the root-sum-of-squares coil combination, :mod:`.masks`
fastMRI's column masks and a variable-density Poisson-disc mask, and
:mod:`.coils` coil maps from the calibration region.  Conventions are
fastMRI's (Zbontar et al. 2018): zero frequency at index ``n // 2``,
``norm="ortho"``.  Priors, which see real images, meet these complex
operators through :class:`invsolve.operators.complex.ComplexAsChannels`.
"""

from .cartesian import CartesianMRI, rss
from .coils import espirit_maps, estimate_coil_maps, simulated_coil_maps
from .fft import fft_centered, ifft_centered
from .masks import check_center_lines, equispaced_fraction_mask, poisson_disc_mask, random_mask

__all__ = [
    "CartesianMRI",
    "rss",
    "fft_centered",
    "ifft_centered",
    "espirit_maps",
    "estimate_coil_maps",
    "simulated_coil_maps",
    "random_mask",
    "equispaced_fraction_mask",
    "poisson_disc_mask",
    "check_center_lines",
]
