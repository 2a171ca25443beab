"""The drawing behind :func:`invsolve.files.save_png`: panels with colour bars, windows and units.

Every PNG the package writes goes through :func:`invsolve.files.save_png`,
which checks its arguments, builds one :class:`Panel` per image and calls
:func:`draw`.  What a reader gets:

* each image is shown through a stated window ``[low, high]`` (values
  outside are clipped; the colour bar's arrows say so) next to a colour bar
  labelled with its unit, whose ticks include both ends of the window;
* panels that share window, unit and colour map share one colour bar — one
  for the whole figure, else one per row, else one per panel;
* pixels that were not measured are painted in :data:`MISSING_COLOUR`, a
  colour outside every grey scale, and named in a legend, so a hidden pixel
  is never mistaken for a value (e.g. 0 HU, the grey of soft tissue);
* RGB panels, which have no colour bar, state their window in the title;
* the PNG carries the panels' titles, units, windows and measured fractions
  as JSON in its ``Description`` text chunk (read it with
  ``PIL.Image.open(path).text["Description"]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MISSING_COLOUR", "Panel", "describe", "draw", "own_window"]

#: colour of pixels that were not measured (red: outside every grey scale)
MISSING_COLOUR = "#d62728"
#: inches per panel (the colour bars take their room from it)
_PANEL_INCHES = 3.0
_DPI = 110


@dataclass(frozen=True)
class Panel:
    """One image of a figure, as :func:`draw` shows it.

    Parameters
    ----------
    image : torch.Tensor
        Real ``(H, W)`` image, or ``(3, H, W)`` RGB channels.
    title : str
        Text above the image, for a reader (no code identifiers).
    window : (float, float)
        Values shown as the ends of the colour map, ``low < high``, in
        ``unit``; RGB channels map ``low..high`` to ``0..1``.
    unit : str
        Label of the colour bar, e.g. ``"HU"`` or ``"HU (std)"``; empty for
        a dimensionless image.
    colormap : str
        A matplotlib colour map name (ignored for RGB).
    measured : torch.Tensor, optional
        Boolean ``(H, W)`` mask, ``True`` where the pixel was measured; the
        others are painted in :data:`MISSING_COLOUR`.
    """

    image: torch.Tensor
    title: str
    window: tuple[float, float]
    unit: str = ""
    colormap: str = "gray"
    measured: torch.Tensor | None = None

    @property
    def rgb(self) -> bool:
        """Whether the panel is an RGB image (no colour bar)."""
        return self.image.dim() == 3

    @property
    def scale(self) -> tuple[tuple[float, float], str, str] | None:
        """What a shared colour bar must agree on: window, unit, colour map (``None`` for RGB)."""
        return None if self.rgb else (self.window, self.unit, self.colormap)

    def shown_values(self) -> torch.Tensor:
        """The finite values of the measured pixels (all pixels without a mask)."""
        values = self.image if self.measured is None else self.image[..., self.measured]
        return values[torch.isfinite(values)]


def _number(value: float) -> str:
    """A window end as text: 4 significant digits, a true minus sign."""
    return f"{value:.4g}".replace("-", "\u2212")


def _bar_groups(panels: Sequence[Panel], columns: int) -> list[list[int]]:
    """Indices of the panels sharing each colour bar.

    One bar for the whole figure if every panel has the same scale, else one
    per run of neighbouring panels in a row with the same scale; RGB panels
    get none.
    """
    scales = [panel.scale for panel in panels]
    if None not in scales and len(set(scales)) == 1:
        return [list(range(len(panels)))]
    groups: list[list[int]] = []
    for index, scale in enumerate(scales):
        if scale is None:
            continue
        if groups and index % columns and groups[-1][-1] == index - 1 and scales[index - 1] == scale:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _clipping(panels: Sequence[Panel]) -> str:
    """The colour bar's ``extend``: which ends of the shared window clip shown values."""
    below = above = False
    for panel in panels:
        values = panel.shown_values()
        if values.numel():
            below |= bool(values.min() < panel.window[0])
            above |= bool(values.max() > panel.window[1])
    return {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[(below, above)]


def draw(panels: Sequence[Panel], columns: int, figure_title: str = "") -> Figure:
    """Draw ``panels`` in rows of ``columns``, with colour bars and a legend for unmeasured pixels.

    Returns the matplotlib figure (close it with ``matplotlib.pyplot.close``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    rows = -(-len(panels) // columns)
    masked = any(panel.measured is not None for panel in panels)
    height = _PANEL_INCHES * rows + (0.35 if figure_title else 0.0) + (0.3 if masked else 0.0)
    figure, axes = plt.subplots(
        rows, columns, figsize=(_PANEL_INCHES * columns + 0.8, height), squeeze=False, layout="constrained"
    )
    for axis in axes.flat:
        axis.axis("off")
    shown = []
    for axis, panel in zip(axes.flat, panels):
        image = panel.image.detach().float().cpu()
        low, high = panel.window
        if panel.rgb:
            picture = ((image - low) / (high - low)).clamp(0, 1).permute(1, 2, 0)
            shown.append(axis.imshow(picture.numpy(), interpolation="nearest"))
            unit = f" {panel.unit}" if panel.unit else ""
            axis.set_title(f"{panel.title}\n(RGB, window {_number(low)} to {_number(high)}{unit})", fontsize=10)
        else:
            shown.append(axis.imshow(image.numpy(), cmap=panel.colormap, vmin=low, vmax=high, interpolation="nearest"))
            axis.set_title(panel.title, fontsize=10)
        if panel.measured is not None:
            overlay = torch.zeros(*panel.measured.shape, 4)
            overlay[~panel.measured.cpu()] = torch.tensor(to_rgba(MISSING_COLOUR))
            axis.imshow(overlay.numpy(), interpolation="nearest")
    for group in _bar_groups(panels, columns):
        first = panels[group[0]]
        low, high = first.window
        bar = figure.colorbar(
            shown[group[0]],
            ax=[axes.flat[index] for index in group],
            extend=_clipping([panels[index] for index in group]),
            shrink=0.9,
            aspect=20 * len({index // columns for index in group}),
        )
        ticks = [low, (low + high) / 2, high]
        bar.set_ticks(ticks, labels=[_number(tick) for tick in ticks])
        bar.ax.tick_params(labelsize=8)
        if first.unit:
            bar.set_label(first.unit, fontsize=9)
    if masked:
        legend = [Patch(facecolor=MISSING_COLOUR, label="not measured")]
        figure.legend(handles=legend, loc="outside lower center", frameon=False, fontsize=9)
    if figure_title:
        figure.suptitle(figure_title, fontsize=11)
    return figure


def describe(panels: Sequence[Panel], figure_title: str = "") -> str:
    """The JSON that :func:`invsolve.files.save_png` stores in the PNG's ``Description`` chunk."""
    entries = [
        {
            "title": panel.title,
            "unit": panel.unit,
            "window": list(panel.window),
            "colormap": None if panel.rgb else panel.colormap,
            "measured_fraction": None if panel.measured is None else float(panel.measured.float().mean()),
        }
        for panel in panels
    ]
    return json.dumps({"figure_title": figure_title, "panels": entries}, ensure_ascii=False)


def own_window(image: torch.Tensor, measured: torch.Tensor | None) -> tuple[float, float]:
    """An image's own window: the range of its finite (measured) values, widened if it is flat.

    ``(0, 1)`` if there is no finite value.
    """
    values = image if measured is None else image[..., measured]
    values = values[torch.isfinite(values)]
    if not values.numel():
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high > low:
        return low, high
    pad = abs(low) * 0.05 or 1.0
    return low - pad, high + pad
