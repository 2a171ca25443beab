"""Fixtures shared by the operator tests."""

import pytest
import torch


def _blobs(shape, extent, dtype=torch.float64) -> torch.Tensor:
    """Smooth, asymmetric phantom: two Gaussian blobs sampled at the pixel centres, shape ``(H, W)``.

    ``extent`` is the image's physical size ``(height, width)``, centred on the origin.
    """
    height, width = shape
    x = ((torch.arange(height, dtype=dtype) + 0.5) / height - 0.5) * extent[0]
    y = ((torch.arange(width, dtype=dtype) + 0.5) / width - 0.5) * extent[1]
    x, y = x[:, None], y[None, :]
    return torch.exp(-((x - 0.25) ** 2 / 0.12 + (y + 0.1) ** 2 / 0.05)) + 0.6 * torch.exp(
        -((x + 0.3) ** 2 + (y - 0.35) ** 2) / 0.04
    )


@pytest.fixture
def blobs():
    """:func:`_blobs`, the smooth test phantom: ``blobs(shape, extent)``."""
    return _blobs
