"""Atomic output files: JSON metrics and PNG figures.

Every writer goes through :func:`atomic_write`: the content is written to a
temporary file next to the target and moved into place with ``os.replace``,
so a failed run never leaves a half-written file.  Every PNG of the package
goes through :func:`save_png` (drawn by :mod:`invsolve.figures`): colour bars
with units and stated windows, unmeasured pixels marked.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from invsolve._checks import check_int, check_range, check_tensor

if TYPE_CHECKING:
    from invsolve.figures import Panel

__all__ = ["atomic_write", "save_json", "save_png"]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically.

    The parent folder is created if needed.  If ``write`` raises, the
    temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates 0600 files
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))


def save_png(
    path: str | os.PathLike,
    images: Sequence[torch.Tensor],
    titles: Sequence[str],
    value_range: tuple[float, float] | Sequence[tuple[float, float] | None] | None = None,
    columns: int | None = None,
    figure_title: str = "",
    *,
    unit: str | Sequence[str] = "",
    colormap: str | Sequence[str] = "gray",
    measured: Sequence[torch.Tensor | None] | None = None,
) -> Path:
    """Save images side by side as one PNG with colour bars, atomically.

    Every image is shown through a window stated by its colour bar (ticks at
    both ends, labelled with ``unit``; arrows where values are clipped);
    images that share window, unit and colour map share one colour bar.
    Unmeasured pixels are painted in :data:`invsolve.figures.MISSING_COLOUR`
    with a "not measured" legend.  The PNG's ``Description`` text chunk
    holds the titles, units and windows as JSON (:func:`invsolve.figures.describe`).

    Parameters
    ----------
    images : sequence of torch.Tensor
        Each ``(H, W)`` (leading singleton axes are dropped) or an RGB
        ``(3, H, W)``; complex images are shown as magnitude.
    titles : sequence of str
        One title per image, for a reader: what the image is and its score,
        not a variable name.
    value_range : (float, float) or sequence of them, optional
        Display window ``(low, high)`` in ``unit``: one for all images, or
        one per image (``None`` entries, or omitting it, use an image's own
        range of finite measured values).
    columns : int, optional
        Images per row (default: all in one row).
    figure_title : str
        Title above all images.
    unit : str or sequence of str
        Colour bar label, one for all images or one per image, e.g. ``"HU"``,
        ``"HU (std)"``, ``"normalised magnitude"``; empty for dimensionless.
    colormap : str or sequence of str
        matplotlib colour map, one for all or one per image (e.g. ``"magma"``
        for std maps, so they are not read as images).
    measured : sequence of (torch.Tensor or None), optional
        One entry per image: a boolean mask of the image's ``(H, W)`` shape,
        ``True`` where the pixel was measured, or ``None``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError, TypeError
        Naming the argument, what was expected and what was given.
    """
    from invsolve.figures import describe, draw

    count = len(images)
    if count == 0:
        raise ValueError("save_png needs at least one image, got none")
    if len(titles) != count:
        raise ValueError(f"need one title per image, got {count} images and {len(titles)} titles")
    if value_range is None or isinstance(value_range[0], (int, float)):
        windows = [value_range] * count
    elif len(value_range) == count:
        windows = list(value_range)
    else:
        raise ValueError(f"need one value range, or one per image; got {len(value_range)} ranges for {count} images")
    units = _one_or_each(unit, count, "unit")
    colormaps = _one_or_each(colormap, count, "colormap")
    if measured is None:
        masks = [None] * count
    elif not isinstance(measured, Sequence) or len(measured) != count:
        raise ValueError(
            f"measured must be a sequence of one boolean mask (or None) per image ({count}), got {_what(measured)}"
        )
    else:
        masks = list(measured)
    columns = count if columns is None else check_int(columns, "columns")
    panels = [
        _panel(index, image, title, window, unit_, colormap_, mask)
        for index, (image, title, window, unit_, colormap_, mask) in enumerate(
            zip(images, titles, windows, units, colormaps, masks)
        )
    ]
    figure = draw(panels, min(columns, count), figure_title)
    metadata = {"Title": figure_title, "Description": describe(panels, figure_title), "Software": "invsolve"}
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, metadata=metadata))
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def _what(value: object) -> str:
    """A short description of a wrong argument for an error message."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)


def _one_or_each(value: str | Sequence[str], count: int, name: str) -> list[str]:
    """``[value] * count`` for one string, ``list(value)`` for one string per image; else ``ValueError``."""
    if isinstance(value, str):
        return [value] * count
    if isinstance(value, Sequence) and len(value) == count and all(isinstance(entry, str) for entry in value):
        return list(value)
    raise ValueError(f"{name} must be a string or one string per image ({count}), got {value!r}")


def _panel(
    index: int,
    image: torch.Tensor,
    title: str,
    window: tuple[float, float] | None,
    unit: str,
    colormap: str,
    measured: torch.Tensor | None,
) -> Panel:
    """Check one image's arguments and return its panel; ``window=None`` takes the image's own range."""
    from invsolve.figures import Panel, own_window

    check_tensor(image, f"images[{index}]")
    array = image.detach().cpu()
    array = array.abs() if array.is_complex() else array
    while array.dim() > 2 and array.shape[0] == 1:
        array = array[0]
    if not (array.dim() == 2 or (array.dim() == 3 and array.shape[0] == 3)):
        raise ValueError(
            f"images[{index}] ({title!r}) must be (H, W), (1, H, W) or RGB (3, H, W), got shape {tuple(image.shape)}"
        )
    if not isinstance(title, str):
        raise TypeError(f"titles[{index}] must be a string, got {title!r}")
    if window is not None:
        window = check_range(window, f"value_range for images[{index}] ({title!r})", -math.inf)
        if not window[1] > window[0]:
            raise ValueError(f"value_range for images[{index}] ({title!r}) must have low < high, got {window!r}")
    if measured is not None:
        if not isinstance(measured, torch.Tensor) or measured.dtype != torch.bool:
            raise TypeError(f"measured[{index}] must be a boolean tensor or None, got {_what(measured)}")
        mask = measured.detach().cpu()
        while mask.dim() > 2 and mask.shape[0] == 1:
            mask = mask[0]
        if tuple(mask.shape) != tuple(array.shape[-2:]):
            raise ValueError(
                f"measured[{index}] must have the image's shape {tuple(array.shape[-2:])}, got {tuple(measured.shape)}"
            )
        measured = mask
    array = array.float()
    return Panel(array, title, own_window(array, measured) if window is None else window, unit, colormap, measured)
