"""Input validation shared by every public entry point.

Each check raises one exception whose message names the argument, what was
expected and what was given (docs/design.md, "Errors").  Nothing here imports the
rest of the package, so operators, priors and datasets may all use it.

Metadata checks (type, dtype, shape, device) cost nothing and run on every call
of an operator; :func:`check_finite` is a pass over the data and runs once where
data enter a computation (``reconstruct``, ``pinv``, FBP, baselines, the oracle,
metrics), never inside a solver's loop.  :func:`check_output_dir` and
:func:`check_output_file` probe an output location before any computation.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = [
    "COMPUTE_DTYPES",
    "check_tensor",
    "check_compute_dtype",
    "check_nonempty",
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
    "check_output_dir",
    "check_output_file",
]

#: dtypes the operators and solvers compute in (half precision is refused: FFTs,
#: grid sampling and CG have no float16/bfloat16 kernels on every device)
COMPUTE_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def check_tensor(value: object, name: str, *, allow_complex: bool = True) -> torch.Tensor:
    """Return ``value`` if it is a floating (or complex) tensor, else raise ``TypeError``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or (allow_complex and value.is_complex())):
        kinds = "a floating-point or complex" if allow_complex else "a floating-point"
        raise TypeError(f"{name} must be {kinds} tensor, got dtype {value.dtype}")
    return value


def check_compute_dtype(value: torch.Tensor, name: str) -> None:
    """Raise ``TypeError`` unless ``value``'s dtype is one of :data:`COMPUTE_DTYPES`."""
    if value.dtype not in COMPUTE_DTYPES:
        raise TypeError(
            f"{name} must be float32 or float64 (complex64 or complex128 for complex data), got dtype "
            f"{value.dtype}; convert it with .float() or .double()"
        )


def check_nonempty(value: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``value`` has no entries."""
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")


def check_batched_shape(value: torch.Tensor, shape: Sequence[int], name: str) -> None:
    """Check that ``value`` is shaped ``(B, *shape)`` for some batch size ``B >= 1``."""
    expected = tuple(shape)
    if value.dim() != len(expected) + 1 or tuple(value.shape[1:]) != expected or value.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape (B, {', '.join(map(str, expected))}) with B >= 1 "
            f"(a batch of {expected}), got {tuple(value.shape)}"
        )


def check_finite(value: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinite entries (the message gives the first one's index)."""
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = ~finite
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name} must be finite, got {int(bad.sum())} NaN or infinite entries (the first at index {first}: "
            f"{value[first].item()!r})"
        )


def _real_number(value: object, name: str, expected: str) -> float:
    """``float(value)`` for a real number (not a bool or a string), else ``TypeError`` naming ``name``."""
    complex_tensor = isinstance(value, torch.Tensor) and value.is_complex()
    complex_number = isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real)
    if value is None or isinstance(value, (bool, str, bytes)) or complex_tensor or complex_number:
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be {expected}, got {value!r}") from None


def check_nonnegative(value: float, name: str) -> float:
    """Return ``float(value)`` if it is finite and >= 0; ``TypeError`` for a non-number, else ``ValueError``."""
    expected = "a finite number >= 0"
    number = _real_number(value, name, expected)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_positive(value: float, name: str) -> float:
    """Return ``float(value)`` if it is finite and > 0; ``TypeError`` for a non-number, else ``ValueError``."""
    expected = "a finite number > 0"
    number = _real_number(value, name, expected)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_unit_interval(value: float, name: str) -> float:
    """Return ``float(value)`` if it lies in ``[0, 1]``; ``TypeError`` for a non-number, else ``ValueError``."""
    expected = "a number in [0, 1]"
    number = _real_number(value, name, expected)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_same_device(value: torch.Tensor, device: torch.device | None, name: str) -> None:
    """Raise ``ValueError`` if ``value`` is not on ``device`` (``None`` accepts any)."""
    if device is not None and value.device != device:
        raise ValueError(
            f"{name} is on {value.device} but the operator's tensors are on {device}; "
            f"move one of them with .to(device)"
        )


def check_finite_number(value: object, name: str) -> float:
    """Return ``float(value)`` if it is finite; ``TypeError`` for a non-number, else ``ValueError``."""
    number = _real_number(value, name, "a finite number")
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


def check_output_dir(path: str | os.PathLike, name: str) -> Path:
    """Return ``Path(path)`` if it is a folder that exists or can be created, and that takes new files.

    Meant to run before any computation, so that a run cannot fail at its
    end for want of a place to write.  The check is a probe, not a
    permission lookup (which says yes to root everywhere, ``/proc``
    included): a temporary file is created and removed in an existing
    folder, a temporary folder in the nearest existing parent of a missing
    one.  Nothing is left behind.

    Raises
    ------
    TypeError
        If ``path`` is not a ``str`` or path-like.
    ValueError
        If ``path`` is empty, an existing file, below a file, or not
        writable; the message names ``name`` and the user's ``path``, never
        the probe.
    """
    folder = _as_path(path, name, "a folder")
    _check_folder(folder, f"{name} must be a folder that exists or can be created, and that is writable; got {str(path)!r}")
    return folder


def check_output_file(path: str | os.PathLike, name: str) -> Path:
    """Return ``Path(path)`` if a file can be written there: not a folder, its folder writable or creatable.

    An existing regular file is fine (it will be replaced); an existing
    folder, device or other special file is refused.  The folder is probed
    as :func:`check_output_dir` does; the same errors are raised.
    """
    target = _as_path(path, name, "a file name")
    if target.is_dir():
        raise ValueError(f"{name} must be a file to write, got {str(path)!r}, which is a folder")
    if target.exists() and not target.is_file():
        raise ValueError(f"{name} must be a file to write, got {str(path)!r}, which exists and is not a regular file")
    _check_folder(
        target.parent,
        f"{name} must be a file in a folder that exists or can be created, and that is writable; got {str(path)!r}",
    )
    return target


def _as_path(path: object, name: str, what: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be {what} (str or path-like), got {type(path).__name__}")
    if str(path) == "":
        raise ValueError(f"{name} must be {what}, got an empty string")
    return Path(path)


def _check_folder(folder: Path, expected: str) -> None:
    """``ValueError(expected: why)`` unless ``folder`` takes new files or can be created."""
    if folder.is_dir():
        _probe(folder, expected, f"cannot create files in {folder}")
        return
    existing = next((p for p in [folder, *folder.absolute().parents] if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise ValueError(f"{expected}: {existing} is a file, not a folder")
    _probe(existing, expected, f"cannot create a folder in {existing}", make_folder=True)


def _probe(folder: Path, expected: str, failure: str, *, make_folder: bool = False) -> None:
    """Create and remove a temporary file (with ``make_folder``, a folder) in ``folder``; ``ValueError`` if that fails."""
    try:
        if make_folder:
            os.rmdir(tempfile.mkdtemp(prefix=".invsolve-probe-", dir=folder))
        else:
            handle, probe = tempfile.mkstemp(prefix=".invsolve-probe-", dir=folder)
            os.close(handle)
            os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{expected}: {failure} ({reason})") from None
