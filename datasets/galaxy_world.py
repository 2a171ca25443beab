"""A synthetic galaxy world: rendered galaxies with known Galaxy Zoo 2 morphology vectors.

For tests, demos and the embedded ``galaxy-cond`` prior, where real labelled
galaxies cannot be shipped: each galaxy is drawn from a seed as a set of
physical components (:class:`GalaxyParameters`), rendered into a sky stamp
(:func:`render_galaxy`) and labelled with the vote fractions that Galaxy Zoo 2
volunteers would plausibly give it (:func:`morphology_of`, in the
:data:`~invsolve.datasets.morphology.MORPHOLOGY` schema).  Classes come at
frequencies the caller chooses, so that a rare class (a dust-lane early-type
galaxy at 2 %, the class whose detections Chen et al. 2026, ApJS 282:25,
doubled with generative augmentation) can be studied.

Components (sizes in arcsec, the pixel scale SDSS's 0.396″)
    * bulge: Sérsic profile (index 2.5–4.5), its own axis ratio;
    * disk: inclined exponential disk with a scale height (galsim's
      ``InclinedExponential``; edge-on at inclination ≥ 80°);
    * bar: a flat Sérsic (n = 0.5) ellipse through the centre;
    * spiral arms: a logarithmic spiral density wave (``m`` arms, pitch
      angle ψ) modulating the disk in its own plane;
    * ring: a Gaussian ring in the disk plane;
    * dust lane: an absorbing band (transmission ``1 − τ·exp(−d²/2w²)``)
      applied before the PSF, along the major axis of an early-type host;
    * merger: a second galaxy (Sérsic) at 1–2.5 half-light radii with a
      tidal tail; knots: star-forming clumps following the disk
      (galsim's ``RandomKnots``);
    * PSF: Moffat (β = 3) of FWHM 1.0–1.6″, then Gaussian sky noise.

Rendering
    With ``galsim`` installed (the optional extra ``invsolve[galaxy]``) the
    Sérsic, inclined-disk and knot profiles, the PSF convolution and the
    pixel integration are galsim's (Rowe et al., "GalSim: The modular galaxy
    image simulation toolkit", Astronomy & Computing 10, 121, 2015).  The
    fallback uses ``astropy.modeling.models.Sersic2D`` on a 3× oversampled
    grid, a thick-disk approximation of the inclined disk, Gaussian knots and
    an FFT convolution with a Moffat kernel.  The arms, ring and dust patterns
    are evaluated on that grid by one function in both cases (galsim has no
    spiral, ring or absorption profiles).  The two renderers give the same
    galaxy for a seed to within 12 % of its flux (summed absolute
    difference), not bit for bit.

Units
    Every stamp is scaled so that its noise-free peak pixel is 1 (a fixed
    stretch, like the 8-bit cutouts volunteers classified); the sky noise is
    Gaussian with standard deviation ``noise`` (0.01–0.03 of the peak).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .morphology import MORPHOLOGY

__all__ = [
    "GALAXY_CLASSES",
    "DEFAULT_CLASS_FREQUENCIES",
    "PIXEL_SCALE",
    "SPLITS",
    "RENDERERS",
    "GalaxyParameters",
    "random_galaxy",
    "render_galaxy",
    "morphology_of",
    "psf_image",
    "class_frequencies",
    "galaxy_world",
]

#: Classes of the rendered world, in label order.
GALAXY_CLASSES: tuple[str, ...] = (
    "smooth_round", "smooth_cigar", "edge_on", "spiral", "barred_spiral", "ring", "merger", "dust_lane"
)
#: Class frequencies of the default world: the dust-lane early type is the rare class (2 %).
DEFAULT_CLASS_FREQUENCIES: dict[str, float] = {
    "smooth_round": 0.22, "smooth_cigar": 0.14, "edge_on": 0.14, "spiral": 0.22, "barred_spiral": 0.12,
    "ring": 0.07, "merger": 0.07, "dust_lane": 0.02,
}
#: Pixel scale of the stamps, arcsec (SDSS).
PIXEL_SCALE = 0.396
#: First seed of each split of the world: the prior and the "real" classifier data are drawn
#: from ``train``, settings are tuned on ``validation``, results are reported on ``test``.
SPLITS: dict[str, int] = {"train": 0, "validation": 500_000, "test": 1_000_000}
#: Renderers: ``"auto"`` is galsim when it is installed, else astropy.
RENDERERS = ("auto", "galsim", "astropy")
_OVERSAMPLE = 3
_MOFFAT_BETA = 3.0  # the PSF's power-law index
_KNOT_SIGMA = 0.25  # arcsec: the size of a star-forming clump


@dataclass(frozen=True)
class GalaxyParameters:
    """The physical description of one rendered galaxy (angles in degrees, sizes in arcsec).

    Fluxes are fractions of the total light before the dust; ``noise`` is
    the sky noise relative to the stamp's noise-free peak.
    """

    galaxy_class: str
    bulge_fraction: float
    bulge_radius: float
    bulge_index: float
    bulge_axis_ratio: float
    disk_radius: float
    inclination: float
    position_angle: float
    bar_strength: float = 0.0
    bar_length: float = 0.0
    arms: int = 0
    pitch_angle: float = 0.0
    arm_amplitude: float = 0.0
    ring_radius: float = 0.0
    ring_fraction: float = 0.0
    dust_opacity: float = 0.0
    dust_width: float = 0.0
    companion_fraction: float = 0.0
    companion_distance: float = 0.0
    companion_angle: float = 0.0
    knots: int = 0
    knot_fraction: float = 0.0
    psf_fwhm: float = 1.3
    noise: float = 0.02
    votes: dict[str, float] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable record; ``GalaxyParameters(**config)`` rebuilds it."""
        return asdict(self)


