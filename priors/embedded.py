"""Priors shipped with the package: ``invsolve.priors.pretrained(name)``.

Each embedded prior is a checkpoint (see :mod:`invsolve.priors.checkpoint`)
installed as package data at ``invsolve/priors/pretrained/NAME.pt``; its
name is the file name without ``.pt``.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .base import DiffusionPrior
from .checkpoint import load_prior

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["pretrained", "available_pretrained"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _folder(root: str | os.PathLike | None) -> Traversable:
    """The folder of embedded checkpoints: ``root``, or the package data folder."""
    if root is not None:
        return Path(root)
    return resources.files(__package__).joinpath("pretrained")


def available_pretrained(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the embedded priors, sorted.

    Parameters
    ----------
    root : path-like, optional
        Folder to look in instead of the package data (for tests and for
        checkpoints kept elsewhere).
    """
    folder = _folder(root)
    if not folder.is_dir():
        return []
    files = (entry.name for entry in folder.iterdir() if entry.is_file())
    return sorted(name[:-3] for name in files if name.endswith(".pt") and _NAME.fullmatch(name[:-3]))


def pretrained(
    name: str, device: str | torch.device = "cpu", root: str | os.PathLike | None = None
) -> DiffusionPrior:
    """Load the embedded prior ``name`` (see :func:`available_pretrained`).

    Parameters
    ----------
    name : str
        Name of the prior, the checkpoint's file name without ``.pt``.
    device : str or torch.device
        Device of the returned prior.
    root : path-like, optional
        Folder to look in instead of the package data.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    FileNotFoundError
        If ``root`` is given and is not a folder.
    ValueError
        For an unknown name; the message lists the available ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    folder = _folder(root)
    if root is not None and not folder.is_dir():
        raise FileNotFoundError(f"root must be a folder of prior checkpoints (NAME.pt), got {folder}, which is not one")
    known = available_pretrained(root)
    if name not in known:
        listing = ", ".join(known) if known else f"none (no NAME.pt files in {folder})"
        raise ValueError(f"unknown pretrained prior {name!r}; available: {listing}")
    with resources.as_file(folder.joinpath(f"{name}.pt")) as path:
        return load_prior(path, map_location=device)
