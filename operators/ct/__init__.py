"""Computed tomography: geometries, ray transforms and analytic reconstruction.

:mod:`.geometry` describes where the image and the scanner are in 2D
(conventions of ODL's ``odl.applications.tomo``); :mod:`.projector` is the 2D
ray transform with its exact adjoint; :mod:`.fbp` is filtered backprojection
for parallel and fan beam; :mod:`.cone` is 3D cone-beam CT (geometry,
transform and FDK); :mod:`.filters` holds the ramp filters and angular
weights that FBP and FDK share; :mod:`.units` converts Hounsfield units to
attenuation and back.  ODL is imported only by ``to_odl()`` and by the
transforms' ``as_odl_operator()``, which loads :mod:`.odl_operator` (ODL
operators of the ray transforms, with the adjoint of ODL's weighted spaces;
not imported here for that reason).
"""

from .geometry import (
    FanBeam2D,
    Geometry2D,
    ParallelBeam2D,
    limited_angle_angles,
    sparse_view_angles,
    uniform_angles,
)
from .cone import ConeBeam3D, ConeBeamTransform
from .fbp import FilteredBackProjection, fbp
from .filters import FBP_FILTERS, angle_cell_widths
from .projector import RayTransform
from .units import MU_WATER_PER_MM, attenuation_to_hounsfield, hounsfield_to_attenuation

__all__ = [
    "Geometry2D",
    "ParallelBeam2D",
    "FanBeam2D",
    "RayTransform",
    "ConeBeam3D",
    "ConeBeamTransform",
    "FilteredBackProjection",
    "fbp",
    "FBP_FILTERS",
    "angle_cell_widths",
    "uniform_angles",
    "sparse_view_angles",
    "limited_angle_angles",
    "MU_WATER_PER_MM",
    "hounsfield_to_attenuation",
    "attenuation_to_hounsfield",
]