def class_frequencies(frequencies: Mapping[str, float] | None = None) -> np.ndarray:
    """Normalised class probabilities ``(len(GALAXY_CLASSES),)`` from ``{class: weight}``.

    Classes not named get weight 0; ``None`` gives :data:`DEFAULT_CLASS_FREQUENCIES`.
    """
    frequencies = DEFAULT_CLASS_FREQUENCIES if frequencies is None else frequencies
    if not isinstance(frequencies, Mapping):
        raise TypeError(f"frequencies must be a mapping {{class: weight}}, got {type(frequencies).__name__}")
    unknown = sorted(set(frequencies) - set(GALAXY_CLASSES))
    if unknown:
        raise ValueError(f"unknown galaxy class(es) {unknown}; expected names from {', '.join(GALAXY_CLASSES)}")
    weights = np.array([float(frequencies.get(name, 0.0)) for name in GALAXY_CLASSES])
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"class frequencies must be finite, >= 0 and not all 0, got {dict(frequencies)}")
    return weights / weights.sum()


def random_galaxy(
    seed: int, galaxy_class: str | None = None, frequencies: Mapping[str, float] | None = None
) -> GalaxyParameters:
    """Draw one galaxy from a seed: its class (unless given), components and vote fractions.

    Parameters
    ----------
    seed : int
        ``>= 0``; the same seed gives the same galaxy.
    galaxy_class : str, optional
        One of :data:`GALAXY_CLASSES`; drawn from ``frequencies`` otherwise.
    frequencies : mapping, optional
        Class weights (:func:`class_frequencies`).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence((int(seed), 0x6A1A)))
    probabilities = class_frequencies(frequencies)
    drawn = GALAXY_CLASSES[int(rng.choice(len(GALAXY_CLASSES), p=probabilities))]
    if galaxy_class is None:
        galaxy_class = drawn
    elif galaxy_class not in GALAXY_CLASSES:
        raise ValueError(f"unknown galaxy class {galaxy_class!r}; expected one of {', '.join(GALAXY_CLASSES)}")
    u = rng.uniform
    common = {
        "galaxy_class": galaxy_class,
        "position_angle": u(0, 180),
        "psf_fwhm": u(1.0, 1.6),
        "noise": u(0.01, 0.03),
        "bulge_radius": u(0.8, 2.0),
        "bulge_index": u(2.5, 4.5),
        "disk_radius": u(2.0, 3.6),
    }
    early = {"bulge_fraction": 1.0, "inclination": 0.0}
    if galaxy_class == "smooth_round":
        parameters = {**common, **early, "bulge_axis_ratio": u(0.75, 1.0), "bulge_radius": u(1.2, 3.0)}
    elif galaxy_class == "smooth_cigar":
        parameters = {**common, **early, "bulge_axis_ratio": u(0.25, 0.45), "bulge_radius": u(1.5, 3.2)}
    elif galaxy_class == "dust_lane":
        parameters = {**common, **early, "bulge_axis_ratio": u(0.4, 0.8), "bulge_radius": u(2.5, 4.0),
                      "bulge_index": u(2.0, 3.5), "dust_opacity": u(0.85, 0.97), "dust_width": u(0.8, 1.3)}
    elif galaxy_class == "edge_on":
        dusty = rng.uniform() < 0.3
        parameters = {**common, "bulge_fraction": u(0.0, 0.4), "bulge_axis_ratio": u(0.6, 0.9),
                      "inclination": u(82, 90), "disk_radius": u(2.2, 3.6),
                      "dust_opacity": u(0.2, 0.5) if dusty else 0.0, "dust_width": u(0.2, 0.35) if dusty else 0.0}
    elif galaxy_class == "merger":
        parameters = {**common, "bulge_fraction": u(0.3, 0.9), "bulge_axis_ratio": u(0.5, 1.0),
                      "inclination": u(0, 70), "companion_fraction": u(0.25, 0.6),
                      "companion_distance": u(2.5, 6.0), "companion_angle": u(0, 360),
                      "knots": int(rng.integers(0, 12)), "knot_fraction": u(0.0, 0.1)}
    else:  # the disk classes: spiral, barred_spiral, ring
        barred = galaxy_class == "barred_spiral" or (galaxy_class == "ring" and rng.uniform() < 0.5)
        parameters = {**common, "bulge_fraction": u(0.05, 0.45), "bulge_axis_ratio": u(0.7, 1.0),
                      "inclination": u(0, 60), "arms": int(rng.choice([1, 2, 2, 2, 3, 4, 5])),
                      "pitch_angle": u(8, 35), "arm_amplitude": u(0.5, 0.95),
                      "knots": int(rng.integers(5, 30)), "knot_fraction": u(0.03, 0.15)}
        if barred:
            parameters.update(bar_strength=u(0.15, 0.35), bar_length=u(1.5, 2.5) * parameters["bulge_radius"])
        if galaxy_class == "ring":
            parameters.update(arm_amplitude=u(0.0, 0.3), ring_radius=u(1.2, 2.0) * parameters["disk_radius"],
                              ring_fraction=u(0.35, 0.55))
    parameters["votes"] = _votes(parameters, rng)
    return GalaxyParameters(**parameters)


def _soft(rng: np.random.Generator, names: Sequence[str], favoured: int, confidence: float) -> dict[str, float]:
    """Vote fractions over ``names``: ``confidence`` ± a little on one answer, the rest spread at random."""
    share = float(np.clip(confidence + rng.normal(0, 0.05), 0.5, 0.98))
    rest = rng.dirichlet(np.ones(len(names) - 1)) * (1 - share)
    values = np.insert(rest, favoured, share)
    return dict(zip(names, values.tolist()))


def _votes(p: Mapping[str, Any], rng: np.random.Generator) -> dict[str, float]:
    """Plausible GZ2 vote fractions (qualified names) for a galaxy's components."""
    kind = p["galaxy_class"]
    votes: dict[str, float] = {}
    disk = kind in ("edge_on", "spiral", "barred_spiral", "ring") or (kind == "merger" and p["inclination"] > 0
                                                                       and p["bulge_fraction"] < 0.6)
    votes.update(_soft(rng, ["smooth_or_features.smooth", "smooth_or_features.features_or_disk",
                             "smooth_or_features.star_or_artifact"], 1 if disk else 0, 0.85))
    odd = kind in ("ring", "merger", "dust_lane")
    votes.update(_soft(rng, ["odd.yes", "odd.no"], 0 if odd else 1, 0.85 if odd else 0.9))
    if odd:
        features = ["ring", "lens_or_arc", "disturbed", "irregular", "other", "merger", "dust_lane"]
        favoured = {"ring": 0, "merger": 5, "dust_lane": 6}[kind]
        votes.update(_soft(rng, [f"odd_feature.{f}" for f in features], favoured, 0.75))
    if not disk:
        q = p["bulge_axis_ratio"]
        roundness = 0 if q > 0.75 else (2 if q < 0.45 else 1)
        votes.update(_soft(rng, ["rounded.completely_round", "rounded.in_between", "rounded.cigar_shaped"],
                           roundness, 0.8))
        return votes
    edge_on = p["inclination"] >= 80
    votes.update(_soft(rng, ["edgeon.yes", "edgeon.no"], 0 if edge_on else 1, 0.9))
    if edge_on:
        shape = 2 if p["bulge_fraction"] < 0.1 else (0 if p["bulge_fraction"] < 0.3 else 1)
        votes.update(_soft(rng, ["bulge_shape.rounded", "bulge_shape.boxy", "bulge_shape.no_bulge"], shape, 0.75))
        return votes
    votes.update(_soft(rng, ["bar.bar", "bar.no_bar"], 0 if p.get("bar_strength", 0) > 0 else 1, 0.8))
    spiral = p.get("arm_amplitude", 0) >= 0.4 and p.get("arms", 0) > 0
    votes.update(_soft(rng, ["spiral.spiral", "spiral.no_spiral"], 0 if spiral else 1, 0.85))
    prominence = min(3, int(p["bulge_fraction"] / 0.15))
    votes.update(_soft(rng, ["bulge_prominence.no_bulge", "bulge_prominence.just_noticeable",
                             "bulge_prominence.obvious", "bulge_prominence.dominant"], prominence, 0.7))
    if spiral:
        winding = 0 if p["pitch_angle"] < 15 else (1 if p["pitch_angle"] < 25 else 2)
        votes.update(_soft(rng, ["arms_winding.tight", "arms_winding.medium", "arms_winding.loose"], winding, 0.7))
        number = {1: 0, 2: 1, 3: 2, 4: 3}.get(p["arms"], 4)
        votes.update(_soft(rng, [f"arms_number.{a}" for a in ("1", "2", "3", "4", "more_than_4", "cant_tell")],
                           number, 0.7))
    return votes


