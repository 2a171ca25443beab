"""Rare-class augmentation with the conditional galaxy generator, evaluated as Chen et al. (2026) did.

The rendered galaxy world (:mod:`invsolve.datasets.galaxy_world`) stands in for a
survey.  Its training split (seeds from 0) holds the 6000 galaxies the embedded prior
``galaxy-cond`` was trained on; the first ``--train`` of them are the labelled set of
a morphology classifier, with the dust-lane early-type galaxies at 2 % as the rare
class; its test split (seeds from 1 000 000, seen by neither the prior nor any
classifier) is the held-out set.  ``--train``, ``--oversample``, the guidance weight
and the steps were chosen on the validation split (seeds from 500 000), never on the
test split (README, "Galaxy morphology augmentation").

1. The labelled galaxies' vote fractions are written as a GZ2 table (the columns of
   Hart et al. 2016, plus their world class) and ``invsolve augment --oversample``
   generates ``--oversample`` new galaxies for every labelled dust-lane galaxy, each
   conditioned on that galaxy's vote fractions.
2. Classifier gain (:func:`invsolve.galaxy.evaluate_augmentation`): a small CNN is
   trained on the labelled galaxies alone and on them plus the generated ones (equal
   optimiser steps, ``--seeds`` seeds), and scored on the test split: completeness
   and purity per class, the augmented classifier both as trained and with its class
   frequencies moved back to the labelled set's (the prior correction).  The issue's
   target: the rare class's completeness rises by >= 20 % (relative) at equal or
   better purity; the scoring the summary reports is the one chosen on the
   validation split with the oversampling factor.
3. Conditional consistency: ``--per-class`` galaxies are generated for the vote
   fractions of labelled galaxies of every class, and a classifier trained on all
   the prior's training galaxies (seed 0) is asked what they are; the same
   classifier on the real test galaxies is the reference a perfect generator
   would reach.
4. Morphology statistics (:mod:`invsolve.galaxy.statistics`, statmorph with
   photutils segmentation, the Sérsic fit with the world's typical PSF):
   Gini, M20, concentration, asymmetry and Sérsic index of generated vs real
   galaxies of each class, compared by two-sample Kolmogorov–Smirnov tests.
5. Memorisation: each generated galaxy's distance to its nearest galaxy of the
   prior's training set (images standardised), against the same distance of
   held-out real galaxies (the test split): a generator that copies its training
   galaxies sits far closer to them than new real galaxies do.

Writes ``galaxy_augment.png`` (real and generated galaxies per class),
``galaxy_statistics.png`` (the statistics' distributions, real vs generated)
and ``metrics.json``.

Run: ``python examples/galaxy_augment.py [--out galaxy-augment] [--train 2000]
[--test 4000] [--oversample 4] [--per-class 24] [--no-progress]`` (needs the
``galaxy`` extra: galsim, statmorph, photutils).  About 15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from astropy.table import Table

from invsolve.command_augment import augment_files
from invsolve.datasets.galaxy_world import GALAXY_CLASSES, SPLITS, galaxy_world, psf_image
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.files import save_json, save_png
from invsolve.galaxy import (
    compare_statistics,
    conditional_consistency,
    evaluate_augmentation,
    morphology_statistics,
    nearest_training_distance,
    read_augmentation,
    train_classifier,
)

RARE = "dust_lane"
#: statmorph's gain (e-/unit): so large that its weight map is the sky noise alone, the world's only noise
SKY_ONLY_GAIN = 1e6
#: galaxies of the training split the embedded prior was trained on (configs/galaxy-cond.toml)
PRIOR_TRAINING = 6000
#: DDIM steps and guidance weight chosen on the validation split by benchmarks/galaxy_validation.py (part 2)
GUIDANCE = {"steps": 25, "guidance": 1.0}
#: generated galaxies per labelled rare galaxy and the augmented classifier's scoring, chosen on the validation
#: split by benchmarks/galaxy_validation.py (part 3)
AUGMENTATION = {"oversample": 2, "scoring": "augmented"}
#: the statistics compared, and their names in the figure
STATISTICS = {"gini": "Gini", "m20": "M20", "concentration": "concentration C", "asymmetry": "asymmetry A",
              "sersic_n": "Sérsic index n"}


def world_catalogue(path: Path, morphology: np.ndarray, labels: np.ndarray) -> Path:
    """The training galaxies as a GZ2 table in Hart et al. (2016)'s columns, plus their world class."""
    table = Table({"dr7objid": np.arange(len(labels), dtype=np.int64), "ra": np.zeros(len(labels)),
                   "dec": np.zeros(len(labels)), "gz2_class": [GALAXY_CLASSES[i] for i in labels],
                   "world_class": labels})
    for index, name in enumerate(MORPHOLOGY.names):
        table[MORPHOLOGY.hart16_column(name)] = morphology[:, index]
    table.write(path, format="ascii.csv", overwrite=True)
    return path


