"""Training recipes: the TOML config of :func:`~invsolve.priors.train`, read and validated.

A recipe's tables (``[data]``, ``[prior]``, ``[train]``, ``[output]``; the
format is documented in :mod:`invsolve.priors.trainer`) become validated
settings (:class:`TrainSettings`), the dataset, the :class:`UNetPrior` to
train, the normalisation of the saved prior in its physical unit, and the
Gaussian fit of the data (:func:`fit_gaussian`).  The training loop lives in
:mod:`~invsolve.priors.trainer`; :func:`fit_gaussian_from_config`
(``invsolve fit-gaussian``) uses a recipe without training.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int
from invsolve.datasets.training import TrainingDataset, training_dataset

from .base import PREDICTION_TYPES, Normalization
from .checkpoint import load_prior, read_metadata, save_prior
from .gaussian_fit import LowRankGaussian
from .schedule import schedule_from_config
from .unet import Conditioning, UNetPrior

__all__ = [
    "TrainSettings",
    "TRAIN_DEFAULTS",
    "read_config",
    "check_keys",
    "check_train",
    "resolve_output_dir",
    "build_dataset",
    "build_prior",
    "parse_conditioning",
    "parse_physical_unit",
    "saved_normalization",
    "fit_size",
    "fit_gaussian",
    "fit_record",
    "fit_gaussian_from_config",
]

_SECTIONS = ("data", "prior", "train", "output")
PRIOR_KEYS = (
    "image_shape",
    "prediction",
    "schedule",
    "normalization",
    "physical_unit",
    "architecture",
    "conditioning",
)
_SCHEDULE_KEYS = ("name", "params")
_CONDITIONING_KEYS = ("kind", "drop", "guidance_scale")
_NORMALIZATION_KEYS = ("low", "high", "unit")
_PHYSICAL_UNIT_KEYS = ("factor", "unit")
_ARCHITECTURE_KEYS = (
    "channels",
    "attention_levels",
    "num_res_blocks",
    "num_head_channels",
    "norm_num_groups",
    "resblock_updown",
    "use_flash_attention",
)
TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": None,
    "batch_size": 16,
    "lr": 2e-4,
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "grad_clip": 1.0,
    "ema_decay": 0.999,
    "warmup_steps": 0,
    "bf16": False,
    "seed": 0,
    "num_workers": 0,
    "sample_every": 0,
    "sample_images": 8,
    "sample_steps": 50,
    "checkpoint_every": 1000,
    "log_every": 50,
    "gaussian_rank": 64,
    "gaussian_images": 2048,
    "device": "auto",
}
_OUTPUT_KEYS = ("dir",)


@dataclass(frozen=True)
class TrainSettings:
    """The validated ``[train]`` table."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    grad_clip: float
    ema_decay: float
    warmup_steps: int
    bf16: bool
    seed: int
    num_workers: int
    sample_every: int
    sample_images: int
    sample_steps: int
    checkpoint_every: int
    log_every: int
    gaussian_rank: int
    gaussian_images: int
    device: str

    def to_config(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(self).items()}

    def learning_rate(self, step: int) -> float:
        """Learning rate of update number ``step`` (0-based): linear warm-up, then constant."""
        if self.warmup_steps == 0:
            return self.lr
        return self.lr * min(1.0, (step + 1) / self.warmup_steps)

    def ema_decay_at(self, step: int) -> float:
        """Decay of the EMA update after update number ``step`` (0-based), ramped up."""
        return min(self.ema_decay, (1 + step) / (10 + step))