def morphology_of(parameters: GalaxyParameters) -> np.ndarray:
    """The galaxy's GZ2 morphology vector, float32 ``(37,)`` (per-task vote fractions)."""
    return MORPHOLOGY.vector(parameters.votes)


# -- rendering ----------------------------------------------------------------------------
def _disk_plane(parameters: GalaxyParameters, size: int, scale: float) -> tuple[np.ndarray, ...]:
    """Sky coordinates ``(x, y)`` (arcsec, major axis along x) and disk-plane radius and azimuth."""
    axis = (np.arange(size) - (size - 1) / 2) * scale
    y_sky, x_sky = np.meshgrid(axis, axis, indexing="ij")
    angle = math.radians(parameters.position_angle)
    x = x_sky * math.cos(angle) + y_sky * math.sin(angle)
    y = -x_sky * math.sin(angle) + y_sky * math.cos(angle)
    cos_i = max(math.cos(math.radians(parameters.inclination)), 0.05)
    radius = np.hypot(x, y / cos_i)
    return x, y, radius, np.arctan2(y / cos_i, x)


def _patterns(parameters: GalaxyParameters, disk: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, ...]:
    """Spiral modulation of the disk, the ring, and the dust transmission, on the fine grid.

    The arms are the density wave ``((1 + cos(m(θ − cot ψ · ln r)))/2)³``
    (a logarithmic spiral of pitch ψ), mixed into the disk with weight
    ``arm_amplitude`` and faded in over the bulge; they redistribute, not
    add, the disk's light.
    """
    x, y, radius, azimuth = _disk_plane(parameters, size, scale)
    arms_disk = disk
    if parameters.arms and parameters.arm_amplitude > 0:
        winding = 1.0 / math.tan(math.radians(parameters.pitch_angle))
        phase = parameters.arms * (azimuth - winding * np.log(np.maximum(radius, 1e-3) / parameters.disk_radius))
        wave = ((1 + np.cos(phase)) / 2) ** 3
        fade = 1 - np.exp(-((radius / (1.5 * parameters.bulge_radius)) ** 2))
        weight = parameters.arm_amplitude * fade
        arms_disk = disk * ((1 - weight) + weight * wave / 0.3125)  # mean of the wave over a turn: 5/16
        arms_disk *= disk.sum() / max(arms_disk.sum(), 1e-30)
    ring = np.zeros_like(disk)
    if parameters.ring_fraction > 0:
        ring = np.exp(-0.5 * ((radius - parameters.ring_radius) / (0.12 * parameters.ring_radius)) ** 2)
        ring /= ring.sum()
    transmission = np.ones_like(disk)
    if parameters.dust_opacity > 0:
        extent = np.exp(-0.5 * (x / (2.5 * max(parameters.bulge_radius, parameters.disk_radius))) ** 2)
        transmission = 1 - parameters.dust_opacity * extent * np.exp(-0.5 * (y / parameters.dust_width) ** 2)
    return arms_disk, ring, transmission


