"""invsolve's ray transforms as ODL operators, with the adjoint of ODL's spaces.

Two conventions
---------------
invsolve's operators act on plain arrays: images and sinograms carry the
unweighted Euclidean inner product ``⟨a, b⟩ = Σ a·b``, and
:meth:`~invsolve.operators.LinearOperator.adjoint` is the plain transpose
``Aᵀ`` (``dot_test`` checks it to rounding).

ODL (J. Adler, H. Kohr and O. Öktem, *Operator Discretization Library*,
https://github.com/odlgroup/odl, 2017) treats the arrays as discretised
functions in ``L²``: each space weights its inner product by the size of its
cells, ``⟨a, b⟩_X = w_X Σ a·b``.  The reconstruction space of ``to_odl()``
has ``w_X`` = the pixel area ``dx·dy`` (voxel volume ``dx·dy·dz`` in 3D); the
projection space that ODL's ``odl.applications.tomo.RayTransform`` builds has
``w_Y`` = (angular extent × detector extent) / number of data points, i.e.
(angle cell × detector cell) for equally spaced angles.  The adjoint in these
spaces is

    ``A* y = Aᵀ(w_Y ⊙ y) / w_X``,

because ``⟨Ax, y⟩_Y = Σ (Ax)·(w_Y ⊙ y) = Σ x·Aᵀ(w_Y ⊙ y) = ⟨x, Aᵀ(w_Y ⊙ y)/w_X⟩_X``.
Pairing ODL's spaces with the plain transpose therefore scales the adjoint
by ``w_X/w_Y`` (``1/3.35`` for 30 views of a ``64²`` image over ``[-1, 1]²``),
which silently changes step sizes, operator norms and regularisation weights
in ODL's solvers.  :class:`OdlRayTransform` evaluates the forward with
invsolve and its :attr:`~OdlRayTransform.adjoint` with the formula above, as
ODL's own ``astra_cpu`` backend scales ASTRA's backprojection.

Non-uniform angles: ODL 1.0 still weights the projection space by one
constant, the *mean* cell size (ODL's ``RayTransform`` source notes that
per-angle weights are not implemented), so the default range of
:class:`OdlRayTransform` is that constant-weighted space, and the adjoint is
exact in it.  For the per-cell quadrature (each view weighted by its own
angular cell), pass a ``proj_space`` with ODL's per-entry weighting; any
weighting that is neither a constant nor per entry, or an exponent other
than 2 (no inner product), is refused.

This module imports ODL (which sets ``SCIPY_ARRAY_API=1`` for the whole
process); the package reaches it only through ``as_odl_operator()`` of
:class:`~.projector.RayTransform` and :class:`~.cone.ConeBeamTransform`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import odl
import torch
from odl.core.discr import DiscretizedSpace
from odl.core.space.weightings.weighting import ArrayWeighting, ConstWeighting

from .cone import ConeBeamTransform
from .projector import RayTransform

__all__ = ["OdlRayTransform"]


class OdlRayTransform(odl.Operator):
    """An invsolve ray transform as a linear ODL operator with ODL's adjoint.

    Parameters
    ----------
    transform : RayTransform or ConeBeamTransform
        The invsolve transform (one channel) whose forward is evaluated.  It
        runs on its own device (``transform.to("cuda")`` moves it); ODL's
        arrays are copied there and back.
    proj_space : odl.DiscretizedSpace, optional
        The range: a float32 space on the geometry's partition
        (``transform.geometry.to_odl()[1].partition``) whose inner product is
        weighted by a constant or per entry.  Default: the space that ODL's
        own ``odl.applications.tomo.RayTransform`` builds for this geometry
        (constant weight: mean angle cell × detector cell size).

    Attributes
    ----------
    domain : odl.DiscretizedSpace
        ``transform.geometry.to_odl()[0]``: float32, shape ``(H, W)`` or
        ``(N_x, N_y, N_z)``, weighted by the pixel area / voxel volume.
    range : odl.DiscretizedSpace
        Sinograms ``(n_angles, n_detector)`` or projections
        ``(n_angles, n_u, n_v)``, float32, ``proj_space``.
    transform : RayTransform or ConeBeamTransform
        The wrapped transform.
    geometry : odl.applications.tomo.Geometry
        ODL's equivalent of ``transform.geometry``.

    Notes
    -----
    The forward is invsolve's forward on the same array (the axis orders of
    invsolve and ODL are the same, see :mod:`.geometry` and :mod:`.cone`),
    in float32.  :attr:`adjoint` is ``Aᵀ(w_Y ⊙ y) / w_X`` with ``Aᵀ`` invsolve's
    exact transpose and ``w_X``, ``w_Y`` the weights of :attr:`domain` and
    :attr:`range` (module notes), so ``⟨Ax, y⟩_Y = ⟨x, A*y⟩_X`` in ODL's inner
    products, and ``adjoint.adjoint`` is this operator.

    Raises
    ------
    TypeError
        If ``transform`` is not a :class:`RayTransform` or
        :class:`ConeBeamTransform`, or ``proj_space`` is not an ODL
        ``DiscretizedSpace``.
    ValueError
        If ``transform`` has more than one channel, or ``proj_space`` is not
        a float32 space of ODL's implementation of the domain on the
        geometry's partition, has an exponent other than 2, or a weighting
        other than a constant or per-entry one.

    Examples
    --------
    >>> A = RayTransform(ParallelBeam2D((64, 64), sparse_view_angles(30)))
    >>> op = A.as_odl_operator()          # an odl.Operator
    >>> x = op.domain.one()
    >>> y = op(x)                         # element of op.range, (30, 91)
    >>> back = op.adjoint(y)              # adjoint in ODL's weighted spaces
    """

    def __init__(self, transform: RayTransform | ConeBeamTransform, proj_space: Any = None) -> None:
        if not isinstance(transform, (RayTransform, ConeBeamTransform)):
            raise TypeError(
                f"transform must be an invsolve RayTransform or ConeBeamTransform, got {type(transform).__name__}"
            )
        if transform.in_shape[0] != 1:
            raise ValueError(
                f"transform must have one channel (ODL's spaces hold a single image), got "
                f"{transform.in_shape[0]} channels"
            )
        reco_space, geometry = transform.geometry.to_odl()
        if proj_space is None:
            proj_space = _projection_space(reco_space, geometry)
        else:
            _check_projection_space(proj_space, reco_space, geometry)
        super().__init__(domain=reco_space, range=proj_space, linear=True)
        self.transform = transform
        self.geometry = geometry
        self._domain_weight = _weight(reco_space, "the reconstruction space")
        self._range_weight = _weight(proj_space, "proj_space")
        self._adjoint = _OdlBackProjection(self)

    def _call(self, x):
        with torch.no_grad():
            return self.range.element(_to_numpy(self.transform.forward(_to_tensor(x, self.transform))))

    @property
    def adjoint(self) -> _OdlBackProjection:
        """``A*``: invsolve's transpose rescaled by the spaces' weights, ``range → domain``."""
        return self._adjoint

    def __repr__(self) -> str:
        return f"OdlRayTransform({self.transform.describe()})"


class _OdlBackProjection(odl.Operator):
    """``A* y = Aᵀ(w_Y ⊙ y) / w_X``, the adjoint of an :class:`OdlRayTransform`."""

    def __init__(self, forward: OdlRayTransform) -> None:
        super().__init__(domain=forward.range, range=forward.domain, linear=True)
        self._forward = forward

    def _call(self, y):
        forward = self._forward
        values = _to_tensor(y, forward.transform)
        with torch.no_grad():
            weighted = values * _on(forward._range_weight, values)
            back = forward.transform.adjoint(weighted) / _on(forward._domain_weight, values)
        return self.range.element(_to_numpy(back))

    @property
    def adjoint(self) -> OdlRayTransform:
        """The forward operator."""
        return self._forward

    def __repr__(self) -> str:
        return f"{self._forward!r}.adjoint"


# -- spaces and weights --------------------------------------------------------------------
def _projection_space(reco_space, geometry) -> DiscretizedSpace:
    """The range ODL's ``tomo.RayTransform(reco_space, geometry)`` infers (ODL 1.0).

    A tensor space of the reco space's type, dtype and device on
    ``geometry.partition``, weighted by the mean cell volume
    ``prod(partition.extent) / partition.size``: the exact cell volume for
    equally spaced angles (ODL does not weight angles per cell).  Built here
    rather than through ODL's ``RayTransform``, whose constructor needs a
    projector backend (ASTRA or scikit-image) installed;
    ``tests/operators/test_odl_operator.py`` checks that the two are equal.
    """
    partition = geometry.partition
    weight = float(np.prod(partition.extent)) / partition.size
    tspace = reco_space.tspace_type(
        partition.shape, weighting=weight, dtype=reco_space.dtype, device=reco_space.device
    )
    return DiscretizedSpace(partition, tspace)


def _check_projection_space(space: Any, reco_space, geometry) -> None:
    if not isinstance(space, DiscretizedSpace):
        raise TypeError(f"proj_space must be an odl.DiscretizedSpace, got {type(space).__name__}")
    if space.partition != geometry.partition:
        raise ValueError(
            f"proj_space must be a space on the geometry's partition {geometry.partition!r} "
            f"(shape {tuple(geometry.partition.shape)}), got one on {space.partition!r}"
        )
    if space.dtype != reco_space.dtype or space.impl != reco_space.impl:
        raise ValueError(
            f"proj_space must hold {reco_space.dtype} arrays of ODL's {reco_space.impl!r} implementation, "
            f"like the reconstruction space; got {space.dtype} arrays of {space.impl!r}"
        )


def _weight(space: DiscretizedSpace, name: str) -> float | np.ndarray:
    """The weight ``w`` of ``⟨a, b⟩ = Σ w·a·b`` in ``space``: a float or an array of its shape."""
    weighting = space.weighting
    if weighting.exponent != 2.0:
        raise ValueError(
            f"{name} must be a Hilbert space (exponent 2) for an adjoint to exist, got exponent {weighting.exponent}"
        )
    if isinstance(weighting, ConstWeighting):
        return float(weighting.const)
    if isinstance(weighting, ArrayWeighting):
        return np.broadcast_to(np.asarray(weighting.array, dtype=np.float64), space.shape).copy()
    raise ValueError(
        f"{name} must be weighted by a constant or per entry (ODL's ConstWeighting or ArrayWeighting), "
        f"got {type(weighting).__name__}"
    )


# -- ODL elements <-> tensors --------------------------------------------------------------
def _to_tensor(element, transform) -> torch.Tensor:
    """An ODL element as a float32 tensor ``(1, 1, *shape)`` on the transform's device (a copy)."""
    array = np.array(element.asarray(), dtype=np.float32)
    return torch.from_numpy(array).to(transform.device)[None, None]


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    """The single image of a ``(1, 1, *shape)`` tensor as a NumPy array."""
    return value[0, 0].detach().cpu().numpy()


def _on(weight: float | np.ndarray, like: torch.Tensor) -> float | torch.Tensor:
    """``weight`` ready to multiply ``like`` ``(1, 1, *shape)``: a float, or a tensor of its dtype and device."""
    if isinstance(weight, float):
        return weight
    return torch.as_tensor(weight, dtype=like.dtype, device=like.device)
