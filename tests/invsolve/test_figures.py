"""save_png draws what a reader needs: colour bars with units and windows, unmeasured pixels marked."""

import json

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from PIL import Image

from invsolve.figures import MISSING_COLOUR, Panel, draw
from invsolve.files import save_png
from invsolve.priors.trainer import save_sample_grid


def _description(path):
    return json.loads(Image.open(path).text["Description"])


def _pixels_of(path, colour):
    """How many pixels of the PNG have exactly ``colour``."""
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    target = np.array([round(channel * 255) for channel in to_rgb(colour)])
    return int((np.abs(picture - target).sum(-1) <= 3).sum())


def test_the_png_states_titles_units_windows_and_the_measured_fraction(tmp_path):
    image = torch.linspace(-300, 300, 256, dtype=torch.float64).reshape(16, 16)
    measured = torch.arange(16)[None, :].expand(16, 16) < 4  # the first 4 of 16 columns
    path = save_png(
        tmp_path / "f.png",
        [image, image * measured, image.abs()],
        ["truth", "measured", "spread"],
        value_range=[(-200.0, 200.0), (-200.0, 200.0), None],
        figure_title="A figure",
        unit=["HU", "HU", "HU (std)"],
        colormap=["gray", "gray", "magma"],
        measured=[None, measured, None],
    )
    description = _description(path)
    assert description["figure_title"] == "A figure"
    panels = description["panels"]
    assert [panel["title"] for panel in panels] == ["truth", "measured", "spread"]
    assert [panel["unit"] for panel in panels] == ["HU", "HU", "HU (std)"]
    assert panels[0]["window"] == panels[1]["window"] == [-200.0, 200.0]
    assert panels[2]["window"] == pytest.approx([300 / 255, 300.0])  # its own range
    assert panels[1]["measured_fraction"] == 0.25 and panels[0]["measured_fraction"] is None


def test_unmeasured_pixels_are_painted_and_named_in_a_legend(tmp_path):
    image = torch.zeros(16, 16)  # 0 HU: the mid grey of the window, as a hidden pixel used to look
    measured = torch.ones(16, 16, dtype=torch.bool)
    measured[4:12, 4:12] = False
    plain = save_png(tmp_path / "plain.png", [image], ["measured"], value_range=(-200.0, 200.0), unit="HU")
    marked = save_png(
        tmp_path / "marked.png", [image], ["measured"], value_range=(-200.0, 200.0), unit="HU", measured=[measured]
    )
    assert _pixels_of(plain, MISSING_COLOUR) == 0
    hidden, seen = _pixels_of(marked, MISSING_COLOUR), _pixels_of(marked, (0.5, 0.5, 0.5))
    assert hidden / (hidden + seen) == pytest.approx(0.25, abs=0.01)  # the hidden quarter (and the legend's patch)
    figure = draw([Panel(image, "measured", (-200.0, 200.0), "HU", measured=measured)], 1)
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["not measured"]


