"""A 2D operator applied to every slice of a volume: parallel-beam CT volumes, slice-wise MRI.

Many 3D scans are stacks of independent 2D measurements: a parallel-beam CT
scanner with a multi-row detector measures every axial slice with the same
2D ray transform, and 2D multi-slice MRI samples every slice's k-space on its
own.  :class:`SliceStack` turns the 2D operator into a volume operator by
treating the slices as a batch (one call of the 2D operator for the whole
volume, no loop over slices), so every volume method (3D TV, the
slice-augmented samplers) runs on it.
"""

from __future__ import annotations

import torch

from invsolve._checks import check_int

from .base import LinearOperator

__all__ = ["SliceStack", "slices_as_batch", "batch_as_slices"]


def slices_as_batch(volume: torch.Tensor, axis: int) -> torch.Tensor:
    """``(B, C, *spatial)`` → ``(B·n, C, …)``: the ``n`` slices along spatial ``axis`` as a batch of images."""
    moved = volume.movedim(2 + axis, 1)  # (B, n, C, ...)
    return moved.reshape(-1, *moved.shape[2:])


def batch_as_slices(images: torch.Tensor, n_slices: int, axis: int) -> torch.Tensor:
    """Inverse of :func:`slices_as_batch`: ``(B·n, C, …)`` → ``(B, C, *spatial)`` with the slices along ``axis``."""
    stacked = images.reshape(-1, n_slices, *images.shape[1:])
    return stacked.movedim(1, 2 + axis)


class SliceStack(LinearOperator):
    """``operator`` on every slice of volumes ``(B, C, D, H, W)`` along spatial ``axis``.

    With ``axis = 0`` the slices are ``x[:, :, k]``, images ``(C, H, W)``
    that ``operator`` takes, and the measurement of slice ``k`` is
    ``y[:, :, k]`` (the stacking axis goes right after the measurement's
    first axis): a 2D sinogram ``(C, n_angles, n_detector)`` becomes
    ``(C, D, n_angles, n_detector)``.  In general the volume is
    ``(C, *spatial)`` with the slices' images ``(C, *spatial without axis)``,
    and measurements ``(M₀, n_slices, M₁, …)`` for 2D measurements
    ``(M₀, M₁, …)``.

    The adjoint, normal operator, pseudo-inverse, closed-form solves and the
    measured entries are the 2D operator's, slice by slice, so ``dot_test`` holds
    exactly when it holds for ``operator``.

    Parameters
    ----------
    operator : LinearOperator
        The 2D operator on images ``(C, h, w)``.
    n_slices : int
        Number of slices ``≥ 1``.
    axis : int
        Spatial axis (0, 1 or 2 of ``(D, H, W)``) the slices are stacked along.

    Examples
    --------
    >>> from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
    >>> A2 = RayTransform(ParallelBeam2D((64, 64), sparse_view_angles(16)))
    >>> A = SliceStack(A2, n_slices=32)      # (B, 1, 32, 64, 64) -> (B, 1, 32, 16, n_det)
    """

    def __init__(self, operator: LinearOperator, n_slices: int, axis: int = 0) -> None:
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
        n_slices = check_int(n_slices, "n_slices", minimum=1)
        axis = check_int(axis, "axis", minimum=0)
        if len(operator.in_shape) != 3:
            raise ValueError(f"operator must take 2D images (C, h, w), but it takes {operator.in_shape}")
        if axis > 2:
            raise ValueError(f"axis must be 0, 1 or 2 (an axis of (D, H, W)), got {axis}")
        channels, *plane = operator.in_shape
        spatial = [*plane]
        spatial.insert(axis, n_slices)
        first, *rest = operator.out_shape
        super().__init__(
            (channels, *spatial),
            (first, n_slices, *rest),
            complex_domain=operator.complex_domain,
            complex_range=operator.complex_range,
        )
        self.operator = operator
        self.n_slices = n_slices
        self.axis = axis
        self.unitary = operator.unitary

    # images (B, C, *spatial) <-> (B·n, C, h, w); measurements (B, M0, n, *rest) <-> (B·n, M0, *rest)
    def _image_slices(self, x: torch.Tensor) -> torch.Tensor:
        return slices_as_batch(x, self.axis)

    def _image_volume(self, slices: torch.Tensor) -> torch.Tensor:
        return batch_as_slices(slices, self.n_slices, self.axis)

    def _measurement_slices(self, y: torch.Tensor) -> torch.Tensor:
        return slices_as_batch(y, 0)

    def _measurement_volume(self, slices: torch.Tensor) -> torch.Tensor:
        return batch_as_slices(slices, self.n_slices, 0)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._measurement_volume(self.operator._forward(self._image_slices(x)))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._image_volume(self.operator._adjoint(self._measurement_slices(y)))

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._image_volume(self.operator._normal(self._image_slices(x)))

    def _pinv(self, y: torch.Tensor) -> torch.Tensor:
        return self._image_volume(self.operator._pinv(self._measurement_slices(y)))

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return self._measurement_volume(self.operator._measured(self._measurement_slices(y)))

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        solved = self.operator._solve_normal(self._image_slices(rhs), damping)
        return None if solved is None else self._image_volume(solved)

    def describe(self) -> str:
        return f"SliceStack({self.operator.describe()}, {self.n_slices} slices along axis {self.axis})"
