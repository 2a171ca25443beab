"""Finite differences and total variation of images and volumes.

:class:`FiniteDifference` is the discrete gradient ``D`` of total-variation
regularisation: forward differences ``x[i+1] − x[i]`` along chosen spatial
axes with unit pixel spacing, set to zero across the far boundary (the
discretisation of Chambolle, "An algorithm for total variation minimization
and applications", J. Math. Imaging Vis. 20:89–97, 2004, used by Chambolle &
Pock, "A first-order primal-dual algorithm for convex problems with
applications to imaging", J. Math. Imaging Vis. 40:120–145, 2011, Sec. 6.1).
Its adjoint is minus the matching backward-difference divergence.

:func:`total_variation` is the isotropic total variation of Rudin, Osher &
Fatemi, "Nonlinear total variation based noise removal algorithms", Physica D
60:259–268, 1992, in that discretisation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from invsolve._checks import check_tensor

from .base import LinearOperator

__all__ = ["FiniteDifference", "total_variation"]


class FiniteDifference(LinearOperator):
    """Forward differences along spatial axes: ``(B, C, *spatial) -> (B, len(axes), C, *spatial)``.

    For an image ``x`` and a chosen spatial axis ``a`` (output slot ``k``,
    the position of ``a`` in ``axes``),

        (Dx)[b, k, c, …, i, …] = x[b, c, …, i + 1, …] − x[b, c, …, i, …]   for i < n_a − 1,
        (Dx)[b, k, c, …, n_a − 1, …] = 0                                       (far edge),

    with ``i`` indexing axis ``a``: unit pixel spacing, so the output is in
    image units per pixel.  Channels are differenced separately.  The
    adjoint ``Dᵀ`` is minus the divergence of backward differences (Chambolle
    2004; Chambolle & Pock 2011, Sec. 6.1), exact to rounding (see
    :func:`~invsolve.operators.dot_test`).

    ``DᵀD`` is the sum over the chosen axes of the path-graph Laplacian of
    each axis, so ``‖D‖² = Σ_a (2 + 2·cos(π/n_a)) <= 4·len(axes)``
    (:meth:`exact_norm`, :meth:`norm_bound`); the dimension-free bound is
    what :func:`~invsolve.tv_reconstruct` uses to balance its step sizes.

    Real images only: the operator is real, and it is declared with a real
    domain and range (``complex_domain = complex_range = False``), which is
    what :func:`dot_test` and the power iteration of :meth:`norm` draw.

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one image ``(C, *spatial)``, at least one spatial axis.
    axes : int or sequence of int, optional
        Spatial axes to difference, as indices into ``spatial`` (``0`` is the
        first spatial axis: the z axis of a ``(C, D, H, W)`` volume, the rows
        of a ``(C, H, W)`` image); negative indices count from the last.
        The output's difference axis follows this order.  Default: every
        spatial axis, in order.

    Attributes
    ----------
    axes : tuple of int
        The chosen spatial axes, non-negative.

    Raises
    ------
    ValueError
        For an ``in_shape`` without a spatial axis or with an entry below 1,
        and for ``axes`` that are empty, out of range or repeated.
    TypeError
        For ``axes`` entries that are not ints.

    Examples
    --------
    >>> D = FiniteDifference((1, 64, 64))            # 2-D gradient, out (B, 2, 1, 64, 64)
    >>> Dz = FiniteDifference((1, 32, 64, 64), axes=0)   # along z only, out (B, 1, 1, 32, 64, 64)
    >>> g = D(torch.rand(4, 1, 64, 64))
    """

    def __init__(self, in_shape: Sequence[int], axes: int | Sequence[int] | None = None) -> None:
        shape = _image_shape(in_shape)
        chosen = _spatial_axes(axes, len(shape) - 1, shape)
        super().__init__(shape, (len(chosen), *shape))
        self.axes = chosen

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((x.shape[0], *self.out_shape), dtype=x.dtype, device=x.device)
        for slot, axis in enumerate(self.axes):
            dim = axis + 2  # (B, C, *spatial)
            length = x.shape[dim]
            if length > 1:
                out[:, slot].narrow(dim, 0, length - 1).copy_(torch.diff(x, dim=dim))
        return out

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((y.shape[0], *self.in_shape), dtype=y.dtype, device=y.device)
        for slot, axis in enumerate(self.axes):
            dim = axis + 2
            length = out.shape[dim]
            if length > 1:
                inner = y[:, slot].narrow(dim, 0, length - 1)
                out.narrow(dim, 1, length - 1).add_(inner)
                out.narrow(dim, 0, length - 1).sub_(inner)
        return out

    def norm_bound(self) -> float:
        """The bound ``√(4·len(axes)) >= ‖D‖₂`` that does not depend on the image size."""
        return math.sqrt(4 * len(self.axes))

    def exact_norm(self) -> float:
        """The spectral norm ``‖D‖₂ = √(Σ_a (2 + 2·cos(π/n_a)))`` in closed form.

        ``n_a`` is the length of chosen axis ``a``; an axis of length 1
        contributes 0.  Always ``<= norm_bound()``.
        """
        spatial = self.in_shape[1:]
        return math.sqrt(sum(2 + 2 * math.cos(math.pi / spatial[axis]) for axis in self.axes))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, axes={self.axes}"


def total_variation(x: torch.Tensor, axes: int | Sequence[int] | None = None) -> torch.Tensor:
    """Isotropic total variation of each batch item, ``(B,)``.

        TV(x) = Σ_c Σ_pixels ‖(Dx)[:, c, pixel]‖₂ ,

    the Euclidean norm over the difference axis of :class:`FiniteDifference`
    (forward differences, zero across the far edge, unit pixel spacing),
    summed over pixels and channels (Rudin, Osher & Fatemi 1992, in the
    discretisation of Chambolle & Pock 2011, Sec. 6.1).  With one axis it is
    the anisotropic sum ``Σ |x[i+1] − x[i]|`` along that axis.

    Parameters
    ----------
    x : torch.Tensor
        Real images ``(B, C, *spatial)`` with at least one spatial axis.
    axes : int or sequence of int, optional
        Spatial axes to difference, as for :class:`FiniteDifference`;
        default all.

    Returns
    -------
    torch.Tensor
        ``(B,)`` in ``x``'s dtype and on its device, in image units × pixel
        count.

    Raises
    ------
    TypeError
        For an ``x`` that is not a real floating-point tensor, or ``axes``
        entries that are not ints.
    ValueError
        For an ``x`` without a spatial axis and for bad ``axes``.
    """
    check_tensor(x, "x", allow_complex=False)
    if x.dim() < 3:
        raise ValueError(
            f"x must be real images (B, C, *spatial) with at least one spatial axis, got shape {tuple(x.shape)}"
        )
    grad = FiniteDifference(x.shape[1:], axes)._forward(x)
    return torch.linalg.vector_norm(grad, dim=1).reshape(x.shape[0], -1).sum(dim=1)


def _image_shape(in_shape: object) -> tuple[int, ...]:
    """``in_shape`` as a tuple ``(C, *spatial)`` of ints >= 1 with at least one spatial axis."""
    expected = f"in_shape must be (C, *spatial) of ints >= 1 with at least one spatial axis, got {in_shape!r}"
    try:
        entries = tuple(in_shape)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(expected) from None
    if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in entries):
        raise TypeError(expected)
    if len(entries) < 2 or any(n < 1 for n in entries):
        raise ValueError(expected)
    return tuple(int(n) for n in entries)


def _spatial_axes(axes: object, spatial: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``axes`` as distinct non-negative indices into the ``spatial`` axes of ``shape``."""
    if axes is None:
        return tuple(range(spatial))
    entries = (axes,) if isinstance(axes, numbers.Integral) and not isinstance(axes, bool) else axes
    expected = (
        f"axes must be None, an int or a sequence of distinct ints in [-{spatial}, {spatial}) "
        f"(spatial axes of in_shape {shape}), got {axes!r}"
    )
    try:
        entries = tuple(entries)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(expected) from None
    if any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in entries):
        raise TypeError(expected)
    if not entries:
        raise ValueError(f"axes must name at least one spatial axis of in_shape {shape}, got {axes!r}")
    if any(not -spatial <= a < spatial for a in entries):
        raise ValueError(expected)
    result = tuple(int(a) % spatial for a in entries)
    if len(set(result)) != len(result):
        repeated = next(a for a in result if result.count(a) > 1)
        raise ValueError(f"{expected}: spatial axis {repeated} is named twice")
    return result
