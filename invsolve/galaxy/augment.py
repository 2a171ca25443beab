"""``invsolve augment``: generate galaxies for chosen morphologies into HDF5, in shards, resumably.

Output file (HDF5, ``format = "invsolve-augment"``)
    ============  =========================================================
    ``images``    float32 ``(N, C, H, W)``, the prior's physical units
    ``conditions``  float32 ``(N, 37)``: the vote fractions each image was
                  generated for (names in the attribute ``condition_names``)
    ``seeds``     int64 ``(N,)``: each sample's seed (``sample_seed(seed, index)``)
    ``indices``   int64 ``(N,)``: each sample's index in the whole job
    ``source_rows``  int64 ``(N,)``: the catalogue row of each condition (−1: none)
    attributes    provenance: ``prior`` and its SHA-256, ``guidance_scale``,
                  ``steps``, ``sampler`` (``"ddim"``, ``eta`` 0), ``seed``,
                  ``catalog`` and its SHA-256, ``plan`` (JSON: mode, query,
                  factors), ``job_size``, ``shard`` (``"k/n"``), ``flip``,
                  ``rot90``, ``created``, ``invsolve_version``
    ============  =========================================================

Shards
    ``shard=(k, n)`` (``--shard k/n``, ``0 <= k < n``) generates the ``k``-th
    of ``n`` contiguous blocks of the job's samples into
    ``<stem>.shard-<k>-of-<n>.h5`` beside ``out``; cluster array tasks run one
    shard each with the same command line, and :func:`merge_shards`
    (``invsolve augment-merge OUT``) joins them into ``out``, checking that
    every shard is there and that all come from the same job.

Resuming
    Work in progress lives in the hidden folder ``.<out name>.parts`` beside
    the output: the job's fingerprint (``job.json``) and one ``.npz`` file per
    finished batch, each written atomically.  A run that finds the folder
    with the same fingerprint skips the batches already there; a killed run
    loses at most the batch it was computing and never duplicates a sample.
    The output (and the FITS folder) appear only at the end, atomically, and
    the parts folder is removed then.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_output_file
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.files import atomic_write

from .generation import GenerationPlan, check_galaxy_prior, generate, sample_seed

__all__ = [
    "AUGMENT_FORMAT", "parse_shard", "shard_path", "check_new_output", "run_augmentation", "merge_shards",
    "read_augmentation",
]

AUGMENT_FORMAT = "invsolve-augment"
_SUFFIXES = (".h5", ".hdf5")
_SHARD_NAME = re.compile(r"^(?P<stem>.+)\.shard-(?P<k>\d+)-of-(?P<n>\d+)$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"k/n"`` → ``(k, n)`` with ``0 <= k < n``; ``None`` passes through."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--shard must be K/N with integers 0 <= K < N (e.g. 0/4), got {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"--shard {text}: the shard index K must be in 0..N-1 for N shards, got K = {k}, N = {n}")
    return k, n


def _check_suffix(out: Path, name: str = "--out") -> tuple[str, str]:
    for suffix in _SUFFIXES:
        if out.name.lower().endswith(suffix) and len(out.name) > len(suffix):
            return out.name[: -len(suffix)], out.name[-len(suffix):]
    raise ValueError(f"{name} {out}: expected an HDF5 file name ending in .h5 or .hdf5")


def shard_path(out: str | os.PathLike, shard: tuple[int, int]) -> Path:
    """The file of shard ``(k, n)`` of output ``out``: ``<stem>.shard-<k>-of-<n>.h5`` beside it."""
    out = Path(out)
    stem, suffix = _check_suffix(out)
    return out.with_name(f"{stem}.shard-{shard[0]}-of-{shard[1]}{suffix}")


def check_new_output(target: Path, append: bool, overwrite: bool) -> None:
    """Refuse an existing output unless ``append`` or ``overwrite`` says what to do with it."""
    if target.exists() and not (append or overwrite):
        raise ValueError(f"{target} exists; pass --append to add samples to it or --overwrite to replace it")


def _shard_range(size: int, shard: tuple[int, int] | None) -> range:
    if shard is None:
        return range(size)
    k, n = shard
    return range(k * size // n, (k + 1) * size // n)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(job: Mapping[str, Any], conditions: np.ndarray) -> str:
    text = json.dumps(job, sort_keys=True).encode() + np.ascontiguousarray(conditions).tobytes()
    return hashlib.sha256(text).hexdigest()


def run_augmentation(
    prior: Any,
    plan: GenerationPlan,
    out: str | os.PathLike,
    *,
    prior_name: str,
    prior_file: str | os.PathLike | None = None,
    catalog: str | os.PathLike | None = None,
    guidance_scale: float | None = None,
    steps: int = 50,
    batch_size: int = 16,
    seed: int = 0,
    shard: tuple[int, int] | None = None,
    fits_dir: str | os.PathLike | None = None,
    flip: bool = False,
    rot90: bool = False,
    append: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the plan's samples (or one shard of them) into an HDF5 file (module docstring: layout).

    Parameters
    ----------
    prior : UNetPrior
        Conditioned on the 37 vote fractions.
    plan : GenerationPlan
        The whole job's conditions (:mod:`invsolve.galaxy.generation`).
    out : path-like
        ``.h5``/``.hdf5`` output; with ``shard`` the shard's file beside it (:func:`shard_path`).
    prior_name, prior_file : str, path-like
        How the prior was named, and its checkpoint file (hashed into the provenance).
    catalog : path-like, optional
        The catalogue file the plan came from (provenance).
    guidance_scale : float, optional
        Classifier-free guidance weight (default: the prior's).
    steps, batch_size, seed : int
        DDIM steps, images per network batch, the job's seed.
    shard : (int, int), optional
        ``(k, n)``: only the ``k``-th of ``n`` contiguous blocks.
    fits_dir : path-like, optional
        Also write one FITS cutout per image there (``<stem>_<index>.fits``,
        primary HDU, no WCS; header keywords ``GZnnAmm`` hold the vote
        fractions, plus ``SEED``, ``INDEX``, ``CATROW``, ``GUIDANCE``, ``PRIOR``).
    flip, rot90 : bool
        Augment each generated image with flips / 90° rotations (its seed's draw).
    append, overwrite : bool
        What to do with an existing output: add new samples after its own
        (indices and seeds continue; the same prior, guidance and steps are
        required), or replace it.  Without either an existing output is refused.
    progress : bool
        Progress bar over samples.

    Returns
    -------
    dict
        Summary: ``files``, ``samples``, ``resumed_batches``, ``shard``, ``job_size``.
    """
    check_galaxy_prior(prior)
    out = Path(out)
    _check_suffix(out)
    target = shard_path(out, shard) if shard is not None else out
    batch_size, steps, seed = check_int(batch_size, "--batch-size"), check_int(steps, "--steps"), check_int(seed, "--seed", 0)
    if append and overwrite:
        raise ValueError("--append and --overwrite exclude each other: choose one")
    if append and shard is not None:
        raise ValueError("--append applies to a whole output, not to a shard: merge the shards first")
    offset, existing = 0, None
    check_new_output(target, append, overwrite)
    if target.exists():
        if append:
            existing = read_augmentation(target)
            offset = int(existing["indices"].max()) + 1 if len(existing["indices"]) else 0
    check_output_file(target, "--out")
    fits_path = Path(fits_dir) if fits_dir is not None else None
    if fits_path is not None and fits_path.exists() and any(fits_path.iterdir()):
        raise ValueError(f"--fits {fits_path} exists and is not empty; choose a new folder for the cutouts")
    guidance = float(prior.guidance_scale if guidance_scale is None else guidance_scale)
    if guidance < 0:
        raise ValueError(f"--guidance must be >= 0, got {guidance}")
    prior_hash = _sha256(Path(prior_file)) if prior_file is not None and Path(prior_file).is_file() else None
    job = {
        "format": AUGMENT_FORMAT,
        "prior": prior_name,
        "prior_sha256": prior_hash,
        "guidance_scale": guidance,
        "steps": steps,
        "sampler": "ddim",
        "eta": 0.0,
        "seed": seed,
        "catalog": None if catalog is None else Path(catalog).name,
        "catalog_sha256": None if catalog is None or not Path(catalog).is_file() else _sha256(Path(catalog)),
        "plan": plan.description,
        "job_size": len(plan),
        "first_index": offset,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        "flip": bool(flip),
        "rot90": bool(rot90),
        "batch_size": batch_size,
    }
    if existing is not None:
        for key in ("prior", "guidance_scale", "steps"):
            if existing["attrs"][key] != job[key]:
                raise ValueError(f"--append to {target}: its {key} is {existing['attrs'][key]!r}, this run's "
                                 f"{job[key]!r}; append only samples of the same generator")
    fingerprint = _fingerprint(job, plan.conditions)
    parts = target.with_name(f".{target.name}.parts")
    resumed = _open_parts(parts, job, fingerprint)
    indices = np.asarray(_shard_range(len(plan), shard), dtype=np.int64)
    batches = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    done = sum(1 for batch in batches if (parts / _part_name(batch)).exists())
    bar = tqdm(total=len(indices), desc="augment", unit="galaxy", disable=not progress)
    with bar:
        for batch in batches:
            part = parts / _part_name(batch)
            if part.exists():
                bar.update(len(batch))
                continue
            seeds = [sample_seed(seed, offset + int(i)) for i in batch]
            images = generate(prior, plan.conditions[batch], seeds, steps=steps, guidance_scale=guidance,
                              flip=flip, rot90=rot90)
            arrays = {"images": images.numpy(), "indices": batch + offset, "seeds": np.asarray(seeds, np.int64)}
            atomic_write(part, lambda temporary: _save_npz(temporary, arrays))
            bar.update(len(batch))
    collected = _collect(parts, batches)
    collected["conditions"] = plan.conditions[indices]
    collected["source_rows"] = plan.source_rows[indices]
    attrs = {**{k: v for k, v in job.items() if k != "batch_size"}, "plan": json.dumps(plan.description),
             "condition_names": json.dumps(list(MORPHOLOGY.names)), "fingerprint": fingerprint,
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "invsolve_version": _version()}
    if existing is not None:
        collected = {key: np.concatenate([existing[key], collected[key]]) for key in collected}
    files = [str(target)]
    if fits_path is not None:
        _write_fits_folder(fits_path, collected, target, attrs)
        files.append(str(fits_path))
    atomic_write(target, lambda temporary: _write_hdf5(temporary, collected, attrs))
    shutil.rmtree(parts, ignore_errors=True)
    return {"files": files, "samples": int(len(indices)), "total_in_file": int(len(collected["indices"])),
            "resumed_batches": done if resumed else 0, "shard": job["shard"], "job_size": len(plan),
            "guidance_scale": guidance, "steps": steps}


