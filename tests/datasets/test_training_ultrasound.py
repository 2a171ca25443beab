"""The "ultrasound-rf" training source and the random hazy scenes it draws."""

import pytest
import torch

from invsolve.datasets.training import UltrasoundRFDataset, training_dataset
from invsolve.operators.ultrasound import (
    PROBES,
    ConvolutionSimulator,
    ImagingGrid,
    mu_law_expand,
    random_hazy_scene,
)

SMALL = {"depth": [0.005, 0.012], "width": 0.012, "scenes": 3}  # a 99×43 grid


def small_simulator():
    probe = PROBES["P4-2v"]
    return ConvolutionSimulator(ImagingGrid(probe, (0.005, 0.012), 0.012, lateral_spacing=0.5 * probe.wavelength))


def windows(frame, height, width):
    """Every (height, width) window of a 2-D frame and its left-right mirror."""
    patches = frame.unfold(0, height, 1).unfold(1, width, 1).reshape(-1, height, width)
    return torch.cat([patches, patches.flip(-1)])


def test_scenes_are_a_pure_function_of_the_seed_with_haze_at_the_tissue_rms():
    simulator = small_simulator()
    first, again, other = (random_hazy_scene(simulator, seed) for seed in (4, 4, 5))
    assert first.tissue.shape == first.haze.shape == (1, 1, *simulator.grid.shape)
    assert torch.equal(first.tissue, again.tissue) and torch.equal(first.haze, again.haze)
    assert not torch.equal(first.tissue, other.tissue)
    rms = lambda values: values.square().mean().sqrt()  # noqa: E731
    assert float(rms(first.haze)) == pytest.approx(float(rms(first.tissue)), rel=1e-9)
    torch.testing.assert_close(first.hazy(0.25), first.tissue + 0.25 * first.haze)
    assert first.phantom.echogenicity.shape == simulator.grid.shape
    # anechoic cysts: where the phantom has them the tissue is darker than around them
    if first.phantom.cysts.any():
        assert float(first.phantom.echogenicity[first.phantom.cysts].max()) == 0.0


@pytest.mark.parametrize(("arguments", "error", "match"), [
    ({"simulator": "P4-2v", "seed": 0}, TypeError, "ConvolutionSimulator"),
    ({"seed": -1}, ValueError, "seed must be an int >= 0"),
])
def test_scene_bad_input(arguments, error, match):
    call = {"simulator": small_simulator(), "seed": 0, **arguments}
    with pytest.raises(error, match=match):
        random_hazy_scene(**call)


@pytest.mark.parametrize("component", ["tissue", "haze"])
def test_items_are_companded_patches_of_the_scenes_in_the_tissue_peak_units(component):
    data = training_dataset({"source": "ultrasound-rf", "length": 12, "size": [32, 16], "component": component, "seed": 7, **SMALL})
    assert isinstance(data, UltrasoundRFDataset) and data.shape == (1, 32, 16) and data.value_range == (-1.0, 1.0)
    simulator = small_simulator()
    for index in (0, 1, 5):
        item = data[index]
        assert item.dtype == torch.float32 and float(item.abs().max()) <= 1.0
        scene = random_hazy_scene(simulator, 7 + index % 3)
        expected = (getattr(scene, component) / scene.tissue.abs().max()).clamp(-1, 1)[0, 0]
        candidates = windows(expected, 32, 16)
        error = (candidates - mu_law_expand(item[0].double())).abs().amax((-2, -1))
        assert float(error.min()) < 1e-5  # float32 companded values, expanded
    # the same item in the same epoch, another patch in another epoch
    assert torch.equal(data.item(4, 2), data.item(4, 2)) and not torch.equal(data.item(4, 2), data.item(4, 3))
    rebuilt = training_dataset(data.describe()["config"])
    assert torch.equal(rebuilt.item(9, 1), data.item(9, 1))


