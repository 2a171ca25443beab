"""Prior checkpoints: one file with the weights and JSON metadata, safe to load.

A checkpoint is a dict saved with ``torch.save`` that holds only strings,
ints and tensors, so that ``torch.load(path, weights_only=True)`` reads it
without unpickling arbitrary objects::

    {"format": "invsolve-prior",
     "format_version": 1,
     "metadata_json": "<JSON text>",
     "state_dict": {name: tensor, ...}}

The metadata describe how to rebuild the prior before the weights are
loaded into it:

=================  ==========================================================
``prior_type``     ``"unet"`` (:class:`UNetPrior`) or ``"gaussian"``
                   (:class:`GaussianPrior`); loading dispatches on it
``image_shape``    ``[C, *spatial]``
``prediction``     ``"eps"``, ``"x0"`` or ``"v"``
``schedule``       :meth:`NoiseSchedule.to_config`
``normalization``  :meth:`Normalization.to_config` (physical ↔ network units)
``architecture``   :meth:`UNetPrior.architecture` (UNet only)
``conditioning``   :meth:`Conditioning.to_config` or ``null`` (UNet only)
``guidance_scale`` the conditional prior's classifier-free guidance weight
                   (UNet only; files written before the key existed load with 0)
``gaussian_fit``   ``{"rank": k}`` when the prior carries a :class:`LowRankGaussian`
                   fit of its training data (:attr:`DiffusionPrior.gaussian_fit`;
                   its buffers are in the state dict under
                   ``gaussian_fit_module.``), else ``null``; files written
                   before the key existed load without a fit
``weights_dtype``  ``"float16"`` when saved with ``half=True``, else ``"float32"``
                   (the Gaussian fit's buffers always stay float32)
``training``       free JSON from the trainer (data description, steps …) or ``null``
``invsolve_version``  version of the package that wrote the file
=================  ==========================================================

Every problem with a file raises :class:`CheckpointError` (a ``ValueError``)
whose message names the file and what is wrong; a missing file raises
``FileNotFoundError``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from invsolve._checks import check_output_file
from invsolve.files import atomic_write

from .base import GAUSSIAN_FIT_MODULE, DiffusionPrior, Normalization
from .gaussian import GaussianPrior
from .gaussian_fit import LowRankGaussian
from .schedule import NoiseSchedule, schedule_from_config
from .unet import Conditioning, UNetPrior

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "prior_to_checkpoint",
    "prior_from_checkpoint",
    "save_prior",
    "load_prior",
    "read_metadata",
]

#: value of the checkpoint's ``"format"`` key
FORMAT = "invsolve-prior"
#: the newest layout this version writes and reads
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file or dict that is not a readable invsolve prior checkpoint."""


def _unet_metadata(prior: UNetPrior) -> dict[str, Any]:
    conditioning = prior.conditioning
    return {
        "architecture": prior.architecture(),
        "conditioning": conditioning.to_config() if conditioning is not None else None,
        "guidance_scale": prior.guidance_scale,
    }


def _build_unet(
    metadata: Mapping[str, Any],
    schedule: NoiseSchedule,
    normalization: Normalization,
    state_dict: Mapping[str, torch.Tensor],
) -> UNetPrior:
    architecture = _field(metadata, "architecture", dict)
    conditioning = _field(metadata, "conditioning", (dict, type(None)))
    guidance = metadata.get("guidance_scale", 0.0)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not guidance >= 0:
        raise CheckpointError(f"metadata guidance_scale must be a number >= 0, got {guidance!r}")
    return UNetPrior(
        metadata["image_shape"],
        schedule,
        metadata["prediction"],
        normalization,
        conditioning=Conditioning(**conditioning) if conditioning is not None else None,
        guidance_scale=float(guidance),
        **architecture,
    )