def fit_gaussian_from_config(
    config: Mapping[str, Any] | str | os.PathLike,
    prior_path: str | os.PathLike,
    rank: int | None = None,
    images: int | None = None,
    *,
    progress: bool = False,
) -> LowRankGaussian:
    """Add the Gaussian fit of a recipe's training data to an existing checkpoint, rewriting it atomically.

    For priors trained before :func:`train` computed the fit (``invsolve
    fit-gaussian CONFIG.toml PRIOR.pt``).  The dataset of the config's
    ``[data]`` is built as :func:`train` builds it, and the fit is computed
    as :func:`train` computes it: the mean and top ``rank`` principal
    components of items ``0 … N−1`` (epoch 0) in the network units of the
    config's ``[prior] normalization``.  The checkpoint keeps its weights
    (float16 ones stay float16; the fit is stored in float32), its
    normalization and its ``training`` metadata, to which a
    ``gaussian_fit`` record (rank, images, explained variance) is added; a
    fit already there is replaced.

    Parameters
    ----------
    config : mapping or path-like
        The recipe the prior was trained with (TOML file or tables, as for
        :func:`train`); ``[data]``, ``[prior]`` and ``[train]`` are read.
    prior_path : path-like
        The checkpoint to rewrite.
    rank : int, optional
        Principal components, ``1 <= rank <= min(N − 1, n)``.  Default: the
        config's ``[train] gaussian_rank`` (64), clipped to what the images
        allow, exactly as :func:`train` does.
    images : int, optional
        ``N``: the first ``min(images, len(data))`` items, ``>= 2``.  Default:
        ``[train] gaussian_images`` (2048).
    progress : bool
        Show a progress bar while the images are read.

    Returns
    -------
    LowRankGaussian
        The fit now in the checkpoint (network units, on the CPU).

    Raises
    ------
    ValueError
        Bad ``rank`` or ``images``, a config the same as :func:`train`
        refuses, an ``image_shape`` that differs from the data's, or a
        checkpoint whose normalization is neither the config's
        ``normalization`` nor that relabelled by its ``physical_unit``
        (the fit would be in other network units than the prior's).
    TypeError
        Values of the wrong type, or a checkpoint of a
        :class:`~invsolve.priors.GaussianPrior` (exact: it needs no fit).
    FileNotFoundError
        A missing config, data or checkpoint file.
    """
    tables, root = read_config(config)
    settings = check_train(tables["train"])
    prior_table = tables.get("prior", {})
    check_keys(prior_table, PRIOR_KEYS, "[prior]")
    prior_path = Path(prior_path)
    metadata = read_metadata(prior_path)
    prior = load_prior(prior_path)
    dataset = build_dataset(tables["data"], root)
    if prior.image_shape != dataset.shape:
        raise ValueError(
            f"{prior_path} is a prior of images shaped {list(prior.image_shape)}, but the config's data are "
            f"shaped {list(dataset.shape)}"
        )
    normalization = build_normalization(prior_table.get("normalization", "auto"), dataset)
    saved = saved_normalization(normalization, parse_physical_unit(prior_table.get("physical_unit")))
    if prior.normalization not in (normalization, saved):
        expected = f"{normalization.to_config()}" + (f" or {saved.to_config()}" if saved != normalization else "")
        raise ValueError(
            f"{prior_path} maps physical to network units as {prior.normalization.to_config()}, but the config's "
            f"[prior] normalization and physical_unit give {expected}: the fit would be in other network units "
            "than the prior's"
        )
    if images is None:
        count = min(settings.gaussian_images, len(dataset))
    else:
        count = min(check_int(images, "images", 2), len(dataset))
    if rank is None:
        rank = fit_size(settings.gaussian_rank, count, dataset)[0]
        if rank == 0:
            raise ValueError(
                f"nothing to fit: the config's [train] gaussian_rank is {settings.gaussian_rank} and the data give "
                f"{count} image(s); pass rank >= 1"
            )
    fit = fit_gaussian(dataset, normalization, check_int(rank, "rank", 1), count, progress)
    prior.set_gaussian_fit(fit)
    training = dict(metadata["training"]) if metadata.get("training") is not None else {}
    training["gaussian_fit"] = {**fit_record(fit, count), "added_by": "invsolve fit-gaussian"}
    save_prior(prior_path, prior, training=training, half=metadata.get("weights_dtype") == "float16")
    return fit


def read_config(config: Mapping[str, Any] | str | os.PathLike) -> tuple[dict[str, Any], Path | None]:
    """The config's tables and the folder relative data paths start from (``None``: the working directory)."""
    if isinstance(config, Mapping):
        tables, root = dict(config), None
    elif isinstance(config, (str, os.PathLike)):
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
            import tomli as tomllib

        path = Path(config).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config: no TOML file at {path}")
        try:
            tables = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"config: {path} is not valid TOML: {error}") from None
        root = path.parent.absolute()
    else:
        raise TypeError(f"config must be a mapping or the path of a TOML file, got {type(config).__name__}")
    check_keys(tables, _SECTIONS, "the config", what="section")
    for section in ("data", "train"):
        if section not in tables:
            raise ValueError(f"the config needs a [{section}] section")
    for section, table in tables.items():
        if not isinstance(table, Mapping):
            raise TypeError(f"[{section}] must be a table, got {table!r}")
    return tables, root


def check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, what: str = "key") -> None:
    if not isinstance(table, Mapping):
        raise TypeError(f"{where} must be a table, got {table!r}")
    for key in table:
        if key not in allowed:
            raise ValueError(f"unknown {what} {key!r} in {where}; allowed {what}s: {', '.join(allowed)}")


