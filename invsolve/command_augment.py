"""``invsolve augment`` and ``invsolve augment-merge``: morphology-conditioned galaxies for rare classes.

``invsolve augment --prior PRIOR --catalog CAT --query "dust_lane>0.5" --n 1000 --out aug.h5``
reads a galaxy catalogue (:func:`~invsolve.datasets.galaxy_zoo.read_catalog`:
the GZ2 table of Hart et al. 2016, the Kaggle solutions, Galaxy10 DECaLS,
FITS cutouts), picks the conditioning vectors of the rows the query selects,
and generates one galaxy per vector with the conditional prior
(:func:`~invsolve.galaxy.generation.generate`).  Instead of ``--query``/``--n``:
``--oversample "QUERY:FACTOR"`` (repeatable: every matching row ``FACTOR``
times) or ``--vector "dust_lane=0.8,odd.yes=0.9,smooth=0.9"`` / ``--vectors
FILE.npy`` with ``--n`` (no catalogue needed).  Output layout, shards
(``--shard K/N``), resuming and FITS cutouts (``--fits DIR``):
:mod:`invsolve.galaxy.augment`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["augment_files", "merge_files"]


def _oversampling_rules(rules: Sequence[str]) -> dict[str, int]:
    factors: dict[str, int] = {}
    for rule in rules:
        query, sep, factor = rule.rpartition(":")
        if not sep or not query.strip():
            raise ValueError(f"--oversample expects QUERY:FACTOR, e.g. \"dust_lane>0.5:10\", got {rule!r}")
        try:
            factors[query.strip()] = int(factor)
        except ValueError:
            raise ValueError(f"--oversample {rule!r}: the factor must be an integer >= 1, got {factor!r}") from None
        if factors[query.strip()] < 1:
            raise ValueError(f"--oversample {rule!r}: the factor must be an integer >= 1, got {factor!r}")
    return factors


def augment_files(
    *,
    prior: str,
    out: str,
    catalog: str | None = None,
    catalog_kind: str = "auto",
    mapping: str | None = None,
    query: str | None = None,
    n: int | None = None,
    oversample: Sequence[str] | None = None,
    vector: Sequence[str] | None = None,
    vectors: str | None = None,
    guidance: float | None = None,
    steps: int = 50,
    batch_size: int = 16,
    seed: int = 0,
    shard: str | None = None,
    fits: str | None = None,
    flip: bool = False,
    rot90: bool = False,
    append: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """The ``invsolve augment`` command (module docstring); returns its JSON summary.

    Every option is checked, the catalogue read and the plan made before
    the prior is loaded and anything is generated.

    Raises
    ------
    ValueError
        Conflicting or missing options (one mode: ``--query`` with ``--n``,
        ``--oversample``, or ``--vector``/``--vectors`` with ``--n``), ``--n``
        below 1, a bad ``--shard``, a query naming an unknown column or
        matching no row, an existing output without ``--append``/``--overwrite``,
        a prior not conditioned on the morphology vector.
    FileNotFoundError
        A missing catalogue, vectors file or prior file.
    """
    from invsolve.command_reconstruct import load_prior_option
    from invsolve.datasets.galaxy_zoo import read_catalog

    from .galaxy.augment import check_new_output, parse_shard, run_augmentation, shard_path
    from .galaxy.generation import check_galaxy_prior, parse_vector, plan_from_oversampling, plan_from_query, plan_from_vectors

    modes = [name for name, given in (("--query", query is not None), ("--oversample", bool(oversample)),
                                       ("--vector/--vectors", bool(vector) or vectors is not None)) if given]
    if len(modes) != 1:
        raise ValueError("choose what to generate with exactly one of --query (with --n), --oversample "
                         f"QUERY:FACTOR, or --vector/--vectors (with --n); got {', '.join(modes) or 'none'}")
    if n is not None and n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if modes[0] != "--oversample" and n is None:
        raise ValueError(f"{modes[0]} needs --n, the number of galaxies to generate")
    if modes[0] == "--oversample" and n is not None:
        raise ValueError("--oversample sets the number of galaxies itself (matching rows × factor); drop --n")
    if vector and vectors is not None:
        raise ValueError("give the vectors either with --vector (repeatable) or in a --vectors file, not both")
    parsed_shard = parse_shard(shard)
    out_path = Path(out)
    target = shard_path(out_path, parsed_shard) if parsed_shard is not None else out_path
    check_new_output(target, append, overwrite)  # before the catalogue and the prior are read
    if modes[0] == "--vector/--vectors":
        if vector:
            given = np.stack([parse_vector(text) for text in vector])
        else:
            path = Path(vectors)
            if not path.is_file():
                raise FileNotFoundError(f"--vectors {path} does not exist")
            try:
                given = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise ValueError(f"--vectors {path} is not a readable .npy array: {error}") from None
        plan = plan_from_vectors(given, n)
    else:
        if catalog is None:
            raise ValueError(f"{modes[0]} selects catalogue rows: give the catalogue with --catalog")
        table = read_catalog(catalog, kind=catalog_kind, mapping=mapping)
        if modes[0] == "--query":
            plan = plan_from_query(table, query, n, seed=seed)
        else:
            plan = plan_from_oversampling(table, _oversampling_rules(oversample))
    model, prior_name = load_prior_option(prior)
    check_galaxy_prior(model)
    prior_file = prior if os.path.isfile(prior) else _embedded_file(prior_name)
    summary = run_augmentation(
        model, plan, out_path, prior_name=prior_name, prior_file=prior_file, catalog=catalog,
        guidance_scale=guidance, steps=steps, batch_size=batch_size, seed=seed, shard=parsed_shard,
        fits_dir=fits, flip=flip, rot90=rot90, append=append, overwrite=overwrite, progress=progress,
    )
    summary["plan"] = plan.description
    return summary


def _embedded_file(name: str) -> str | None:
    """The package-data file of an embedded prior (for its hash), if it is a real file."""
    from importlib.resources import files

    candidate = files("invsolve.priors").joinpath("pretrained", f"{name}.pt")
    return str(candidate) if candidate.is_file() else None


def merge_files(*, out: str, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """The ``invsolve augment-merge`` command: join ``OUT``'s shard files into ``OUT``."""
    from .galaxy.augment import merge_shards

    return merge_shards(out, overwrite=overwrite)
