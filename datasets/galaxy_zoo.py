"""Readers for galaxy morphology catalogues, all onto the one GZ2 schema :data:`.morphology.MORPHOLOGY`.

Every reader returns an :class:`astropy.table.Table` with an ``id`` column (the
catalogue's object id), a ``morphology`` column of shape ``(N, 37)`` (float32
per-task vote fractions, see :mod:`.morphology`), an ``image`` column where the
source has images, the source's other useful columns, and ``meta["source"]``
(one of :data:`CATALOG_KINDS`) and ``meta["path"]``.

Sources
    * ``hart16`` — the debiased Galaxy Zoo 2 table of Hart et al. (2016, MNRAS
      461, 3663; ``gz2_hart16.csv`` / ``.fits``) for the classifications of
      Willett et al. (2013, MNRAS 435, 2835), joined to the GZ2 images through
      the objid → asset_id mapping CSV (:func:`read_gz2_image_mapping`).
    * ``kaggle`` — ``training_solutions_rev1.csv`` of the Kaggle challenge
      "Galaxy Zoo - The Galaxy Challenge" (2014), whose 37 ``ClassN.M``
      columns are path-weighted probabilities (converted to per-task fractions).
    * ``galaxy10`` — Galaxy10 DECaLS (Leung & Bovy, astroNN documentation;
      labels from the Galaxy Zoo DECaLS votes of Walmsley et al. 2022, MNRAS
      509, 3966): an HDF5 file of 17 736 images 256×256×3 and 10 class
      labels, each mapped to an idealised vector (:data:`GALAXY10_MORPHOLOGY`).
    * ``fits`` — FITS cutouts carrying their vote fractions as header
      keywords ``GZ<task>A<answer>`` (:meth:`.MorphologySchema.fits_keyword`).

:func:`read_catalog` recognises the source, :func:`select_rows` selects rows by
a query such as ``"odd.yes >= 0.5 and dust_lane > 0.5"``, and
:func:`catalog_image` loads one row's image as float32 ``(C, H, W)``.
"""

from __future__ import annotations

import gzip
import operator
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .io.checks import describe_error, open_fits, open_hdf5, reading
from .morphology import MORPHOLOGY

__all__ = [
    "CATALOG_KINDS", "GALAXY10_CLASSES", "GALAXY10_MORPHOLOGY", "read_gz2_hart16", "read_kaggle_solutions",
    "read_gz2_image_mapping", "read_galaxy10_decals", "read_fits_cutouts", "read_catalog", "select_rows",
    "catalog_image",
]

PathLike = str | os.PathLike

#: the sources :func:`read_catalog` reads (also ``meta["source"]`` of its tables)
CATALOG_KINDS: tuple[str, ...] = ("hart16", "kaggle", "galaxy10", "fits")

#: the Galaxy10 DECaLS class names, by label 0–9
GALAXY10_CLASSES: tuple[str, ...] = (
    "Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth", "Barred Spiral",
    "Unbarred Tight Spiral", "Unbarred Loose Spiral", "Edge-on without Bulge", "Edge-on with Bulge",
)

