"""Input validation shared by every public entry point.

Each check raises one exception whose message names the argument, what was
expected and what was given (docs/design.md, "Errors").  Nothing here imports the
rest of the package, so operators, priors and datasets may all use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = [
    "check_tensor",
    "check_batched_shape",
    "check_finite",
    "check_nonnegative",
    "check_positive",
    "check_unit_interval",
    "check_same_device",
    "check_finite_number",
    "check_int",
    "check_shape",
    "check_positive_tuple",
    "check_extent",
    "check_range",
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


def check_unit_interval(value: float, name: str) -> float:
    """Return ``float(value)`` if it lies in ``[0, 1]``, else raise ``ValueError``."""
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return number


def check_same_device(value: torch.Tensor, device: torch.device | None, name: str) -> None:
    """Raise ``ValueError`` if ``value`` is not on ``device`` (``None`` accepts any)."""
    if device is not None and value.device != device:
        raise ValueError(
            f"{name} is on {value.device} but the operator's tensors are on {device}; "
            f"move one of them with .to(device)"
        )


def check_finite_number(value: object, name: str) -> float:
    """Return ``float(value)`` if it is finite, else raise ``ValueError``."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_int(value: object, name: str, minimum: int = 1, *, optional: bool = False) -> int | None:
    """Return ``int(value)`` for an integer ``>= minimum``.

    Raises ``TypeError`` for anything but an integer (``bool`` included) and
    ``ValueError`` below ``minimum``.  With ``optional=True``, ``None`` is
    accepted and returned.
    """
    if optional and value is None:
        return None
    expected = f"an int >= {minimum}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def check_shape(shape: object, name: str, *layouts: Sequence[str]) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints ``>= 1`` laid out as one of ``layouts``.

    Each layout names the axes, e.g. ``("H", "W")``; ``shape`` must have as
    many entries as one of them.  Raises ``TypeError`` if ``shape`` is not a
    sequence or an entry is not an int, ``ValueError`` for a wrong length or
    an entry below 1 (named ``name[i]``).
    """
    expected = f"{name} must be {' or '.join(_tuple_phrase(axes) for axes in layouts)} of ints, got {shape!r}"
    dims = _entries(shape, {len(axes) for axes in layouts}, expected)
    return tuple(check_int(n, f"{name}[{i}]") for i, n in enumerate(dims))


def check_positive_tuple(value: object, name: str, labels: Sequence[str]) -> tuple[float, ...]:
    """Return one positive number per label: ``value`` is a number (repeated) or a sequence.

    Raises ``TypeError`` for neither a number nor a sequence, ``ValueError``
    for a sequence of the wrong length and, through :func:`check_positive`,
    for an entry that is not a finite number > 0 (named ``name[i]``).
    """
    if isinstance(value, numbers.Real):
        return (check_positive(value, name),) * len(labels)
    expected = f"{name} must be a positive number or {_tuple_phrase(labels)}, got {value!r}"
    entries = _entries(value, {len(labels)}, expected)
    return tuple(check_positive(entry, f"{name}[{i}]") for i, entry in enumerate(entries))


def check_extent(extent: object, ndim: int) -> tuple[float, ...]:
    """Physical side lengths ``(L_x, L_y[, L_z])`` of an image centred at the origin.

    ``None`` gives the default 2 per axis (the image spans ``[-1, 1]^ndim``);
    one number gives a square or cube.  ``ndim`` is 2 or 3.
    """
    if extent is None:
        return (2.0,) * ndim
    return check_positive_tuple(extent, "extent", tuple(f"L_{axis}" for axis in "xyz"[:ndim]))


def check_range(value: object, name: str, lower: float, upper: float = math.inf) -> tuple[float, float]:
    """Return ``value`` as a pair ``(low, high)`` with ``lower <= low <= high <= upper``, else raise ``ValueError``."""
    bound = f" <= {upper:g}" if math.isfinite(upper) else ""
    expected = f"{name} must be a pair (low, high) with {lower:g} <= low <= high{bound}, got {value!r}"
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(expected) from None
    if not (math.isfinite(low) and math.isfinite(high) and lower <= low <= high <= upper):
        raise ValueError(expected)
    return low, high


def _entries(value: object, lengths: set[int], message: str) -> tuple:
    """``tuple(value)`` if its length is in ``lengths``; else ``TypeError`` (not iterable) or ``ValueError``."""
    try:
        entries = tuple(value)
    except TypeError:
        raise TypeError(message) from None
    if len(entries) not in lengths:
        raise ValueError(message)
    return entries


def _tuple_phrase(labels: Sequence[str]) -> str:
    """``("H", "W")`` -> ``"a pair (H, W)"``; likewise ``"a triple (…)"``."""
    count = {2: "a pair", 3: "a triple"}.get(len(labels), f"a sequence of {len(labels)}")
    return f"{count} ({', '.join(labels)})"
