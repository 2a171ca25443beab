"""What to generate and how: conditioning plans from catalogues, and conditional DDIM sampling.

A :class:`GenerationPlan` lists, for every sample of an augmentation job, its
conditioning vector (37 Galaxy Zoo 2 vote fractions,
:data:`~invsolve.datasets.morphology.MORPHOLOGY`), the catalogue row it came
from and its seed.  Plans come from catalogue rows that match a query
(:func:`plan_from_query`), from per-class oversampling factors
(:func:`plan_from_oversampling`) or from explicit vectors
(:func:`plan_from_vectors`).  :func:`generate` draws the images.

Seeds and reproducibility
    Sample ``i`` of a job with seed ``s`` starts from noise drawn from its own
    generator, seeded from ``SeedSequence((s, i))``, and DDIM with ``η = 0``
    is deterministic after that (Song, Meng & Ermon, "Denoising Diffusion
    Implicit Models", ICLR 2021).  So a sample does not depend on which
    batch, shard or resumed run computes it — up to the floating-point
    effect of batch composition, none on CPU in float32 for equal batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.datasets.training import augment_image
from invsolve.samplers.diffusion import ddim_step

__all__ = [
    "GenerationPlan",
    "plan_from_query",
    "plan_from_oversampling",
    "plan_from_vectors",
    "parse_vector",
    "sample_seed",
    "check_galaxy_prior",
    "generate",
]


@dataclass(frozen=True)
class GenerationPlan:
    """Every sample of an augmentation job.

    Attributes
    ----------
    conditions : numpy.ndarray
        float32 ``(N, 37)`` vote-fraction vectors.
    source_rows : numpy.ndarray
        int64 ``(N,)``: the catalogue row of each condition, ``-1`` for explicit vectors.
    description : dict
        JSON-serialisable: how the plan was made (mode, query, factors, counts).
    """

    conditions: np.ndarray
    source_rows: np.ndarray
    description: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.conditions)


def sample_seed(seed: int, index: int) -> int:
    """The 63-bit seed of sample ``index`` of a job with seed ``seed`` (``SeedSequence((seed, index))``)."""
    high, low = np.random.SeedSequence((int(seed), int(index))).generate_state(2, np.uint32)
    return ((int(high) << 32) | int(low)) & ((1 << 63) - 1)


def _matching_rows(table: Any, query: str, select_rows: Any) -> np.ndarray:
    matches = np.flatnonzero(select_rows(table, query))
    if matches.size == 0:
        where = table.meta.get("path", "the catalogue")
        raise ValueError(f"--query {query!r} matches none of the {len(table)} rows of {where}")
    return matches


def plan_from_query(table: Any, query: str, n: int, *, seed: int = 0) -> GenerationPlan:
    """``n`` conditions from the catalogue rows that match ``query``, each row used as evenly as possible.

    The matching rows are shuffled (seeded) and cycled through, so every row
    is used ``⌊n/m⌋`` or ``⌈n/m⌉`` times for ``m`` matches.

    Parameters
    ----------
    table : astropy.table.Table
        A catalogue of :mod:`invsolve.datasets.galaxy_zoo` (a ``morphology`` column).
    query : str
        As :func:`~invsolve.datasets.galaxy_zoo.select_rows` takes it, e.g. ``"dust_lane>0.5"``.
    n : int
        Number of samples, ``>= 1``.
    seed : int
        Seed of the shuffle.
    """
    from invsolve.datasets.galaxy_zoo import select_rows

    n = check_int(n, "--n")
    matches = _matching_rows(table, query, select_rows)
    order = np.random.default_rng(np.random.SeedSequence((int(seed), 0xA06))).permutation(matches)
    rows = order[np.arange(n) % len(order)]
    conditions = MORPHOLOGY.check(np.asarray(table["morphology"])[rows], "the catalogue's morphology")
    description = {"mode": "query", "query": query, "matching_rows": int(len(matches)), "n": n}
    return GenerationPlan(conditions, rows.astype(np.int64), description)


def plan_from_oversampling(table: Any, factors: Mapping[str, int]) -> GenerationPlan:
    """Every row that matches a class query, repeated by that class's factor.

    Parameters
    ----------
    table : astropy.table.Table
        A catalogue with a ``morphology`` column.
    factors : mapping
        ``{query: factor}``, e.g. ``{"dust_lane>0.5": 10, "merger>0.5": 2}``
        (factors ``>= 1``); rows are taken in catalogue order, class by class.
    """
    from invsolve.datasets.galaxy_zoo import select_rows

    if not factors:
        raise ValueError("oversampling needs at least one QUERY:FACTOR rule")
    rows, counts = [], {}
    for query, factor in factors.items():
        factor = check_int(factor, f"the oversampling factor of {query!r}")
        matches = _matching_rows(table, query, select_rows)
        rows.append(np.repeat(matches, factor))
        counts[query] = {"matching_rows": int(len(matches)), "factor": factor, "samples": int(len(matches) * factor)}
    chosen = np.concatenate(rows).astype(np.int64)
    conditions = MORPHOLOGY.check(np.asarray(table["morphology"])[chosen], "the catalogue's morphology")
    return GenerationPlan(conditions, chosen, {"mode": "oversample", "classes": counts, "n": int(len(chosen))})


def parse_vector(text: str) -> np.ndarray:
    """A morphology vector from ``"name=value,name=value"`` (answer names of :data:`MORPHOLOGY`; others 0).

    >>> parse_vector("smooth=0.9, odd.yes=0.8, dust_lane=0.7")[MORPHOLOGY.index("dust_lane")]
    0.7
    """
    values = {}
    for part in (piece.strip() for piece in text.split(",")):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--vector expects name=value pairs separated by commas, got {part!r} in {text!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--vector: the value of {name.strip()!r} must be a number, got {value.strip()!r}") from None
    return MORPHOLOGY.check(MORPHOLOGY.vector(values), f"--vector {text!r}")


def plan_from_vectors(vectors: np.ndarray, n: int) -> GenerationPlan:
    """``n`` samples cycling through explicit vectors ``(M, 37)`` (vector ``i % M`` for sample ``i``)."""
    n = check_int(n, "--n")
    vectors = MORPHOLOGY.check(np.atleast_2d(np.asarray(vectors, dtype=np.float32)), "the vectors")
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"the vectors must be shaped (M, {len(MORPHOLOGY)}) with M >= 1, got {vectors.shape}")
    conditions = vectors[np.arange(n) % len(vectors)]
    return GenerationPlan(conditions, np.full(n, -1, dtype=np.int64), {"mode": "vectors", "vectors": len(vectors),
                                                                         "n": n})


def check_galaxy_prior(prior: Any, name: str = "--prior") -> None:
    """Refuse a prior that is not conditioned on the 37-entry morphology vector."""
    conditioning = getattr(prior, "conditioning", None)
    if conditioning is None or conditioning.kind != "vector" or conditioning.size != len(MORPHOLOGY):
        got = "an unconditional prior" if conditioning is None else f"a prior conditioned on {conditioning}"
        raise ValueError(
            f"{name} must be a prior conditioned on the {len(MORPHOLOGY)} Galaxy Zoo 2 vote fractions "
            f"(vector conditioning of size {len(MORPHOLOGY)}, e.g. the embedded 'galaxy-cond'), got {got}"
        )


@torch.no_grad()
def generate(
    prior: Any,
    conditions: np.ndarray | torch.Tensor,
    seeds: Sequence[int],
    *,
    steps: int = 50,
    guidance_scale: float | None = None,
    flip: bool = False,
    rot90: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """Draw one image per condition with deterministic DDIM (``η = 0``) and classifier-free guidance.

    Parameters
    ----------
    prior : UNetPrior
        Conditioned on morphology vectors (:func:`check_galaxy_prior`).
    conditions : array-like
        float32 ``(B, 37)`` vote fractions.
    seeds : sequence of int
        One seed per image (:func:`sample_seed`): its initial noise, and its
        flips and rotation.
    steps : int
        DDIM steps (network calls per image, doubled by guidance).
    guidance_scale : float, optional
        Classifier-free guidance weight ``w >= 0`` (Ho & Salimans 2022);
        default: the prior's own.
    flip, rot90 : bool
        Apply the training augmentation (:func:`~invsolve.datasets.training.augment_image`)
        to each image, drawn from its seed; morphology is unchanged by it.
    progress : bool
        A progress bar over the steps.

    Returns
    -------
    torch.Tensor
        ``(B, *prior.image_shape)`` in the prior's physical units, on the CPU.
    """
    check_galaxy_prior(prior)
    conditions = torch.as_tensor(conditions).detach().cpu().numpy()
    conditions = torch.as_tensor(MORPHOLOGY.check(conditions, "conditions")).to(prior.device)
    if conditions.dim() != 2 or len(conditions) != len(seeds):
        raise ValueError(f"conditions must be shaped (B, 37) with one seed per row, got {tuple(conditions.shape)} "
                         f"and {len(seeds)} seeds")
    steps = check_int(steps, "steps")
    saved = prior.guidance_scale
    if guidance_scale is not None:
        prior.guidance_scale = guidance_scale
    try:
        noise = [torch.randn(prior.image_shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds]
        sigma_max = float(prior.schedule.alpha_sigma(torch.tensor(1.0, dtype=torch.float64))[1])
        x = sigma_max * torch.stack(noise).to(device=prior.device, dtype=prior.dtype)  # as initial_noise, per seed
        for t, s in tqdm(prior.schedule.reverse_steps(steps), desc="generating", disable=not progress, leave=False):
            x0_hat, eps_hat = prior.predict(x, t, conditions)
            x = ddim_step(prior, x0_hat, eps_hat, s, t, 0.0, None)
    finally:
        prior.guidance_scale = saved
    images = prior.to_physical(x).float().cpu()
    if flip or rot90:
        images = torch.stack([
            augment_image(image, torch.Generator().manual_seed(int(seed) ^ 0x5EED), flip=flip, rot90=rot90)
            for image, seed in zip(images, seeds)
        ])
    return images
