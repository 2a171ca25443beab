"""Input validation shared by every public entry point.

Each check raises one exception whose message names the argument, what was
expected and what was given (DESIGN.md, "Errors").  Nothing here imports the
rest of the package, so operators, priors and datasets may all use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "check_tensor",
    "check_batched_shape",
    "check_finite",
    "check_nonnegative",
    "check_positive",
    "check_same_device",
]


def check_tensor(value: object, name: str, *, allow_complex: bool = True) -> torch.Tensor:
    """Return ``value`` if it is a floating (or complex) tensor, else raise ``TypeError``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or (allow_complex and value.is_complex())):
        kinds = "a floating-point or complex" if allow_complex else "a floating-point"
        raise TypeError(f"{name} must be {kinds} tensor, got dtype {value.dtype}")
    return value


def check_batched_shape(value: torch.Tensor, shape: Sequence[int], name: str) -> None:
    """Check that ``value`` is shaped ``(B, *shape)`` for some batch size ``B >= 1``."""
    expected = tuple(shape)
    if value.dim() != len(expected) + 1 or tuple(value.shape[1:]) != expected:
        raise ValueError(
            f"{name} must have shape (B, {', '.join(map(str, expected))}) "
            f"(a batch of {expected}), got {tuple(value.shape)}"
        )


def check_finite(value: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinite entries."""
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries")


def check_nonnegative(value: float, name: str) -> float:
    """Return ``float(value)`` if it is finite and >= 0, else raise ``ValueError``."""
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_positive(value: float, name: str) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise ``ValueError``."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_same_device(value: torch.Tensor, device: torch.device | None, name: str) -> None:
    """Raise ``ValueError`` if ``value`` is not on ``device`` (``None`` accepts any)."""
    if device is not None and value.device != device:
        raise ValueError(
            f"{name} is on {value.device} but the operator's tensors are on {device}; "
            f"move one of them with .to(device)"
        )