_SPIRAL = {"features_or_disk": 1, "edgeon.no": 1, "spiral.spiral": 1, "arms_number.2": 1, "odd.no": 1}
_EDGE_ON = {"features_or_disk": 1, "edgeon.yes": 1, "odd.no": 1}
# The idealised answers of each Galaxy10 class along its decision-tree path (other entries 0).
_GALAXY10_ANSWERS: tuple[dict[str, float], ...] = (
    {"odd.yes": 1, "disturbed": 1},  # 0: task 01 left 0, the label does not say smooth or disc
    {"odd.yes": 1, "merger": 1},  # 1: likewise
    {"smooth": 1, "completely_round": 1, "odd.no": 1},
    {"smooth": 1, "in_between": 1, "odd.no": 1},
    {"smooth": 1, "cigar_shaped": 1, "odd.no": 1},
    {**_SPIRAL, "bar.bar": 1, "bulge_prominence.obvious": 1, "arms_winding.medium": 1},
    {**_SPIRAL, "no_bar": 1, "bulge_prominence.obvious": 1, "arms_winding.tight": 1},
    {**_SPIRAL, "no_bar": 1, "bulge_prominence.just_noticeable": 1, "arms_winding.loose": 1},
    {**_EDGE_ON, "bulge_shape.no_bulge": 1},
    {**_EDGE_ON, "bulge_shape.rounded": 1},
)
#: float32 ``(10, 37)``: the idealised morphology vector of each Galaxy10 class (row = label).
#: Every task on the class's path holds 1 on one answer (spirals: 2 arms; barred and tight
#: spirals: obvious bulge, medium / tight arms; loose: just noticeable bulge, loose arms;
#: edge-on: rounded or no bulge), all others 0.  Disturbed (0) and Merging (1) set only
#: ``odd.yes`` and ``disturbed`` / ``merger``: their task 01 entries stay 0 (not stated).
GALAXY10_MORPHOLOGY: np.ndarray = np.stack([MORPHOLOGY.vector(answers) for answers in _GALAXY10_ANSWERS])
GALAXY10_MORPHOLOGY.setflags(write=False)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_FITS_SUFFIXES = (".fits", ".fit", ".fits.gz")
_FITS_KEYWORDS = tuple(MORPHOLOGY.fits_keyword(name) for name in MORPHOLOGY.names)
#: FITS keywords that describe a file's layout, not the object: left out of a cutout table's columns
_FITS_STRUCTURE = re.compile(r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|BSCALE|BZERO|BLANK|EXTVER|EXTLEVEL)$")
_HART16_COLUMNS = tuple(MORPHOLOGY.hart16_column(name) for name in MORPHOLOGY.names)
_KAGGLE_COLUMNS = tuple(MORPHOLOGY.kaggle_column(name) for name in MORPHOLOGY.names)
_VOTE_COLUMN = re.compile(r"^t\d\d_")


