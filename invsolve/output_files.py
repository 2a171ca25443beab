"""The output files of ``invsolve reconstruct``: their names, formats and staged writing.

:func:`output_paths` names every file an ``--out`` leads to; :func:`write_image`
writes an image as NIfTI, HDF5 or ``.npy``; :class:`StagedFiles` writes each to a
temporary file beside its target and renames them all together at the end, so a
failed run leaves no output (and removes the folders it made).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["OUTPUT_SUFFIXES", "StagedFiles", "output_paths", "output_suffix", "write_image"]

#: the image formats ``--out`` may name
OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".h5", ".hdf5", ".npy")


def _split_suffix(path: Path) -> tuple[Path, str]:
    """``(path without its output suffix, the suffix)``; ``ValueError`` for an unknown output type."""
    name = path.name.lower()
    for suffix in OUTPUT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return path.with_name(path.name[: -len(suffix)]), path.name[-len(suffix) :]
    raise ValueError(f"--out {path}: unknown output type; expected a file name ending in {', '.join(OUTPUT_SUFFIXES)}")


def output_suffix(path: str | os.PathLike) -> str:
    """The output format of ``path``: one of :data:`OUTPUT_SUFFIXES`, as the name spells it."""
    return _split_suffix(Path(path))[1]


def output_paths(out: str | os.PathLike) -> dict[str, Path]:
    """The files written for ``--out``: ``mean`` (``out`` itself), ``std``, ``png`` and ``metrics`` beside it.

    ``recon.nii.gz`` gives ``recon_std.nii.gz``, ``recon.png`` and ``recon_metrics.json``,
    and, while a run of several samples is under way, the hidden checkpoint
    ``.recon.samples.pt`` (removed once the outputs are written).
    """
    path = Path(out)
    stem, suffix = _split_suffix(path)
    return {
        "mean": path,
        "std": stem.with_name(f"{stem.name}_std{suffix}"),
        "png": stem.with_name(f"{stem.name}.png"),
        "metrics": stem.with_name(f"{stem.name}_metrics.json"),
        "checkpoint": stem.with_name(f".{stem.name}.samples.pt"),
    }


def write_image(
    path: Path,
    suffix: str,
    image: torch.Tensor,
    spacing: tuple[float, ...] | None,
    dataset: str,
    attrs: Mapping[str, Any],
) -> None:
    """Write a real ``(H, W)`` image or ``(X, Y, Z)`` volume as ``suffix`` (the target's format) to ``path``.

    ``spacing`` gives the pixel (voxel) size in mm along each axis, stored as
    the NIfTI affine's diagonal (units mm) or the HDF5 attribute ``spacing_mm``.
    """
    array = image.detach().cpu().to(torch.float32).numpy()
    suffix = suffix.lower()
    if suffix == ".npy":
        with open(path, "wb") as handle:
            np.save(handle, array)
    elif suffix in (".nii", ".nii.gz"):
        import nibabel

        affine = np.eye(4)
        if spacing is not None:
            if len(spacing) != array.ndim:
                raise ValueError(f"spacing {spacing} must give one size per axis of the {array.ndim}-D array")
            for axis, size in enumerate(spacing):
                affine[axis, axis] = size
        nifti = nibabel.Nifti1Image(array, affine)
        if spacing is not None:
            nifti.header.set_xyzt_units("mm")
        content = nifti.to_bytes()
        path.write_bytes(gzip.compress(content, mtime=0) if suffix == ".nii.gz" else content)
    else:
        import h5py

        with h5py.File(path, "w") as file:
            written = file.create_dataset(dataset, data=array)
            for key, value in attrs.items():
                written.attrs[key] = value
            if spacing is not None:
                written.attrs["spacing_mm"] = np.asarray(spacing, dtype=np.float64)


class StagedFiles:
    """Files written to temporaries beside their targets, renamed into place together by :meth:`commit`."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._created: list[Path] = []

    def write(self, target: Path, writer: Callable[[Path], None]) -> None:
        missing = [folder for folder in [target.parent, *target.parent.parents] if not folder.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        self._created.extend(missing)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
        self._pending.append((Path(temporary), target))
        writer(Path(temporary))

    def commit(self) -> None:
        mask = os.umask(0)
        os.umask(mask)
        for temporary, _ in self._pending:
            os.chmod(temporary, 0o666 & ~mask)  # mkstemp creates 0600 files
        for temporary, target in self._pending:
            os.replace(temporary, target)
        self._pending.clear()

    def discard(self) -> None:
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending.clear()
        for folder in self._created:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                pass