def _part_name(batch: np.ndarray) -> str:
    return f"batch-{int(batch[0]):09d}-{int(batch[-1]):09d}.npz"


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _open_parts(parts: Path, job: Mapping[str, Any], fingerprint: str) -> bool:
    """Create the parts folder, or check an existing one belongs to this job; returns whether it existed."""
    record = parts / "job.json"
    if parts.exists():
        try:
            found = json.loads(record.read_text())["fingerprint"]
        except (OSError, ValueError, KeyError):
            found = None
        if found != fingerprint:
            raise ValueError(
                f"{parts} holds an interrupted run with different settings (prior, catalogue, query, seed, steps, "
                "guidance or batch size); rerun with the same options to resume it, or delete the folder"
            )
        return True
    parts.mkdir(parents=True)
    atomic_write(record, lambda temporary: temporary.write_text(json.dumps({"fingerprint": fingerprint, **job})))
    return False


def _collect(parts: Path, batches: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    arrays: dict[str, list[np.ndarray]] = {"images": [], "indices": [], "seeds": []}
    for batch in batches:
        with np.load(parts / _part_name(batch)) as part:
            for key in arrays:
                arrays[key].append(part[key])
    if not batches:
        raise ValueError("the shard holds no samples: the job is smaller than the number of shards")
    return {key: np.concatenate(value) for key, value in arrays.items()}


def _version() -> str:
    from invsolve import __version__

    return __version__


def _write_hdf5(path: Path, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            chunks = (1, *value.shape[1:]) if key == "images" and len(value) else None
            handle.create_dataset(key, data=value, chunks=chunks)
        handle["conditions"].attrs["names"] = json.dumps(list(MORPHOLOGY.names))
        for key, value in attrs.items():
            handle.attrs[key] = "" if value is None else value


def read_augmentation(path: str | os.PathLike) -> dict[str, Any]:
    """Read an ``invsolve augment`` HDF5 file: its arrays and ``attrs`` (one clear error for anything else)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != AUGMENT_FORMAT:
                raise ValueError(f"{path} is not an invsolve augment file (no format = {AUGMENT_FORMAT!r} attribute)")
            data = {key: handle[key][()] for key in ("images", "conditions", "seeds", "indices", "source_rows")}
            data["attrs"] = {key: (value.item() if hasattr(value, "item") else value)
                             for key, value in handle.attrs.items()}
    except (OSError, KeyError) as error:
        raise ValueError(f"{path} is not a readable invsolve augment file: {error}") from None
    return data


def _write_fits_folder(folder: Path, arrays: Mapping[str, np.ndarray], target: Path, attrs: Mapping[str, Any]) -> None:
    """One FITS cutout per image, staged in a temporary folder and moved into place at once."""
    from astropy.io import fits

    stem = _check_suffix(target)[0]
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for image, condition, seed, index, row in zip(arrays["images"], arrays["conditions"], arrays["seeds"],
                                                       arrays["indices"], arrays["source_rows"]):
            header = fits.Header()
            header["INDEX"] = (int(index), "sample index in the augmentation job")
            header["SEED"] = (int(seed), "seed of the sample's initial noise")
            header["CATROW"] = (int(row), "catalogue row of the condition (-1: none)")
            header["GUIDANCE"] = (float(attrs["guidance_scale"]), "classifier-free guidance weight")
            header["NSTEPS"] = (int(attrs["steps"]), "DDIM steps")
            header["PRIOR"] = (str(attrs["prior"])[:68], "generator prior")
            for name, value in zip(MORPHOLOGY.names, condition):
                header[MORPHOLOGY.fits_keyword(name)] = (float(value), name[:47])
            hdu = fits.PrimaryHDU(np.asarray(image[0] if image.shape[0] == 1 else image, dtype=np.float32), header)
            hdu.writeto(staging / f"{stem}_{int(index):07d}.fits")
        if folder.exists():
            folder.rmdir()  # checked empty before the run
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def merge_shards(out: str | os.PathLike, *, overwrite: bool = False) -> dict[str, Any]:
    """Join the shard files of ``out`` (``<stem>.shard-<k>-of-<n>.h5``) into ``out``, atomically.

    Raises
    ------
    ValueError
        No shards, shards of several ``n``, a missing shard, shards of
        different jobs, overlapping or missing sample indices, or an existing
        ``out`` without ``overwrite``.
    """
    out = Path(out)
    stem, suffix = _check_suffix(out)
    found: dict[int, dict[int, Path]] = {}
    folder = out.parent if str(out.parent) else Path(".")
    for candidate in folder.glob(f"{_glob_escape(stem)}.shard-*-of-*{suffix}"):
        match = _SHARD_NAME.match(candidate.name[: -len(suffix)])
        if match and match.group("stem") == stem:
            found.setdefault(int(match.group("n")), {})[int(match.group("k"))] = candidate
    if not found:
        raise ValueError(f"no shard files {stem}.shard-K-of-N{suffix} next to {out}")
    if len(found) > 1:
        raise ValueError(f"shard files of several splits ({', '.join(f'N = {n}' for n in sorted(found))}) next to "
                         f"{out}; remove the ones that do not belong")
    (count, shards), = found.items()
    missing = sorted(set(range(count)) - set(shards))
    if missing:
        raise ValueError(f"{len(missing)} of {count} shards are missing next to {out}: K = "
                         f"{', '.join(map(str, missing[:10]))}; run them (--shard K/{count}) before merging")
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    check_output_file(out, "OUT")
    parts = [read_augmentation(shards[k]) for k in range(count)]
    job_keys = ("prior", "prior_sha256", "guidance_scale", "steps", "seed", "catalog_sha256", "plan", "job_size",
                "flip", "rot90")
    reference = parts[0]["attrs"]
    for k, part in enumerate(parts[1:], start=1):
        differ = [key for key in job_keys if part["attrs"].get(key) != reference.get(key)]
        if differ:
            raise ValueError(f"{shards[k]} belongs to another job than {shards[0]} (they differ in "
                             f"{', '.join(differ)})")
    merged = {key: np.concatenate([part[key] for part in parts]) for key in
              ("images", "conditions", "seeds", "indices", "source_rows")}
    expected = np.arange(int(reference["job_size"]))
    if not np.array_equal(np.sort(merged["indices"]), expected):
        raise ValueError(f"the shards of {out} do not hold each of the job's {len(expected)} samples exactly once")
    attrs = {**reference, "shard": "", "merged_from": count}
    atomic_write(out, lambda temporary: _write_hdf5(temporary, merged, attrs))
    return {"files": [str(out)], "samples": int(len(expected)), "shards": count}


def _glob_escape(text: str) -> str:
    """``text`` with glob metacharacters bracketed, for a literal match."""
    return re.sub(r"([*?\[])", r"[\1]", text)