def _build_gaussian(
    metadata: Mapping[str, Any],
    schedule: NoiseSchedule,
    normalization: Normalization,
    state_dict: Mapping[str, torch.Tensor],
) -> GaussianPrior:
    # The constructor takes mean and covariance in physical units; the exact
    # stored eigendecomposition is then loaded over the recomputed one.
    eigenvectors = state_dict["eigenvectors"].to(torch.float64)
    eigenvalues = state_dict["eigenvalues"].to(torch.float64)
    mean = normalization.to_physical(state_dict["mean_network"].to(torch.float64))
    cov = (eigenvectors * eigenvalues) @ eigenvectors.T * normalization.scale**2
    return GaussianPrior(mean.reshape(metadata["image_shape"]), (cov + cov.T) / 2, schedule, normalization)


#: prior_type → (class, its type-specific metadata, builder from metadata and weights)
_PRIOR_TYPES: dict[str, tuple[type, Callable[[Any], dict[str, Any]], Callable[..., DiffusionPrior]]] = {
    "unet": (UNetPrior, _unet_metadata, _build_unet),
    "gaussian": (GaussianPrior, lambda prior: {}, _build_gaussian),
}


def _prior_type(prior: DiffusionPrior) -> str:
    for name, (cls, _, _) in _PRIOR_TYPES.items():
        if type(prior) is cls:
            return name
    known = ", ".join(cls.__name__ for cls, _, _ in _PRIOR_TYPES.values())
    raise TypeError(f"prior must be one of {known} to be saved, got {type(prior).__name__}")


def prior_to_checkpoint(
    prior: DiffusionPrior, training: Mapping[str, Any] | None = None, half: bool = False
) -> dict[str, Any]:
    """The checkpoint dict of ``prior``: what :func:`save_prior` writes.

    A trainer can store it inside its own resume file (next to optimiser
    and EMA states) and rebuild the prior with :func:`prior_from_checkpoint`.

    Parameters
    ----------
    prior : UNetPrior or GaussianPrior
        The prior to describe; its tensors are copied to the CPU.
    training : mapping, optional
        JSON-serialisable description of the training run, e.g.
        ``{"data": "LIDC slices, 64², HU clipped to [-1000, 1000]",
        "steps": 20000, "ema_decay": 0.999}``.
    half : bool
        Store float32 tensors as float16 (half the size; loading converts
        them back to float32).  Other dtypes are kept, and so are the
        float32 buffers of the prior's Gaussian fit (float16 would round
        its small variances and the components' orthonormality).

    Raises
    ------
    TypeError
        For a prior type that cannot be saved or non-JSON ``training``.
    ValueError
        If ``half=True`` and a weight exceeds float16's range.
    """
    import invsolve  # here, not at module level: invsolve/__init__ imports the priors

    prior_type = _prior_type(prior)
    if training is not None and not isinstance(training, Mapping):
        raise TypeError(f"training must be a mapping (JSON object) or None, got {type(training).__name__}")
    fit = prior._modules.get(GAUSSIAN_FIT_MODULE)  # a GaussianPrior's exact fit is not stored
    metadata = {
        "prior_type": prior_type,
        "image_shape": list(prior.image_shape),
        "prediction": prior.prediction,
        "schedule": prior.schedule.to_config(),
        "normalization": prior.normalization.to_config(),
        **_PRIOR_TYPES[prior_type][1](prior),
        "gaussian_fit": {"rank": fit.rank} if fit is not None else None,
        "weights_dtype": "float16" if half else "float32",
        "training": dict(training) if training is not None else None,
        "invsolve_version": invsolve.__version__,
    }
    try:
        metadata_json = json.dumps(metadata, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"training must be JSON-serialisable (str, numbers, bools, lists, dicts), got {training!r}: {error}"
        ) from None
    state_dict = {}
    for name, tensor in prior.state_dict().items():
        tensor = tensor.detach().cpu()
        if half and tensor.dtype == torch.float32 and not name.startswith(f"{GAUSSIAN_FIT_MODULE}."):
            tensor = tensor.half()
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(
                    f"half=True: weight {name!r} exceeds float16's range (|value| <= 65504); save with half=False"
                )
        state_dict[name] = tensor
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata_json": metadata_json,
        "state_dict": state_dict,
    }


