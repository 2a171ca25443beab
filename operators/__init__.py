"""Forward models of imaging instruments (installed as ``invsolve.operators``).

Every operator is a :class:`LinearOperator` with an exact adjoint; see
:func:`dot_test`.
"""

from .base import KernelOperator, LinearOperator, MatrixOperator, dot_test, stack
from .cg import cg
from .complex import (
    ComplexAsChannels,
    RealAsComplex,
    channels_to_complex,
    complex_to_channels,
    from_magnitude,
    magnitude_phase,
)
from .finite_difference import FiniteDifference, total_variation
from .likelihood import GaussianLikelihood
from .mask import Mask, box_mask, random_pixel_mask, stroke_mask
from .noise import GaussianNoise, PoissonNoise
from .slices import SliceStack

__all__ = [
    "LinearOperator",
    "KernelOperator",
    "MatrixOperator",
    "dot_test",
    "stack",
    "Mask",
    "random_pixel_mask",
    "box_mask",
    "stroke_mask",
    "GaussianNoise",
    "ComplexAsChannels",
    "RealAsComplex",
    "complex_to_channels",
    "channels_to_complex",
    "magnitude_phase",
    "from_magnitude",
    "PoissonNoise",
    "cg",
    "SliceStack",
    "GaussianLikelihood",
    "FiniteDifference",
    "total_variation",
]