# -- shared helpers ------------------------------------------------------------------
def _existing(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


def _read_table(path: Path, what: str) -> Table:
    """A CSV (``.csv``, ``.csv.gz``) or FITS binary table, with errors that name the file."""
    name = path.name.lower()
    if path.is_dir():
        raise ValueError(f"{what} {path}: expected a .csv or .fits table file, found a folder")
    if name.endswith((".csv", ".csv.gz")):
        try:
            return Table.read(path, format="ascii.csv")
        except Exception as error:  # astropy raises many types for unreadable text
            raise ValueError(f"{what} {path}: cannot read it as a CSV table ({describe_error(error)})") from None
    if name.endswith(_FITS_SUFFIXES):
        with open_fits(path, what) as hdus:
            tables = [i for i, hdu in enumerate(hdus) if not hdu.is_image]
            if not tables:
                raise ValueError(f"{what} {path}: expected a FITS binary table, found only image HDUs")
            with reading(path, what):
                return Table.read(hdus, format="fits", hdu=tables[0])
    raise ValueError(f"{what} {path}: expected a .csv, .csv.gz, .fits or .fit table, got suffix {path.suffix!r}")


def _require(table: Table, columns: Sequence[str], path: Path, what: str) -> None:
    missing = [column for column in columns if column not in table.colnames]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ValueError(f"{what} {path} lacks the column(s) {shown} ({len(missing)} of {len(columns)} expected)")


def _numbers(table: Table, columns: Sequence[str], path: Path) -> np.ndarray:
    """Float64 ``(N, len(columns))``; masked (empty) entries become NaN."""
    out = np.empty((len(table), len(columns)))
    for j, column in enumerate(columns):
        try:
            out[:, j] = np.ma.filled(np.ma.asarray(table[column], dtype=np.float64), np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: column {column} must hold numbers, got {table[column].dtype}") from None
    return out


def _checked(vectors: np.ndarray, path: Path) -> np.ndarray:
    try:
        return MORPHOLOGY.check(vectors)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _int64(table: Table, column: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(np.ma.filled(table[column], -1), dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: column {column} must hold integers, got {table[column].dtype}") from None


def _image_files(folder: PathLike) -> tuple[Path, dict[str, str]]:
    """The absolute path of each ``<stem>.jpg/.jpeg/.png`` in ``folder`` (not recursive), by stem."""
    folder = _existing(folder, "images folder")
    if not folder.is_dir():
        raise ValueError(f"images={folder}: expected a folder of .jpg or .png files, found a file")
    folder = folder.resolve()
    files: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):  # .jpg sorts before .png, so it wins
        stem, dot, suffix = name.rpartition(".")
        if dot and f".{suffix.lower()}" in _IMAGE_SUFFIXES:
            files.setdefault(stem, str(folder / name))
    return folder, files


def _attach_images(table: Table, keys: Sequence[str], folder: PathLike, key_name: str) -> Table:
    """Add the ``image`` column; drop rows without a file (counted in ``meta["missing_images"]``)."""
    folder, files = _image_files(folder)
    images = [files.get(key, "") for key in keys]
    found = np.array([bool(image) for image in images], dtype=bool)
    if len(table) and not found.any():
        example = next((key for key in keys if key), "12345")
        present = ", ".join(list(files.values())[:3]) or "none"
        raise FileNotFoundError(
            f"images folder {folder}: no image file for any of the {len(table)} rows of {table.meta['path']}; "
            f"expected files named <{key_name}>.jpg (or .png) such as {example}.jpg (image files there: {present})"
        )
    table["image"] = np.array(images, dtype=str)
    table = table[found]
    table.meta.update(images=str(folder), missing_images=int((~found).sum()))
    return table


# -- readers -------------------------------------------------------------------------
def read_gz2_image_mapping(path: PathLike) -> Table:
    """Read the GZ2 image-name mapping CSV (``gz2_filename_mapping.csv``).

    Parameters
    ----------
    path : str or os.PathLike
        CSV with columns ``objid`` (SDSS DR7 id), ``sample``, ``asset_id`` (image ``<asset_id>.jpg``).

    Returns
    -------
    astropy.table.Table
        ``objid`` int64, ``sample`` str, ``asset_id`` int64.
    """
    path = _existing(path, "GZ2 image mapping")
    table = _read_table(path, "GZ2 image mapping")
    _require(table, ("objid", "sample", "asset_id"), path, "GZ2 image mapping")
    out = Table({"objid": _int64(table, "objid", path), "sample": np.asarray(table["sample"], dtype=str),
                 "asset_id": _int64(table, "asset_id", path)})
    out.meta.update(source="gz2_mapping", path=str(path.resolve()))
    return out


def read_gz2_hart16(path: PathLike, *, mapping: PathLike | None = None, images: PathLike | None = None) -> Table:
    """Read the debiased GZ2 catalogue of Hart et al. (2016).

    Parameters
    ----------
    path : str or os.PathLike
        ``gz2_hart16.csv`` (``.csv.gz``) or ``.fits``: ``dr7objid``, ra, dec (degrees), gz2_class, ...
        and the 37 ``tNN_<task>_aMM_<answer>_debiased`` fractions (:meth:`.MorphologySchema.hart16_column`).
    mapping : str or os.PathLike, optional
        The objid → asset_id CSV (:func:`read_gz2_image_mapping`): adds ``asset_id`` (int64, -1 if
        absent; a mapping row of the table's ``sample`` is preferred).
    images : str or os.PathLike, optional
        Folder of ``<asset_id>.jpg`` (or ``.png``), needs ``mapping``; rows without a file are
        dropped and counted in ``meta["missing_images"]``.

    Returns
    -------
    astropy.table.Table
        ``id`` (int64 dr7objid), the columns other than the vote columns, ``morphology`` float32
        ``(N, 37)`` (NaN for unreached tasks -> 0) and, with ``images``, ``image`` (absolute path).

    Raises
    ------
    FileNotFoundError, ValueError
        No such path, or no row has an image file; unreadable file, missing debiased columns,
        fractions outside [0, 1], ``images`` without ``mapping``.
    """
    path = _existing(path, "GZ2 Hart et al. 2016 table")
    if images is not None and mapping is None:
        raise ValueError(f"images={images} needs mapping=: GZ2 image files are named by asset_id, and the "
                         "objid -> asset_id mapping CSV (columns objid, sample, asset_id) joins them to dr7objid")
    table = _read_table(path, "GZ2 Hart et al. 2016 table")
    _require(table, ("dr7objid",) + _HART16_COLUMNS, path, "GZ2 Hart et al. 2016 table")
    fractions = np.nan_to_num(_numbers(table, _HART16_COLUMNS, path), nan=0.0)
    out = Table({"id": _int64(table, "dr7objid", path)})
    for column in table.colnames:
        if column != "dr7objid" and not _VOTE_COLUMN.match(column):
            out[column] = table[column]
    out["morphology"] = _checked(fractions, path)
    out.meta.update(source="hart16", path=str(path.resolve()))
    if mapping is not None:
        links = read_gz2_image_mapping(mapping)
        by_sample: dict[tuple[int, str], int] = {}
        by_id: dict[int, int] = {}
        for objid, sample, asset in zip(links["objid"].tolist(), links["sample"].tolist(),
                                        links["asset_id"].tolist()):
            by_sample.setdefault((objid, sample), asset)
            by_id.setdefault(objid, asset)
        samples = [str(s) for s in table["sample"]] if "sample" in table.colnames else [""] * len(table)
        out["asset_id"] = np.array([by_sample.get((objid, sample), by_id.get(objid, -1))
                                    for objid, sample in zip(out["id"].tolist(), samples)], dtype=np.int64)
        out.meta["mapping"] = links.meta["path"]
        if images is not None:
            keys = [str(asset) if asset >= 0 else "" for asset in out["asset_id"].tolist()]
            out = _attach_images(out, keys, images, "asset_id")
    return out


def read_kaggle_solutions(path: PathLike, *, images: PathLike | None = None) -> Table:
    """Read the Kaggle Galaxy Challenge solutions (``training_solutions_rev1.csv``).

    Parameters
    ----------
    path : str or os.PathLike
        CSV of ``GalaxyID`` and 37 path-weighted probabilities ``Class1.1`` … ``Class11.6``
        (:meth:`.MorphologySchema.kaggle_column`).
    images : str or os.PathLike, optional
        Folder of ``<GalaxyID>.jpg`` (``images_training_rev1``); rows without a file are dropped
        and counted in ``meta["missing_images"]``.

    Returns
    -------
    astropy.table.Table
        ``id`` (int64 GalaxyID), ``morphology`` float32 ``(N, 37)`` per-task fractions
        (:meth:`.MorphologySchema.from_path_weighted`) and, with ``images``, ``image`` (absolute path).

    Raises
    ------
    FileNotFoundError, ValueError
        No such path, or no row has an image file; unreadable file, missing columns, values outside [0, 1].
    """
    path = _existing(path, "Kaggle solutions table")
    table = _read_table(path, "Kaggle solutions table")
    _require(table, ("GalaxyID",) + _KAGGLE_COLUMNS, path, "Kaggle solutions table")
    weighted = _checked(_numbers(table, _KAGGLE_COLUMNS, path), path)
    out = Table({"id": _int64(table, "GalaxyID", path), "morphology": MORPHOLOGY.from_path_weighted(weighted)})
    out.meta.update(source="kaggle", path=str(path.resolve()))
    if images is not None:
        out = _attach_images(out, [str(i) for i in out["id"].tolist()], images, "GalaxyID")
    return out


def read_galaxy10_decals(path: PathLike) -> Table:
    """Read the labels and positions of Galaxy10 DECaLS (``Galaxy10_DECals.h5``), not its images.

    Parameters
    ----------
    path : str or os.PathLike
        HDF5 file with datasets ``ans`` (uint8 labels 0–9), ``ra``, ``dec`` (degrees), ``redshift``,
        optional ``pxscale`` (arcsec/pixel) and ``images`` (uint8 ``(N, 256, 256, 3)``, left on disk).

    Returns
    -------
    astropy.table.Table
        ``id`` (int64 row number), ``label`` (int64), ``class_name``, ra, dec, redshift, pxscale as
        present, ``morphology`` float32 ``(N, 37)`` (:data:`GALAXY10_MORPHOLOGY` of the label) and,
        with ``images``, ``image`` (int64 row into ``images``, read by :func:`catalog_image`).

    Raises
    ------
    FileNotFoundError, ValueError
        ``path`` does not exist; not readable HDF5, no ``ans``, lengths differ, labels outside 0–9.
    """
    path = _existing(path, "Galaxy10 DECaLS file")
    with open_hdf5(path, "Galaxy10 DECaLS file") as file:
        if "ans" not in file:
            raise ValueError(f"Galaxy10 DECaLS file {path}: expected a dataset 'ans' (labels 0-9), "
                             f"found {sorted(file.keys())}")
        labels = np.asarray(file["ans"][()], dtype=np.int64).reshape(-1)
        columns = {name: np.asarray(file[name][()], dtype=np.float64).reshape(-1)
                   for name in ("ra", "dec", "redshift", "pxscale") if name in file}
        lengths = {name: len(values) for name, values in columns.items()}
        has_images = "images" in file
        if has_images:
            lengths["images"] = file["images"].shape[0]
    wrong = {name: length for name, length in lengths.items() if length != len(labels)}
    if wrong:
        raise ValueError(f"Galaxy10 DECaLS file {path}: datasets {wrong} (name: length) must have as many "
                         f"entries as 'ans' ({len(labels)})")
    bad = sorted(set(labels[(labels < 0) | (labels >= len(GALAXY10_CLASSES))].tolist()))
    if bad:
        raise ValueError(f"Galaxy10 DECaLS file {path}: labels must be 0-9, got {bad[:5]}")
    out = Table({"id": np.arange(len(labels), dtype=np.int64), "label": labels,
                 "class_name": np.array([GALAXY10_CLASSES[i] for i in labels], dtype=str).reshape(-1), **columns,
                 "morphology": GALAXY10_MORPHOLOGY[labels]})
    if has_images:
        out["image"] = np.arange(len(labels), dtype=np.int64)
    out.meta.update(source="galaxy10", path=str(path.resolve()))
    return out


def _fits_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.name.lower().endswith(_FITS_SUFFIXES) and p.is_file())
    return [path]


def _image_hdu(hdus, path: Path):
    """The first image HDU whose header declares data."""
    for hdu in hdus:
        header = hdu.header
        if hdu.is_image and header.get("NAXIS", 0) > 0 and all(
                header.get(f"NAXIS{i}", 0) > 0 for i in range(1, header["NAXIS"] + 1)):
            return hdu
    raise ValueError(f"FITS cutout {path}: holds no image HDU with data")


def read_fits_cutouts(path: PathLike) -> Table:
    """Read FITS cutouts whose headers hold GZ2 vote fractions (keywords ``GZ<task>A<answer>``).

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file, or a folder searched recursively for ``*.fits``, ``*.fit``, ``*.fits.gz``
        (sorted); one cutout per file, in its first image HDU with data.  Keywords (``GZ08A38`` for
        ``dust_lane``: :meth:`.MorphologySchema.fits_keyword`) are read from that HDU's header,
        then the primary header; a missing keyword counts as 0.

    Returns
    -------
    astropy.table.Table
        ``id`` (header ``OBJID``, else the file stem; int64 if every id is an integer, else str),
        ``morphology`` float32 ``(N, 37)``, ``image`` (absolute path), and one float64 column per
        other numeric header keyword (e.g. ``REDSHIFT``; NaN in the rows whose file lacks it; the
        keywords of the file layout such as ``NAXIS1`` left out), so that queries and conditions can
        name header keywords like catalogue columns.

    Raises
    ------
    FileNotFoundError, ValueError
        No such path or no FITS file in the folder; an unreadable file, or one without GZ keywords.
    """
    path = _existing(path, "FITS cutouts")
    files = _fits_files(path)
    if not files:
        raise FileNotFoundError(f"FITS cutouts folder {path} holds no *.fits, *.fit or *.fits.gz file")
    ids: list[object] = []
    vectors = np.zeros((len(files), len(MORPHOLOGY)), dtype=np.float64)
    numbers: dict[str, np.ndarray] = {}
    for row, file in enumerate(files):
        with open_fits(file, "FITS cutout") as hdus:  # headers only: open_fits parsed them all
            headers = (_image_hdu(hdus, file).header, hdus[0].header)
        for keyword, value in _header_numbers(headers).items():
            numbers.setdefault(keyword, np.full(len(files), np.nan))[row] = value
        found = 0
        for j, keyword in enumerate(_FITS_KEYWORDS):
            value = next((h[keyword] for h in headers if keyword in h), None)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise ValueError(f"FITS cutout {file}: keyword {keyword} must be a vote fraction in [0, 1], "
                                     f"got {value!r}")
                vectors[row, j] = value
                found += 1
        objid = next((h["OBJID"] for h in headers if "OBJID" in h), None)
        if not found:
            raise ValueError(f"FITS cutout {file}: its header holds no GZ2 vote-fraction keyword (expected e.g. "
                             f"{MORPHOLOGY.fits_keyword('dust_lane')} = 0.7 for odd_feature.dust_lane)")
        stem = file.name[: -len(".gz")] if file.name.lower().endswith(".gz") else file.name
        ids.append(objid if objid is not None else stem.rsplit(".", 1)[0])
    numeric = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids)
    out = Table({"id": np.array(ids, dtype=np.int64 if numeric else str),
                 "morphology": _checked(vectors, path),
                 "image": np.array([str(f.resolve()) for f in files], dtype=str),
                 **{keyword: numbers[keyword] for keyword in sorted(numbers)}})
    out.meta.update(source="fits", path=str(path.resolve()))
    return out


def _header_numbers(headers: tuple[Any, ...]) -> dict[str, float]:
    """The numeric keywords of a cutout's headers (the first header wins), but its vote fractions, ``OBJID``
    and the keywords that describe the file's structure."""
    found: dict[str, float] = {}
    for header in reversed(headers):
        for keyword, value in header.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or _FITS_STRUCTURE.match(keyword):
                continue
            if keyword not in _FITS_KEYWORDS and keyword != "OBJID":
                found[keyword] = float(value)
    return found


# -- dispatch ------------------------------------------------------------------------
def _first_line(path: Path) -> bytes:
    try:
        with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as handle:
            return handle.readline(1 << 20)
    except (OSError, EOFError):
        return b""


def _detect(path: Path) -> tuple[str | None, str]:
    """The catalogue kind of ``path`` (or None) and what was found, for the error."""
    import h5py

    if path.is_dir():
        files = _fits_files(path)
        if not files:
            return None, "a folder without FITS files"
        with open_fits(files[0], "FITS cutout") as hdus:
            if any(k in hdu.header for hdu in hdus for k in _FITS_KEYWORDS):
                return "fits", ""
        return None, f"a folder of FITS files whose first, {files[0].name}, has no GZ keywords"
    if h5py.is_hdf5(path):
        with open_hdf5(path) as file:
            names = sorted(file.keys())
        return ("galaxy10", "") if "ans" in names else (None, f"an HDF5 file with datasets {names}")
    line = _first_line(path)
    if line.startswith(b"SIMPLE  ="):
        with open_fits(path) as hdus:
            for hdu in hdus:
                columns = hdu.columns.names if not hdu.is_image else []
                if "dr7objid" in columns and any(c.endswith("_debiased") for c in columns):
                    return "hart16", ""
            if any(k in hdu.header for hdu in hdus for k in _FITS_KEYWORDS):
                return "fits", ""
        return None, "a FITS file with neither a dr7objid table nor GZ keywords"
    try:
        columns = [word.strip().strip('"') for word in line.decode("utf-8").split(",")]
    except UnicodeDecodeError:
        columns = []
    if "dr7objid" in columns and any(c.endswith("_debiased") for c in columns):
        return "hart16", ""
    if "GalaxyID" in columns and "Class1.1" in columns:
        return "kaggle", ""
    found = f"a text file with columns {', '.join(columns[:6])}" if columns else "neither text, HDF5 nor FITS"
    if {"objid", "asset_id"} <= set(columns):
        found += " (the GZ2 image mapping: pass it as mapping= with the hart16 table)"
    return None, found


def read_catalog(path: PathLike, *, kind: str = "auto", mapping: PathLike | None = None,
                 images: PathLike | None = None) -> Table:
    """Read any supported morphology catalogue (module docstring), recognising it with ``kind="auto"``.

    Parameters
    ----------
    path : str or os.PathLike
        The catalogue file (or folder of FITS cutouts).
    kind : {"auto", "hart16", "kaggle", "galaxy10", "fits"}
        ``"auto"``: HDF5 with ``ans`` is galaxy10; FITS with GZ keywords is fits; a CSV or FITS
        table with ``dr7objid`` and debiased columns is hart16; ``GalaxyID`` + ``Class1.1`` is kaggle.
    mapping, images : str or os.PathLike, optional
        For :func:`read_gz2_hart16` (``images`` also for :func:`read_kaggle_solutions`).

    Returns
    -------
    astropy.table.Table
        As that kind's reader returns it.

    Raises
    ------
    FileNotFoundError, ValueError
        No such path; unknown ``kind``, unrecognised file, ``mapping``/``images`` for another kind.
    """
    path = _existing(path, "catalogue")
    if kind not in ("auto",) + CATALOG_KINDS:
        raise ValueError(f"kind must be 'auto' or one of {', '.join(CATALOG_KINDS)}, got {kind!r}")
    if kind == "auto":
        kind, found = _detect(path)
        if kind is None:
            raise ValueError(
                f"catalogue {path}: cannot tell its kind, found {found}. Expected hart16 (a .csv/.fits table with "
                "dr7objid and tNN_..._debiased columns), kaggle (a .csv with GalaxyID and Class1.1 ... Class11.6), "
                "galaxy10 (an HDF5 file with an 'ans' dataset) or fits (FITS cutouts with header keywords such as "
                f"{MORPHOLOGY.fits_keyword('dust_lane')}); or pass kind=")
    if mapping is not None and kind != "hart16":
        raise ValueError(f"mapping= applies to kind 'hart16' only, not {kind!r} ({path})")
    if images is not None and kind not in ("hart16", "kaggle"):
        raise ValueError(f"images= applies to kinds 'hart16' and 'kaggle' only; {kind!r} ({path}) holds its images")
    if kind == "hart16":
        return read_gz2_hart16(path, mapping=mapping, images=images)
    if kind == "kaggle":
        return read_kaggle_solutions(path, images=images)
    return read_galaxy10_decals(path) if kind == "galaxy10" else read_fits_cutouts(path)


# -- queries -------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<op><=|>=|==|!=|<|>)"
                    r"|(?P<join>&&?|\|\|?|(?i:and|or)\b)|(?P<paren>[()])|(?P<name>[A-Za-z_][\w.]*)|(?P<bad>\S))")