def save_prior(
    path: str | os.PathLike, prior: DiffusionPrior, training: Mapping[str, Any] | None = None, half: bool = False
) -> Path:
    """Write ``prior`` to one checkpoint file, atomically (see :func:`prior_to_checkpoint`).

    Returns the path written.  The file loads with :func:`load_prior`, or
    with ``torch.load(path, weights_only=True)`` as a plain dict.  ``path``
    is checked first (``ValueError`` for a folder, a special file or a folder
    that cannot be written or created).
    """
    check_output_file(path, "path")
    checkpoint = prior_to_checkpoint(prior, training, half)
    return atomic_write(path, lambda temporary: torch.save(checkpoint, temporary))


def _field(mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "metadata") -> Any:
    if key not in mapping:
        raise CheckpointError(f"the {where} lacks {key!r} (keys present: {', '.join(sorted(mapping)) or 'none'})")
    value = mapping[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise CheckpointError(f"{where} field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _metadata(checkpoint: Any) -> dict[str, Any]:
    """Validate the outer layout of a checkpoint dict and return its metadata."""
    if not isinstance(checkpoint, dict) or "format" not in checkpoint:
        if isinstance(checkpoint, dict):
            keys = ", ".join(map(repr, list(checkpoint)[:5])) + (", …" if len(checkpoint) > 5 else "")
            found = f"a dict with keys {keys}"
        else:
            found = f"a {type(checkpoint).__name__}"
        raise CheckpointError(
            f"not an invsolve prior checkpoint: expected a dict with 'format': {FORMAT!r}, found {found}"
        )
    if checkpoint["format"] != FORMAT:
        raise CheckpointError(
            f"not an invsolve prior checkpoint: 'format' is {checkpoint['format']!r}, expected {FORMAT!r}"
        )
    version = _field(checkpoint, "format_version", int, "checkpoint")
    if not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"unknown checkpoint format_version {version}: this invsolve reads versions 1 to {FORMAT_VERSION} "
            "(a newer invsolve may have written it)"
        )
    try:
        metadata = json.loads(_field(checkpoint, "metadata_json", str, "checkpoint"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"metadata_json is not valid JSON: {error}") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"metadata_json must hold a JSON object, got {type(metadata).__name__}")
    return metadata


def prior_from_checkpoint(checkpoint: Mapping[str, Any]) -> DiffusionPrior:
    """Rebuild a prior on the CPU from a checkpoint dict (float16 weights come back as float32).

    A ``gaussian_fit`` in the metadata is rebuilt as an empty
    :class:`LowRankGaussian` of that rank and filled by the strict
    ``load_state_dict``; without the key (older files) the prior has none.

    Raises
    ------
    CheckpointError
        For a dict that is not an invsolve checkpoint, an unknown
        ``format_version`` or ``prior_type``, metadata that cannot be
        rebuilt (e.g. an unknown schedule name), weights that hold NaN or
        Inf, or weights that do not fit the architecture the metadata
        describe.
    """
    metadata = _metadata(checkpoint)
    state_dict = _field(checkpoint, "state_dict", dict, "checkpoint")
    if not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise CheckpointError("the checkpoint's state_dict must hold only tensors")
    prior_type = _field(metadata, "prior_type", str)
    if prior_type not in _PRIOR_TYPES:
        raise CheckpointError(f"unknown prior_type {prior_type!r}; this invsolve reads: {', '.join(_PRIOR_TYPES)}")
    build = _PRIOR_TYPES[prior_type][2]
    state_dict = {name: tensor.cpu() for name, tensor in state_dict.items()}
    for name, tensor in state_dict.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"weight {name!r} holds {bad} NaN or infinite entries (a diverged or corrupt training run)")
    try:
        schedule = schedule_from_config(_field(metadata, "schedule", dict))
        normalization = Normalization(**_field(metadata, "normalization", dict))
        _field(metadata, "image_shape", list)
        _field(metadata, "prediction", str)
        prior = build(metadata, schedule, normalization, state_dict)
        rank = _gaussian_fit_rank(metadata)
        if rank is not None:
            # an empty fit of the stored size, filled by the strict load below
            prior.set_gaussian_fit(LowRankGaussian(prior.image_shape, rank))
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"cannot rebuild the {prior_type} prior from the metadata: {error}") from None
    _check_weights(prior, state_dict, metadata)
    prior.load_state_dict(state_dict)
    return prior