def generate_for(catalogue: Path, out: Path, query: str, n: int, args: argparse.Namespace, seed: int) -> np.ndarray:
    """``invsolve augment`` (as a function) for ``n`` galaxies of the catalogue rows matching ``query``."""
    augment_files(prior=args.prior, out=str(out), catalog=str(catalogue), catalog_kind="hart16", query=query,
                  n=n, steps=args.steps, guidance=args.guidance, batch_size=16, seed=seed, overwrite=True,
                  progress=args.progress)
    return read_augmentation(out)["images"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="galaxy-augment", help="output folder (default: %(default)s)")
    parser.add_argument("--prior", default="galaxy-cond", help="embedded name or checkpoint (default: %(default)s)")
    parser.add_argument("--prior-training", type=int, default=PRIOR_TRAINING,
                        help="galaxies the prior was trained on, for the memorisation check (default: %(default)s)")
    parser.add_argument("--train", type=int, default=2000, help="real labelled galaxies of the classifier, the "
                        "first of the prior's training galaxies (default: %(default)s)")
    parser.add_argument("--test", type=int, default=4000, help="held-out test galaxies (default: %(default)s)")
    parser.add_argument("--oversample", type=int, default=AUGMENTATION["oversample"],
                        help="generated galaxies per real rare-class galaxy (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=24, help="generated galaxies per class for consistency and "
                        "statistics (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=GUIDANCE["steps"], help="DDIM steps (default: %(default)s)")
    parser.add_argument("--guidance", type=float, default=GUIDANCE["guidance"],
                        help="classifier-free guidance weight (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="classifier epochs over real + synthetic (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=8, help="classifier seeds (default: %(default)s)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    args = parser.parse_args()
    if not 0 < args.train <= args.prior_training:
        parser.error(f"--train must be in 1..--prior-training ({args.prior_training}), got {args.train}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    world_images, world_morphology, world_labels = galaxy_world(args.prior_training, seed=SPLITS["train"])
    train_images, train_labels = world_images[: args.train], world_labels[: args.train]
    test_images, _, test_labels = galaxy_world(args.test, seed=SPLITS["test"])
    catalogue = world_catalogue(out / "labelled.csv", world_morphology[: args.train], train_labels)
    rare = GALAXY_CLASSES.index(RARE)

    augment_files(prior=args.prior, out=str(out / "synthetic.h5"), catalog=str(catalogue), catalog_kind="hart16",
                  oversample=[f"world_class=={rare}:{args.oversample}"], steps=args.steps, guidance=args.guidance,
                  batch_size=16, seed=1, overwrite=True, progress=args.progress)
    synthetic = read_augmentation(out / "synthetic.h5")["images"]
    synthetic_labels = np.full(len(synthetic), rare)
    gain = evaluate_augmentation(
        torch.from_numpy(train_images), torch.from_numpy(train_labels), torch.from_numpy(test_images),
        torch.from_numpy(test_labels), torch.from_numpy(synthetic), torch.from_numpy(synthetic_labels),
        class_names=list(GALAXY_CLASSES), seeds=tuple(range(args.seeds)), epochs=args.epochs, progress=args.progress,
    )

    per_class = {}
    for label, name in enumerate(GALAXY_CLASSES):
        per_class[name] = generate_for(catalogue, out / f"class_{name}.h5", f"world_class=={label}", args.per_class,
                                       args, seed=100 + label)
    generated = np.concatenate(list(per_class.values()))
    requested = np.repeat(np.arange(len(GALAXY_CLASSES)), args.per_class)
    judge = train_classifier(torch.from_numpy(world_images), torch.from_numpy(world_labels), len(GALAXY_CLASSES),
                             epochs=args.epochs, seed=0, progress=args.progress)
    consistency = conditional_consistency(judge, torch.from_numpy(generated), torch.from_numpy(requested),
                                          len(GALAXY_CLASSES))
    # what a perfect generator would score: the same classifier on real test galaxies
    consistency["real_test_reference"] = conditional_consistency(
        judge, torch.from_numpy(test_images), torch.from_numpy(test_labels), len(GALAXY_CLASSES))

    statistics: dict[str, Any] = {}
    for label, name in enumerate(GALAXY_CLASSES):
        real = train_images[train_labels == label][: args.per_class]
        real_table = morphology_statistics(real, psf=psf_image(), gain=SKY_ONLY_GAIN)
        generated_table = morphology_statistics(per_class[name], psf=psf_image(), gain=SKY_ONLY_GAIN)
        statistics[name] = {"comparison": compare_statistics(real_table, generated_table),
                            "real": {key: real_table[key].tolist() for key in STATISTICS},
                            "generated": {key: generated_table[key].tolist() for key in STATISTICS}}
    memorisation = nearest_training_distance(torch.from_numpy(np.concatenate([generated, synthetic])),
                                             torch.from_numpy(world_images))
    # the reference a generator that does not memorise should match: held-out real galaxies' distances to the
    # same training set (Somepalli et al. 2023 compare against held-out data the same way)
    held_out = nearest_training_distance(torch.from_numpy(test_images[: len(memorisation["distance"])]),
                                         torch.from_numpy(world_images))["distance"]
    closest_held_out = float(np.percentile(held_out, 1))

    save_figures(out, train_images, train_labels, per_class, statistics)
    rare_scores = gain["per_class"][RARE]
    metrics = {
        "settings": {key: value for key, value in vars(args).items() if key not in ("progress", "out")},
        "classes": list(GALAXY_CLASSES),
        "rare_class": RARE,
        "classifier_gain": gain,
        "rare_class_summary": {
            "scoring": AUGMENTATION["scoring"],
            "completeness_real_only": rare_scores["real"]["completeness_mean"],
            "completeness_augmented": rare_scores[AUGMENTATION["scoring"]]["completeness_mean"],
            "purity_real_only": rare_scores["real"]["purity_mean"],
            "purity_augmented": rare_scores[AUGMENTATION["scoring"]]["purity_mean"],
            "purity_pooled_real_only": rare_scores["real"]["purity_pooled"],
            "purity_pooled_augmented": rare_scores[AUGMENTATION["scoring"]]["purity_pooled"],
            "relative_completeness_gain": rare_scores["relative_completeness_gain"][AUGMENTATION["scoring"]],
        },
        "conditional_consistency": consistency,
        "statistics": {name: entry["comparison"] for name, entry in statistics.items()},
        "memorisation": {**memorisation["summary"], "generated": int(len(memorisation["distance"])),
                         "training": int(len(world_images)),
                         "median_held_out_distance": float(np.median(held_out)),
                         "held_out_first_percentile": closest_held_out,
                         "generated_closer_than_held_out_first_percentile": int(
                             (memorisation["distance"] < closest_held_out).sum())},
    }
    save_json(out / "metrics.json", json.loads(json.dumps(metrics)))
    print(json.dumps({"rare_class": metrics["rare_class_summary"], "consistency": consistency["rate"],
                      "memorisation": metrics["memorisation"]}, indent=2))


def save_figures(out: Path, train_images: np.ndarray, train_labels: np.ndarray, per_class: dict[str, np.ndarray],
                 statistics: dict[str, Any]) -> None:
    """Real and generated galaxies per class (one row each), and the statistics' distributions."""
    shown = 4
    panels, titles = [], []
    for label, name in enumerate(GALAXY_CLASSES):
        real = train_images[train_labels == label][:shown]
        label_text = name.replace("_", " ")
        for images, what in ((real, "real"), (per_class[name], "generated")):
            for number in range(shown):
                present = number < len(images)
                panels.append(torch.from_numpy(images[number][0]) if present else torch.zeros(images.shape[-2:]))
                titles.append(f"{label_text}: {what}" if present else f"(no {what} {label_text})")
    save_png(out / "galaxy_augment.png", panels, titles, value_range=(-0.05, 0.6), columns=2 * shown,
             figure_title="Galaxies of each class: 4 real (training split), 4 generated by galaxy-cond for the vote "
             "fractions of training galaxies of that class", unit="flux (peak = 1)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invsolve.files import atomic_write

    figure, axes = plt.subplots(1, len(STATISTICS), figsize=(4 * len(STATISTICS), 4.5))
    names = list(GALAXY_CLASSES)
    for axis, (key, label) in zip(axes, STATISTICS.items()):
        real = [np.asarray(statistics[name]["real"][key], dtype=float) for name in names]
        generated = [np.asarray(statistics[name]["generated"][key], dtype=float) for name in names]
        positions = np.arange(len(names))
        for values, offset, colour, what in ((real, -0.18, "tab:blue", "real"), (generated, 0.18, "tab:orange",
                                                                                  "generated")):
            finite = [v[np.isfinite(v)] if np.isfinite(v).any() else np.array([np.nan]) for v in values]
            parts = axis.boxplot(finite, positions=positions + offset, widths=0.32, patch_artist=True,
                                 showfliers=False)
            for box in parts["boxes"]:
                box.set_facecolor(colour)
            axis.plot([], [], color=colour, linewidth=6, label=what)
        axis.set_xticks(positions, [name.replace("_", " ") for name in names], rotation=60, ha="right")
        axis.set_title(label)
    axes[0].legend(loc="best")
    figure.suptitle("statmorph morphology statistics per class: real (training split) vs generated")
    figure.tight_layout()
    atomic_write(out / "galaxy_statistics.png", lambda temporary: figure.savefig(temporary, format="png", dpi=80))
    plt.close(figure)


if __name__ == "__main__":
    main()
