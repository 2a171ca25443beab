"""Synthetic CT body cross-sections in Hounsfield units: a diverse training family for CT priors.

Priors trained on diverse synthetic images generalise to real data better than
priors trained on a narrow family (Thomsen et al., arXiv:2602.12755).  The
random-ellipse phantoms of :mod:`.phantoms` have no anatomy; the slices made
here do: a body outline in air with skin, subcutaneous fat, a muscle layer
(thick paraspinal muscles at the back), and inside it one of three body
regions with its organs, air spaces and bones, all of random size, position,
orientation, count and attenuation within anatomically plausible ranges, plus
correlated Gaussian texture.

Orientation and units
---------------------
Images are ``(rows, columns)`` in the radiological display convention of
DICOM slices (such as :func:`~invsolve.datasets.ct_small_slice`): row 0 is
anterior (the patient's front), rows run towards the back, and the patient's
right is on the left of the image (columns run from the patient's right to
left).  Values are Hounsfield units, ``HU = 1000·(μ − μ_water)/μ_water``: air
−1000, water 0.  :func:`invsolve.operators.ct.hounsfield_to_attenuation`
converts them to linear attenuation.

Tissues and Hounsfield units
----------------------------
Each slice draws one value per tissue (uniformly in the range below) and, for
contrast-enhanced slices (probability ``contrast``), the enhanced ranges of
blood and of the perfused organs.  The ranges are those of standard radiology
HU tables (textbook values for 120 kVp CT, unenhanced unless said otherwise):

=========================  ==================  ===================================
tissue                     HU                  where
=========================  ==================  ===================================
air (outside), gas         −1000; −1000…−880   around the body; bowel, stomach, trachea
lung parenchyma            −900…−750           lungs (denser towards the back)
fat                        −120…−75            subcutaneous, visceral, mediastinal, renal sinus
fluid                      0…20                bile, urine, cerebrospinal fluid, bowel fluid
skin                       10…60               a 1.5–3 mm rim
muscle                     35…60               body wall, paraspinal, psoas, scapular
blood                      35…55 (150…320)     heart, aorta, vena cava (contrast)
liver                      45…70 (90…130)      right upper abdomen
spleen                     40…55 (100…140)     left upper abdomen
kidney                     25…45 (cortex 140…220, medulla 70…120)
pancreas                   30…50 (80…120)      across the midline
bowel wall                 30…55               bowel loops and stomach
cartilage                  80…200              costal cartilage
marrow (cancellous bone)   150…400             inside vertebrae, ribs, sternum, ilia
cortical bone              700…1500            1–2.5 mm shells of every bone
calcification              300…1000            0–4 dots of 1–3 pixels, aortic wall
=========================  ==================  ===================================

Structures
----------
``"thorax"``: two lungs following the chest wall with vessel-like lines (zero
level sets of a smooth random field, thicker near the hila) and an occasional
nodule; the mediastinum (fat) with either the heart (lower thorax; chambers
bright under contrast) or the great vessels, trachea and main bronchi (upper
thorax); descending aorta, oesophagus; 4–7 ribs per side in the chest wall,
the sternum, sometimes the scapulae in their muscles; a thoracic vertebra.
``"abdomen"``: visceral fat with bowel loops (gas, fluid or mixed contents),
the colon in the flanks; liver (with hepatic vessels), gallbladder, spleen,
stomach with an air–fluid level, kidneys in perirenal fat with their sinus,
pancreas, aorta, inferior vena cava, psoas muscles; lower ribs; a lumbar
vertebra.  ``"pelvis"``: bowel loops, colon, bladder, psoas, the iliac wings
(cortex and marrow) and the sacrum or a lumbar vertebra.  Every vertebra has
a body (cortex, marrow), the spinal canal, the neural arch, a spinous process
and transverse processes.  Every region gets calcifications.

Texture is the sum of two correlated Gaussian random fields (Gaussian
covariance, correlation lengths 0.6–1.5 and 2–5 output pixels) whose standard
deviations depend on the tissue: about 3–15 HU in fat, fluid and soft
tissue (the fine part scaled per slice by 0.5–1.5, like dose-dependent
noise), 12–40 HU in the lungs, 25–90 HU in marrow (trabeculae).  Edges are anti-aliased: shapes are
drawn on a grid ``supersample`` times finer and averaged down.

Reproducibility
---------------
Slice ``i`` of a call (``i = 0 … n − 1``) is the slice of index ``start + i``
and depends only on ``(seed, start + i)`` and the options: its random numbers
come from generators seeded with ``numpy.random.SeedSequence((seed, index,
stream))`` (one stream for the anatomy, one for the texture), never from global
random state.  So any subset can be regenerated and a batch equals the
concatenation of its parts.  The anatomy of a slice is the same at every
``size`` of one aspect ratio and every ``supersample`` (with ``fill``, which
sets the view relative to the body), except for the calcifications, whose
size is set in pixels, and the texture noise: a slice of ``2N × 2N`` pixels
averaged over 2×2 blocks is the ``N × N`` slice drawn with twice the
supersampling.  All arithmetic is float32 on the CPU; values may differ in
the last bits between CPU types.

This module imports neither operators nor priors.

References
----------
Thomsen et al., arXiv:2602.12755 (diverse synthetic training data for priors).
HU ranges: standard radiology tables, e.g. W. A. Kalender, "Computed
Tomography", 3rd ed., Publicis 2011, and the Hounsfield-unit tables of
radiology textbooks and Radiopaedia.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from invsolve._checks import check_int, check_range, check_shape

__all__ = ["synthetic_ct_slices", "CT_SYNTHETIC_REGIONS", "CT_SYNTHETIC_HU_RANGE"]

#: body regions that :func:`synthetic_ct_slices` draws from
CT_SYNTHETIC_REGIONS: tuple[str, ...] = ("thorax", "abdomen", "pelvis")
#: every slice lies in this range of HU (values are clipped to it)
CT_SYNTHETIC_HU_RANGE: tuple[float, float] = (-1000.0, 1600.0)

# Probabilities of the regions (renormalised over the regions asked for).
_REGION_WEIGHTS = {"thorax": 0.4, "abdomen": 0.4, "pelvis": 0.2}
# Last entry of the SeedSequence of a slice's anatomy and texture generators.
_ANATOMY_STREAM = 0
_TEXTURE_STREAM = 1
# The largest fill accepted (fills above 1 crop the view inside the body).
_MAX_FILL = 4.0
_MAX_SUPERSAMPLE = 8
_AIR = -1000.0
# Directions at which a body's boundaries are tabulated, and the boundaries.
_PROFILE_ANGLES = 1024
_PROFILES = ("outer", "fat_inner", "cavity")

# Unenhanced HU ranges (module docstring) and, for "_contrast" entries, the enhanced ones.
_HU = {
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
_TEXTURE = {
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


def synthetic_ct_slices(
    n: int,
    size: Sequence[int],
    seed: int = 0,
    *,
    start: int = 0,
    pixel_mm: float | None = None,
    fill: Sequence[float] | None = None,
    regions: Sequence[str] = CT_SYNTHETIC_REGIONS,
    contrast: float = 0.3,
    texture: float = 1.0,
    supersample: int = 4,
) -> torch.Tensor:
    """A batch of seeded synthetic CT body cross-sections in Hounsfield units.

    Each slice is a body region (thorax, upper abdomen or pelvis, drawn per
    slice) of an adult-sized trunk (lateral width 260–440 mm, 10 % of
    slices scaled down by 0.55–0.85 like a child's) in air: skin, a
    subcutaneous fat layer of varying thickness, a muscle layer, organs, air
    spaces, bones with cortex and marrow, calcifications and soft-tissue
    texture.  Structures, tissues and their HU ranges: module docstring.

    Parameters
    ----------
    n : int
        Number of slices, ``>= 1``.
    size : (H, W)
        Rows and columns of each slice.
    seed : int
        Base seed, ``>= 0``; slice ``i`` depends only on ``(seed, start + i)``.
    start : int
        Index of the first slice, ``>= 0``: ``synthetic_ct_slices(n, size,
        seed, start=k)[j]`` is ``synthetic_ct_slices(k + j + 1, size, seed)[k + j]``.
    pixel_mm : float, optional
        Fixed pixel size in mm: the body keeps its drawn physical size, so
        the fraction of the image it fills follows from it (a small pixel
        gives a view inside the body).  Exclusive with ``fill``.
    fill : (float, float), optional
        Range of the fraction of the image's width or height (whichever is
        tighter) spanned by the body, drawn uniformly per slice; the pixel
        size follows (default ``(0.5, 0.95)`` without ``pixel_mm``).  Values
        ``<= 1`` keep the whole body inside the image with air around it;
        values up to 4 zoom into the body (e.g. 4 shows a 70–110 mm field of
        view, like that of pydicom's ``CT_small.dcm``).  ``0 < low <= high <= 4``.
    regions : sequence of {"thorax", "abdomen", "pelvis"}, or one of them
        Body regions to draw from (default all three, with probabilities 0.4,
        0.4 and 0.2, renormalised over those given).
    contrast : float
        Probability in ``[0, 1]`` that a slice is contrast-enhanced (bright
        blood, kidneys, spleen, liver).
    texture : float
        Scale of the texture's standard deviations, ``>= 0`` (0: piecewise
        constant tissues).
    supersample : int
        Shapes are drawn on a grid this many times finer along each axis and
        averaged down (anti-aliased edges, partial-volume values);
        ``1 <= supersample <= 8``.

    Returns
    -------
    torch.Tensor
        float32 ``(n, 1, H, W)`` in HU (air −1000, water 0), rows anterior
        to posterior and columns from the patient's right to left, every value
        in ``CT_SYNTHETIC_HU_RANGE = (−1000, 1600)``.

    Raises
    ------
    ValueError
        A count, size, seed, start or supersample below its minimum, a fill
        outside ``(0, 4]`` or not a pair, both ``fill`` and ``pixel_mm``, a
        non-positive ``pixel_mm``, an unknown or empty ``regions``, a
        ``contrast`` outside ``[0, 1]`` or a negative ``texture``.
    TypeError
        A count, seed, start or supersample that is not an int, a number
        that is not a number.

    Notes
    -----
    Speed, one CPU thread: 11–17 ms of CPU time per 64×64 slice with the
    default 4× supersampling (measured on a shared 2-core machine), 35–40 ms
    per 128×128 slice.  Python loops run only over the few dozen shapes of a
    slice; every pixel operation is vectorised in torch and small shapes
    touch only their bounding box, so at these sizes the per-shape overhead
    dominates and ``supersample = 2`` is only slightly faster.

    Examples
    --------
    >>> x = synthetic_ct_slices(4, (64, 64), seed=0)
    >>> x.shape, x.dtype
    (torch.Size([4, 1, 64, 64]), torch.float32)
    >>> torch.equal(x[3], synthetic_ct_slices(1, (64, 64), seed=0, start=3)[0])
    True
    """
    count = check_int(n, "n")
    rows, cols = check_shape(size, "size", ("H", "W"))
    seed = check_int(seed, "seed", 0)
    start = check_int(start, "start", 0)
    if pixel_mm is not None and fill is not None:
        raise ValueError(
            f"give either fill (the fraction of the image the body spans) or pixel_mm (a fixed pixel size), "
            f"not both; got fill = {fill!r} and pixel_mm = {pixel_mm!r}"
        )
    if pixel_mm is not None:
        pixel_mm = _positive_number(pixel_mm, "pixel_mm")
        fill_range = None
    else:
        fill_range = (0.5, 0.95) if fill is None else check_range(fill, "fill", 0.0, _MAX_FILL)
        if fill_range[0] <= 0:
            raise ValueError(f"fill must be a pair (low, high) with 0 < low <= high <= {_MAX_FILL:g}, got {fill!r}")
    weights = _region_weights(regions)
    contrast = _number(contrast, "contrast")
    if not 0.0 <= contrast <= 1.0:
        raise ValueError(f"contrast must be a probability in [0, 1], got {contrast!r}")
    texture = _number(texture, "texture")
    if texture < 0:
        raise ValueError(f"texture must be a number >= 0 (a scale of the texture's HU deviations), got {texture!r}")
    factor = check_int(supersample, "supersample")
    if factor > _MAX_SUPERSAMPLE:
        raise ValueError(f"supersample must be an int in [1, {_MAX_SUPERSAMPLE}], got {supersample!r}")

    slices = torch.empty(count, 1, rows, cols, dtype=torch.float32)
    for offset in range(count):
        index = start + offset
        draws = _Draws(_slice_generator(seed, index, _ANATOMY_STREAM))
        noise = _slice_generator(seed, index, _TEXTURE_STREAM)
        slices[offset, 0] = _render_slice(
            draws, noise, rows, cols, factor, pixel_mm, fill_range, weights, contrast, texture
        )
    return slices


# -- random numbers ------------------------------------------------------------------
def _slice_generator(seed: int, index: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``SeedSequence((seed, index, stream))``."""
    high, low = np.random.SeedSequence((seed, index, stream)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(high) << 32) | int(low))


