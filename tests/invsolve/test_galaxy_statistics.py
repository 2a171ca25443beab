"""Tests of invsolve.galaxy.statistics: statmorph morphology, distribution comparison, memorisation check.

The galaxies are Sérsic profiles (astropy's Sersic2D, 4× oversampled on a 64 × 64
grid), convolved with a Gaussian PSF of σ = 1 px and given unit Gaussian noise
from fixed seeds.  statmorph takes ~0.5 s per stamp with a PSF, so the three
populations of 8 stamps are measured once per module.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch

from invsolve.galaxy import statistics as gs
from invsolve.galaxy.statistics import compare_statistics, morphology_statistics, nearest_training_distance

SIZE = 64
PSF_SIGMA = 1.0


def _psf() -> np.ndarray:
    half = 5
    grid = np.arange(-half, half + 1)
    kernel = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * PSF_SIGMA**2))
    return kernel / kernel.sum()


def _sersic_stamps(n: float, count: int, seed: int, oversample: int = 4) -> np.ndarray:
    """``count`` noisy PSF-convolved Sérsic galaxies of index ``n``: random size, shape, flux, small offsets."""
    from astropy.modeling.models import Sersic2D
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    fine = (np.arange(SIZE * oversample) + 0.5) / oversample - 0.5
    x, y = np.meshgrid(fine, fine)
    stamps = []
    for _ in range(count):
        r_eff, ellip, theta = rng.uniform(3.5, 6.0), rng.uniform(0.0, 0.5), rng.uniform(0.0, np.pi)
        flux = rng.uniform(3000.0, 8000.0)
        x0, y0 = (SIZE - 1) / 2 + rng.uniform(-1.0, 1.0, 2)
        model = Sersic2D(amplitude=1.0, r_eff=r_eff, n=n, x_0=x0, y_0=y0, ellip=ellip, theta=theta)
        image = model(x, y).reshape(SIZE, oversample, SIZE, oversample).mean(axis=(1, 3))
        image = fftconvolve(image * flux / image.sum(), _psf(), mode="same")
        stamps.append(image + rng.normal(0.0, 1.0, image.shape))
    return np.stack(stamps)


def _gaussian(amplitude, x0, y0, sx, sy):
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    return amplitude * np.exp(-((x - x0) ** 2) / (2 * sx**2) - (y - y0) ** 2 / (2 * sy**2))


@pytest.fixture(scope="module")
def tools():
    pytest.importorskip("statmorph")
    pytest.importorskip("photutils")


@pytest.fixture(scope="module")
def populations(tools):
    """Measured tables: disks (n = 1, two independent draws) and de Vaucouleurs profiles (n = 4)."""
    return {
        "disk": morphology_statistics(_sersic_stamps(1.0, 8, seed=1), psf=_psf()),
        "devauc": morphology_statistics(_sersic_stamps(4.0, 8, seed=2), psf=_psf()),
        "disk_again": morphology_statistics(_sersic_stamps(1.0, 8, seed=3), psf=_psf()),
    }


# ----------------------------------------------------------------------------- morphology_statistics


def test_table_layout(populations):
    table = populations["disk"]
    assert table.colnames == ["gini", "m20", "concentration", "asymmetry", "smoothness", "sersic_n", "flag", "flag_sersic"]
    assert len(table) == 8
    for column in gs.MORPHOLOGY_COLUMNS:
        assert table[column].dtype == np.float64
    assert table["flag"].dtype.kind == "i" and table["flag_sersic"].dtype.kind == "i"


def test_devaucouleurs_is_more_concentrated_than_disk(populations):
    disk, devauc = populations["disk"], populations["devauc"]
    for table in (disk, devauc):
        assert list(table["flag"]) == [0] * 8 and list(table["flag_sersic"]) == [0] * 8
    # the two populations do not overlap in C or G; M20 is lower (more negative) for the bulge
    assert devauc["concentration"].min() > disk["concentration"].max() + 0.2
    assert devauc["gini"].min() > disk["gini"].max() + 0.03
    assert np.median(devauc["m20"]) < np.median(disk["m20"]) - 0.1
    # the fitted Sersic index is near the truth (n = 4 a little low: its wings sink into the noise
    # and the 64-px stamp; without the PSF it would come out near 1.6)
    assert np.all((disk["sersic_n"] > 0.7) & (disk["sersic_n"] < 1.5))
    assert np.all((devauc["sersic_n"] > 2.5) & (devauc["sersic_n"] < 6.0))
    # values in their physical ranges
    for table in (disk, devauc):
        assert np.all((table["gini"] > 0.3) & (table["gini"] < 0.8))
        assert np.all(np.abs(table["asymmetry"]) < 0.1)


def test_asymmetric_galaxy_has_larger_asymmetry(tools):
    rng = np.random.default_rng(5)
    symmetric = _gaussian(100.0, 31.5, 31.5, 4.0, 3.0)
    # a second, fainter blob 9 px away, overlapping the first so that both form one segment
    lopsided = _gaussian(100.0, 29.0, 31.5, 4.0, 3.0) + _gaussian(60.0, 38.0, 33.0, 3.0, 3.0)
    images = np.stack([symmetric, lopsided]) + rng.normal(0.0, 1.0, (2, SIZE, SIZE))
    table = morphology_statistics(images)
    assert list(table["flag"]) == [0, 0]
    assert abs(table["asymmetry"][0]) < 0.05
    assert table["asymmetry"][1] > table["asymmetry"][0] + 0.1


def test_pure_noise_gives_no_detection_without_raising(tools):
    rng = np.random.default_rng(6)
    table = morphology_statistics(rng.normal(0.0, 1.0, (2, SIZE, SIZE)))
    assert list(table["flag"]) == [-1, -1] and list(table["flag_sersic"]) == [-1, -1]
    for column in gs.MORPHOLOGY_COLUMNS:
        assert np.all(np.isnan(table[column]))
    # an all-zero image has no background rms: unmeasured as well
    assert morphology_statistics(np.zeros((1, SIZE, SIZE)))["flag"][0] == -1


def test_failure_in_one_image_does_not_stop_the_others(tools, monkeypatch):
    import statmorph

    original, calls = statmorph.SourceMorphology, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("simulated statmorph failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(statmorph, "SourceMorphology", flaky)
    rng = np.random.default_rng(7)
    galaxy = _gaussian(100.0, 31.5, 31.5, 4.0, 3.0)
    table = morphology_statistics(np.stack([galaxy, galaxy]) + rng.normal(0.0, 1.0, (2, SIZE, SIZE)))
    assert len(calls) == 2
    assert table["flag"][0] == -1 and np.isnan(table["gini"][0])
    assert table["flag"][1] == 0 and 0.3 < table["gini"][1] < 0.7


def test_channel_layouts_and_torch_input(tools):
    rng = np.random.default_rng(8)
    # three differently shaped channels (the statistics do not change under a flux scale, so the
    # channels must differ in shape for the test to tell their mean from any one of them)
    channels = np.stack([
        _gaussian(80.0, 31.5, 31.5, 5.0, 3.0),
        _gaussian(150.0, 31.5, 31.5, 2.0, 2.0),
        _gaussian(40.0, 29.5, 31.5, 8.0, 6.0),
    ]) + rng.normal(0.0, 1.0, (3, SIZE, SIZE))
    mean = channels.mean(axis=0)
    plain, rgb, first = (morphology_statistics(x[None]) for x in (mean, channels, channels[0]))
    assert plain["flag"][0] == 0 and first["flag"][0] == 0
    single = morphology_statistics(torch.from_numpy(mean)[None, None].float())
    for column in ("gini", "m20", "concentration", "asymmetry"):
        assert rgb[column][0] == pytest.approx(plain[column][0], rel=1e-9)
        assert single[column][0] == pytest.approx(plain[column][0], rel=1e-4)
    assert abs(first["concentration"][0] - plain["concentration"][0]) > 0.1


def test_progress_bar(tools, capsys):
    morphology_statistics(np.zeros((2, SIZE, SIZE)), progress=True)
    assert "statmorph" in capsys.readouterr().err


def test_central_segment_is_chosen():
    segmap = np.zeros((9, 9), dtype=int)
    segmap[0:3, 0:3] = 1  # a large neighbour in the corner
    segmap[4, 5] = 2  # nearest the centre (4, 4)
    assert gs._central_label(segmap) == 2
    segmap[4, 4] = 3
    assert gs._central_label(segmap) == 3


def test_missing_statmorph_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "statmorph", None)
    with pytest.raises(ImportError, match=r'pip install "invsolve\[galaxy\]"'):
        morphology_statistics(np.zeros((1, 8, 8)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((8, 8))}, ValueError, r"images.*at least 3 dimensions.*\(8, 8\)"),
        ({"images": np.zeros((1, 2, 8, 8))}, ValueError, r"images.*\(N, H, W\).*\(1, 2, 8, 8\)"),
        ({"images": np.zeros((1, 1, 1, 8, 8))}, ValueError, r"images.*\(N, H, W\)"),
        ({"images": np.zeros((0, 8, 8))}, ValueError, r"images must not be empty.*\(0, 8, 8\)"),
        ({"images": np.full((1, 8, 8), np.nan)}, ValueError, r"images must be finite"),
        ({"images": torch.full((1, 8, 8), math.inf)}, ValueError, r"images must be finite"),
        ({"images": [[[0.0]]]}, TypeError, r"images must be a numpy.ndarray or torch.Tensor, got list"),
        ({"images": np.zeros((1, 8, 8), dtype=complex)}, TypeError, r"images must hold real numbers"),
        ({"gain": 0.0}, ValueError, r"gain must be a finite number > 0, got 0.0"),
        ({"gain": -1.0}, ValueError, r"gain must be a finite number > 0"),
        ({"gain": None}, TypeError, r"gain must be"),
        ({"snr_threshold": 0}, ValueError, r"snr_threshold must be a finite number > 0"),
        ({"npixels": 0}, ValueError, r"npixels must be an int >= 1, got 0"),
        ({"npixels": 2.5}, TypeError, r"npixels must be an int"),
        ({"psf": np.zeros((3, 3))}, ValueError, r"psf must be a 2-D array with a positive sum"),
        ({"psf": np.ones(3)}, ValueError, r"psf must have at least 2 dimensions"),
    ],
)
def test_morphology_input_errors(kwargs, error, match):
    arguments = {"images": np.zeros((1, 8, 8))} | kwargs
    images = arguments.pop("images")
    with pytest.raises(error, match=match):
        morphology_statistics(images, **arguments)


# ----------------------------------------------------------------------------- compare_statistics


def test_compare_separates_different_populations_only(populations):
    different = compare_statistics(populations["disk"], populations["devauc"])
    same = compare_statistics(populations["disk"], populations["disk_again"])
    json.dumps(different), json.dumps(same)
    assert set(different) == {"gini", "m20", "concentration", "asymmetry", "sersic_n"}
    for column in ("gini", "m20", "concentration", "sersic_n"):
        assert different[column]["ks_statistic"] == 1.0
        assert different[column]["ks_pvalue"] < 1e-3 and different[column]["ad_pvalue"] <= 0.001
        assert different[column]["n_real"] == 8 and different[column]["n_generated"] == 8
        assert different[column]["reason"] is None
    assert different["sersic_n"]["median_generated"] > different["sersic_n"]["median_real"] + 1.5
    for column, entry in same.items():
        assert entry["ks_pvalue"] > 0.2, column
        assert entry["ad_pvalue"] > 0.1, column  # anderson_ksamp caps p at 0.25


def test_compare_filters_flags_and_reports_too_few_rows():
    real = {
        "gini": np.array([0.4, 0.5, 0.45, np.nan, 0.9]),
        "sersic_n": np.array([1.0, 1.2, 0.9, 1.1, 1.0]),
        "flag": np.array([0, 0, 0, 0, 2]),
        "flag_sersic": np.array([0, 1, 0, 0, 0]),
    }
    generated = {"gini": np.array([0.6, 0.7]), "sersic_n": np.array([4.0, 3.0]),
                 "flag": np.array([0, 1]), "flag_sersic": np.array([0, 0])}
    result = compare_statistics(real, generated, columns=("gini", "sersic_n"))
    json.dumps(result)
    # gini: NaN and flag 2 dropped -> 3 real; the generated row of flag 1 dropped -> 1
    assert result["gini"]["n_real"] == 3 and result["gini"]["n_generated"] == 1
    assert result["gini"]["ks_pvalue"] is None and result["gini"]["ad_pvalue"] is None
    assert "fewer than 2" in result["gini"]["reason"]
    assert result["gini"]["median_real"] == pytest.approx(0.45)
    # sersic_n also drops flag_sersic != 0: real rows 0, 2, 3
    assert result["sersic_n"]["n_real"] == 3
    assert result["sersic_n"]["median_real"] == pytest.approx(1.0)
    everything = compare_statistics(real, generated, columns="gini", good_flags_only=False)
    assert everything["gini"]["n_real"] == 4 and everything["gini"]["n_generated"] == 2
    assert everything["gini"]["ks_pvalue"] is not None and everything["gini"]["reason"] is None


def test_compare_identical_constant_values_keeps_ks_and_explains_ad():
    table = {"gini": np.full(4, 0.5), "flag": np.zeros(4, dtype=int)}
    entry = compare_statistics(table, table, columns=["gini"])["gini"]
    assert entry["ks_statistic"] == 0.0 and entry["ks_pvalue"] == 1.0
    assert entry["ad_pvalue"] is None and "anderson_ksamp" in entry["reason"]


def test_compare_input_errors():
    table = {"gini": np.ones(3), "flag": np.zeros(3)}
    with pytest.raises(ValueError, match=r"generated must have a column 'm20', got columns \['gini', 'flag'\]"):
        compare_statistics(table | {"m20": np.ones(3)}, table, columns=["m20"])
    with pytest.raises(ValueError, match=r"real must have a column 'flag'"):
        compare_statistics({"gini": np.ones(3)}, table, columns=["gini"])
    with pytest.raises(TypeError, match=r"real must be a table indexable by column name, got int"):
        compare_statistics(3, table, columns=["gini"])
    with pytest.raises(TypeError, match=r"columns must be a non-empty sequence"):
        compare_statistics(table, table, columns=[])


# ----------------------------------------------------------------------------- nearest_training_distance


def _reference_distances(generated: np.ndarray, training: np.ndarray) -> np.ndarray:
    """Brute-force distances between standardised, flattened images, in numpy: (N, M)."""

    def standardise(x):
        x = x.reshape(len(x), -1) - x.reshape(len(x), -1).mean(axis=1, keepdims=True)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    g, t = standardise(generated), standardise(training)
    return np.sqrt(((g[:, None, :] - t[None, :, :]) ** 2).sum(-1))


def _reference_nearest(generated: np.ndarray, training: np.ndarray, exclude_self: bool):
    """Brute-force nearest-neighbour distances and indices."""
    d = _reference_distances(generated, training)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1), d.argmin(axis=1)


def test_nearest_training_distance_finds_copies_but_not_new_images():
    rng = np.random.default_rng(9)
    training = rng.normal(size=(20, 1, 12, 12))
    new = rng.normal(size=(3, 1, 12, 12))
    generated = np.concatenate([training[3:4], 2.5 * training[7:8] + 10.0, new])
    result = nearest_training_distance(generated, training)
    json.dumps(result["summary"])
    assert result["distance"].shape == (5,) and result["nearest_index"].dtype == np.int64
    assert result["distance"][0] < 1e-6 and result["nearest_index"][0] == 3
    assert result["distance"][1] < 1e-6 and result["nearest_index"][1] == 7
    assert result["near_duplicates"] == 2 == result["summary"]["near_duplicates"]
    # independent noise images are about as far from the training set as the training images from each other
    assert np.all(result["distance"][2:] > result["duplicate_threshold"])
    assert np.all(result["distance"][2:] > 1.0)
    assert result["duplicate_threshold"] == pytest.approx(np.percentile(result["training_nn_distance"], 1.0))
    # self-matches are excluded: every training image is far from its nearest other one
    assert result["training_nn_distance"].shape == (20,)
    assert np.all(result["training_nn_distance"] > 1.0)
    assert np.all((result["distance"] >= 0) & (result["distance"] <= 2))


def test_nearest_training_distance_matches_brute_force_across_batches():
    rng = np.random.default_rng(10)
    training = rng.normal(size=(11, 6, 5)) + np.linspace(0, 3, 30).reshape(6, 5)  # correlated images
    training[9] = 3.0 * training[2] - 1.0  # a duplicate pair inside the training set
    generated = rng.normal(size=(7, 6, 5)) + np.linspace(0, 3, 30).reshape(6, 5)
    want_d, want_i = _reference_nearest(generated, training, exclude_self=False)
    want_nn, _ = _reference_nearest(training, training, exclude_self=True)
    for batch_size in (1, 3, 4, 256):
        result = nearest_training_distance(torch.from_numpy(generated), training, batch_size=batch_size)
        np.testing.assert_allclose(result["distance"], want_d, atol=1e-7)
        # training images 2 and 9 tie as neighbours: check that the index found is at the nearest distance
        found = _reference_distances(generated, training)[np.arange(7), result["nearest_index"]]
        np.testing.assert_allclose(found, want_d, atol=1e-7)
        untied = ~np.isin(want_i, (2, 9))
        np.testing.assert_array_equal(result["nearest_index"][untied], want_i[untied])
        np.testing.assert_allclose(result["training_nn_distance"], want_nn, atol=1e-7)
    # the duplicate pair are each other's nearest neighbours at distance 0; the threshold stays above 0
    assert result["training_nn_distance"][2] < 1e-6 and result["training_nn_distance"][9] < 1e-6
    assert result["duplicate_threshold"] >= 1e-6


def test_duplicate_threshold_override_and_constant_images():
    rng = np.random.default_rng(11)
    training = rng.normal(size=(6, 8, 8))
    generated = np.concatenate([training[:1] + 0.3 * rng.normal(size=(1, 8, 8)), np.zeros((1, 8, 8))])
    strict = nearest_training_distance(generated, training, duplicate_threshold=0.1)
    medium = nearest_training_distance(generated, training, duplicate_threshold=0.5)
    assert 0.1 < strict["distance"][0] < 0.5  # the noisy copy: correlation about 0.96
    assert strict["near_duplicates"] == 0 and strict["duplicate_threshold"] == 0.1
    assert medium["near_duplicates"] == 1 and medium["summary"]["near_duplicates"] == 1
    assert medium["summary"]["chance_fraction"] == pytest.approx(np.mean(medium["training_nn_distance"] < 0.5))
    # a constant image is the zero vector: at distance 1 from every non-constant image
    assert strict["distance"][1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("generated", "training", "kwargs", "error", "match"),
    [
        (np.zeros((2, 4, 4)), np.zeros((3, 4, 5)), {}, ValueError, r"same per-image shape.*\(2, 4, 4\).*\(3, 4, 5\)"),
        (np.zeros((2, 4, 4)), np.zeros((1, 4, 4)), {}, ValueError, r"training must hold at least 2 images"),
        (np.zeros(4), np.zeros((3, 4)), {}, ValueError, r"generated must have at least 2 dimensions"),
        (np.zeros((0, 4)), np.zeros((3, 4)), {}, ValueError, r"generated must not be empty"),
        (np.zeros((2, 4)), np.full((3, 4), np.nan), {}, ValueError, r"training must be finite"),
        ([1.0, 2.0], np.zeros((3, 2)), {}, TypeError, r"generated must be a numpy.ndarray or torch.Tensor"),
        (np.zeros((2, 4)), np.zeros((3, 4)), {"batch_size": 0}, ValueError, r"batch_size must be an int >= 1"),
        (np.zeros((2, 4)), np.zeros((3, 4)), {"duplicate_threshold": -0.1}, ValueError, r"duplicate_threshold must"),
    ],
)
def test_nearest_training_distance_input_errors(generated, training, kwargs, error, match):
    with pytest.raises(error, match=match):
        nearest_training_distance(generated, training, **kwargs)