_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def _numeric_columns(table: Table) -> list[str]:
    return [c for c in table.colnames if table[c].ndim == 1 and table[c].dtype.kind in "iuf"]


class _Query:
    """Recursive descent over ``or`` / ``and`` / ``( )`` / ``name op number``, evaluated on the table."""

    def __init__(self, table: Table, query: str):
        self.table, self.query, self.tokens, self.at = table, query, [], 0
        for match in _TOKEN.finditer(query):
            kind = match.lastgroup
            text, position = match.group(kind), match.start(kind)
            if kind == "bad":
                self.fail(f"unexpected character {text!r}", position)
            if kind == "join":
                text = "and" if text[0] in "aA&" else "or"
            self.tokens.append((kind, text, position))
        self.tokens.append(("end", "", len(query)))

    def fail(self, message: str, position: int):
        shown = f"{self.query[:position]}<here>{self.query[position:]}"
        raise ValueError(f"malformed query {self.query!r}: {message} at character {position + 1} ({shown!r}); "
                         "expected comparisons 'name op number' (op: < <= > >= == !=) joined by and/& or or/|")

    def take(self, kind: str, what: str) -> tuple[str, str, int]:
        token = self.tokens[self.at]
        if token[0] != kind:
            self.fail(f"expected {what}, found {token[1]!r}" if token[1] else f"expected {what}, found the end",
                      token[2])
        self.at += 1
        return token

    def run(self) -> np.ndarray:
        result = self.any_of()
        self.take("end", "'and', 'or' or the end")
        return result

    def any_of(self) -> np.ndarray:
        return self.joined("or", self.all_of)

    def all_of(self) -> np.ndarray:
        return self.joined("and", self.comparison)

    def joined(self, word: str, part: Callable[[], np.ndarray]) -> np.ndarray:
        result = part()
        while self.tokens[self.at][:2] == ("join", word):
            self.at += 1
            result = (result | part()) if word == "or" else (result & part())
        return result

    def comparison(self) -> np.ndarray:
        if self.tokens[self.at][:2] == ("paren", "("):
            self.at += 1
            result = self.any_of()
            self.take("paren", "')'")
            return result
        _, name, _ = self.take("name", "a column or morphology answer name")
        _, op, _ = self.take("op", f"a comparison operator after {name!r}")
        _, text, _ = self.take("number", f"a number after {name!r} {op}")
        number = int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
        values, valid = self.resolve(name)
        with np.errstate(invalid="ignore"):
            return np.asarray(_OPS[op](values, number), dtype=bool) & valid

    def resolve(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        table, numeric = self.table, _numeric_columns(self.table)
        if name in numeric:
            column = np.ma.asarray(table[name])
            values = np.ma.getdata(column)
            return values, ~np.ma.getmaskarray(column) & (~np.isnan(values) if values.dtype.kind == "f" else True)
        if name in table.colnames:
            raise ValueError(f"query {self.query!r}: column {name!r} is not a numeric scalar column "
                             f"(numeric columns: {', '.join(numeric) or 'none'})")
        try:
            index = MORPHOLOGY.index(name)
        except ValueError as error:
            raise ValueError(f"query {self.query!r}: unknown name {name!r}: not a numeric column of the table "
                             f"({', '.join(numeric) or 'none'}) and not a morphology answer name ({error})") from None
        if "morphology" not in table.colnames:
            raise ValueError(f"query {self.query!r}: {name!r} is a morphology answer but the table has no "
                             "'morphology' column")
        values = np.asarray(table["morphology"])[:, index]
        return values, np.ones(len(values), dtype=bool)


def select_rows(table: Table, query: str) -> np.ndarray:
    """Rows of a catalogue table that satisfy a query (no ``eval``).

    Parameters
    ----------
    table : astropy.table.Table
        A table of this module's readers (or any table).
    query : str
        Comparisons ``name op number`` (op: ``< <= > >= == !=``) joined by ``and``/``&`` and
        ``or``/``|`` (``and`` binds tighter), optionally parenthesised, e.g. ``"odd.yes >= 0.5 and
        dust_lane > 0.5"``.  A name is a numeric scalar column, else a morphology answer
        (:meth:`.MorphologySchema.index`); masked or NaN values satisfy no comparison.

    Returns
    -------
    numpy.ndarray
        Bool ``(N,)``.

    Raises
    ------
    TypeError, ValueError
        ``table`` not a Table or ``query`` not a string; a malformed query (the message shows
        where) or an unknown name.
    """
    if not isinstance(table, Table):
        raise TypeError(f"select_rows needs an astropy.table.Table, got {type(table).__name__}")
    if not isinstance(query, str):
        raise TypeError(f"query must be a string such as 'dust_lane > 0.5', got {type(query).__name__}")
    return _Query(table, query).run()


# -- images --------------------------------------------------------------------------
def _pil_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("1", "LA"):
                return np.asarray(image.convert("L"), dtype=np.float32)[None]
            if image.mode == "L" or image.mode.startswith(("I", "F")):  # grey, 8, 16, 32 bit or float
                return np.asarray(image, dtype=np.float32)[None]
            return np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist (moved or deleted?)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"image {path}: cannot be read as an image ({describe_error(error)})") from None


