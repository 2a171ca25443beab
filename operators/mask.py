"""Masking (inpainting): the instrument sees some pixels and not others.

The measurement keeps the image's shape, with unobserved pixels set to zero
(the convention of deepinv's ``Inpainting``), so that masks, measurements and
reconstructions can be shown side by side.  Three seeded mask generators cover
the usual test cases: random missing pixels, missing rectangles, and free-form
brush strokes (Yu et al., "Free-Form Image Inpainting with Gated
Convolution", ICCV 2019, Algorithm 1).  All masks are ``True`` where a pixel
is observed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from invsolve._checks import check_int, check_range, check_shape, check_tensor
from invsolve._random import make_generator

from .base import LinearOperator

__all__ = ["Mask", "random_pixel_mask", "box_mask", "stroke_mask"]


class Mask(LinearOperator):
    """Pixel-wise masking ``y = m ⊙ x`` with a binary mask ``m``.

    The operator is an orthogonal projection: its adjoint and normal operator
    are the same multiplication and its pseudo-inverse is ``m ⊙ y``.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean (or 0/1) tensor, ``True`` where a pixel is observed.  Its shape
        must broadcast to ``in_shape``, e.g. ``(H, W)`` for all channels of a
        ``(C, H, W)`` image.
    in_shape : sequence of int, optional
        Image shape ``(C, *spatial)``; default ``(1, *mask.shape)``.

    Examples
    --------
    >>> mask = random_pixel_mask((32, 32), missing_fraction=0.7, seed=0)
    >>> A = Mask(mask)                     # images (B, 1, 32, 32)
    >>> A3 = Mask(mask, in_shape=(3, 32, 32))   # the same mask on 3 channels
    """

    def __init__(self, mask: torch.Tensor, in_shape: Sequence[int] | None = None) -> None:
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            check_tensor(mask, "mask", allow_complex=False)
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(
                    "mask must hold only 0 and 1 (or be boolean); for weights use a "
                    "scaled operator instead"
                )
        shape = (1, *mask.shape) if in_shape is None else tuple(in_shape)
        try:
            torch.broadcast_shapes(mask.shape, shape)
        except RuntimeError:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to in_shape {shape}") from None
        if torch.broadcast_shapes(mask.shape, shape) != torch.Size(shape):
            raise ValueError(f"mask of shape {tuple(mask.shape)} is larger than in_shape {shape}")
        super().__init__(shape, shape)
        self.register_buffer("mask", mask.to(torch.bool))

    @property
    def observed_fraction(self) -> float:
        """Fraction of image entries that are observed."""
        return float(self.mask.expand(self.in_shape).float().mean())

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    _adjoint = _forward
    _normal = _forward
    _pinv = _forward
    _measured = _forward

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor:
        unobserved = rhs / damping if damping > 0 else torch.zeros_like(rhs)
        return torch.where(self.mask, rhs / (1 + damping), unobserved)


def random_pixel_mask(
    shape: Sequence[int], missing_fraction: float, seed: int | torch.Generator | None = None
) -> torch.Tensor:
    """Mask with exactly ``round(missing_fraction · H · W)`` missing pixels.

    Parameters
    ----------
    shape : (H, W)
        Image size in pixels.
    missing_fraction : float
        Fraction of pixels that are not observed, in ``[0, 1]``.
    seed : int or torch.Generator, optional
        Seed (or generator) for the choice of pixels.

    Returns
    -------
    torch.Tensor
        Boolean ``(H, W)`` mask, ``True`` where observed.
    """
    height, width = check_shape(shape, "shape", ("H", "W"))
    if isinstance(missing_fraction, bool) or not isinstance(missing_fraction, numbers.Real):
        raise TypeError(f"missing_fraction must be a number in [0, 1], got {missing_fraction!r}")
    fraction = float(missing_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"missing_fraction must lie in [0, 1], got {missing_fraction!r}")
    n_pixels = height * width
    n_missing = round(fraction * n_pixels)
    order = torch.randperm(n_pixels, generator=make_generator(seed))
    mask = torch.ones(n_pixels, dtype=torch.bool)
    mask[order[:n_missing]] = False
    return mask.reshape(height, width)


def box_mask(
    shape: Sequence[int],
    n_boxes: int = 1,
    size_range: tuple[float, float] = (0.25, 0.5),
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Mask with ``n_boxes`` missing axis-aligned rectangles at random places.

    Parameters
    ----------
    shape : (H, W)
        Image size in pixels.
    n_boxes : int
        Number of rectangles (they may overlap).
    size_range : (float, float)
        Range of each side's length as a fraction of the image side.
    seed : int or torch.Generator, optional
        Seed (or generator) for sizes and positions.

    Returns
    -------
    torch.Tensor
        Boolean ``(H, W)`` mask, ``True`` where observed.
    """
    height, width = check_shape(shape, "shape", ("H", "W"))
    low, high = check_range(size_range, "size_range", 0.0, 1.0)
    if high == 0:
        raise ValueError(f"size_range must be a pair (low, high) with high > 0, got {size_range!r}")
    n_boxes = check_int(n_boxes, "n_boxes", 0)
    generator = make_generator(seed)
    sides = torch.tensor([height, width], dtype=torch.float64)
    sizes = (low + (high - low) * torch.rand(n_boxes, 2, generator=generator, dtype=torch.float64)) * sides
    sizes = sizes.round().clamp(min=1).long()
    starts = (torch.rand(n_boxes, 2, generator=generator, dtype=torch.float64) * (sides - sizes + 1)).floor().long()
    rows = torch.arange(height)[None, :]
    cols = torch.arange(width)[None, :]
    in_rows = (rows >= starts[:, :1]) & (rows < starts[:, :1] + sizes[:, :1])  # (n, H)
    in_cols = (cols >= starts[:, 1:]) & (cols < starts[:, 1:] + sizes[:, 1:])  # (n, W)
    covered = (in_rows[:, :, None] & in_cols[:, None, :]).any(dim=0)
    return ~covered