def _components_galsim(parameters: GalaxyParameters, size: int, scale: float, seed: int) -> dict[str, np.ndarray]:
    """Bulge, disk, bar, knot and companion images on the fine grid, each of unit flux, drawn by galsim."""
    import galsim

    def draw(profile: Any) -> np.ndarray:
        image = profile.drawImage(nx=size, ny=size, scale=scale, method="no_pixel").array.astype(np.float64)
        return image / max(image.sum(), 1e-30)

    angle = parameters.position_angle * galsim.degrees
    bulge = galsim.Sersic(parameters.bulge_index, half_light_radius=parameters.bulge_radius)
    images = {"bulge": draw(bulge.shear(q=parameters.bulge_axis_ratio, beta=angle))}
    disk = galsim.InclinedExponential(parameters.inclination * galsim.degrees, scale_radius=parameters.disk_radius,
                                      scale_h_over_r=0.1)
    images["disk"] = draw(disk.rotate(angle))
    if parameters.bar_strength > 0:
        bar = galsim.Sersic(0.5, half_light_radius=parameters.bar_length / 2).shear(q=0.25, beta=angle + 50 *
                                                                                      galsim.degrees)
        images["bar"] = draw(bar)
    if parameters.knots:
        knots = galsim.RandomKnots(parameters.knots, half_light_radius=1.2 * parameters.disk_radius,
                                   rng=galsim.BaseDeviate(seed + 1))
        knots = knots.shear(q=max(math.cos(math.radians(parameters.inclination)), 0.2), beta=angle)
        images["knots"] = draw(galsim.Convolve(knots, galsim.Gaussian(sigma=_KNOT_SIGMA)))  # clumps, not points
    if parameters.companion_fraction > 0:
        images["companion"] = draw(_companion(parameters, galsim))
    return images