class _Draws:
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


class _Palette:
    """The HU value and texture amplitudes of each tissue in one slice, drawn on first use."""

    def __init__(self, draws: _Draws, enhanced: bool, noise_level: float) -> None:
        self._draws = draws
        self.enhanced = enhanced
        self._noise = noise_level
        self._values: dict[str, float] = {}
        self._textures: dict[str, tuple[float, float]] = {}

    def hu(self, tissue: str) -> float:
        if tissue not in self._values:
            key = f"{tissue}_contrast" if self.enhanced and f"{tissue}_contrast" in _HU else tissue
            self._values[tissue] = self._draws.uniform(*_HU[key])
        return self._values[tissue]

    def texture(self, tissue: str) -> tuple[float, float]:
        if tissue not in self._textures:
            (fine_low, fine_high), (coarse_low, coarse_high) = _TEXTURE[tissue]
            fine = self._draws.uniform(fine_low, fine_high) * self._noise
            self._textures[tissue] = (fine, self._draws.uniform(coarse_low, coarse_high))
        return self._textures[tissue]


# -- geometry ------------------------------------------------------------------------
Window = tuple[slice, slice]


def _wobble(c: torch.Tensor, s: torch.Tensor, coefficients: Sequence[tuple[float, float]]) -> torch.Tensor:
    """``1 + Σ_k α_k cos(kψ) + β_k sin(kψ)`` from ``c = cos ψ``, ``s = sin ψ``."""
    total = torch.ones_like(c)
    cos_k, sin_k = c, s
    for alpha, beta in coefficients:
        total = total + alpha * cos_k + beta * sin_k
        cos_k, sin_k = cos_k * c - sin_k * s, sin_k * c + cos_k * s
    return total