@pytest.mark.parametrize(
    "windows, units, columns, bars",
    [
        ([(0.0, 1.0)] * 4, ["a.u."] * 4, 2, 1),  # one scale: one bar for the figure
        ([(0.0, 1.0)] * 2 + [(0.0, 2.0)] * 2, ["a.u."] * 4, 2, 2),  # one per row
        ([(0.0, 1.0), (0.0, 2.0), (0.0, 1.0), (0.0, 1.0)], ["a.u."] * 4, 4, 3),  # per run of neighbours
        ([(0.0, 1.0)] * 4, ["a.u.", "HU", "a.u.", "a.u."], 4, 3),  # a unit is part of the scale
    ],
)
def test_panels_that_share_window_unit_and_colour_map_share_one_colour_bar(windows, units, columns, bars):
    panels = [Panel(torch.rand(8, 8), f"panel {k}", window, unit) for k, (window, unit) in enumerate(zip(windows, units))]
    rows = -(-len(panels) // columns)
    figure = draw(panels, columns)
    assert len(figure.axes) == rows * columns + bars


def test_the_colour_bar_states_both_ends_of_the_window_its_unit_and_clipping():
    image = torch.tensor([[-500.0, 0.0], [100.0, 900.0]])  # below and above the window
    figure = draw([Panel(image, "CT", (-200.0, 300.0), "HU")], 1)
    bar = figure.axes[-1]
    assert [tick.get_text() for tick in bar.get_yticklabels()] == ["\u2212200", "50", "300"]
    assert bar.get_ylabel() == "HU"
    assert figure.axes[0].images[0].colorbar.extend == "both"
    inside = draw([Panel(image.clamp(-200, 300), "CT", (-200.0, 300.0), "HU")], 1)
    assert inside.axes[0].images[0].colorbar.extend == "neither"


def test_rgb_panels_state_their_window_in_the_title_and_get_no_colour_bar(tmp_path):
    path = save_png(tmp_path / "rgb.png", [torch.rand(3, 8, 8)], ["sample 1"], value_range=(-1.0, 1.0), unit="a.u.")
    assert _description(path)["panels"][0]["colormap"] is None
    figure = draw([Panel(torch.rand(3, 8, 8), "sample 1", (-1.0, 1.0), "a.u.")], 1)
    assert len(figure.axes) == 1
    assert figure.axes[0].get_title() == "sample 1\n(RGB, window \u22121 to 1 a.u.)"


def test_a_flat_or_empty_image_gets_a_window_of_its_own(tmp_path):
    path = save_png(
        tmp_path / "flat.png", [torch.full((4, 4), 2.0), torch.zeros(4, 4), torch.full((4, 4), float("nan"))],
        ["two", "zero", "nothing"],
    )
    assert [panel["window"] for panel in _description(path)["panels"]] == [[1.9, 2.1], [-1.0, 1.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(unit=["HU"]), ValueError, r"unit must be a string or one string per image \(2\), got \['HU'\]"),
        (dict(colormap=3), ValueError, "colormap must be a string or one string per image"),
        (dict(measured=[None]), ValueError, r"measured must be a sequence of one boolean mask \(or None\) per image \(2\)"),
        (dict(measured=[None, torch.ones(4, 4)]), TypeError, r"measured\[1\] must be a boolean tensor or None"),
        (dict(measured=[torch.ones(4, 5, dtype=torch.bool), None]), ValueError,
         r"measured\[0\] must have the image's shape \(4, 4\), got \(4, 5\)"),
        (dict(value_range=[(1.0, 1.0), None]), ValueError,
         r"value_range for images\[0\] \('a'\) must have low < high, got \(1.0, 1.0\)"),
        (dict(columns=0), ValueError, "columns must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        save_png(tmp_path / "bad.png", [torch.zeros(4, 4), torch.ones(4, 4)], ["a", "b"], **arguments)
    assert not (tmp_path / "bad.png").exists()


def test_images_must_be_planes_or_rgb(tmp_path):
    with pytest.raises(ValueError, match=r"images\[0\] \('x'\) must be \(H, W\), \(1, H, W\) or RGB \(3, H, W\), got shape \(2, 4, 4\)"):
        save_png(tmp_path / "bad.png", [torch.zeros(2, 4, 4)], ["x"])
    with pytest.raises(TypeError, match=r"images\[0\] must be a floating-point or complex tensor"):
        save_png(tmp_path / "bad.png", [torch.zeros(4, 4, dtype=torch.int64)], ["x"])


def test_sample_grids_state_their_window_and_unit(tmp_path):
    samples = torch.rand(3, 2, 5, 8, 8)  # (N, C, D, H, W): the central slice of each channel
    path = save_sample_grid(tmp_path / "grid.png", samples, (0.0, 1.15), unit="a.u.", title="after 10 steps")
    description = _description(path)
    assert description["figure_title"] == "after 10 steps"
    assert [panel["title"] for panel in description["panels"][:3]] == ["sample 1, channel 1", "sample 1, channel 2", "sample 2, channel 1"]
    assert {tuple(panel["window"]) for panel in description["panels"]} == {(0.0, 1.15)}
    assert {panel["unit"] for panel in description["panels"]} == {"a.u."}
