"""2D computed tomography: acquisition geometries and the ray transform.

:mod:`.geometry` describes where the image and the scanner are (conventions of
ODL's ``odl.applications.tomo``); :mod:`.projector` is the discrete ray
transform with its exact adjoint.  ODL is imported only by ``to_odl()``.
"""

from .geometry import (
    FanBeam2D,
    Geometry2D,
    ParallelBeam2D,
    limited_angle_angles,
    sparse_view_angles,
    uniform_angles,
)
from .projector import RayTransform

__all__ = [
    "Geometry2D",
    "ParallelBeam2D",
    "FanBeam2D",
    "RayTransform",
    "uniform_angles",
    "sparse_view_angles",
    "limited_angle_angles",
]
