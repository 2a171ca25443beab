"""Forward models of imaging instruments (installed as ``invsolve.operators``).

Every operator is a :class:`LinearOperator` with an exact adjoint; see
:func:`dot_test`.
"""

from .base import LinearOperator, MatrixOperator, dot_test, stack
from .mask import Mask, box_mask, random_pixel_mask, stroke_mask
from .noise import GaussianNoise, PoissonNoise

__all__ = [
    "LinearOperator",
    "MatrixOperator",
    "dot_test",
    "stack",
    "Mask",
    "random_pixel_mask",
    "box_mask",
    "stroke_mask",
    "GaussianNoise",
    "PoissonNoise",
]
