"""The drawing kit of the synthetic CT slices (:mod:`.ct_synthetic`): random draws, tissues, body, canvas.

A slice is painted on a supersampled grid in body coordinates (mm): the
:class:`Body` tabulates the trunk's outline and layers by direction, the
:class:`Canvas` paints tissues into filled, rotated, wobbled superellipses
with their HU values and texture amplitudes from the slice's
:class:`Palette`, and :class:`Draws` hands out the slice's scalar random
numbers in a fixed order, so that a slice depends only on its seed and
index.  Written by hand: no imaging library draws anatomical cross-sections
from random shapes, and the shapes are few and small, so a vectorised mask
per shape (inside its bounding box) is all that is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# -- tissues -------------------------------------------------------------------------
AIR_HU = -1000.0
# Directions at which a body's boundaries are tabulated, and the boundaries.
PROFILE_ANGLES = 1024
PROFILES = ("outer", "fat_inner", "cavity")

# Unenhanced HU ranges (the table of ct_synthetic's module docstring) and, for "_contrast" entries, the enhanced ones.
TISSUE_HU = {
    "gas": (-1000.0, -880.0),
    "lung": (-900.0, -750.0),
    "fat": (-120.0, -75.0),
    "fluid": (0.0, 20.0),
    "skin": (10.0, 60.0),
    "muscle": (35.0, 60.0),
    "blood": (35.0, 55.0),
    "blood_contrast": (150.0, 320.0),
    "liver": (45.0, 70.0),
    "liver_contrast": (90.0, 130.0),
    "spleen": (40.0, 55.0),
    "spleen_contrast": (100.0, 140.0),
    "kidney": (25.0, 45.0),
    "kidney_contrast": (140.0, 220.0),
    "medulla_contrast": (70.0, 120.0),
    "pancreas": (30.0, 50.0),
    "pancreas_contrast": (80.0, 120.0),
    "bowel": (30.0, 55.0),
    "cartilage": (80.0, 200.0),
    "marrow": (150.0, 400.0),
    "cortical": (700.0, 1500.0),
    "calcification": (300.0, 1000.0),
}
# Texture standard deviations in HU: (fine field range, coarse field range).
TISSUE_TEXTURE = {
    "gas": ((3.0, 10.0), (0.0, 2.0)),
    "lung": ((12.0, 25.0), (6.0, 15.0)),
    "fat": ((3.0, 8.0), (2.0, 5.0)),
    "fluid": ((3.0, 6.0), (1.0, 3.0)),
    "skin": ((4.0, 8.0), (2.0, 4.0)),
    "muscle": ((5.0, 10.0), (3.0, 8.0)),
    "blood": ((4.0, 8.0), (1.0, 4.0)),
    "liver": ((4.0, 8.0), (5.0, 12.0)),
    "spleen": ((4.0, 8.0), (3.0, 7.0)),
    "kidney": ((4.0, 8.0), (3.0, 7.0)),
    "medulla": ((4.0, 8.0), (3.0, 7.0)),
    "pancreas": ((6.0, 10.0), (8.0, 14.0)),
    "bowel": ((5.0, 10.0), (4.0, 8.0)),
    "cartilage": ((8.0, 15.0), (4.0, 8.0)),
    "marrow": ((25.0, 60.0), (10.0, 20.0)),
    "cortical": ((20.0, 50.0), (0.0, 10.0)),
    "calcification": ((20.0, 40.0), (0.0, 5.0)),
}



# -- random numbers ------------------------------------------------------------------
def slice_generator(seed: int, index: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``SeedSequence((seed, index, stream))``."""
    high, low = np.random.SeedSequence((seed, index, stream)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(high) << 32) | int(low))


class Draws:
    """Scalar random draws of one slice, taken in order from a seeded generator."""

    def __init__(self, generator: torch.Generator) -> None:
        self._generator = generator
        self._pool: list[float] = []

    def _next(self) -> float:
        if not self._pool:
            self._pool = torch.rand(256, generator=self._generator, dtype=torch.float64).tolist()[::-1]
        return self._pool.pop()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._next()

    def integer(self, low: int, high: int) -> int:
        """Uniform in ``low..high`` inclusive."""
        return low + min(int(self._next() * (high - low + 1)), high - low)

    def chance(self, probability: float) -> bool:
        return self._next() < probability

    def choice(self, weights: dict[str, float]) -> str:
        draw, total = self._next() * sum(weights.values()), 0.0
        for name, weight in weights.items():
            total += weight
            if draw < total:
                return name
        return name

    def wobble(self, amplitude: float, orders: int = 5) -> tuple[tuple[float, float], ...]:
        """Coefficients ``(α_k, β_k)``, ``k = 1 … orders``, of a smooth radial perturbation."""
        return tuple(
            (self.uniform(-1, 1) * amplitude / k, self.uniform(-1, 1) * amplitude / k) for k in range(1, orders + 1)
        )