def _companion(parameters: GalaxyParameters, galsim: Any) -> Any:
    """The merger's second galaxy with a tidal tail (galsim)."""
    theta = math.radians(parameters.companion_angle)
    dx, dy = parameters.companion_distance * math.cos(theta), parameters.companion_distance * math.sin(theta)
    body = galsim.Sersic(2.0, half_light_radius=0.7 * parameters.bulge_radius).shift(dx, dy)
    tail = galsim.Gaussian(sigma=0.6 * parameters.companion_distance).shear(q=0.2, beta=theta * galsim.radians)
    return galsim.Add([body.withFlux(0.8), tail.shift(dx / 2, dy / 2).withFlux(0.2)])


def _components_astropy(parameters: GalaxyParameters, size: int, scale: float, seed: int) -> dict[str, np.ndarray]:
    """The same components with ``astropy.modeling`` Sérsic profiles and Gaussian knots (no galsim)."""
    from astropy.modeling.models import Gaussian2D, Sersic2D

    axis = (np.arange(size) - (size - 1) / 2) * scale
    y, x = np.meshgrid(axis, axis, indexing="ij")
    angle = math.radians(parameters.position_angle)

    def unit(image: np.ndarray) -> np.ndarray:
        return image / max(image.sum(), 1e-30)

    cos_i = max(math.cos(math.radians(parameters.inclination)), 0.1)
    images = {
        "bulge": unit(Sersic2D(1.0, parameters.bulge_radius, parameters.bulge_index,
                               ellip=1 - parameters.bulge_axis_ratio, theta=angle)(x, y)),
        "disk": unit(Sersic2D(1.0, 1.678 * parameters.disk_radius, 1.0, ellip=1 - cos_i, theta=angle)(x, y)),
    }
    if parameters.bar_strength > 0:
        images["bar"] = unit(Sersic2D(1.0, parameters.bar_length / 2, 0.5, ellip=0.75,
                                      theta=angle + math.radians(50))(x, y))
    if parameters.knots:
        rng = np.random.default_rng(seed + 1)
        radii = rng.exponential(parameters.disk_radius, parameters.knots)
        phases = rng.uniform(0, 2 * math.pi, parameters.knots)
        u, v = radii * np.cos(phases), radii * np.sin(phases) * cos_i
        centres = zip(u * math.cos(angle) - v * math.sin(angle), u * math.sin(angle) + v * math.cos(angle))
        images["knots"] = unit(sum(Gaussian2D(1.0, cx, cy, _KNOT_SIGMA, _KNOT_SIGMA)(x, y) for cx, cy in centres))
    if parameters.companion_fraction > 0:
        theta = parameters.companion_angle * math.pi / 180
        dx, dy = parameters.companion_distance * math.cos(theta), parameters.companion_distance * math.sin(theta)
        body = unit(Sersic2D(1.0, 0.7 * parameters.bulge_radius, 2.0, x_0=dx, y_0=dy)(x, y))
        tail_sigma = 0.6 * parameters.companion_distance
        tail = unit(Gaussian2D(1.0, dx / 2, dy / 2, tail_sigma, 0.2 * tail_sigma, theta=theta)(x, y))
        images["companion"] = 0.8 * body + 0.2 * tail
    return images