def stroke_mask(
    shape: Sequence[int],
    n_strokes: int = 4,
    max_vertices: int = 8,
    width_range: tuple[float, float] = (0.03, 0.08),
    max_segment: float = 0.25,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Free-form brush-stroke mask (Yu et al. 2019, Algorithm 1).

    Each stroke starts at a random point and walks ``2..max_vertices``
    segments of random direction and length; pixels closer to a segment than
    half the brush width are missing.  Distances are computed for all pixels
    and segments at once.

    Parameters
    ----------
    shape : (H, W)
        Image size in pixels.
    n_strokes : int
        Number of strokes.
    max_vertices : int
        Maximum number of segments per stroke (at least 1).
    width_range : (float, float)
        Range of brush widths as a fraction of ``min(H, W)``.
    max_segment : float
        Maximum segment length as a fraction of ``min(H, W)``.
    seed : int or torch.Generator, optional
        Seed (or generator).

    Returns
    -------
    torch.Tensor
        Boolean ``(H, W)`` mask, ``True`` where observed.
    """
    height, width = check_shape(shape, "shape", ("H", "W"))
    n_strokes = check_int(n_strokes, "n_strokes", 0)
    max_vertices = check_int(max_vertices, "max_vertices")
    low, high = check_range(width_range, "width_range", 0.0, 1.0)
    generator = make_generator(seed)
    side = min(height, width)
    rand = lambda *size: torch.rand(*size, generator=generator, dtype=torch.float64)  # noqa: E731
    n_segments = torch.randint(1, max_vertices + 1, (n_strokes,), generator=generator)
    starts = rand(n_strokes, 2) * torch.tensor([height - 1, width - 1], dtype=torch.float64)
    widths = (low + (high - low) * rand(n_strokes)) * side
    # Random walk: all strokes padded to max_vertices segments, unused ones dropped.
    angles = rand(n_strokes, max_vertices) * 2 * math.pi
    lengths = rand(n_strokes, max_vertices) * max_segment * side
    steps = torch.stack([lengths * torch.sin(angles), lengths * torch.cos(angles)], dim=-1)
    limits = torch.tensor([height - 1, width - 1], dtype=torch.float64)
    vertices = (starts[:, None, :] + torch.cumsum(steps, dim=1)).clamp(min=torch.zeros(2, dtype=torch.float64), max=limits)
    vertices = torch.cat([starts[:, None, :], vertices], dim=1)  # (n, V+1, 2)
    seg_a = vertices[:, :-1].reshape(-1, 2)
    seg_b = vertices[:, 1:].reshape(-1, 2)
    used = (torch.arange(max_vertices)[None, :] < n_segments[:, None]).reshape(-1)
    radius = (widths[:, None] / 2).expand(-1, max_vertices).reshape(-1)
    seg_a, seg_b, radius = seg_a[used], seg_b[used], radius[used]
    grid = torch.stack(
        torch.meshgrid(
            torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
        ),
        dim=-1,
    ).reshape(-1, 2)  # (P, 2)
    direction = seg_b - seg_a  # (S, 2)
    length_sq = (direction**2).sum(-1).clamp_min(1e-12)
    offset = grid[None, :, :] - seg_a[:, None, :]  # (S, P, 2)
    along = ((offset * direction[:, None, :]).sum(-1) / length_sq[:, None]).clamp(0, 1)
    nearest = seg_a[:, None, :] + along[..., None] * direction[:, None, :]
    distance_sq = ((grid[None] - nearest) ** 2).sum(-1)
    covered = (distance_sq <= radius[:, None] ** 2).any(dim=0) if len(radius) else torch.zeros(len(grid), dtype=torch.bool)
    return ~covered.reshape(height, width)
