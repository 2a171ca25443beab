"""Overlapping patches and their Hann-weighted stitching (invsolve/patches.py)."""

from __future__ import annotations

import pytest
import torch

from invsolve.patches import extract_patches, hann_window, patch_grid, stitch_patches


@pytest.mark.parametrize("frame, patch, overlap", [((37, 50), (16, 16), 4), ((16, 16), (16, 16), 8), ((40, 23), (8, 23), 2)])
def test_stitching_the_cut_patches_gives_the_frame_back(frame, patch, overlap):
    frames = torch.randn(2, 3, *frame, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    patches, grid = extract_patches(frames, patch, overlap)
    assert patches.shape == (2 * grid.count, 3, *patch)
    rows, columns = grid.starts
    assert rows[0] == 0 and rows[-1] == frame[0] - patch[0] and columns[-1] == frame[1] - patch[1]
    assert all(b - a <= patch[0] - overlap for a, b in zip(rows, rows[1:]))  # neighbours overlap enough
    assert torch.allclose(stitch_patches(patches, grid), frames, atol=1e-12)


def test_overlaps_blend_smoothly():
    """Two patches disagreeing by a constant: the stitched frame moves between them without a jump."""
    frames = torch.zeros(1, 1, 8, 24, dtype=torch.float64)
    patches, grid = extract_patches(frames, (8, 16), 8)
    assert grid.starts == ((0,), (0, 8))
    patches[1] += 1.0
    row = stitch_patches(patches, grid)[0, 0, 4]
    assert float(row[:4].max()) < 0.01 and float(row[-4:].min()) > 0.99
    assert bool((row.diff() >= -1e-12).all()) and float(row.diff().max()) < 0.2  # monotone, no seam
    window = hann_window((8, 16))
    assert float(window.min()) > 0 and torch.allclose(window, window.flip(0).flip(1))


def test_bad_patches_are_refused():
    frames = torch.zeros(1, 1, 10, 10)
    with pytest.raises(ValueError, match=r"the frame \(10×10\) is smaller than a patch \(16×16\) in height"):
        extract_patches(frames, (16, 16), 2)
    with pytest.raises(ValueError, match="overlap must be smaller than the patch"):
        extract_patches(frames, (4, 4), 4)
    with pytest.raises(ValueError, match=r"frames must be \(B, C, H, W\)"):
        extract_patches(frames[0], (4, 4), 1)
    patches, grid = extract_patches(frames, (4, 4), 1)
    with pytest.raises(ValueError, match=r"patches must be \(B·9, C, 4, 4\)"):
        stitch_patches(patches[:5], grid)
    assert patch_grid((10, 10), (4, 4), 1).count == 9