def check_train(table: Mapping[str, Any]) -> TrainSettings:
    check_keys(table, tuple(TRAIN_DEFAULTS), "[train]")
    if "steps" not in table:
        raise ValueError("[train] needs steps (the number of optimiser steps)")
    values = {**TRAIN_DEFAULTS, **table}

    def count(name: str, minimum: int) -> int:
        return check_int(values[name], f"[train] {name}", minimum)

    betas = values["betas"]
    if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2:
        raise ValueError(f"[train] betas must be a pair [beta1, beta2] of numbers in [0, 1), got {betas!r}")
    device = values["device"]
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise ValueError(f"[train] device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got {device!r}")
    if not isinstance(values["bf16"], bool):
        raise TypeError(f"[train] bf16 must be true or false, got {values['bf16']!r}")
    return TrainSettings(
        steps=count("steps", 1),
        batch_size=count("batch_size", 1),
        lr=real_number(values["lr"], "[train] lr", 0.0, math.inf, low_open=True),
        weight_decay=real_number(values["weight_decay"], "[train] weight_decay", 0.0, math.inf),
        betas=tuple(real_number(b, f"[train] betas[{i}]", 0.0, 1.0, high_open=True) for i, b in enumerate(betas)),
        grad_clip=real_number(values["grad_clip"], "[train] grad_clip", 0.0, math.inf),
        ema_decay=real_number(values["ema_decay"], "[train] ema_decay", 0.0, 1.0, high_open=True),
        warmup_steps=count("warmup_steps", 0),
        bf16=values["bf16"],
        seed=count("seed", 0),
        num_workers=count("num_workers", 0),
        sample_every=count("sample_every", 0),
        sample_images=count("sample_images", 1),
        sample_steps=count("sample_steps", 1),
        checkpoint_every=count("checkpoint_every", 0),
        log_every=count("log_every", 1),
        gaussian_rank=count("gaussian_rank", 0),
        gaussian_images=count("gaussian_images", 2),
        device=device,
    )


def real_number(
    value: object, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    """``float(value)`` for a real number in the interval from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or math.isinf(high) else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return number


def resolve_output_dir(table: Mapping[str, Any], out: str | os.PathLike | None) -> Path:
    check_keys(table, _OUTPUT_KEYS, "[output]")
    folder = out if out is not None else table.get("dir")
    if folder is None:
        raise ValueError("no output folder: set dir in [output] or pass out= (--out)")
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"[output] dir must be a path (str), got {folder!r}")
    return Path(folder).expanduser().absolute()


def build_dataset(table: Mapping[str, Any], root: Path | None) -> TrainingDataset:
    try:
        return training_dataset(table, root=root)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise type(error)(f"[data] {error}") from None


def build_prior(
    table: Mapping[str, Any], dataset: TrainingDataset, conditioning: Mapping[str, Any] | None
) -> UNetPrior:
    """The :class:`UNetPrior` of the ``[prior]`` table for images of ``dataset``.

    ``conditioning`` is the table's conditioning as :func:`parse_conditioning`
    returned it (``None``: an unconditional prior).
    """
    check_keys(table, PRIOR_KEYS, "[prior]")
    shape = list(dataset.shape)
    if table.get("image_shape", shape) != shape:
        raise ValueError(f"[prior] image_shape = {table['image_shape']!r} differs from the data's shape {shape}")
    prediction = table.get("prediction", "v")
    if prediction not in PREDICTION_TYPES:
        raise ValueError(f"[prior] prediction must be one of {', '.join(PREDICTION_TYPES)}, got {prediction!r}")
    schedule_table = table.get("schedule", {"name": "vp-linear"})
    check_keys(schedule_table, _SCHEDULE_KEYS, "[prior.schedule]")
    params = schedule_table.get("params", {})
    if "name" not in schedule_table or not isinstance(params, Mapping):
        raise ValueError(f"[prior.schedule] must be a table {{name, params}}, got {schedule_table!r}")
    try:
        schedule = schedule_from_config({"name": schedule_table["name"], **params})
    except (ValueError, TypeError) as error:
        raise type(error)(f"[prior.schedule] {error}") from None
    normalization = build_normalization(table.get("normalization", "auto"), dataset)
    architecture = table.get("architecture", {})
    check_keys(architecture, _ARCHITECTURE_KEYS, "[prior.architecture]")
    try:
        prior = UNetPrior(
            shape, schedule, prediction, normalization, **architecture,
            conditioning=None if conditioning is None else Conditioning(conditioning["kind"], conditioning["size"]),
        )
        if conditioning is not None:
            prior.guidance_scale = conditioning["guidance_scale"]
        return prior
    except (ValueError, TypeError) as error:
        raise type(error)(f"[prior] {error}") from None


def parse_conditioning(value: object, dataset: TrainingDataset) -> dict[str, Any] | None:
    """The validated ``[prior.conditioning]`` table, or ``None`` for an unconditional prior.

    Returns ``{"kind": "vector", "size": K, "drop": p, "guidance_scale": w}``:
    the dataset's conditioning vectors of length ``K`` go through an MLP
    added to the time embedding (:class:`~invsolve.priors.Conditioning`),
    each training item's condition is replaced by the learned null
    condition with probability ``p`` (default 0.1), and the saved prior's
    default classifier-free guidance weight is ``w`` (default 1.0).
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"[prior] conditioning must be a table {{kind, drop, guidance_scale}}, got {value!r}")
    check_keys(value, _CONDITIONING_KEYS, "[prior.conditioning]")
    kind = value.get("kind", "vector")
    if kind != "vector":
        raise ValueError(
            f"[prior.conditioning] kind must be \"vector\" (the training sources give conditioning vectors), "
            f"got {kind!r}"
        )
    if dataset.condition_size is None:
        raise ValueError(
            f"[prior.conditioning] needs a conditional data source, but source {dataset.source!r} yields images "
            "without conditions (conditional sources: \"galaxy-world\", \"galaxy-catalog\")"
        )
    drop = real_number(value.get("drop", 0.1), "[prior.conditioning] drop", 0.0, 1.0, high_open=True)
    guidance = real_number(value.get("guidance_scale", 1.0), "[prior.conditioning] guidance_scale", 0.0, math.inf)
    return {"kind": kind, "size": dataset.condition_size, "drop": drop, "guidance_scale": guidance}


