"""The synthetic galaxy world: classes, vote fractions, both renderers, the conditional source."""

import json

import numpy as np
import pytest
import torch

from invsolve.datasets import training_dataset
from invsolve.datasets.galaxy_world import (
    DEFAULT_CLASS_FREQUENCIES,
    PIXEL_SCALE,
    _disk_plane,
    GALAXY_CLASSES,
    class_frequencies,
    galaxy_world,
    morphology_of,
    random_galaxy,
    render_galaxy,
)
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.datasets.training import augment_image


def test_the_schema_names_and_columns():
    assert len(MORPHOLOGY) == 37 and len(MORPHOLOGY.tasks) == 11
    assert MORPHOLOGY.hart16_column("dust_lane") == "t08_odd_feature_a38_dust_lane_debiased"
    assert MORPHOLOGY.hart16_column("edgeon.yes") == "t02_edgeon_a04_yes_debiased"
    assert MORPHOLOGY.kaggle_column("smooth") == "Class1.1" and MORPHOLOGY.kaggle_column("dust_lane") == "Class8.7"
    assert MORPHOLOGY.kaggle_column("arms_number.cant_tell") == "Class11.6"
    assert MORPHOLOGY.fits_keyword("merger") == "GZ08A24"
    with pytest.raises(ValueError, match="'yes' is ambiguous: write one of edgeon.yes, odd.yes"):
        MORPHOLOGY.index("yes")
    with pytest.raises(ValueError, match="unknown morphology answer 'dustlane'"):
        MORPHOLOGY.index("dustlane")


def test_path_weighting_round_trips_and_follows_the_tree():
    fractions = MORPHOLOGY.vector({"features_or_disk": 0.8, "smooth": 0.2, "edgeon.no": 0.5, "edgeon.yes": 0.5,
                                   "bar": 0.4, "no_bar": 0.6, "odd.no": 1.0})
    weighted = MORPHOLOGY.path_weighted(fractions)
    assert weighted[MORPHOLOGY.index("bar")] == pytest.approx(0.8 * 0.5 * 0.4)
    assert weighted[MORPHOLOGY.index("odd.no")] == pytest.approx(1.0)
    np.testing.assert_allclose(MORPHOLOGY.from_path_weighted(weighted), fractions, atol=1e-6)


def test_each_class_gets_its_votes():
    for name in GALAXY_CLASSES:
        votes = morphology_of(random_galaxy(7, name))
        for task in MORPHOLOGY.tasks:  # every task answered sums to 1 or is unreached
            total = votes[MORPHOLOGY.task_slice(task)].sum()
            assert total == pytest.approx(1.0, abs=1e-5) or total == 0.0
        top = set(MORPHOLOGY.describe(votes))
        expected = {"smooth_round": "rounded.completely_round", "smooth_cigar": "rounded.cigar_shaped",
                    "edge_on": "edgeon.yes", "spiral": "spiral.spiral", "barred_spiral": "bar.bar",
                    "ring": "odd_feature.ring", "merger": "odd_feature.merger", "dust_lane": "odd_feature.dust_lane"}
        assert expected[name] in top, (name, top)


