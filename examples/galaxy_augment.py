"""Rare-class augmentation with the conditional galaxy generator, evaluated as Chen et al. (2026) did.

The rendered galaxy world (:mod:`invsolve.datasets.galaxy_world`) stands in for a
labelled survey: its training split (seeds from 0 — the galaxies the embedded prior
``galaxy-cond`` was trained on) is the "real" labelled set, with the dust-lane
early-type galaxies at 2 % as the rare class, and its test split (seeds from
1 000 000, never seen by the prior or the classifiers) the held-out set.

1. The training galaxies' vote fractions are written as a GZ2-style catalogue
   (the columns of Hart et al. 2016) and ``invsolve augment`` generates
   ``--synthetic`` new dust-lane galaxies for the rows with ``dust_lane > 0.5``
   (classifier-free guidance at the prior's weight, DDIM ``--steps``).
2. Classifier gain (:func:`invsolve.galaxy.evaluate_augmentation`): a small CNN
   is trained on the real galaxies alone and on real + synthetic ones (equal
   optimiser steps, three seeds), and scored on the test split: completeness
   and purity per class.  The issue's target: the rare class's completeness
   rises by >= 20 % (relative) at equal or better purity.
3. Conditional consistency: ``--per-class`` galaxies are generated for the
   vote fractions of training galaxies of every class, and the real-only
   classifier (seed 0) is asked what they are.
4. Morphology statistics (:mod:`invsolve.galaxy.statistics`, statmorph with
   photutils segmentation, the Sérsic fit with the world's typical PSF):
   Gini, M20, concentration, asymmetry and Sérsic index of generated vs real
   galaxies of each class, compared by two-sample Kolmogorov–Smirnov tests.
5. Memorisation: each generated galaxy's distance to its nearest training
   galaxy, against the training galaxies' own nearest-neighbour distances.

Writes ``galaxy_augment.png`` (real and generated galaxies per class),
``galaxy_statistics.png`` (the statistics' distributions, real vs generated)
and ``metrics.json``.

Run: ``python examples/galaxy_augment.py [--out galaxy-augment] [--train 6000]
[--test 4000] [--synthetic 360] [--per-class 24] [--steps 25] [--no-progress]``
(needs the ``galaxy`` extra: galsim, statmorph, photutils).  About 40 minutes
on 2 CPU cores with the defaults.
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
                  n=n, steps=args.steps, batch_size=16, seed=seed, overwrite=True, progress=args.progress)
    return read_augmentation(out)["images"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="galaxy-augment", help="output folder (default: %(default)s)")
    parser.add_argument("--prior", default="galaxy-cond", help="embedded name or checkpoint (default: %(default)s)")
    parser.add_argument("--train", type=int, default=6000, help="real training galaxies (default: %(default)s)")
    parser.add_argument("--test", type=int, default=4000, help="held-out test galaxies (default: %(default)s)")
    parser.add_argument("--synthetic", type=int, default=360, help="generated rare-class galaxies (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=24, help="generated galaxies per class for consistency and "
                        "statistics (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8, help="classifier epochs over real + synthetic (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="classifier seeds (default: %(default)s)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    train_images, train_morphology, train_labels = galaxy_world(args.train, seed=SPLITS["train"])
    test_images, _, test_labels = galaxy_world(args.test, seed=SPLITS["test"])
    catalogue = world_catalogue(out / "world_train.csv", train_morphology, train_labels)
    rare = GALAXY_CLASSES.index(RARE)

    synthetic = generate_for(catalogue, out / "synthetic.h5", f"{RARE}>0.5", args.synthetic, args, seed=1)
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
    classifier = train_classifier(torch.from_numpy(train_images), torch.from_numpy(train_labels), len(GALAXY_CLASSES),
                                  epochs=args.epochs, seed=0, progress=args.progress)
    consistency = conditional_consistency(classifier, torch.from_numpy(generated), torch.from_numpy(requested),
                                          len(GALAXY_CLASSES))

    statistics: dict[str, Any] = {}
    for label, name in enumerate(GALAXY_CLASSES):
        real = train_images[train_labels == label][: args.per_class]
        real_table = morphology_statistics(real, psf=psf_image(), gain=SKY_ONLY_GAIN)
        generated_table = morphology_statistics(per_class[name], psf=psf_image(), gain=SKY_ONLY_GAIN)
        statistics[name] = {"comparison": compare_statistics(real_table, generated_table),
                            "real": {key: real_table[key].tolist() for key in STATISTICS},
                            "generated": {key: generated_table[key].tolist() for key in STATISTICS}}
    memorisation = nearest_training_distance(torch.from_numpy(generated), torch.from_numpy(train_images))

    save_figures(out, train_images, train_labels, per_class, statistics)
    rare_scores = gain["per_class"][RARE]
    metrics = {
        "settings": {key: value for key, value in vars(args).items() if key != "progress"},
        "classes": list(GALAXY_CLASSES),
        "rare_class": RARE,
        "classifier_gain": gain,
        "rare_class_summary": {
            "completeness_real_only": rare_scores["real"]["completeness_mean"],
            "completeness_augmented": rare_scores["augmented"]["completeness_mean"],
            "purity_real_only": rare_scores["real"]["purity_mean"],
            "purity_augmented": rare_scores["augmented"]["purity_mean"],
            "relative_completeness_gain": rare_scores["relative_completeness_gain"],
        },
        "conditional_consistency": consistency,
        "statistics": {name: entry["comparison"] for name, entry in statistics.items()},
        "memorisation": {
            "median_distance": float(np.median(memorisation["distance"])),
            "median_training_nn_distance": float(np.median(memorisation["training_nn_distance"])),
            "near_duplicates": int(memorisation["near_duplicates"]),
            "generated": int(len(generated)),
        },
    }
    save_json(out / "metrics.json", json.loads(json.dumps(metrics)))
    summary = metrics["rare_class_summary"]
    print(json.dumps({"rare_class": summary, "consistency": consistency["rate"],
                      "near_duplicates": metrics["memorisation"]["near_duplicates"]}, indent=2))


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
