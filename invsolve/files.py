"""Atomic output files: JSON metrics and PNG previews.

Every writer goes through :func:`atomic_write`: the content is written to a
temporary file next to the target and moved into place with ``os.replace``,
so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

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
) -> Path:
    """Save 2-D images side by side as one PNG, atomically.

    Parameters
    ----------
    images : sequence of torch.Tensor
        Each ``(H, W)`` or ``(1, H, W)``; complex images are shown as magnitude.
    titles : sequence of str
        One title per image.
    value_range : (float, float) or sequence of them, optional
        Grey-scale window: one for all images, or one per image (``None``
        entries, or omitting it, scale an image to its own range).
    columns : int, optional
        Images per row (default: all in one row).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if len(images) != len(titles):
        raise ValueError(f"need one title per image, got {len(images)} images and {len(titles)} titles")
    if value_range is None or isinstance(value_range[0], (int, float)):
        windows = [value_range] * len(images)
    elif len(value_range) == len(images):
        windows = list(value_range)
    else:
        raise ValueError(f"need one value range, or one per image; got {len(value_range)} ranges for {len(images)} images")
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    height = 2.8 * rows + (0.3 if figure_title else 0.0)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, height), squeeze=False, layout="constrained")
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title, window in zip(axes.flat, images, titles, windows):
        array = image.detach().cpu()
        array = array.abs() if array.is_complex() else array
        array = array.squeeze()
        if array.dim() != 2:
            raise ValueError(f"save_png shows 2-D images, got shape {tuple(image.shape)} for {title!r}")
        low, high = window if window is not None else (None, None)
        axis.imshow(array.float().numpy(), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(title, fontsize=9)
    if figure_title:
        figure.suptitle(figure_title, fontsize=10)
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(figure)