def test_class_frequencies_are_honoured_and_checked():
    labels = [random_galaxy(seed).galaxy_class for seed in range(2000)]
    share = labels.count("dust_lane") / len(labels)
    assert abs(share - DEFAULT_CLASS_FREQUENCIES["dust_lane"]) < 0.012
    only = {random_galaxy(seed, frequencies={"merger": 1.0}).galaxy_class for seed in range(20)}
    assert only == {"merger"}
    with pytest.raises(ValueError, match=r"unknown galaxy class\(es\) \['elliptical'\]"):
        class_frequencies({"elliptical": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        class_frequencies({"merger": 0.0})


def test_renderers_agree_and_the_stamp_is_peak_normalised():
    pytest.importorskip("galsim")
    for name in ("spiral", "dust_lane", "merger"):
        parameters = random_galaxy(3, name)
        with_galsim = render_galaxy(parameters, 48, renderer="galsim", noise=False)
        with_astropy = render_galaxy(parameters, 48, renderer="astropy", noise=False)
        assert with_galsim.shape == (1, 48, 48) and with_galsim.dtype == np.float32
        assert with_galsim.max() == pytest.approx(1.0) and with_astropy.max() == pytest.approx(1.0)
        # the same galaxy: the light profiles agree to within 12 % of the total flux (summed absolute difference)
        difference = np.abs(with_galsim - with_astropy).sum() / with_galsim.sum()
        assert difference < 0.12, (name, difference)


def test_dust_lane_absorbs_and_noise_is_seeded():
    parameters = random_galaxy(5, "dust_lane")
    clean = render_galaxy(parameters, 48, renderer="astropy", noise=False)
    no_dust = render_galaxy(type(parameters)(**{**parameters.to_config(), "dust_opacity": 0.0}), 48,
                            renderer="astropy", noise=False)
    _, across, _, _ = _disk_plane(parameters, 48, PIXEL_SCALE)  # arcsec from the major axis
    lane = np.abs(across) < parameters.dust_width

    def share_in_lane(image):
        return image[0][lane].sum() / image.sum()

    assert share_in_lane(clean) < 0.8 * share_in_lane(no_dust)
    noisy = render_galaxy(parameters, 48, renderer="astropy", seed=1)
    assert np.array_equal(noisy, render_galaxy(parameters, 48, renderer="astropy", seed=1))
    assert np.std(noisy - clean) == pytest.approx(parameters.noise, rel=0.1)


def test_galaxy_world_arrays_and_errors():
    images, morphology, labels = galaxy_world(4, size=32, seed=10, renderer="astropy")
    assert images.shape == (4, 1, 32, 32) and morphology.shape == (4, 37) and labels.dtype == np.int64
    assert [GALAXY_CLASSES[i] for i in labels] == [random_galaxy(10 + i).galaxy_class for i in range(4)]
    with pytest.raises(ValueError, match="size must be an int >= 16"):
        render_galaxy(random_galaxy(0), 8)
    with pytest.raises(ValueError, match="renderer must be one of auto, galsim, astropy, got 'pil'"):
        render_galaxy(random_galaxy(0), 32, renderer="pil")
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        random_galaxy(-1)


def test_the_conditional_source_yields_image_and_condition():
    data = training_dataset({"source": "galaxy-world", "length": 3, "size": [32, 32], "renderer": "astropy",
                             "flip": True, "rot90": True, "seed": 4})
    item = data[(1, 2)]
    assert set(item) == {"image", "condition"} and item["image"].shape == (1, 32, 32)
    torch.testing.assert_close(item["condition"], torch.from_numpy(morphology_of(random_galaxy(5))))
    stamp = torch.from_numpy(render_galaxy(random_galaxy(5), 32, seed=5, renderer="astropy"))
    assert any(torch.equal(item["image"], torch.rot90(candidate, k, dims=(-2, -1)))
               for candidate in (stamp, stamp.flip(-1), stamp.flip(-2), stamp.flip(-1, -2)) for k in range(4))
    assert torch.equal(data.image(1, 2), item["image"])
    description = data.describe()
    assert description["condition_size"] == 37 and description["condition_names"][-1] == "arms_number.cant_tell"
    json.dumps(description)
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert batch["image"].shape == (2, 1, 32, 32) and batch["condition"].shape == (2, 37)
    with pytest.raises(ValueError, match=r"size must be square \[H, H\] for galaxy stamps, got \[32, 48\]"):
        training_dataset({"source": "galaxy-world", "length": 3, "size": [32, 48]})


def test_augment_image_draws_the_same_whatever_is_switched_on():
    image = torch.arange(16.0).reshape(1, 4, 4)
    both = augment_image(image, torch.Generator().manual_seed(3))
    flip_only = augment_image(image, torch.Generator().manual_seed(3), rot90=False)
    turns = [k for k in range(4) if torch.equal(torch.rot90(flip_only, k, dims=(-2, -1)), both)]
    assert turns  # the rotation applies on top of the same flips
    with pytest.raises(ValueError, match=r"rot90 needs square images \(H == W\), got shape \(1, 4, 6\)"):
        augment_image(torch.zeros(1, 4, 6), torch.Generator(), flip=False)


# -- the catalogue source ------------------------------------------------------------------
def _galaxy10_file(path, labels):
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as file:
        file["images"] = rng.integers(0, 256, (len(labels), 24, 24, 3), dtype=np.uint8)
        file["ans"] = np.array(labels, dtype=np.uint8)
        file["ra"] = np.linspace(100, 140, len(labels))
        file["dec"] = np.linspace(-5, 5, len(labels))
        file["redshift"] = np.linspace(0.01, 0.2, len(labels))
    return path


def test_galaxy10_catalogue_source_conditions_on_morphology_or_columns(tmp_path):
    import h5py

    path = _galaxy10_file(tmp_path / "Galaxy10_DECals.h5", [0, 5, 5, 9])
    data = training_dataset({"source": "galaxy-catalog", "path": str(path), "size": [16, 16], "resize": "area"})
    item = data[1]
    assert item["image"].shape == (3, 16, 16) and item["condition"].shape == (37,)
    assert item["condition"][MORPHOLOGY.index("bar")] == 1.0  # class 5, barred spiral
    with h5py.File(path) as file:
        first = torch.from_numpy(file["images"][1].astype(np.float32)).permute(2, 0, 1)
    torch.testing.assert_close(item["image"], torch.nn.functional.interpolate(first[None], size=(16, 16), mode="area")[0])
    labelled = training_dataset({"source": "galaxy-catalog", "path": str(path), "condition": ["label", "redshift"],
                                 "query": "label==5"})
    assert len(labelled) == 2 and labelled.condition_names == ["label", "redshift"]
    torch.testing.assert_close(labelled[0]["condition"], torch.tensor([5.0, np.linspace(0.01, 0.2, 4)[1]], dtype=torch.float32))
    with pytest.raises(ValueError, match="condition column 'colour' is not in the catalogue; numeric columns: .*label"):
        training_dataset({"source": "galaxy-catalog", "path": str(path), "condition": ["colour"]})
    with pytest.raises(ValueError, match="query 'label==7' selects none of the rows"):
        training_dataset({"source": "galaxy-catalog", "path": str(path), "query": "label==7"})


def test_a_cached_catalogue_source_reads_each_image_once(tmp_path, monkeypatch):
    from invsolve.datasets import galaxy_zoo

    path = _galaxy10_file(tmp_path / "Galaxy10_DECals.h5", [0, 5, 9])
    plain = training_dataset({"source": "galaxy-catalog", "path": str(path), "size": [8, 8], "resize": "area", "zoom": [0.5, 1]})
    reads = []
    original = galaxy_zoo.catalog_image
    monkeypatch.setattr(galaxy_zoo, "catalog_image", lambda table, index: reads.append(index) or original(table, index))
    cached = training_dataset({"source": "galaxy-catalog", "path": str(path), "size": [8, 8], "resize": "area",
                               "zoom": [0.5, 1], "cache": True})
    assert reads == [0, 1, 2]  # the check at construction fills the cache
    items = [cached[(index, 2)]["image"] for index in range(3)]
    assert reads == [0, 1, 2]
    assert all(torch.equal(item, plain[(index, 2)]["image"]) for index, item in enumerate(items))  # zoom included
    assert cached.value_range == plain.value_range == (0.0, 255.0)  # the source pixels' range in both


def test_fits_cutouts_give_header_keywords_as_conditions(tmp_path):
    from astropy.io import fits

    for number, (dust, redshift) in enumerate([(0.8, 0.05), (0.1, 0.10)]):
        header = fits.Header({MORPHOLOGY.fits_keyword("dust_lane"): dust, "REDSHIFT": redshift, "OBJID": number})
        fits.PrimaryHDU(np.full((16, 16), number, np.float32), header).writeto(tmp_path / f"cut{number}.fits")
    data = training_dataset({"source": "galaxy-catalog", "path": str(tmp_path)})
    assert data[0]["condition"][MORPHOLOGY.index("dust_lane")] == pytest.approx(0.8)
    by_header = training_dataset({"source": "galaxy-catalog", "path": str(tmp_path), "condition": ["REDSHIFT"]})
    torch.testing.assert_close(by_header[1]["condition"], torch.tensor([0.10]))
    assert torch.equal(by_header[1]["image"], torch.ones(1, 16, 16))
    with pytest.raises(ValueError, match="condition column 'SEEING' is not in the catalogue; numeric columns: .*REDSHIFT"):
        training_dataset({"source": "galaxy-catalog", "path": str(tmp_path), "condition": ["SEEING"]})
    # the headers are read once, with the catalogue: a query can name a keyword, and the file layout's are left out
    from invsolve.datasets.galaxy_zoo import read_fits_cutouts

    table = read_fits_cutouts(tmp_path)
    assert "NAXIS1" not in table.colnames and "OBJID" not in table.colnames
    nearby = training_dataset({"source": "galaxy-catalog", "path": str(tmp_path), "query": "REDSHIFT < 0.07",
                               "condition": ["REDSHIFT"]})
    assert len(nearby) == 1 and nearby[0]["condition"].item() == pytest.approx(0.05)
    # a keyword that one file lacks is a missing value of its column
    fits.PrimaryHDU(np.zeros((16, 16), np.float32),
                    fits.Header({MORPHOLOGY.fits_keyword("dust_lane"): 0.5})).writeto(tmp_path / "cut2.fits")
    with pytest.raises(ValueError, match="condition column 'REDSHIFT' holds 1 missing or non-finite values"):
        training_dataset({"source": "galaxy-catalog", "path": str(tmp_path), "condition": ["REDSHIFT"]})


def test_a_conditional_prior_trains_on_the_world_and_samples_per_condition(tmp_path):
    from invsolve.priors import load_prior, read_metadata, train

    config = {
        "data": {"source": "galaxy-world", "length": 8, "size": [16, 16], "renderer": "astropy", "cache": True,
                 "flip": True},
        "prior": {"normalization": {"low": -0.15, "high": 1.15, "unit": "peak flux"},
                  "conditioning": {"drop": 0.5, "guidance_scale": 2.0},
                  "architecture": {"channels": [8, 16], "attention_levels": [False, False], "num_head_channels": 8}},
        "train": {"steps": 3, "batch_size": 4, "sample_every": 3, "sample_images": 2, "sample_steps": 2,
                  "gaussian_rank": 2, "gaussian_images": 4},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = train(config, progress=False)
    prior = load_prior(tmp_path / "run" / "prior.pt")
    assert prior.conditioning.size == 37 and prior.guidance_scale == 2.0
    training = read_metadata(tmp_path / "run" / "prior.pt")["training"]
    assert training["config"]["prior"]["conditioning"] == {"kind": "vector", "size": 37, "drop": 0.5,
                                                          "guidance_scale": 2.0}
    assert training["data"]["condition_names"][0] == "smooth_or_features.smooth"
    assert (tmp_path / "run" / "samples" / "step_0000003.png").is_file()
    # the condition reaches the network: two conditions, one noisy input, two outputs
    x = torch.randn(2, 1, 16, 16)
    conditions = torch.from_numpy(np.stack([morphology_of(random_galaxy(0, "merger")),
                                            morphology_of(random_galaxy(0, "spiral"))]))
    same_input = prior.denoise(x[:1].expand(2, -1, -1, -1), 0.5, conditions)
    assert not torch.allclose(same_input[0], same_input[1])
    assert result.steps == 3


def test_a_catalogue_without_matching_images_is_refused(tmp_path):
    from astropy.table import Table

    table = Table({"dr7objid": np.array([11, 12], dtype=np.int64), "ra": [1.0, 2.0], "dec": [0.0, 0.0],
                   "gz2_class": ["Er", "Sc"]})
    for name in MORPHOLOGY.names:
        table[MORPHOLOGY.hart16_column(name)] = [0.0, 0.0]
    table.write(tmp_path / "gz2_hart16.csv", format="ascii.csv")
    (tmp_path / "mapping.csv").write_text("objid,sample,asset_id\n11,original,501\n12,original,502\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "999.jpg").write_bytes(b"")  # an image of no catalogued galaxy
    base = {"source": "galaxy-catalog", "path": str(tmp_path / "gz2_hart16.csv")}
    with pytest.raises(ValueError, match="has no images: give images = the image folder and mapping = the GZ2"):
        training_dataset(base)
    with pytest.raises(FileNotFoundError, match=r"no image file for any of the 2 rows of .*expected files named <asset_id>.jpg"):
        training_dataset({**base, "images": str(tmp_path / "images"), "mapping": str(tmp_path / "mapping.csv")})