def _fits_image(path: Path) -> np.ndarray:
    with open_fits(path, "image") as hdus:
        hdu = _image_hdu(hdus, path)
        with reading(path, "image"):
            data = np.asarray(hdu.data, dtype=np.float32)
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3:
        return data
    raise ValueError(f"image {path}: expected a 2D image or 3D cube, got shape {data.shape}")


def catalog_image(table: Table, row: int) -> np.ndarray:
    """Load the image of one row of a catalogue table.

    Parameters
    ----------
    table : astropy.table.Table
        A table from this module's readers with an ``image`` column.
    row : int
        Row number in ``table`` (negative counts from the end).

    Returns
    -------
    numpy.ndarray
        Float32 ``(C, H, W)``: JPEG/PNG values 0–255 (RGB: C = 3, grey: C = 1); FITS data as
        stored (2D: C = 1, cubes as they are); Galaxy10 from ``meta["path"]`` (C = 3, 0–255).

    Raises
    ------
    TypeError, ValueError, FileNotFoundError
        ``row`` not an integer; no image for the row, ``row`` out of range, a damaged file; the
        image file no longer exists.
    """
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
        raise TypeError(f"row must be an integer, got {type(row).__name__}")
    source = table.meta.get("source", "unknown")
    if "image" not in table.colnames:
        raise ValueError(f"the {source} table ({table.meta.get('path')}) has no image column; read it with "
                         "images= (and, for hart16, mapping=), or use a source that has images")
    if not -len(table) <= row < len(table):
        raise ValueError(f"row {row} is out of range for a table of {len(table)} rows")
    value = table["image"][row]
    if source == "galaxy10":
        path = Path(table.meta["path"])
        with open_hdf5(path, "Galaxy10 DECaLS file") as file:
            image = np.asarray(file["images"][int(value)], dtype=np.float32)
        return image.transpose(2, 0, 1).copy() if image.ndim == 3 else image[None]
    if np.ma.is_masked(value) or not str(value):
        raise ValueError(f"row {row} of the {source} table has no image")
    path = Path(str(value))
    return _fits_image(path) if path.name.lower().endswith(_FITS_SUFFIXES + (".fts",)) else _pil_image(path)