def build_normalization(value: object, dataset: TrainingDataset) -> Normalization:
    if value == "auto":
        low, high = dataset.value_range
        unit = ""
    elif isinstance(value, Mapping):
        check_keys(value, _NORMALIZATION_KEYS, "[prior.normalization]")
        if "low" not in value or "high" not in value:
            raise ValueError(f"[prior.normalization] needs low and high, got {dict(value)!r}")
        low = real_number(value["low"], "[prior.normalization] low", -math.inf, math.inf)
        high = real_number(value["high"], "[prior.normalization] high", -math.inf, math.inf)
        unit = value.get("unit", "")
        if not isinstance(unit, str):
            raise TypeError(f"[prior.normalization] unit must be a string, got {unit!r}")
    else:
        raise ValueError(f"[prior] normalization must be \"auto\" or a table {{low, high, unit}}, got {value!r}")
    if not high > low:
        raise ValueError(f"[prior] normalization needs high > low, got low = {low!r}, high = {high!r}")
    return Normalization.from_range(low, high, unit)


def parse_physical_unit(value: object) -> dict[str, Any] | None:
    """The validated ``[prior] physical_unit`` as ``{"factor": float, "unit": str}``, or ``None`` if absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(
            "[prior] physical_unit must be a table {factor, unit} saying that one data unit is factor unit, "
            f'e.g. {{ factor = 0.0384, unit = "1/mm" }}, got {value!r}'
        )
    check_keys(value, _PHYSICAL_UNIT_KEYS, "[prior.physical_unit]")
    if "factor" not in value or "unit" not in value:
        raise ValueError(f"[prior.physical_unit] needs factor and unit, got {dict(value)!r}")
    factor = real_number(value["factor"], "[prior.physical_unit] factor", 0.0, math.inf, low_open=True)
    unit = value["unit"]
    if not isinstance(unit, str):
        raise TypeError(f"[prior.physical_unit] unit must be a string (the unit's name), got {unit!r}")
    if not unit.strip():
        raise ValueError(f"[prior.physical_unit] unit must be a non-empty string (the unit's name), got {unit!r}")
    return {"factor": factor, "unit": unit}


def saved_normalization(normalization: Normalization, physical_unit: Mapping[str, Any] | None) -> Normalization:
    """The normalization of the saved prior: the training one, relabelled in the physical unit if one is given."""
    if physical_unit is None:
        return normalization
    return normalization.in_units(physical_unit["factor"], physical_unit["unit"])


def fit_size(rank: int, images: int, dataset: TrainingDataset) -> tuple[int, int]:
    """``(rank, N)`` of a run's Gaussian fit.

    ``N = min(images, len(dataset))`` and the rank clipped to ``[0, min(N − 1, n)]``.
    """
    count = min(images, len(dataset))
    return max(0, min(rank, count - 1, math.prod(dataset.shape))), count


def fit_gaussian(
    dataset: TrainingDataset, normalization: Normalization, rank: int, count: int, progress: bool = False
) -> LowRankGaussian:
    """The :class:`LowRankGaussian` of items ``0 … count−1`` (epoch 0) in the network units of ``normalization``."""
    indices = tqdm(range(count), desc="Gaussian fit", unit="image", disable=not progress, leave=False)
    images = torch.stack([dataset.image(index, 0) for index in indices]).to(torch.float64)
    return LowRankGaussian.fit(normalization.to_network(images), rank)


def fit_record(fit: LowRankGaussian | None, images: int) -> dict[str, Any] | None:
    """The ``gaussian_fit`` entry of the ``training`` metadata."""
    if fit is None:
        return None
    return {"rank": fit.rank, "images": images, "explained_variance": fit.explained_variance}