def _superellipse_radius(c: torch.Tensor, s: torch.Tensor, a: float, b: float, power: float) -> torch.Tensor:
    """Distance from the centre to ``|x/a|^p + |y/b|^p = 1`` in the direction ``(c, s)``."""
    if power == 2.0:
        return ((c / a).square() + (s / b).square()).rsqrt()
    return ((c / a).abs().pow(power) + (s / b).abs().pow(power)).pow(-1.0 / power)


class _Body:
    """The outline and layers of a trunk: boundaries' distances from its centre by direction.

    Directions are ``(c, s) = (cos ψ, sin ψ)`` in body coordinates ``(u, v)``:
    ``u`` towards the image's right (patient's left), ``v`` towards the back.
    """

    def __init__(self, draws: _Draws, region: str, scale: float) -> None:
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
        angles = torch.arange(_PROFILE_ANGLES, dtype=torch.float64) * (2 * math.pi / _PROFILE_ANGLES) - math.pi
        c, s = torch.cos(angles), torch.sin(angles)
        outer = _superellipse_radius(c, s, self.a, self.b, self.power) * _wobble(c, s, self.shape)
        outer = outer * (1 - self.flat * s.clamp_min(0).pow(4))
        fat = self.fat * _wobble(c, s, self.fat_shape).clamp_min(0.3) * (1 + self.fat_front * (-s).clamp_min(0))
        fat_inner = outer - self.skin - fat
        muscle = self.muscle * _wobble(c, s, self.muscle_shape).clamp_min(0.4) + self.back * torch.exp(
            (s - 1) / self.back_width)
        cavity = torch.minimum(fat_inner - muscle, 0.8 * fat_inner).clamp_min(5.0)
        self.profiles = torch.stack([outer, fat_inner, cavity])
        self._tables = dict(zip(_PROFILES, self.profiles.tolist()))

    def at(self, profile: str, angle: float) -> float:
        """The distance (mm) from the centre to the boundary ``profile`` in the direction ``angle`` (radians)."""
        table = self._tables[profile]
        position = ((angle + math.pi) % (2 * math.pi)) * (_PROFILE_ANGLES / (2 * math.pi))
        index = int(position)
        fraction = position - index
        return table[index % _PROFILE_ANGLES] * (1 - fraction) + table[(index + 1) % _PROFILE_ANGLES] * fraction

    def on_grid(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The profiles ``(3, *u.shape)`` (outer, fat_inner, cavity) in each point's direction, float32.

        Linear interpolation in the table, closed periodically (its first
        direction, −π, repeated at +π).
        """
        table = torch.cat([self.profiles, self.profiles[:, :1]], dim=1).to(torch.float32)
        steps = table[:, 1:] - table[:, :-1]
        position = (torch.atan2(v, u) + math.pi) * (_PROFILE_ANGLES / (2 * math.pi))
        index = position.long().clamp_(0, _PROFILE_ANGLES - 1)
        fraction = position - index
        return table[:, index] + fraction * steps[:, index]


class _Canvas:
    """The supersampled grid of one slice, in body coordinates (mm), and what is painted on it."""

    def __init__(
        self, rows: int, cols: int, factor: int, pixel_mm: float, shift: tuple[float, float], tilt: float,
        palette: _Palette, body: _Body,
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
        self.hu = torch.full((self.rows, self.cols), _AIR, dtype=torch.float32)
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
        outline = _superellipse_radius(c, s, a, b, power)
        if wobble:
            outline = outline * _wobble(c, s, wobble)
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

    def point(self, draws: _Draws, low: float, high: float) -> tuple[float, float]:
        """A random body point in the cavity, at ``low``–``high`` of the cavity's radius."""
        angle = draws.uniform(0.0, 2 * math.pi)
        distance = draws.uniform(low, high) * self.body.at("cavity", angle)
        return distance * math.cos(angle), distance * math.sin(angle)

    def clamp_to_wall(self, direction: float, distance: float, margin: float) -> float:
        """``distance`` along ``direction``, moved in to stay ``margin`` mm inside the muscle layer."""
        return min(distance, self.body.at("fat_inner", direction) - margin)


def _gaussian_field(
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


# -- one slice -----------------------------------------------------------------------
def _render_slice(
    draws: _Draws, noise: torch.Generator, rows: int, cols: int, factor: int, pixel_mm: float | None,
    fill_range: tuple[float, float] | None, weights: dict[str, float], contrast: float, texture: float,
) -> torch.Tensor:
    region = draws.choice(weights)
    scale = draws.uniform(0.55, 0.85) if draws.chance(0.1) else 1.0
    body = _Body(draws, region, scale)
    tilt = math.radians(draws.uniform(-8.0, 8.0))
    palette = _Palette(draws, draws.chance(contrast), draws.uniform(0.5, 1.5))

    # The view: the body's extent in image axes (from its outline) sets the pixel size for a fill.
    angles = torch.arange(_PROFILE_ANGLES, dtype=torch.float64) * (2 * math.pi / _PROFILE_ANGLES) - math.pi
    outline = body.profiles[0]
    bu, bv = outline * torch.cos(angles), outline * torch.sin(angles)
    bx, by = math.cos(tilt) * bu - math.sin(tilt) * bv, math.sin(tilt) * bu + math.cos(tilt) * bv
    extent_x, extent_y = float(bx.max() - bx.min()), float(by.max() - by.min())
    fraction = draws.uniform(0.0, 1.0)
    if pixel_mm is None:
        fill = fill_range[0] + (fill_range[1] - fill_range[0]) * fraction
        pixel_mm = max(extent_x / cols, extent_y / rows) / fill
    shifts = []
    for low, high, pixels in ((bx.min(), bx.max(), cols), (by.min(), by.max(), rows)):
        middle, slack = float(low + high) / 2, (pixels * pixel_mm - float(high - low)) / 2
        # Keep 2 % of the view as air on each side, or stay on the body when it is larger than the view.
        room = max(0.0, slack - 0.02 * pixels * pixel_mm) if slack >= 0 else -slack
        shifts.append(-middle + draws.uniform(-room, room) * (0.5 if slack >= 0 else 0.8))
    canvas = _Canvas(rows, cols, factor, pixel_mm, (shifts[0], shifts[1]), tilt, palette, body)

    # Skin, fat, muscle, cavity: radial layers about the body's centre.
    full = (slice(None), slice(None))
    canvas.put(full, canvas.radius <= canvas.outer, "skin")
    canvas.put(full, canvas.radius <= canvas.outer - body.skin, "fat")
    canvas.put(full, canvas.radius <= canvas.fat_inner, "muscle")
    canvas.put(full, canvas.in_cavity(full), "fat")

    spine = _Spine(draws, body, region, scale)
    if region == "thorax":
        _thorax(canvas, draws, noise, body, spine, scale)
    elif region == "abdomen":
        _abdomen(canvas, draws, noise, body, spine, scale)
    else:
        _pelvis(canvas, draws, body, spine, scale)
    _calcifications(canvas, draws)

    hu = F.avg_pool2d(canvas.hu[None, None], factor)[0, 0]
    if texture > 0:
        fine = F.avg_pool2d(canvas.fine[None, None], factor)[0, 0]
        coarse = F.avg_pool2d(canvas.coarse[None, None], factor)[0, 0]
        hu = hu + texture * (
            fine * _gaussian_field(noise, rows, cols, draws.uniform(0.6, 1.5))
            + coarse * _gaussian_field(noise, rows, cols, draws.uniform(2.0, 5.0))
        )
    return hu.clamp_(*CT_SYNTHETIC_HU_RANGE)


class _Spine:
    """Where the vertebra sits (drawn first: the aorta and kidneys are placed relative to it)."""

    def __init__(self, draws: _Draws, body: _Body, region: str, scale: float) -> None:
        self.kind = "sacrum" if region == "pelvis" and draws.chance(0.5) else "vertebra"
        lumbar = region != "thorax"
        self.a = draws.uniform(18.0, 25.0) if lumbar else draws.uniform(13.0, 18.0)
        self.b = draws.uniform(13.0, 17.0) if lumbar else draws.uniform(11.0, 15.0)
        if self.kind == "sacrum":
            self.a, self.b = draws.uniform(35.0, 50.0), draws.uniform(12.0, 18.0)
        self.a, self.b = self.a * scale, self.b * scale
        self.canal = draws.uniform(7.0, 10.0) * scale
        self.arch = draws.uniform(3.0, 5.0) * scale
        self.cortex = draws.uniform(1.0, 2.5) * scale
        back = body.at("cavity", math.pi / 2)
        self.v = back - self.b * draws.uniform(0.0, 0.5)
        self.canal_v = self.v + self.b + self.canal * 0.8
        skin = body.at("fat_inner", math.pi / 2)
        room = skin - (self.canal_v + self.canal + self.arch) - 3.0
        self.spinous = max(4.0, min(draws.uniform(20.0, 35.0) * scale, room))
        self.transverse = draws.uniform(14.0, 28.0) * scale
        self.transverse_angle = math.radians(draws.uniform(5.0, 30.0))
        self.wobble = draws.wobble(0.04, 4)

    def paint(self, canvas: _Canvas, draws: _Draws) -> None:
        # Transverse and spinous processes, the neural arch with the canal, then the body on top.
        width = self.arch * 1.2
        for side in (-1.0, 1.0):
            length = self.transverse
            cu = side * (self.canal + length * 0.5)
            cv = self.canal_v - self.canal * 0.2 + math.sin(self.transverse_angle) * length * 0.5
            canvas.bone(cu, cv, length * 0.5, width * 0.5, side * self.transverse_angle, self.cortex * 0.6)
        canvas.bone(0.0, self.canal_v + self.canal + self.spinous * 0.5, width * 0.5, self.spinous * 0.5 + self.arch,
                    0.0, self.cortex * 0.6)
        canvas.bone(0.0, self.canal_v, self.canal + self.arch, self.canal + self.arch, 0.0, self.cortex,
                    wobble=self.wobble)
        canvas.blob("fluid", 0.0, self.canal_v, self.canal, self.canal * 0.85, 0.0, self.wobble)
        if self.kind == "sacrum":
            canvas.bone(0.0, self.v, self.a, self.b, 0.0, self.cortex, draws.wobble(0.08, 4), power=2.3)
        else:
            canvas.bone(0.0, self.v, self.a, self.b, 0.0, self.cortex, self.wobble, power=2.4)


# -- regions -------------------------------------------------------------------------
class _Cavity:
    """Half-width, front and back distances, depth and centre line of a body's cavity (mm)."""

    def __init__(self, body: _Body) -> None:
        self.half = 0.5 * (body.at("cavity", 0.0) + body.at("cavity", math.pi))
        self.front, self.back = body.at("cavity", -math.pi / 2), body.at("cavity", math.pi / 2)
        self.depth = 0.5 * (self.front + self.back)  # half the front-to-back extent
        self.middle = 0.5 * (self.back - self.front)  # v of the cavity's centre


def _thorax(
    canvas: _Canvas, draws: _Draws, noise: torch.Generator, body: _Body, spine: _Spine, scale: float
) -> None:
    cavity = _Cavity(body)
    half, front, depth, middle = cavity.half, cavity.front, cavity.depth, cavity.middle
    full = (slice(None), slice(None))
    lower = draws.chance(0.55)  # heart level, else the great vessels and trachea
    canvas.put(full, canvas.in_cavity(full), "fat", hu=canvas.palette.hu("fat") + draws.uniform(0.0, 40.0))

    # Lungs: each follows the chest wall (the cavity less a pleural inset), denser towards the back.
    gradient = draws.uniform(0.0, 80.0)
    lungs = torch.zeros(canvas.hu.shape, dtype=torch.bool)
    windows = []
    # The deepest point of the cavity lies beside the spine, behind the paraspinal muscles' edge.
    deep = max(body.at("cavity", math.radians(angle)) * math.sin(math.radians(angle)) for angle in range(30, 151, 15))
    for side in (-1.0, 1.0):
        cu = side * half * draws.uniform(0.45, 0.6)
        cv = 0.5 * (deep - front) + depth * draws.uniform(-0.05, 0.05)
        found = canvas.shape(cu, cv, half * draws.uniform(0.6, 0.75), 0.5 * (deep + front) * draws.uniform(1.0, 1.2),
                             side * draws.uniform(-0.15, 0.15), draws.uniform(2.5, 3.5), draws.wobble(0.06, 4))
        inset = draws.uniform(0.5, 2.0) * scale
        if found is not None:
            window, r, outline = found
            lungs[window] |= (r <= outline) & canvas.in_cavity(window, inset)
            windows.append((side, window))
    # The mediastinum, from the sternum to the spine, separates them.
    top, bottom = -front, spine.v
    found = canvas.shape(half * draws.uniform(-0.02, 0.08), 0.5 * (top + bottom), half * draws.uniform(0.1, 0.2),
                         0.5 * (bottom - top), 0.0, draws.uniform(2.0, 3.0), draws.wobble(0.05, 3))
    if found is not None:
        window, r, outline = found
        lungs[window] &= r > outline
    values = canvas.palette.hu("lung") + gradient * ((canvas.v - middle) / depth).clamp(-1, 1)
    canvas.put(full, lungs, "lung", hu=values)
    _lung_vessels(canvas, draws, noise, lungs, windows, half, middle, depth, scale)
    for _ in range(draws.integer(1, 2) if draws.chance(0.25) else 0):  # nodules
        cu, cv = canvas.point(draws, 0.3, 0.85)
        radius = draws.uniform(2.0, 6.0) * scale
        found = canvas.shape(cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi), 2.0,
                             draws.wobble(0.1, 3))
        if found is not None:
            window, r, outline = found
            canvas.put(window, (r <= outline) & lungs[window], "muscle", hu=draws.uniform(20.0, 60.0))

    # Mediastinum: the heart in pericardial fat, or the great vessels with the trachea or bronchi.
    aorta = draws.uniform(10.0, 14.0) * scale
    if lower:
        a, b = half * draws.uniform(0.35, 0.5), depth * draws.uniform(0.35, 0.5)
        cu, cv = half * draws.uniform(0.05, 0.25), -front + b * draws.uniform(0.9, 1.3)
        angle, wobble = -math.radians(draws.uniform(20.0, 45.0)), draws.wobble(0.06, 3)
        canvas.blob("fat", cu, cv, a * 1.1, b * 1.1, angle, wobble, inside_cavity=0.0)
        if canvas.palette.enhanced:  # myocardium around bright chambers
            canvas.blob("muscle", cu, cv, a, b, angle, wobble, inside_cavity=0.0,
                        hu=canvas.palette.hu("muscle") + draws.uniform(30.0, 70.0))
            for _ in range(draws.integer(2, 4)):
                du, dv = a * draws.uniform(-0.4, 0.4), b * draws.uniform(-0.4, 0.4)
                canvas.blob("blood", cu + du, cv + dv, a * draws.uniform(0.25, 0.45), b * draws.uniform(0.25, 0.45),
                            draws.uniform(0, math.pi), draws.wobble(0.08, 3), inside_cavity=2.0,
                            hu=canvas.palette.hu("blood") * draws.uniform(0.7, 1.0))
        else:
            canvas.blob("blood", cu, cv, a, b, angle, wobble, inside_cavity=0.0)
    else:
        trachea = spine.v - spine.b - draws.uniform(12.0, 22.0) * scale
        vessels = (  # ascending aorta, pulmonary trunk, superior vena cava: (u, depth behind the front, radius)
            (draws.uniform(-5.0, 15.0), draws.uniform(25.0, 45.0), draws.uniform(13.0, 18.0)),
            (draws.uniform(20.0, 35.0), draws.uniform(25.0, 45.0), draws.uniform(11.0, 15.0)),
            (-draws.uniform(20.0, 30.0), draws.uniform(35.0, 55.0), draws.uniform(8.0, 12.0)),
        )
        for cu, behind, radius in vessels:
            cv = min(-front + behind * scale, trachea - (radius + 12.0) * scale)
            canvas.blob("blood", cu * scale, cv, radius * scale, radius * scale * draws.uniform(0.85, 1.0),
                        inside_cavity=0.0)
        wall = draws.uniform(1.5, 2.5) * scale
        if draws.chance(0.5):  # main bronchi
            for side in (-1.0, 1.0):
                radius = draws.uniform(5.0, 8.0) * scale
                cu = side * draws.uniform(14.0, 22.0) * scale
                canvas.blob("muscle", cu, trachea, radius + wall, radius + wall)
                canvas.blob("gas", cu, trachea, radius, radius * draws.uniform(0.8, 1.0))
        else:
            radius = draws.uniform(8.0, 11.0) * scale
            cu = draws.uniform(-3.0, 3.0) * scale
            canvas.blob("muscle", cu, trachea, radius + wall, radius + wall * 0.8)
            canvas.blob("gas", cu, trachea, radius, radius * draws.uniform(0.8, 1.0))
    # Descending aorta beside the spine, the oesophagus in front of it.
    canvas.blob("blood", spine.a * 0.5 + aorta + draws.uniform(2.0, 8.0) * scale,
                spine.v - spine.b * draws.uniform(0.2, 0.8), aorta, aorta)
    oesophagus = draws.uniform(5.0, 8.0) * scale
    cu, cv = draws.uniform(-4.0, 6.0) * scale, spine.v - spine.b - oesophagus - draws.uniform(1.0, 4.0) * scale
    canvas.blob("bowel", cu, cv, oesophagus, oesophagus * 0.8)
    if draws.chance(0.4):
        canvas.blob("gas", cu, cv, oesophagus * 0.35, oesophagus * 0.3)

    # Chest wall: ribs (cartilage at the front), the sternum, the scapulae in their muscles.
    for side in (-1.0, 1.0):
        count = draws.integer(4, 7)
        for _ in range(count):
            angle = draws.uniform(math.radians(-75.0), math.radians(72.0))
            direction = angle if side > 0 else math.pi - angle
            long, short = draws.uniform(5.0, 14.0) * scale, draws.uniform(3.0, 5.5) * scale
            distance = body.at("cavity", direction) + draws.uniform(1.0, 4.0) * scale + short
            distance = canvas.clamp_to_wall(direction, distance, short + 1.0 * scale)
            cu, cv = distance * math.cos(direction), distance * math.sin(direction)
            front_rib = math.sin(direction) < -0.8
            canvas.bone(cu, cv, long, short, direction + math.pi / 2, draws.uniform(0.8, 1.6) * scale,
                        draws.wobble(0.05, 3), marrow="cartilage" if front_rib else "marrow")
    if draws.chance(0.8):
        thickness = draws.uniform(5.0, 8.0) * scale
        distance = canvas.clamp_to_wall(-math.pi / 2, front + thickness + draws.uniform(0.0, 3.0) * scale, thickness)
        canvas.bone(draws.uniform(-3.0, 3.0) * scale, -distance, draws.uniform(12.0, 20.0) * scale, thickness, 0.0,
                    draws.uniform(1.0, 2.0) * scale)
    if not lower and draws.chance(0.6):
        for side in (-1.0, 1.0):
            direction = math.pi / 2 - side * math.radians(draws.uniform(35.0, 55.0))
            distance = body.at("cavity", direction) + draws.uniform(10.0, 18.0) * scale
            distance = canvas.clamp_to_wall(direction, distance, 12.0 * scale)
            cu, cv = distance * math.cos(direction), distance * math.sin(direction)
            length = draws.uniform(20.0, 40.0) * scale
            angle = direction + math.pi / 2 + side * math.radians(draws.uniform(-15.0, 15.0))
            canvas.blob("muscle", cu, cv, length * 1.15, 12.0 * scale, angle)
            canvas.bone(cu, cv, length, draws.uniform(2.0, 4.0) * scale, angle, draws.uniform(0.8, 1.5) * scale)
    spine.paint(canvas, draws)


def _lung_vessels(
    canvas: _Canvas, draws: _Draws, noise: torch.Generator, lungs: torch.Tensor,
    windows: Sequence[tuple[float, Window]], half: float, middle: float, depth: float, scale: float,
) -> None:
    """Vessel-like lines in the lungs that branch out from each hilum and thin towards the periphery.

    For each lung a smooth random field ``g`` is read at ``(ψ·max(ρ, ρ₀), ρ)``,
    about the arc length and the distance from the hilum, with a short
    correlation length along the arc and a long one along the radius.  Its
    zero set is then made of wiggly, mostly radial lines whose number grows
    with ``ρ`` beyond ``ρ₀`` (lines appear, like branches).  The vessels are the pixels closer to
    them than half their width, ``|g| / |∇g| < w/2``, interrupted where a
    second field is low.
    """
    reach = 2.0 * max(half, depth)  # mm of radius covered by the field
    arc = draws.uniform(3.0, 6.0) * scale  # mm, correlation along the arc
    radial = draws.uniform(30.0, 60.0) * scale  # mm, along the radius
    width = draws.uniform(1.2, 2.2) * scale  # mm near the hilum, 40 % of it at the periphery
    threshold = draws.uniform(-0.6, 0.0)
    value = canvas.palette.hu("blood") * 0.5 + 10.0
    rows, cols = 64, 1024  # about 2 mm along the arc, 5 mm along the radius
    trunk = draws.uniform(25.0, 45.0) * scale  # ρ₀ in mm
    hila = {side: (side * half * draws.uniform(0.05, 0.2), middle - depth * draws.uniform(0.0, 0.25))
            for side in (-1.0, 1.0)}
    for side, window in windows:
        hu, hv = hila[side]
        # Columns span the arc length ±π·reach, rows the radius 0..reach.
        field = _gaussian_field(noise, rows, cols, arc * cols / (2 * math.pi * reach), radial * rows / reach)
        breaks = _gaussian_field(noise, rows // 2, cols // 2, 2 * arc * cols / (4 * math.pi * reach),
                                 radial * rows / (2 * reach))
        du, dv = side * (canvas.u[window] - hu), canvas.v[window] - hv  # ψ = ±π lies towards the mediastinum
        rho = torch.hypot(du, dv).clamp(1.0, reach)
        arc_length = torch.atan2(dv, du) * rho.clamp_min(trunk) / (math.pi * reach)
        grid = torch.stack([arc_length, rho / reach * 2 - 1], dim=-1)[None]
        if min(grid.shape[1:3]) < 2:
            continue  # the image edge cuts the lung's box to one row or column: no room for vessels
        g = F.grid_sample(field[None, None], grid, mode="bicubic", padding_mode="border", align_corners=False)
        h = F.grid_sample(breaks[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)
        g = g[0, 0]
        slope = torch.hypot(*torch.gradient(g, spacing=canvas.step))  # per mm
        band = 0.5 * width * (1.0 - 0.6 * (rho / (0.5 * reach)).clamp(0, 1))
        vessels = lungs[window] & (canvas.u[window] * side > 0) & (g.abs() < band * slope) & (h[0, 0] > threshold)
        vessels &= rho > 0.6 * trunk
        canvas.put(window, vessels, "blood", hu=value)


def _organ_vessels(
    canvas: _Canvas, draws: _Draws, noise: torch.Generator, window: Window, organ: torch.Tensor, cu: float,
    cv: float, extent: float, scale: float,
) -> None:
    """Vessels in a solid organ, darker than it without contrast and bright with it.

    Like the lung vessels, the band about the zero set of a smooth field
    (read from a 128×128 field over the organ's box, so the same at every
    resolution), interrupted where a second field is low.
    """
    spacing = draws.uniform(10.0, 20.0) * scale  # mm, correlation length
    width = draws.uniform(2.0, 4.0) * scale  # mm
    threshold = draws.uniform(0.0, 0.6)
    field = _gaussian_field(noise, 128, 128, spacing * 64 / extent)
    breaks = _gaussian_field(noise, 128, 128, spacing * 64 / extent)
    grid = torch.stack([(canvas.u[window] - cu) / extent, (canvas.v[window] - cv) / extent], dim=-1)[None]
    if min(grid.shape[1:3]) < 2:
        return  # the image edge cuts the organ's box to one row or column: no room for vessels
    g = F.grid_sample(field[None, None], grid, mode="bicubic", padding_mode="border", align_corners=False)[0, 0]
    h = F.grid_sample(breaks[None, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    slope = torch.hypot(*torch.gradient(g, spacing=canvas.step))
    vessels = organ & (g.abs() < 0.5 * width * slope) & (h > threshold)
    if canvas.palette.enhanced:
        value = canvas.palette.hu("blood") * draws.uniform(0.6, 0.9)
    else:
        value = canvas.palette.hu("liver") - draws.uniform(8.0, 20.0)
    canvas.put(window, vessels, "blood", hu=value)


def _abdomen(
    canvas: _Canvas, draws: _Draws, noise: torch.Generator, body: _Body, spine: _Spine, scale: float
) -> None:
    cavity = _Cavity(body)
    half, depth, middle = cavity.half, cavity.depth, cavity.middle
    _bowel(canvas, draws, draws.integer(8, 20), scale)
    _colon(canvas, draws, body, scale)
    # Solid organs over the bowel: liver with gallbladder, spleen, stomach.
    if draws.chance(0.9):
        size = draws.uniform(0.45, 1.0)
        cu, cv = -half * draws.uniform(0.3, 0.5), middle + depth * draws.uniform(-0.25, 0.1)
        a, b = half * draws.uniform(0.5, 0.75) * size, depth * draws.uniform(0.6, 0.9) * size
        found = canvas.shape(cu, cv, a, b, draws.uniform(-0.3, 0.3), 2.0, draws.wobble(0.08, 4))
        if found is not None:
            window, r, outline = found
            liver = (r <= outline) & canvas.in_cavity(window, 0.0)
            canvas.put(window, liver, "liver")
            _organ_vessels(canvas, draws, noise, window, liver, cu, cv, 1.3 * max(a, b), scale)
        if draws.chance(0.4):
            radius = draws.uniform(10.0, 20.0) * scale
            canvas.blob("fluid", cu + a * draws.uniform(0.2, 0.6), cv - b * draws.uniform(0.0, 0.5), radius,
                        radius * draws.uniform(0.6, 0.9), draws.uniform(0, math.pi), inside_cavity=3.0)
    if draws.chance(0.7):
        canvas.blob("spleen", half * draws.uniform(0.5, 0.7), middle + depth * draws.uniform(0.2, 0.5),
                    half * draws.uniform(0.15, 0.28), depth * draws.uniform(0.25, 0.45),
                    -draws.uniform(0.4, 1.1), draws.wobble(0.08, 4), inside_cavity=0.0)
    if draws.chance(0.6):
        cu, cv = half * draws.uniform(0.15, 0.45), middle - depth * draws.uniform(0.1, 0.45)
        a, b = half * draws.uniform(0.18, 0.35), depth * draws.uniform(0.2, 0.35)
        found = canvas.shape(cu, cv, a, b, draws.uniform(-0.5, 0.5), 2.0, draws.wobble(0.08, 4))
        if found is not None:
            window, r, outline = found
            inside = canvas.in_cavity(window, 1.0)
            canvas.put(window, (r <= outline) & inside, "bowel")
            content = (r <= outline - draws.uniform(3.0, 5.0) * scale) & inside
            gas = content & (canvas.v[window] < cv - b + 2 * b * draws.uniform(0.0, 0.6))  # gas rises to the front
            canvas.put(window, content & ~gas, "fluid", hu=draws.uniform(0.0, 40.0))
            canvas.put(window, gas, "gas")
    # Retroperitoneum: kidneys in perirenal fat, psoas, pancreas, aorta and vena cava.
    if draws.chance(0.75):
        for side in (-1.0, 1.0):
            if draws.chance(0.1):
                continue
            cu = side * (spine.a + draws.uniform(22.0, 40.0) * scale)
            cv = spine.v + draws.uniform(-10.0, 8.0) * scale
            a, b = draws.uniform(15.0, 22.0) * scale, draws.uniform(20.0, 30.0) * scale
            angle = side * draws.uniform(0.3, 0.8)  # long axis towards the front and the side
            margin = draws.uniform(4.0, 12.0) * scale
            canvas.blob("fat", cu, cv, a + margin, b + margin, angle, inside_cavity=0.0)
            canvas.blob("kidney", cu, cv, a, b, angle, draws.wobble(0.04, 3), inside_cavity=0.0)
            if canvas.palette.enhanced:
                canvas.blob("medulla", cu, cv, a * 0.7, b * 0.75, angle, draws.wobble(0.1, 4), inside_cavity=0.0,
                            hu=draws.uniform(*_HU["medulla_contrast"]))
            sinus = -side * a * 0.55  # the hilum faces the midline and the front
            su = cu + sinus * math.cos(angle)
            sv = cv + sinus * math.sin(angle) - b * 0.15
            canvas.blob("fat", su, sv, a * 0.45, b * 0.35, angle, draws.wobble(0.1, 3), inside_cavity=0.0)
            if draws.chance(0.4):
                canvas.blob("fluid", su, sv, a * 0.2, b * 0.2, angle, inside_cavity=0.0)
    if draws.chance(0.5):
        _psoas(canvas, draws, spine, scale, 0.5)
    if draws.chance(0.6):
        cv = spine.v - spine.b - draws.uniform(25.0, 45.0) * scale
        canvas.blob("pancreas", half * draws.uniform(-0.05, 0.15), cv, half * draws.uniform(0.22, 0.35),
                    draws.uniform(8.0, 14.0) * scale, draws.uniform(-0.35, 0.15), draws.wobble(0.12, 5),
                    inside_cavity=2.0)
    _great_vessels(canvas, draws, spine, scale)
    # Lower ribs in the flanks, costal cartilage in front.
    if draws.chance(0.6):
        for side in (-1.0, 1.0):
            for _ in range(draws.integer(1, 3)):
                angle = draws.uniform(math.radians(-60.0), math.radians(20.0))
                direction = angle if side > 0 else math.pi - angle
                short = draws.uniform(3.0, 5.0) * scale
                distance = body.at("cavity", direction) + draws.uniform(1.0, 4.0) * scale + short
                distance = canvas.clamp_to_wall(direction, distance, short + 1.0 * scale)
                canvas.bone(distance * math.cos(direction), distance * math.sin(direction),
                            draws.uniform(5.0, 12.0) * scale, short, direction + math.pi / 2,
                            draws.uniform(0.8, 1.5) * scale,
                            marrow="cartilage" if math.sin(direction) < -0.6 else "marrow")
    spine.paint(canvas, draws)


def _pelvis(canvas: _Canvas, draws: _Draws, body: _Body, spine: _Spine, scale: float) -> None:
    front = _Cavity(body).front
    _bowel(canvas, draws, draws.integer(12, 26), scale)
    _colon(canvas, draws, body, scale)
    if draws.chance(0.5):  # bladder behind the front wall
        radius = draws.uniform(25.0, 50.0) * scale
        canvas.blob("fluid", draws.uniform(-10.0, 10.0) * scale, -front + radius + draws.uniform(5.0, 25.0) * scale,
                    radius * draws.uniform(0.9, 1.3), radius, draws.uniform(-0.3, 0.3), draws.wobble(0.05, 3),
                    inside_cavity=2.0, hu=draws.uniform(0.0, 15.0))
    _psoas(canvas, draws, spine, scale, 1.0)
    _great_vessels(canvas, draws, spine, scale)
    # Iliac wings: curved plates from beside the sacrum forwards and outwards, muscle on both faces.
    for side in (-1.0, 1.0):
        length = draws.uniform(35.0, 55.0) * scale
        thickness = draws.uniform(3.5, 8.0) * scale
        slope = draws.uniform(0.35, 0.9)  # radians from the lateral axis, the front end outwards
        angle = -side * slope
        bend = side * draws.uniform(0.0, 0.008) / scale  # hollow towards the inside of the pelvis
        cu = side * (spine.a + length * math.cos(slope) * draws.uniform(0.8, 1.1))
        cv = spine.v - length * math.sin(slope) * draws.uniform(0.6, 0.9)
        direction = math.atan2(cv, cu)
        room = body.at("fat_inner", direction) - 10.0 * scale - math.hypot(cu, cv)
        if room < 0:
            continue
        canvas.blob("muscle", cu, cv, length * 1.1, thickness + draws.uniform(8.0, 16.0) * scale, angle,
                    inside_cavity=-3.0 * thickness, bend=bend)
        canvas.bone(cu, cv, length, thickness, angle, draws.uniform(1.5, 3.0) * scale, draws.wobble(0.05, 3),
                    bend=bend)
    spine.paint(canvas, draws)


def _great_vessels(canvas: _Canvas, draws: _Draws, spine: _Spine, scale: float) -> None:
    """The aorta (left, sometimes with a calcified wall) and inferior vena cava (right) in front of the spine."""
    radius = draws.uniform(8.0, 13.0) * scale
    cu, cv = draws.uniform(3.0, 12.0) * scale, spine.v - spine.b - radius - draws.uniform(0.0, 4.0) * scale
    canvas.blob("blood", cu, cv, radius, radius)
    if draws.chance(0.3):
        angle = draws.uniform(0, 2 * math.pi)
        size = draws.uniform(0.7, 1.4) * canvas.pixel_mm
        canvas.blob("calcification", cu + radius * math.cos(angle), cv + radius * math.sin(angle), size,
                    size * 0.7, angle + math.pi / 2, hu=draws.uniform(*_HU["calcification"]))
    canvas.blob("blood", -draws.uniform(18.0, 30.0) * scale, spine.v - spine.b - draws.uniform(8.0, 15.0) * scale,
                draws.uniform(9.0, 15.0) * scale, draws.uniform(7.0, 12.0) * scale, draws.uniform(-0.3, 0.3))


def _bowel(canvas: _Canvas, draws: _Draws, count: int, scale: float) -> None:
    """Bowel loops: a wall around gas, fluid or mixed contents (gas in front)."""
    for _ in range(count):
        cu, cv = canvas.point(draws, 0.05, 0.8)
        radius = draws.uniform(9.0, 24.0) * scale
        a, b, angle = radius, radius * draws.uniform(0.5, 1.0), draws.uniform(0, math.pi)
        found = canvas.shape(cu, cv, a, b, angle, 2.0, draws.wobble(0.1, 4))
        if found is None:
            continue
        window, r, outline = found
        inside = canvas.in_cavity(window, 1.0)
        canvas.put(window, (r <= outline) & inside, "bowel")
        content = (r <= outline - draws.uniform(1.5, 3.5) * scale) & inside
        kind = draws.uniform(0.0, 1.0)
        if kind < 0.35:
            canvas.put(window, content, "gas")
        elif kind < 0.75:
            canvas.put(window, content, "fluid", hu=draws.uniform(0.0, 30.0))
        else:
            gas = content & (canvas.v[window] < cv + b * draws.uniform(-0.6, 0.6))
            canvas.put(window, content & ~gas, "fluid", hu=draws.uniform(-20.0, 40.0))
            canvas.put(window, gas, "gas")


def _colon(canvas: _Canvas, draws: _Draws, body: _Body, scale: float) -> None:
    """Ascending and descending colon in the flanks, mostly gas."""
    for side in (-1.0, 1.0):
        if not draws.chance(0.6):
            continue
        direction = (0.0 if side > 0 else math.pi) + side * draws.uniform(-0.5, 0.3)
        radius = draws.uniform(14.0, 28.0) * scale
        distance = max(0.0, body.at("cavity", direction) - radius - draws.uniform(2.0, 10.0) * scale)
        cu, cv = distance * math.cos(direction), distance * math.sin(direction)
        canvas.blob("bowel", cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi),
                    draws.wobble(0.08, 4), inside_cavity=0.5)
        canvas.blob("gas", cu, cv, radius - 2.5 * scale, radius * 0.65, draws.uniform(0, math.pi),
                    draws.wobble(0.15, 5), inside_cavity=3.0, hu=draws.uniform(-1000.0, -600.0))


def _psoas(canvas: _Canvas, draws: _Draws, spine: _Spine, scale: float, size: float) -> None:
    for side in (-1.0, 1.0):
        radius = draws.uniform(12.0, 25.0) * scale * size
        canvas.blob("muscle", side * (spine.a + radius * 0.7), spine.v - spine.b * draws.uniform(0.0, 0.5),
                    radius, radius * draws.uniform(0.7, 1.0), side * draws.uniform(0.0, 0.6), draws.wobble(0.06, 3),
                    inside_cavity=0.0)


def _calcifications(canvas: _Canvas, draws: _Draws) -> None:
    """0–4 small dense dots of 1–3 pixels anywhere in the cavity."""
    for _ in range(draws.integer(0, 4)):
        cu, cv = canvas.point(draws, 0.0, 0.9)
        radius = draws.uniform(0.6, 1.4) * canvas.pixel_mm
        canvas.blob("calcification", cu, cv, radius, radius * draws.uniform(0.7, 1.0), draws.uniform(0, math.pi),
                    inside_cavity=0.0, hu=draws.uniform(*_HU["calcification"]))


# -- validation ----------------------------------------------------------------------
def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _positive_number(value: object, name: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be a number > 0 (mm), got {value!r}")
    return number


def _region_weights(regions: object) -> dict[str, float]:
    names = (regions,) if isinstance(regions, str) else regions
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"regions must be a sequence of {', '.join(map(repr, CT_SYNTHETIC_REGIONS))}, got "
                        f"{regions!r}") from None
    unknown = [name for name in names if name not in CT_SYNTHETIC_REGIONS]
    if not names or unknown:
        raise ValueError(
            f"regions must be a non-empty sequence of {', '.join(map(repr, CT_SYNTHETIC_REGIONS))}, got {regions!r}"
        )
    return {name: _REGION_WEIGHTS[name] for name in CT_SYNTHETIC_REGIONS if name in names}
