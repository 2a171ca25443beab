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

This module imports neither operators nor priors.  The drawing kit (random
draws, tissue table, body outline, canvas) is in :mod:`._ct_canvas`, the
spine and the three regions' anatomy in :mod:`._ct_anatomy`.

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

import torch
import torch.nn.functional as F

from invsolve._checks import check_int, check_range, check_shape

from ._ct_anatomy import Spine, abdomen, calcifications, pelvis, thorax
from ._ct_canvas import PROFILE_ANGLES, Body, Canvas, Draws, Palette, gaussian_field, slice_generator

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
        draws = Draws(slice_generator(seed, index, _ANATOMY_STREAM))
        noise = slice_generator(seed, index, _TEXTURE_STREAM)
        slices[offset, 0] = _render_slice(
            draws, noise, rows, cols, factor, pixel_mm, fill_range, weights, contrast, texture
        )
    return slices


# -- one slice -----------------------------------------------------------------------
def _render_slice(
    draws: Draws, noise: torch.Generator, rows: int, cols: int, factor: int, pixel_mm: float | None,
    fill_range: tuple[float, float] | None, weights: dict[str, float], contrast: float, texture: float,
) -> torch.Tensor:
    region = draws.choice(weights)
    scale = draws.uniform(0.55, 0.85) if draws.chance(0.1) else 1.0
    body = Body(draws, region, scale)
    tilt = math.radians(draws.uniform(-8.0, 8.0))
    palette = Palette(draws, draws.chance(contrast), draws.uniform(0.5, 1.5))

    # The view: the body's extent in image axes (from its outline) sets the pixel size for a fill.
    angles = torch.arange(PROFILE_ANGLES, dtype=torch.float64) * (2 * math.pi / PROFILE_ANGLES) - math.pi
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
    canvas = Canvas(rows, cols, factor, pixel_mm, (shifts[0], shifts[1]), tilt, palette, body)

    # Skin, fat, muscle, cavity: radial layers about the body's centre.
    full = (slice(None), slice(None))
    canvas.put(full, canvas.radius <= canvas.outer, "skin")
    canvas.put(full, canvas.radius <= canvas.outer - body.skin, "fat")
    canvas.put(full, canvas.radius <= canvas.fat_inner, "muscle")
    canvas.put(full, canvas.in_cavity(full), "fat")

    spine = Spine(draws, body, region, scale)
    if region == "thorax":
        thorax(canvas, draws, noise, body, spine, scale)
    elif region == "abdomen":
        abdomen(canvas, draws, noise, body, spine, scale)
    else:
        pelvis(canvas, draws, body, spine, scale)
    calcifications(canvas, draws)

    hu = F.avg_pool2d(canvas.hu[None, None], factor)[0, 0]
    if texture > 0:
        fine = F.avg_pool2d(canvas.fine[None, None], factor)[0, 0]
        coarse = F.avg_pool2d(canvas.coarse[None, None], factor)[0, 0]
        hu = hu + texture * (
            fine * gaussian_field(noise, rows, cols, draws.uniform(0.6, 1.5))
            + coarse * gaussian_field(noise, rows, cols, draws.uniform(2.0, 5.0))
        )
    return hu.clamp_(*CT_SYNTHETIC_HU_RANGE)



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
