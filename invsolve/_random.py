"""Seeded random numbers on any device (one place for the convention)."""

from __future__ import annotations

import torch

__all__ = ["make_generator", "randn_like", "uniform_number"]


def make_generator(seed: int | torch.Generator | None, device: torch.device | str | None = "cpu") -> torch.Generator:
    """Return a generator on ``device`` seeded with ``seed``.

    A ``torch.Generator`` passes through unchanged; ``None`` seeds from the
    operating system (non-reproducible).
    """
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator(device=device if device is not None else "cpu")
    if seed is None:
        generator.seed()
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
        generator.manual_seed(seed)
    return generator


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``; complex ``x`` gets unit variance per real component."""
    if generator is None:
        return torch.randn_like(x) if not x.is_complex() else torch.complex(torch.randn_like(x.real), torch.randn_like(x.real))
    if x.is_complex():
        real = torch.randn(x.shape, dtype=x.real.dtype, device=generator.device, generator=generator)
        imag = torch.randn(x.shape, dtype=x.real.dtype, device=generator.device, generator=generator)
        return torch.complex(real, imag).to(x.device)
    return torch.randn(x.shape, dtype=x.dtype, device=generator.device, generator=generator).to(x.device)


def uniform_number(generator: torch.Generator, low: float, high: float) -> float:
    """One float64 draw from ``[low, high)`` of ``generator`` (a Python float)."""
    return low + (high - low) * float(torch.rand((), dtype=torch.float64, generator=generator))
