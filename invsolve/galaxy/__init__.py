"""Galaxy morphology augmentation: conditional generation, its evaluation and its statistics.

A small diffusion prior conditioned on the Galaxy Zoo 2 morphology vector
(:data:`invsolve.datasets.morphology.MORPHOLOGY`) generates galaxies of chosen
morphologies, after Chen et al., "Can AI Dream of Unseen Galaxies? Conditional
Diffusion Model for Galaxy Morphology Augmentation" (ApJS 282:25, 2026,
arXiv:2506.16233), with a 37-number vector in place of their text captions.

Modules
-------
:mod:`.generation`
    Conditioning plans from catalogue queries, oversampling factors or explicit
    vectors, and conditional DDIM generation with classifier-free guidance.
:mod:`.augment`
    The ``invsolve augment`` job: HDF5 output with provenance, FITS cutouts,
    shards and their merge, resuming an interrupted run.
:mod:`.classifier`
    The paper's evaluation: a small CNN classifier trained on real-only vs real +
    synthetic images, completeness and purity per class (also with the class
    frequencies corrected back to the real ones), conditional consistency.
:mod:`.statistics`
    statmorph morphology statistics of real vs generated galaxies, two-sample
    tests, and the memorisation check.
"""

from .augment import merge_shards, read_augmentation, run_augmentation
from .classifier import (
    MorphologyClassifier,
    completeness_purity,
    conditional_consistency,
    evaluate_augmentation,
    prior_shift_weights,
    train_classifier,
)
from .generation import GenerationPlan, generate, plan_from_oversampling, plan_from_query, plan_from_vectors
from .statistics import compare_statistics, morphology_statistics, nearest_training_distance

__all__ = [
    "GenerationPlan",
    "plan_from_query",
    "plan_from_oversampling",
    "plan_from_vectors",
    "generate",
    "run_augmentation",
    "merge_shards",
    "read_augmentation",
    "MorphologyClassifier",
    "train_classifier",
    "prior_shift_weights",
    "completeness_purity",
    "evaluate_augmentation",
    "conditional_consistency",
    "morphology_statistics",
    "compare_statistics",
    "nearest_training_distance",
]