class Palette:
    """The HU value and texture amplitudes of each tissue in one slice, drawn on first use."""

    def __init__(self, draws: Draws, enhanced: bool, noise_level: float) -> None:
        self._draws = draws
        self.enhanced = enhanced
        self._noise = noise_level
        self._values: dict[str, float] = {}
        self._textures: dict[str, tuple[float, float]] = {}

    def hu(self, tissue: str) -> float:
        if tissue not in self._values:
            key = f"{tissue}_contrast" if self.enhanced and f"{tissue}_contrast" in TISSUE_HU else tissue
            self._values[tissue] = self._draws.uniform(*TISSUE_HU[key])
        return self._values[tissue]

    def texture(self, tissue: str) -> tuple[float, float]:
        if tissue not in self._textures:
            (fine_low, fine_high), (coarse_low, coarse_high) = TISSUE_TEXTURE[tissue]
            fine = self._draws.uniform(fine_low, fine_high) * self._noise
            self._textures[tissue] = (fine, self._draws.uniform(coarse_low, coarse_high))
        return self._textures[tissue]



# -- geometry ------------------------------------------------------------------------
Window = tuple[slice, slice]


def radial_wobble(c: torch.Tensor, s: torch.Tensor, coefficients: Sequence[tuple[float, float]]) -> torch.Tensor:
    """``1 + Σ_k α_k cos(kψ) + β_k sin(kψ)`` from ``c = cos ψ``, ``s = sin ψ``."""
    total = torch.ones_like(c)
    cos_k, sin_k = c, s
    for alpha, beta in coefficients:
        total = total + alpha * cos_k + beta * sin_k
        cos_k, sin_k = cos_k * c - sin_k * s, sin_k * c + cos_k * s
    return total


def superellipse_radius(c: torch.Tensor, s: torch.Tensor, a: float, b: float, power: float) -> torch.Tensor:
    """Distance from the centre to ``|x/a|^p + |y/b|^p = 1`` in the direction ``(c, s)``."""
    if power == 2.0:
        return ((c / a).square() + (s / b).square()).rsqrt()
    return ((c / a).abs().pow(power) + (s / b).abs().pow(power)).pow(-1.0 / power)