def test_linear_items_without_companding_and_without_mirroring():
    data = UltrasoundRFDataset(length=6, size=(16, 16), mu=0.0, mirror=False, seed=2, **SMALL)
    scene = random_hazy_scene(small_simulator(), 2)
    frame = (scene.tissue / scene.tissue.abs().max())[0, 0]
    patches = frame.unfold(0, 16, 1).unfold(1, 16, 1).reshape(-1, 16, 16)
    error = (patches - data.item(3, 0)[0].double()).abs().amax((-2, -1))
    assert float(error.min()) < 1e-6
    record = data.describe()
    assert record["grid_shape"] == [99, 43] and record["config"]["mu"] == 0.0 and record["config"]["mirror"] is False


@pytest.mark.parametrize(("config", "error", "match"), [
    ({"component": "bone"}, ValueError, "component must be one of 'tissue', 'haze'"),
    ({"probe": "C5-2"}, ValueError, "probe must be one of 'P4-2v', 'L11-5v'"),
    ({"size": [128, 16]}, ValueError, r"within the frames' 99×43 pixels"),
    ({"mu": -1.0}, ValueError, "mu must be >= 0"),
    ({"mirror": "yes"}, TypeError, "mirror must be true or false"),
    ({"scenes": 0}, ValueError, "scenes must be an int >= 1"),
    ({"lateral_spacing": 0}, ValueError, "lateral_spacing"),
    ({"flip": True}, ValueError, "unknown key 'flip'"),
])
def test_bad_config_raises_one_clear_error(config, error, match):
    with pytest.raises(error, match=match):
        training_dataset({"source": "ultrasound-rf", "length": 4, "size": [16, 16], **SMALL, **config})


@pytest.mark.parametrize("component", ["tissue", "haze"])
def test_bmode_items_are_grey_levels_of_the_scenes_and_what_the_haze_adds(component):
    from invsolve.datasets.training import UltrasoundBModeDataset
    from invsolve.operators.ultrasound import envelope, log_compress

    config = {"source": "ultrasound-bmode", "length": 6, "size": [16, 16], "component": component, "seed": 3,
              "axial_decimation": 3, "gamma": [0.2, 0.2], **SMALL}
    data = training_dataset(config)
    assert isinstance(data, UltrasoundBModeDataset) and data.describe()["grid_shape"] == [33, 43]
    scene = random_hazy_scene(small_simulator(), 3)

    def grey(rf):
        amplitude = torch.nn.functional.avg_pool2d(envelope(rf), (3, 1))
        reference = torch.nn.functional.avg_pool2d(envelope(scene.tissue), (3, 1)).amax()
        return 1 + log_compress(amplitude, 60.0, reference) / 60

    expected = grey(scene.tissue) if component == "tissue" else grey(scene.hazy(0.2)) - grey(scene.tissue)
    error = (windows(expected[0, 0], 16, 16) - data.item(0, 0)[0].double()).abs().amax((-2, -1))
    assert float(error.min()) < 1e-6
    low, high = (0.0, 1.0) if component == "tissue" else (-1.0, 1.0)
    assert low <= float(data[0].min()) and float(data[0].max()) <= high
    assert "mu" not in data.describe()["config"] and data.describe()["config"]["gamma"] == [0.2, 0.2]
    rebuilt = training_dataset(data.describe()["config"])
    assert torch.equal(rebuilt.item(4, 2), data.item(4, 2))


@pytest.mark.parametrize(("config", "error", "match"), [
    ({"gamma": [0.5, 0.1]}, ValueError, "gamma must be a pair"),
    ({"gamma": [0.1, 1.5]}, ValueError, "gamma must be a pair"),
    ({"axial_decimation": 0}, ValueError, "axial_decimation must be an int >= 1"),
    ({"dynamic_range": 0}, ValueError, "dynamic_range"),
    ({"size": [40, 16]}, ValueError, r"within the frames' 24×43 pixels"),
    ({"mu": 255.0}, ValueError, "unknown key 'mu'"),
])
def test_bmode_bad_config_raises_one_clear_error(config, error, match):
    with pytest.raises(error, match=match):
        training_dataset({"source": "ultrasound-bmode", "length": 4, "size": [16, 16], **SMALL, **config})