def _moffat_alpha(fwhm: float, pixel: float) -> float:
    """The Moffat core width α in pixels of size ``pixel`` for a FWHM in arcsec: FWHM = 2α√(2^(1/β) − 1)."""
    return fwhm / pixel / (2 * math.sqrt(2 ** (1 / _MOFFAT_BETA) - 1))


def _psf_and_pixels(light: np.ndarray, parameters: GalaxyParameters, size: int, renderer: str) -> np.ndarray:
    """Convolve the fine-grid light with the Moffat PSF and integrate into ``size``² pixels."""
    fine_scale = PIXEL_SCALE / _OVERSAMPLE
    if renderer == "galsim":
        import galsim

        image = galsim.InterpolatedImage(galsim.Image(light, scale=fine_scale), flux=float(light.sum()))
        psf = galsim.Moffat(beta=_MOFFAT_BETA, fwhm=parameters.psf_fwhm)
        return galsim.Convolve(image, psf).drawImage(nx=size, ny=size, scale=PIXEL_SCALE).array.astype(np.float64)
    from astropy.convolution import Moffat2DKernel, convolve_fft

    alpha = _moffat_alpha(parameters.psf_fwhm, fine_scale)
    kernel = Moffat2DKernel(alpha, _MOFFAT_BETA, x_size=int(8 * alpha) | 1)
    blurred = convolve_fft(light, kernel, normalize_kernel=True, boundary="fill")
    return blurred.reshape(size, _OVERSAMPLE, size, _OVERSAMPLE).sum(axis=(1, 3))


