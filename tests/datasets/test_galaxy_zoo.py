"""The galaxy morphology catalogue readers map every source onto the one GZ2 schema.

Each test writes a tiny file in the source's real layout (Hart et al. 2016 CSV
and FITS tables, the GZ2 image mapping, Kaggle solutions, Galaxy10 DECaLS HDF5,
FITS cutouts with GZ keywords), reads it and checks where the numbers land.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from invsolve.datasets.galaxy_zoo import (
    CATALOG_KINDS,
    GALAXY10_CLASSES,
    GALAXY10_MORPHOLOGY,
    catalog_image,
    read_catalog,
    read_fits_cutouts,
    read_galaxy10_decals,
    read_gz2_hart16,
    read_gz2_image_mapping,
    read_kaggle_solutions,
    select_rows,
)
from invsolve.datasets.morphology import MORPHOLOGY

IDS = [587722981736120347, 587722981736579107, 588009366937075765, 587727178986356823]
DUST = MORPHOLOGY.index("dust_lane")


def _hart16_table(n=4):
    """Hart et al. 2016 columns: non-vote columns, then 5 columns per answer (only _debiased is read)."""
    table = Table({"dr7objid": np.array(IDS[:n], dtype=np.int64), "ra": np.linspace(10, 40, n),
                   "dec": np.linspace(-1, 2, n), "sample": ["original"] * n,
                   "gz2_class": ["Sc2m", "Er", "SBb(r)", "Ser"][:n], "total_classifications": np.arange(40, 40 + n)})
    votes = np.zeros((n, 37))
    votes[:, MORPHOLOGY.index("smooth")] = [0.1, 0.9, 0.2, 0.6]
    votes[:, MORPHOLOGY.index("features_or_disk")] = [0.9, 0.1, 0.8, 0.4]
    votes[:, MORPHOLOGY.index("odd.yes")] = [0.8, 0.2, 0.6, 0.1]
    votes[:, MORPHOLOGY.index("odd.no")] = [0.2, 0.8, 0.4, 0.9]
    votes[:, DUST] = [0.7, 0.3, 0.4, 0.9]
    votes[:, MORPHOLOGY.index("merger")] = [0.3, 0.7, 0.6, 0.1]
    votes[:, MORPHOLOGY.index("bar")] = [0.6, np.nan, 0.2, 0.0]
    votes[:, MORPHOLOGY.index("no_bar")] = [0.4, np.nan, 0.8, 1.0]
    for name, value in zip(MORPHOLOGY.names, votes.T):
        column = MORPHOLOGY.hart16_column(name)
        table[column.replace("_debiased", "_weighted_fraction")] = value * 0.9
        table[column] = value
    return table, votes


@pytest.fixture
def hart16_csv(tmp_path):
    table, votes = _hart16_table()
    path = tmp_path / "gz2_hart16.csv"
    table.write(path, format="ascii.csv")
    return path, votes


def _jpeg(path, value, size=16, mode="RGB"):
    Image.new(mode, (size, size), value).save(path)


def _mapping(tmp_path, rows=((IDS[0], "original", 101), (IDS[1], "original", 102), (IDS[2], "original", 103))):
    path = tmp_path / "gz2_filename_mapping.csv"
    path.write_text("objid,sample,asset_id\n" + "".join(f"{o},{s},{a}\n" for o, s, a in rows))
    return path


def _kaggle_csv(tmp_path):
    """Two galaxies given as per-task fractions, written path-weighted as Kaggle published them."""
    fractions = np.zeros((2, 37))
    fractions[0, [MORPHOLOGY.index("smooth"), MORPHOLOGY.index("features_or_disk")]] = [0.2, 0.8]
    fractions[0, [MORPHOLOGY.index("edgeon.yes"), MORPHOLOGY.index("edgeon.no")]] = [0.25, 0.75]
    fractions[0, [MORPHOLOGY.index("bar"), MORPHOLOGY.index("no_bar")]] = [0.5, 0.5]
    fractions[0, [MORPHOLOGY.index("odd.yes"), MORPHOLOGY.index("odd.no")]] = [0.4, 0.6]
    fractions[0, DUST] = 1.0
    fractions[1, [MORPHOLOGY.index("smooth"), MORPHOLOGY.index("odd.no")]] = 1.0
    fractions[1, MORPHOLOGY.index("completely_round")] = 1.0
    weighted = MORPHOLOGY.path_weighted(fractions)
    path = tmp_path / "training_solutions_rev1.csv"
    header = ",".join(["GalaxyID"] + [MORPHOLOGY.kaggle_column(n) for n in MORPHOLOGY.names])
    rows = [",".join([str(gid)] + [repr(float(v)) for v in row]) for gid, row in zip((100008, 100023), weighted)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path, weighted, fractions


def _galaxy10(tmp_path, labels=(0, 1, 2, 5, 9)):
    path = tmp_path / "Galaxy10_DECals.h5"
    images = np.random.default_rng(0).integers(0, 256, (len(labels), 16, 16, 3), dtype=np.uint8)
    with h5py.File(path, "w") as file:
        file["images"] = images
        file["ans"] = np.array(labels, dtype=np.uint8)
        file["ra"] = np.linspace(100, 140, len(labels))
        file["dec"] = np.linspace(-5, 5, len(labels))
        file["redshift"] = np.array([0.05, 0.2, 0.08, 0.12, 0.03][: len(labels)])
        file["pxscale"] = np.full(len(labels), 0.262)
    return path, images


def _cutout(path, keywords, data=None, objid=None, extension=False):
    data = np.arange(64, dtype=np.float32).reshape(8, 8) if data is None else data
    header = fits.Header()
    for key, value in keywords.items():
        header[key] = value
    if objid is not None:
        header["OBJID"] = objid
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(data, header)] if extension else [fits.PrimaryHDU(data, header)]
    fits.HDUList(hdus).writeto(path)
    return path


# -- Hart et al. 2016 --------------------------------------------------------------
def test_hart16_csv_votes_land_on_schema_entries(hart16_csv):
    path, votes = hart16_csv
    table = read_gz2_hart16(path)
    morph = table["morphology"]
    assert morph.shape == (4, 37) and morph.dtype == np.float32
    assert table["id"].dtype == np.int64 and table["id"][0] == IDS[0]
    assert morph[0, MORPHOLOGY.index("dust_lane")] == np.float32(0.7)
    assert morph[3, MORPHOLOGY.index("odd_feature.dust_lane")] == np.float32(0.9)
    assert morph[2, MORPHOLOGY.index("merger")] == np.float32(0.6)
    assert morph[1, MORPHOLOGY.index("bar")] == 0 and morph[1, MORPHOLOGY.index("no_bar")] == 0  # NaN -> 0
    np.testing.assert_allclose(morph, np.nan_to_num(votes).astype(np.float32))
    assert list(table["gz2_class"]) == ["Sc2m", "Er", "SBb(r)", "Ser"]
    assert "ra" in table.colnames and "total_classifications" in table.colnames
    assert not any(c.startswith("t01_") for c in table.colnames)
    assert table.meta["source"] == "hart16" and table.meta["path"] == str(path.resolve())


def test_hart16_fits_table_reads_like_csv(tmp_path, hart16_csv):
    table, _ = _hart16_table()
    path = tmp_path / "gz2_hart16.fits"
    table.write(path)
    from_fits, from_csv = read_gz2_hart16(path), read_gz2_hart16(hart16_csv[0])
    np.testing.assert_array_equal(from_fits["morphology"], from_csv["morphology"])
    np.testing.assert_array_equal(from_fits["id"], IDS)
    assert read_catalog(path).meta["source"] == "hart16"


def test_hart16_missing_debiased_columns_are_named(tmp_path):
    table, _ = _hart16_table()
    table.remove_columns([MORPHOLOGY.hart16_column("dust_lane"), MORPHOLOGY.hart16_column("bar")])
    path = tmp_path / "gz2_partial.csv"
    table.write(path, format="ascii.csv")
    with pytest.raises(ValueError, match=r"gz2_partial\.csv lacks .*t03_bar_a06_bar_debiased.*dust_lane_debiased"):
        read_gz2_hart16(path)


def test_hart16_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_gz2_hart16(tmp_path / "nowhere.csv")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b'\x00\xff"a,b\n\xfe')
    with pytest.raises(ValueError, match="garbage.csv"):
        read_gz2_hart16(garbage)
    other = tmp_path / "table.txt"
    other.write_text("dr7objid\n1\n")
    with pytest.raises(ValueError, match=r"table\.txt: expected a \.csv.*got suffix '\.txt'"):
        read_gz2_hart16(other)
    table, _ = _hart16_table()
    table[MORPHOLOGY.hart16_column("smooth")][0] = 1.5
    high = tmp_path / "high.csv"
    table.write(high, format="ascii.csv")
    with pytest.raises(ValueError, match=r"high\.csv: .*\[0, 1\]"):
        read_gz2_hart16(high)


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_hart16_truncated_fits_table(tmp_path):
    table, _ = _hart16_table()
    path = tmp_path / "gz2_hart16.fits"
    table.write(path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="gz2_hart16.fits"):
        read_gz2_hart16(path)


def test_hart16_image_join_drops_rows_without_files(tmp_path, hart16_csv):
    images = tmp_path / "images"
    images.mkdir()
    _jpeg(images / "101.jpg", (200, 10, 10))
    Image.new("L", (16, 16), 77).save(images / "103.png")
    # IDS[3] is not in the mapping; asset 102 has no file
    table = read_gz2_hart16(hart16_csv[0], mapping=_mapping(tmp_path), images=images)
    assert list(table["id"]) == [IDS[0], IDS[2]]
    assert list(table["asset_id"]) == [101, 103]
    assert table["image"][0] == str((images / "101.jpg").resolve()) and Path(table["image"][1]).name == "103.png"
    assert table.meta["missing_images"] == 2
    assert table["morphology"][0, DUST] == np.float32(0.7)
    rgb, grey = catalog_image(table, 0), catalog_image(table, 1)
    assert rgb.shape == (3, 16, 16) and rgb.dtype == np.float32 and abs(rgb[0].mean() - 200) < 4
    assert grey.shape == (1, 16, 16) and np.all(grey == 77)


def test_hart16_mapping_prefers_the_rows_sample(tmp_path, hart16_csv):
    mapping = _mapping(tmp_path, [(IDS[0], "stripe82", 900), (IDS[0], "original", 101)])
    table = read_gz2_hart16(hart16_csv[0], mapping=mapping)
    assert table["asset_id"].dtype == np.int64 and list(table["asset_id"]) == [101, -1, -1, -1]
    assert "image" not in table.colnames
    with pytest.raises(ValueError, match=r"has no image column; read it with images="):
        catalog_image(table, 0)


def test_hart16_no_image_at_all_says_what_names_were_expected(tmp_path, hart16_csv):
    images = tmp_path / "images"
    images.mkdir()
    _jpeg(images / "587722981736120347.jpg", (1, 2, 3))  # named by objid, not asset_id
    with pytest.raises(FileNotFoundError, match=r"images.*expected files named <asset_id>\.jpg .*such as 101\.jpg"):
        read_gz2_hart16(hart16_csv[0], mapping=_mapping(tmp_path), images=images)
    with pytest.raises(ValueError, match="needs mapping="):
        read_gz2_hart16(hart16_csv[0], images=images)
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        read_gz2_hart16(hart16_csv[0], mapping=_mapping(tmp_path), images=tmp_path / "no_such_folder")


def test_image_mapping_reader(tmp_path):
    table = read_gz2_image_mapping(_mapping(tmp_path))
    assert table.colnames == ["objid", "sample", "asset_id"]
    assert table["objid"].dtype == np.int64 and table["asset_id"].dtype == np.int64
    assert table["objid"][0] == IDS[0] and list(table["asset_id"]) == [101, 102, 103]
    assert table["sample"][1] == "original"
    bad = tmp_path / "bad_mapping.csv"
    bad.write_text("objid,asset\n1,2\n")
    with pytest.raises(ValueError, match=r"bad_mapping\.csv lacks the column\(s\) sample, asset_id"):
        read_gz2_image_mapping(bad)


# -- Kaggle ------------------------------------------------------------------------
def test_kaggle_path_weighted_become_per_task_fractions(tmp_path):
    path, weighted, fractions = _kaggle_csv(tmp_path)
    assert weighted[0, MORPHOLOGY.index("features_or_disk")] == np.float32(0.8)  # Class1.2
    np.testing.assert_allclose(weighted[0, [3, 4]], [0.2, 0.6])  # Class2.1, Class2.2
    table = read_kaggle_solutions(path)
    morph = table["morphology"]
    assert list(table["id"]) == [100008, 100023] and table["id"].dtype == np.int64
    assert morph[0, MORPHOLOGY.index("edgeon.yes")] == pytest.approx(0.25, abs=1e-6)
    assert morph[0, MORPHOLOGY.index("edgeon.no")] == pytest.approx(0.75, abs=1e-6)
    assert morph[0, MORPHOLOGY.index("bar")] == pytest.approx(0.5, abs=1e-6)  # weighted 0.3, reach 0.6
    assert morph[0, DUST] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(morph, fractions, atol=1e-6)
    assert table.meta["source"] == "kaggle" and read_catalog(path).meta["source"] == "kaggle"


def test_kaggle_images_and_errors(tmp_path):
    path, _, _ = _kaggle_csv(tmp_path)
    images = tmp_path / "images_training_rev1"
    images.mkdir()
    _jpeg(images / "100023.jpg", (0, 255, 0))
    table = read_catalog(path, images=images)
    assert list(table["id"]) == [100023] and table.meta["missing_images"] == 1
    image = catalog_image(table, 0)
    assert image.shape == (3, 16, 16) and image[1].mean() > 240 and image[0].mean() < 15
    (images / "100023.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected files named <GalaxyID>\.jpg .*such as 100008\.jpg"):
        read_kaggle_solutions(path, images=images)
    text = path.read_text().replace("Class8.7", "Class8.x")
    (tmp_path / "no_dust.csv").write_text(text)
    with pytest.raises(ValueError, match=r"no_dust\.csv lacks the column\(s\) Class8\.7"):
        read_kaggle_solutions(tmp_path / "no_dust.csv")


# -- Galaxy10 DECaLS ---------------------------------------------------------------
def test_galaxy10_classes_map_to_idealised_tree_paths():
    assert len(GALAXY10_CLASSES) == 10 and GALAXY10_MORPHOLOGY.shape == (10, 37)
    assert GALAXY10_MORPHOLOGY.dtype == np.float32 and not GALAXY10_MORPHOLOGY.flags.writeable
    barred = GALAXY10_MORPHOLOGY[GALAXY10_CLASSES.index("Barred Spiral")]
    assert MORPHOLOGY.describe(barred) == [
        "smooth_or_features.features_or_disk", "edgeon.no", "bar.bar", "spiral.spiral", "bulge_prominence.obvious",
        "odd.no", "arms_winding.medium", "arms_number.2"]
    assert MORPHOLOGY.describe(GALAXY10_MORPHOLOGY[1]) == ["odd.yes", "odd_feature.merger"]
    assert MORPHOLOGY.describe(GALAXY10_MORPHOLOGY[4]) == ["smooth_or_features.smooth", "odd.no",
                                                          "rounded.cigar_shaped"]
    assert GALAXY10_MORPHOLOGY[8, MORPHOLOGY.index("bulge_shape.no_bulge")] == 1
    assert GALAXY10_MORPHOLOGY[9, MORPHOLOGY.index("bulge_shape.rounded")] == 1
    # every task on the path sums to 1, every task off it to 0 (task 01 of classes 0, 1 is not stated)
    for label, vector in enumerate(GALAXY10_MORPHOLOGY):
        for task in MORPHOLOGY.tasks:
            parent = MORPHOLOGY.parents[task]
            reached = 1.0 if parent is None else vector[MORPHOLOGY.index(parent)]
            if label < 2 and task == "smooth_or_features":
                reached = 0.0
            assert vector[MORPHOLOGY.task_slice(task)].sum() == reached, (label, task)


def test_galaxy10_reader_leaves_images_on_disk(tmp_path, monkeypatch):
    path, images = _galaxy10(tmp_path)
    read = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda self, key: read.append(self.name) or original(self, key))
    table = read_galaxy10_decals(path)
    assert "/images" not in read and "/ans" in read
    monkeypatch.undo()
    assert list(table["label"]) == [0, 1, 2, 5, 9] and table["image"].dtype == np.int64
    assert list(table["class_name"]) == ["Disturbed", "Merging", "Round Smooth", "Barred Spiral", "Edge-on with Bulge"]
    np.testing.assert_array_equal(table["morphology"], GALAXY10_MORPHOLOGY[[0, 1, 2, 5, 9]])
    assert table["morphology"][3, MORPHOLOGY.index("bar")] == 1 and table["morphology"][1, MORPHOLOGY.index("merger")]
    assert table["redshift"][1] == 0.2 and table["pxscale"][0] == 0.262
    assert table.meta["source"] == "galaxy10" and read_catalog(path).meta["source"] == "galaxy10"
    subset = table[select_rows(table, "redshift < 0.1")]  # rows 0, 2, 4
    image = catalog_image(subset, 2)
    assert image.shape == (3, 16, 16) and image.dtype == np.float32
    np.testing.assert_array_equal(image, images[4].transpose(2, 0, 1).astype(np.float32))


def test_galaxy10_errors(tmp_path):
    path, _ = _galaxy10(tmp_path, labels=(0, 12, 3))
    with pytest.raises(ValueError, match=r"Galaxy10_DECals\.h5: labels must be 0-9, got \[12\]"):
        read_galaxy10_decals(path)
    no_ans = tmp_path / "no_ans.h5"
    with h5py.File(no_ans, "w") as file:
        file["images"] = np.zeros((1, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"no_ans\.h5: expected a dataset 'ans'.*\['images'\]"):
        read_galaxy10_decals(no_ans)
    with pytest.raises(ValueError, match=r"no_ans\.h5: cannot tell its kind, found an HDF5 file"):
        read_catalog(no_ans)
    good, _ = _galaxy10(tmp_path / "", labels=(2, 3))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"truncated\.h5"):
        read_galaxy10_decals(truncated)
    short = tmp_path / "short.h5"
    with h5py.File(short, "w") as file:
        file["ans"], file["ra"] = np.zeros(3, np.uint8), np.zeros(2)
    with pytest.raises(ValueError, match=r"short\.h5: datasets \{'ra': 2\} .*as 'ans' \(3\)"):
        read_galaxy10_decals(short)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_galaxy10_decals(tmp_path / "missing.h5")


# -- FITS cutouts ------------------------------------------------------------------
def test_fits_cutouts_folder_header_keywords(tmp_path):
    folder = tmp_path / "cutouts"
    (folder / "deep").mkdir(parents=True)
    _cutout(folder / "a.fits", {MORPHOLOGY.fits_keyword("dust_lane"): 0.7, "GZ06A14": 0.9}, objid="J1")
    cube = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    _cutout(folder / "deep" / "b.fit", {"GZ01A01": 1.0}, data=cube, extension=True)
    _cutout(tmp_path / "c.fits", {"GZ03A06": 0.55, "GZ01A02": 1.0}, objid=77)
    with open(tmp_path / "c.fits", "rb") as source, gzip.open(folder / "c.fits.gz", "wb") as target:
        target.write(source.read())
    (folder / "notes.txt").write_text("not a cutout")
    table = read_fits_cutouts(folder)
    assert [Path(p).name for p in table["image"]] == ["a.fits", "c.fits.gz", "b.fit"]
    assert list(table["id"]) == ["J1", "77", "b"]  # OBJID, else the stem; mixed -> str
    morph = table["morphology"]
    assert morph[0, DUST] == np.float32(0.7) and morph[0, MORPHOLOGY.index("odd.yes")] == np.float32(0.9)
    assert morph[0].sum() == pytest.approx(1.6) and morph[2, MORPHOLOGY.index("smooth")] == 1
    assert morph[1, MORPHOLOGY.index("bar")] == np.float32(0.55)
    assert read_catalog(folder).meta["source"] == "fits"
    one = read_fits_cutouts(tmp_path / "c.fits")
    assert one["id"].dtype == np.int64 and one["id"][0] == 77
    flat, volume = catalog_image(table, 1), catalog_image(table, 2)
    assert flat.shape == (1, 8, 8) and flat[0, 1, 2] == 10
    np.testing.assert_array_equal(volume, cube)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
def test_fits_cutout_errors(tmp_path):
    plain = _cutout(tmp_path / "plain.fits", {"EXPTIME": 30.0})
    with pytest.raises(ValueError, match=r"plain\.fits: .*no GZ2 vote-fraction keyword.*GZ08A38"):
        read_fits_cutouts(plain)
    with pytest.raises(ValueError, match=r"plain\.fits.*hart16.*kaggle.*galaxy10.*GZ08A38"):
        read_catalog(plain)
    truncated = _cutout(tmp_path / "cut.fits", {"GZ08A38": 0.5}, data=np.zeros((64, 64), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:4000])
    with pytest.raises(ValueError, match=r"cut\.fits"):
        read_fits_cutouts(truncated)
    bad = _cutout(tmp_path / "bad.fits", {"GZ08A38": 1.5})
    with pytest.raises(ValueError, match=r"bad\.fits: keyword GZ08A38 must be a vote fraction in \[0, 1\], got 1\.5"):
        read_fits_cutouts(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty holds no \*\.fits"):
        read_fits_cutouts(empty)


# -- read_catalog ------------------------------------------------------------------
def test_read_catalog_dispatch_errors(tmp_path, hart16_csv):
    assert CATALOG_KINDS == ("hart16", "kaggle", "galaxy10", "fits")
    assert read_catalog(hart16_csv[0], kind="hart16").meta["source"] == "hart16"
    assert read_catalog(hart16_csv[0]).meta["source"] == "hart16"
    with pytest.raises(ValueError, match=r"kind must be 'auto' or one of hart16, kaggle, galaxy10, fits, got 'gz3'"):
        read_catalog(hart16_csv[0], kind="gz3")
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        read_catalog(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match=r"image mapping: pass it as mapping="):
        read_catalog(_mapping(tmp_path))
    odd = tmp_path / "odd.csv"
    odd.write_text("name,value\na,1\n")
    with pytest.raises(ValueError, match=r"odd\.csv: cannot tell its kind, found a text file with columns name, value"):
        read_catalog(odd)
    path, _ = _galaxy10(tmp_path)
    with pytest.raises(ValueError, match="images= applies to kinds 'hart16' and 'kaggle' only"):
        read_catalog(path, images=tmp_path)
    with pytest.raises(ValueError, match="mapping= applies to kind 'hart16' only"):
        read_catalog(path, kind="galaxy10", mapping=tmp_path / "m.csv")


# -- select_rows -------------------------------------------------------------------
@pytest.fixture
def hart16_table(hart16_csv):
    return read_gz2_hart16(hart16_csv[0])


# dust_lane 0.7 0.3 0.4 0.9; odd.yes 0.8 0.2 0.6 0.1; merger 0.3 0.7 0.6 0.1; bar 0.6 0 0.2 0; ra 10 20 30 40
@pytest.mark.parametrize("query, expected", [
    ("dust_lane>0.5", [1, 0, 0, 1]),
    ("odd.yes >= 0.5 and dust_lane > 0.5", [1, 0, 0, 0]),
    ("odd_feature.dust_lane>0.5&ra>15", [0, 0, 0, 1]),
    ("merger > 0.5 or dust_lane > 0.8 and ra < 20", [0, 1, 1, 0]),  # and binds tighter: no row 3
    ("(merger > 0.5 or dust_lane > 0.8) and ra > 20", [0, 0, 1, 1]),
    ("bar==0 | bar >= 0.6", [1, 1, 0, 1]),
    ("total_classifications != 41 && dec<=1", [1, 0, 1, 0]),
    ("id == 587722981736579107", [0, 1, 0, 0]),  # exact on int64 ids
    ("ra > 1e1 AND merger < .35", [0, 0, 0, 1]),
    ("id == 587722981736120348 or id != 587722981736120347 and ra < 25", [0, 1, 0, 0]),  # no float rounding
])
def test_select_rows_compound_queries(hart16_table, query, expected):
    rows = select_rows(hart16_table, query)
    assert rows.dtype == bool and rows.shape == (4,)
    assert rows.tolist() == [bool(e) for e in expected]


def test_select_rows_masked_and_nan_values_match_nothing():
    from astropy.table import MaskedColumn

    table = Table({"x": MaskedColumn([1.0, 5.0, 3.0, np.nan], mask=[False, True, False, False])})
    assert select_rows(table, "x > 0").tolist() == [True, False, True, False]
    assert select_rows(table, "x != 3").tolist() == [True, False, False, False]  # not even != for NaN


def test_select_rows_errors(hart16_table):
    unknown = r"unknown name 'spirality'.*\(id, ra, dec, total_classifications\).*dust_lane"
    with pytest.raises(ValueError, match=unknown):
        select_rows(hart16_table, "spirality > 0.5")
    with pytest.raises(ValueError, match=r"'yes' is ambiguous"):
        select_rows(hart16_table, "yes > 0.5")
    with pytest.raises(ValueError, match=r"column 'gz2_class' is not a numeric"):
        select_rows(hart16_table, "gz2_class > 1")
    with pytest.raises(ValueError, match=r"malformed query 'dust_lane > 0.5 and'.*expected a column .* found the end"):
        select_rows(hart16_table, "dust_lane > 0.5 and")
    with pytest.raises(ValueError, match=r"'dust_lane 0.5'.*expected a comparison operator after 'dust_lane'"):
        select_rows(hart16_table, "dust_lane 0.5")
    with pytest.raises(ValueError, match=r"unexpected character '\$' at character 11 \('dust_lane <here>\$"):
        select_rows(hart16_table, "dust_lane $ 0.5")
    with pytest.raises(ValueError, match=r"expected a number after 'bar' >, found 'merger'"):
        select_rows(hart16_table, "bar > merger")
    with pytest.raises(ValueError, match=r"expected 'and', 'or' or the end, found '\)'"):
        select_rows(hart16_table, "bar > 0)")
    with pytest.raises(ValueError, match="malformed query"):
        select_rows(hart16_table, "__import__('os').system('true')")
    with pytest.raises(TypeError, match="astropy.table.Table"):
        select_rows({"bar": [1]}, "bar > 0")
    with pytest.raises(ValueError, match="has no 'morphology' column"):
        select_rows(Table({"x": [1.0]}), "bar > 0")


# -- catalog_image errors ----------------------------------------------------------
def test_catalog_image_errors(tmp_path, hart16_csv):
    images = tmp_path / "images"
    images.mkdir()
    (images / "101.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _jpeg(images / "102.jpg", (5, 5, 5))
    table = read_gz2_hart16(hart16_csv[0], mapping=_mapping(tmp_path), images=images)
    with pytest.raises(ValueError, match=r"101\.jpg: cannot be read as an image"):
        catalog_image(table, 0)
    with pytest.raises(ValueError, match="row 5 is out of range for a table of 2 rows"):
        catalog_image(table, 5)
    with pytest.raises(TypeError, match="row must be an integer"):
        catalog_image(table, "0")
    (images / "102.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"102\.jpg does not exist"):
        catalog_image(table, 1)