class Body:
    """The outline and layers of a trunk: boundaries' distances from its centre by direction.

    Directions are ``(c, s) = (cos ψ, sin ψ)`` in body coordinates ``(u, v)``:
    ``u`` towards the image's right (patient's left), ``v`` towards the back.
    """

    def __init__(self, draws: Draws, region: str, scale: float) -> None:
        self.a = draws.uniform(130.0, 220.0) * scale
        ratio = {"thorax": (0.62, 0.8), "abdomen": (0.65, 0.88), "pelvis": (0.6, 0.8)}[region]
        self.b = self.a * draws.uniform(*ratio)
        self.power = draws.uniform(2.0, 2.6)
        self.shape = draws.wobble(0.05)
        self.flat = draws.uniform(0.0, 0.12)  # flattened back (lying on the table)
        self.skin = draws.uniform(1.5, 3.0) * scale
        lean = region == "thorax"
        self.fat = math.exp(draws.uniform(math.log(3.0), math.log(28.0 if lean else 40.0))) * scale
        self.fat_shape = draws.wobble(0.5, 4)
        self.fat_front = draws.uniform(0.0, 0.8)  # more fat in front of the abdomen
        self.muscle = draws.uniform(5.0, 12.0 if lean else 15.0) * scale
        self.muscle_shape = draws.wobble(0.4, 4)
        self.back = draws.uniform(40.0, 60.0) * scale  # paraspinal muscles
        self.back_width = draws.uniform(0.15, 0.3)

        # The boundaries' distances from the centre, tabulated over directions.
        angles = torch.arange(PROFILE_ANGLES, dtype=torch.float64) * (2 * math.pi / PROFILE_ANGLES) - math.pi
        c, s = torch.cos(angles), torch.sin(angles)
        outer = superellipse_radius(c, s, self.a, self.b, self.power) * radial_wobble(c, s, self.shape)
        outer = outer * (1 - self.flat * s.clamp_min(0).pow(4))
        fat = self.fat * radial_wobble(c, s, self.fat_shape).clamp_min(0.3) * (1 + self.fat_front * (-s).clamp_min(0))
        fat_inner = outer - self.skin - fat
        muscle = self.muscle * radial_wobble(c, s, self.muscle_shape).clamp_min(0.4) + self.back * torch.exp(
            (s - 1) / self.back_width)
        cavity = torch.minimum(fat_inner - muscle, 0.8 * fat_inner).clamp_min(5.0)
        self.profiles = torch.stack([outer, fat_inner, cavity])
        self._tables = dict(zip(PROFILES, self.profiles.tolist()))

    def at(self, profile: str, angle: float) -> float:
        """The distance (mm) from the centre to the boundary ``profile`` in the direction ``angle`` (radians)."""
        table = self._tables[profile]
        position = ((angle + math.pi) % (2 * math.pi)) * (PROFILE_ANGLES / (2 * math.pi))
        index = int(position)
        fraction = position - index
        return table[index % PROFILE_ANGLES] * (1 - fraction) + table[(index + 1) % PROFILE_ANGLES] * fraction

    def on_grid(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The profiles ``(3, *u.shape)`` (outer, fat_inner, cavity) in each point's direction, float32.

        Linear interpolation in the table, closed periodically (its first
        direction, −π, repeated at +π).
        """
        table = torch.cat([self.profiles, self.profiles[:, :1]], dim=1).to(torch.float32)
        steps = table[:, 1:] - table[:, :-1]
        position = (torch.atan2(v, u) + math.pi) * (PROFILE_ANGLES / (2 * math.pi))
        index = position.long().clamp_(0, PROFILE_ANGLES - 1)
        fraction = position - index
        return table[:, index] + fraction * steps[:, index]


class Canvas:
    """The supersampled grid of one slice, in body coordinates (mm), and what is painted on it."""

    def __init__(
        self, rows: int, cols: int, factor: int, pixel_mm: float, shift: tuple[float, float], tilt: float,
        palette: Palette, body: Body,
    ) -> None:
        self.rows, self.cols, self.factor = rows * factor, cols * factor, factor
        self.pixel_mm = pixel_mm
        self.step = pixel_mm / factor
        self.shift = shift
        self.cos, self.sin = math.cos(tilt), math.sin(tilt)
        self.palette = palette
        self.body = body
        y = (torch.arange(self.rows, dtype=torch.float32) + 0.5) * self.step - rows * pixel_mm / 2 - shift[1]
        x = (torch.arange(self.cols, dtype=torch.float32) + 0.5) * self.step - cols * pixel_mm / 2 - shift[0]
        self.u = self.cos * x[None, :] + self.sin * y[:, None]
        self.v = -self.sin * x[None, :] + self.cos * y[:, None]
        self.radius = torch.hypot(self.u, self.v).clamp_min(1e-6)
        self.hu = torch.full((self.rows, self.cols), AIR_HU, dtype=torch.float32)
        self.fine = torch.zeros_like(self.hu)
        self.coarse = torch.zeros_like(self.hu)
        # Body layers: the radius of each boundary in every pixel's direction from the body's centre.
        self.outer, self.fat_inner, self.cavity = body.on_grid(self.u, self.v).unbind(0)

    def window(self, cu: float, cv: float, extent: float) -> Window | None:
        """Grid slices covering the disc of radius ``extent`` (mm) about the body point ``(cu, cv)``."""
        x = self.cos * cu - self.sin * cv + self.shift[0] + self.cols * self.step / 2
        y = self.sin * cu + self.cos * cv + self.shift[1] + self.rows * self.step / 2
        col0, col1 = max(0, math.floor((x - extent) / self.step)), min(self.cols, math.ceil((x + extent) / self.step))
        row0, row1 = max(0, math.floor((y - extent) / self.step)), min(self.rows, math.ceil((y + extent) / self.step))
        if col0 >= col1 or row0 >= row1:
            return None
        return slice(row0, row1), slice(col0, col1)

    def shape(
        self, cu: float, cv: float, a: float, b: float, angle: float = 0.0, power: float = 2.0,
        wobble: Sequence[tuple[float, float]] = (), bend: float = 0.0,
    ) -> tuple[Window, torch.Tensor, torch.Tensor] | None:
        """``(window, r, R)`` of a rotated, wobbled, bent superellipse: inside where ``r <= R``.

        ``r`` is the distance of each pixel of the window from the centre and
        ``R`` the outline's distance in that direction, both in mm.  The shape's
        first axis is turned by ``angle`` from ``u`` towards ``v``; ``bend``
        (1/mm) curves it into the parabola ``y = bend · x²`` of its own axes.
        """
        bound = max(a, b) * (math.sqrt(2.0) if power > 2.0 else 1.0) * (1 + sum(abs(p) + abs(q) for p, q in wobble))
        window = self.window(cu, cv, bound + abs(bend) * a * a)
        if window is None:
            return None
        du, dv = self.u[window] - cu, self.v[window] - cv
        cos, sin = math.cos(angle), math.sin(angle)
        x, y = cos * du + sin * dv, cos * dv - sin * du
        if bend:
            y = y - bend * x.square()
        r = torch.hypot(x, y).clamp_min(1e-6)
        c, s = x / r, y / r
        outline = superellipse_radius(c, s, a, b, power)
        if wobble:
            outline = outline * radial_wobble(c, s, wobble)
        return window, r, outline

    def put(self, window: Window, mask: torch.Tensor, tissue: str, hu: float | torch.Tensor | None = None) -> None:
        """Paint ``tissue`` (its HU value unless ``hu`` is given, and its texture) where ``mask``."""
        value = self.palette.hu(tissue) if hu is None else hu
        fine, coarse = self.palette.texture(tissue)
        view = self.hu[window]
        if isinstance(value, torch.Tensor):
            view.copy_(torch.where(mask, value, view))
        else:
            view.masked_fill_(mask, value)
        self.fine[window].masked_fill_(mask, fine)
        self.coarse[window].masked_fill_(mask, coarse)

    def in_cavity(self, window: Window, inset: float = 0.0) -> torch.Tensor:
        return self.radius[window] <= self.cavity[window] - inset

    def blob(
        self, tissue: str, cu: float, cv: float, a: float, b: float, angle: float = 0.0,
        wobble: Sequence[tuple[float, float]] = (), *, inside_cavity: float | None = None, power: float = 2.0,
        hu: float | None = None, bend: float = 0.0,
    ) -> None:
        """Paint a filled shape, optionally only where it lies ``inside_cavity`` mm within the cavity."""
        found = self.shape(cu, cv, a, b, angle, power, wobble, bend)
        if found is None:
            return
        window, r, outline = found
        mask = r <= outline
        if inside_cavity is not None:
            mask &= self.in_cavity(window, inside_cavity)
        self.put(window, mask, tissue, hu)

    def bone(
        self, cu: float, cv: float, a: float, b: float, angle: float, cortex: float,
        wobble: Sequence[tuple[float, float]] = (), power: float = 2.0, marrow: str = "marrow", bend: float = 0.0,
    ) -> None:
        """A bone: a cortical shell ``cortex`` mm thick around marrow."""
        found = self.shape(cu, cv, a, b, angle, power, wobble, bend)
        if found is None:
            return
        window, r, outline = found
        self.put(window, r <= outline, "cortical")
        self.put(window, r <= outline - cortex, marrow)

    def point(self, draws: Draws, low: float, high: float) -> tuple[float, float]:
        """A random body point in the cavity, at ``low``–``high`` of the cavity's radius."""
        angle = draws.uniform(0.0, 2 * math.pi)
        distance = draws.uniform(low, high) * self.body.at("cavity", angle)
        return distance * math.cos(angle), distance * math.sin(angle)

    def clamp_to_wall(self, direction: float, distance: float, margin: float) -> float:
        """``distance`` along ``direction``, moved in to stay ``margin`` mm inside the muscle layer."""
        return min(distance, self.body.at("fat_inner", direction) - margin)


def gaussian_field(
    generator: torch.Generator, rows: int, cols: int, length: float, row_length: float | None = None
) -> torch.Tensor:
    """A periodic stationary Gaussian random field of unit standard deviation.

    White noise filtered by a Gaussian kernel of standard deviation ``length``
    pixels along the columns and ``row_length`` (default ``length``) along the rows.
    """
    row_length = length if row_length is None else row_length
    noise = torch.randn(rows, cols, generator=generator, dtype=torch.float32)
    fy = torch.fft.fftfreq(rows, dtype=torch.float32)[:, None] * row_length
    fx = torch.fft.rfftfreq(cols, dtype=torch.float32)[None, :] * length
    spectrum = torch.exp(-2 * math.pi**2 * (fy.square() + fx.square()))
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * spectrum, s=(rows, cols))
    return field / field.std().clamp_min(1e-12)

