"""Image quality metrics, per batch item."""

from __future__ import annotations

import torch

from invsolve._checks import check_tensor

__all__ = ["psnr", "nmse", "rmse"]


def _flat_pair(image: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor(image, "image")
    check_tensor(reference, "reference")
    if image.shape != reference.shape:
        raise ValueError(f"image and reference must have one shape, got {tuple(image.shape)} and {tuple(reference.shape)}")
    if image.dim() < 2:
        raise ValueError(f"image must be batched (B, ...), got shape {tuple(image.shape)}")
    return image.reshape(image.shape[0], -1), reference.reshape(reference.shape[0], -1)


def rmse(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error per batch item, ``(B,)``, in the images' units."""
    x, ref = _flat_pair(image, reference)
    return ((x - ref).abs() ** 2).mean(dim=1).sqrt()


def nmse(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Normalised mean squared error ``‖x − ref‖² / ‖ref‖²`` per batch item, ``(B,)``."""
    x, ref = _flat_pair(image, reference)
    return ((x - ref).abs() ** 2).sum(dim=1) / (ref.abs() ** 2).sum(dim=1)


def psnr(image: torch.Tensor, reference: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per batch item, ``(B,)``.

    ``PSNR = 20·log10(data_range) − 10·log10(MSE)``; ``data_range`` defaults
    to ``max(ref) − min(ref)`` of each reference image.
    """
    x, ref = _flat_pair(image, reference)
    mse = ((x - ref).abs() ** 2).mean(dim=1)
    if data_range is None:
        peak = ref.real.amax(dim=1) - ref.real.amin(dim=1)
    else:
        peak = torch.full_like(mse, float(data_range))
    return 20 * torch.log10(peak) - 10 * torch.log10(mse)