def _gaussian_fit_rank(metadata: Mapping[str, Any]) -> int | None:
    """The rank of the stored Gaussian fit, ``None`` for none (or a file written before the key existed)."""
    value = metadata.get("gaussian_fit")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"rank"}:
        raise CheckpointError(f"metadata field 'gaussian_fit' must be null or {{'rank': k}}, got {value!r}")
    rank = value["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise CheckpointError(f"metadata field 'gaussian_fit' must have an int rank >= 1, got {rank!r}")
    if metadata["prior_type"] == "gaussian":
        raise CheckpointError(
            "a gaussian prior stores no Gaussian fit (its own distribution is exact), "
            f"but the metadata give gaussian_fit = {value!r}"
        )
    return rank


def _check_weights(prior: DiffusionPrior, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> None:
    """Compare names and shapes of the stored weights with the rebuilt prior's."""
    expected = prior.state_dict()
    problems = [f"{name!r} missing" for name in expected if name not in state_dict]
    problems += [f"{name!r} unexpected" for name in state_dict if name not in expected]
    problems += [
        f"{name!r} is {tuple(state_dict[name].shape)} in the file but {tuple(tensor.shape)} for the metadata"
        for name, tensor in expected.items()
        if name in state_dict and state_dict[name].shape != tensor.shape
    ]
    if problems:
        keys = ("image_shape", "architecture", "conditioning", "gaussian_fit")
        described = {key: metadata[key] for key in keys if key in metadata}
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise CheckpointError(
            f"the weights do not match the {metadata['prior_type']} prior its metadata describe "
            f"({json.dumps(described)}): {shown}"
        )


def _read(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no prior checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsafe:
            raise CheckpointError(
                f"{path} is not an invsolve prior checkpoint: it holds a pickled {unsafe.group(1)} object, "
                "which torch.load(weights_only=True) refuses to run (only tensors and plain data are loaded)"
            ) from None
        raise CheckpointError(f"{path} is not a readable torch file (corrupt, truncated or another format)") from None
    except (RuntimeError, EOFError, KeyError, OSError) as error:
        detail = f"{type(error).__name__}: {str(error).splitlines()[0]}" if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable torch file (corrupt, truncated or another format): {detail}"
        ) from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint file (see the module docstring) without building the prior."""
    checkpoint = _read(path)
    try:
        return _metadata(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None


def load_prior(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> DiffusionPrior:
    """Load a prior written by :func:`save_prior`.

    Parameters
    ----------
    path : path-like
        The checkpoint file.
    map_location : str or torch.device
        Device of the returned prior.

    Returns
    -------
    DiffusionPrior
        A :class:`UNetPrior` (or :class:`GaussianPrior`) in eval mode with
        float32 weights (float64 for the Gaussian prior), loaded strictly.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    CheckpointError
        For a corrupt or truncated file, a torch file that is no invsolve
        checkpoint (a plain state dict, a pickled model), an unknown format
        version, prior type or schedule, or weights that do not fit the
        metadata.
    """
    checkpoint = _read(path)
    try:
        prior = prior_from_checkpoint(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return prior.to(torch.device(map_location)).eval()
