"""Frames larger than a prior's images: overlapping patches, and their seamless stitching.

A prior knows images of one size (a 64×64 patch of RF, say); a frame of
another size is cut into overlapping patches that cover it, the patches are
reconstructed as one batch, and the results are put back with a smooth
window: each pixel is the window-weighted mean of the patches that hold it,
``Σ_k w_k x_k / Σ_k w_k`` with a Hann window ``w`` (raised by a small floor
so that the frame's border, which one patch alone covers, keeps its value).
The dehazing study processes its frames this way (Stevens et al., IEEE TMI
2024).  Cutting and summing are tensor slices, batched over frames and
channels; the only loop runs over patch positions (a few dozen), because the
last patch of a row sits flush with the edge, which unfold's single stride
cannot express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from invsolve._checks import check_int, check_tensor

__all__ = ["PatchGrid", "patch_grid", "extract_patches", "stitch_patches", "hann_window"]

#: added to the Hann window so that every covered pixel has a positive weight
_WINDOW_FLOOR = 1e-3


@dataclass(frozen=True)
class PatchGrid:
    """Where the patches of a frame lie.

    Attributes
    ----------
    frame : (H, W)
        The frame's size.
    patch : (h, w)
        The patches' size.
    starts : (list of int, list of int)
        Row and column of every patch's corner: strides of at most ``patch − overlap``,
        the last patch flush with the frame's edge.
    """

    frame: tuple[int, int]
    patch: tuple[int, int]
    starts: tuple[tuple[int, ...], tuple[int, ...]]

    @property
    def count(self) -> int:
        """Patches per frame."""
        return len(self.starts[0]) * len(self.starts[1])


def _starts(length: int, size: int, overlap: int) -> tuple[int, ...]:
    if size >= length:
        return (0,)
    steps = math.ceil((length - size) / (size - overlap))
    return tuple(round(index * (length - size) / steps) for index in range(steps + 1))


def patch_grid(frame: tuple[int, int], patch: tuple[int, int], overlap: int) -> PatchGrid:
    """The patches of ``patch`` size covering a ``frame``, neighbours overlapping by at least ``overlap`` pixels."""
    frame = tuple(check_int(n, "frame") for n in frame)
    patch = tuple(check_int(n, "patch") for n in patch)
    overlap = check_int(overlap, "overlap", minimum=0)
    for side, length, name in zip(patch, frame, ("height", "width")):
        if side > length:
            raise ValueError(f"the frame ({frame[0]}×{frame[1]}) is smaller than a patch ({patch[0]}×{patch[1]}) in {name}")
        if side < length and overlap >= side:
            raise ValueError(f"overlap must be smaller than the patch ({patch[0]}×{patch[1]}), got {overlap}")
    return PatchGrid(frame, patch, (_starts(frame[0], patch[0], overlap), _starts(frame[1], patch[1], overlap)))


def extract_patches(frames: torch.Tensor, patch: tuple[int, int], overlap: int) -> tuple[torch.Tensor, PatchGrid]:
    """Cut frames ``(B, C, H, W)`` into patches ``(B·K, C, h, w)`` (frame by frame, rows first) and their grid.

    Raises
    ------
    ValueError
        For frames that are not ``(B, C, H, W)``, smaller than a patch, or an
        overlap as large as a patch.
    """
    frames = check_tensor(frames, "frames")
    if frames.dim() != 4:
        raise ValueError(f"frames must be (B, C, H, W), got shape {tuple(frames.shape)}")
    grid = patch_grid(tuple(frames.shape[-2:]), patch, overlap)
    rows, columns = grid.starts
    pieces = [frames[:, :, r : r + grid.patch[0], c : c + grid.patch[1]] for r in rows for c in columns]
    stacked = torch.stack(pieces, dim=1)  # (B, K, C, h, w)
    return stacked.reshape(-1, *stacked.shape[2:]), grid


def hann_window(patch: tuple[int, int], dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> torch.Tensor:
    """The stitching weight ``(h, w)``: the outer product of Hann windows (zero just outside the patch), plus a small floor."""
    windows = [torch.hann_window(n + 2, periodic=False, dtype=dtype, device=device)[1:-1] for n in patch]
    return windows[0][:, None] * windows[1][None, :] + _WINDOW_FLOOR


def stitch_patches(patches: torch.Tensor, grid: PatchGrid) -> torch.Tensor:
    """Put patches ``(B·K, C, h, w)`` back into frames ``(B, C, H, W)``: the Hann-weighted mean where they overlap."""
    patches = check_tensor(patches, "patches")
    if patches.dim() != 4 or tuple(patches.shape[-2:]) != grid.patch or patches.shape[0] % grid.count:
        raise ValueError(
            f"patches must be (B·{grid.count}, C, {grid.patch[0]}, {grid.patch[1]}) for this grid, got {tuple(patches.shape)}"
        )
    batch, channels = patches.shape[0] // grid.count, patches.shape[1]
    window = hann_window(grid.patch, patches.real.dtype, patches.device)
    frame = torch.zeros(batch, channels, *grid.frame, dtype=patches.dtype, device=patches.device)
    weight = torch.zeros(grid.frame, dtype=window.dtype, device=patches.device)
    pieces = patches.reshape(batch, grid.count, channels, *grid.patch) * window
    rows, columns = grid.starts
    for index, (r, c) in enumerate((r, c) for r in rows for c in columns):
        frame[:, :, r : r + grid.patch[0], c : c + grid.patch[1]] += pieces[:, index]
        weight[r : r + grid.patch[0], c : c + grid.patch[1]] += window
    return frame / weight