def render_galaxy(
    parameters: GalaxyParameters, size: int = 64, *, seed: int = 0, renderer: str = "auto", noise: bool = True
) -> np.ndarray:
    """Render a galaxy into a sky stamp.

    Parameters
    ----------
    parameters : GalaxyParameters
        From :func:`random_galaxy`.
    size : int
        Stamp side in pixels of :data:`PIXEL_SCALE` arcsec (``>= 16``).
    seed : int
        Seed of the knots and the sky noise.
    renderer : {"auto", "galsim", "astropy"}
        galsim (the optional extra) or the astropy fallback (module docstring).
    noise : bool
        Add the Gaussian sky noise (``parameters.noise``).

    Returns
    -------
    numpy.ndarray
        float32 ``(1, size, size)``: flux with the noise-free peak pixel at 1.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    if renderer == "auto":
        renderer = "galsim" if _has_galsim() else "astropy"
    elif renderer == "galsim" and not _has_galsim():
        raise ImportError('renderer "galsim" needs galsim: pip install "invsolve[galaxy]" (or use renderer="astropy")')
    fine, fine_scale = size * _OVERSAMPLE, PIXEL_SCALE / _OVERSAMPLE
    draw = _components_galsim if renderer == "galsim" else _components_astropy
    parts = draw(parameters, fine, fine_scale, seed)
    disk, ring, transmission = _patterns(parameters, parts["disk"], fine, fine_scale)
    zero = np.zeros_like(disk)
    p = parameters
    disk_light = (1 - p.ring_fraction - p.knot_fraction) * disk + p.ring_fraction * ring
    disk_light = disk_light + p.knot_fraction * parts.get("knots", zero)
    host = (1 - p.bar_strength) * (p.bulge_fraction * parts["bulge"] + (1 - p.bulge_fraction) * disk_light)
    host = host + p.bar_strength * parts.get("bar", zero)
    light = ((1 - p.companion_fraction) * host + p.companion_fraction * parts.get("companion", zero)) * transmission
    image = _psf_and_pixels(light, parameters, size, renderer)
    image /= max(float(image.max()), 1e-30)
    if noise:
        rng = np.random.default_rng(np.random.SeedSequence((int(seed), 0x5C7)))
        image = image + rng.normal(0.0, parameters.noise, image.shape)
    return image.astype(np.float32)[None]


def psf_image(fwhm: float = 1.3, size: int = 15) -> np.ndarray:
    """The world's PSF (Moffat, β = 3) of FWHM ``fwhm`` arcsec on a ``size``² grid of stamp pixels, sum 1.

    The typical PSF of the stamps (their FWHM is drawn from 1.0–1.6″), for
    measurements that model it, such as statmorph's Sérsic fit.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 3, got {size!r}")
    alpha = _moffat_alpha(fwhm, PIXEL_SCALE)
    axis = np.arange(size) - size // 2
    radius2 = axis[:, None] ** 2 + axis[None, :] ** 2
    kernel = (1 + radius2 / alpha**2) ** -_MOFFAT_BETA
    return (kernel / kernel.sum()).astype(np.float64)


def _has_galsim() -> bool:
    try:
        import galsim  # noqa: F401
    except ImportError:
        return False
    return True


def galaxy_world(
    count: int,
    *,
    size: int = 64,
    seed: int = 0,
    frequencies: Mapping[str, float] | None = None,
    galaxy_class: str | None = None,
    renderer: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``count`` galaxies of seeds ``seed … seed + count − 1``.

    Returns
    -------
    images : numpy.ndarray
        float32 ``(count, 1, size, size)`` (:func:`render_galaxy`).
    morphology : numpy.ndarray
        float32 ``(count, 37)`` vote fractions (:func:`morphology_of`).
    labels : numpy.ndarray
        int64 ``(count,)`` indices into :data:`GALAXY_CLASSES`.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    images = np.zeros((count, 1, size, size), dtype=np.float32)
    morphology = np.zeros((count, len(MORPHOLOGY)), dtype=np.float32)
    labels = np.zeros(count, dtype=np.int64)
    for number in range(count):
        parameters = random_galaxy(seed + number, galaxy_class, frequencies)
        images[number] = render_galaxy(parameters, size, seed=seed + number, renderer=renderer)
        morphology[number] = morphology_of(parameters)
        labels[number] = GALAXY_CLASSES.index(parameters.galaxy_class)
    return images, morphology, labels
