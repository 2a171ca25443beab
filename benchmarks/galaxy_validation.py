"""The settings of examples/galaxy_augment.py, chosen on the validation split of the rendered galaxy world.

1. The labelled set's size.  The augmentation is meant for a rare class that a
   classifier trained on the labelled galaxies fails on.  For labelled sets of
   the first ``--labelled`` galaxies of the training split, a classifier
   (equal settings to the example's real-only one, ``--classifier-seeds``
   seeds) is scored on ``--validation`` validation galaxies: the dust-lane
   class's completeness and purity.  The example takes the largest set whose
   mean rare-class completeness is below 0.5.
2. Guidance weight and steps: conditional consistency.  A morphology classifier (:func:`invsolve.galaxy.train_classifier`, seed 0) is
trained on real galaxies of the rendered world's training split.  For every
guidance weight and step count, ``--per-class`` galaxies of each class are
generated with the embedded prior for the vote fractions of *validation*
galaxies of that class (seeds from 500 000: neither the prior's training set
nor the test split of ``examples/galaxy_augment.py``), and the classifier is
asked what they are (:func:`invsolve.galaxy.conditional_consistency`).  The
example uses the setting with the best mean of the overall rate and the rare
class's rate.

    python benchmarks/galaxy_validation.py [--labelled 1000 2000 3000 6000] [--train 3000] [--per-class 16]
                                           [--guidance 0 1 2 4] [--steps 25]

Prints and records (``benchmarks/results/galaxy_validation.json``) both parts.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _recording import pin_threads, results_path, run_metadata, save_run

from invsolve.datasets.galaxy_world import GALAXY_CLASSES, SPLITS, galaxy_world, random_galaxy
from invsolve.galaxy import completeness_purity, conditional_consistency, generate, train_classifier
from invsolve.galaxy.generation import sample_seed
from invsolve.priors import load_prior, pretrained

RARE = "dust_lane"


def validation_conditions(per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` vote-fraction vectors of validation galaxies of each class, and their class labels."""
    from invsolve.datasets.galaxy_world import morphology_of

    conditions, labels = [], []
    for label, name in enumerate(GALAXY_CLASSES):
        for number in range(per_class):  # the class is imposed; the seed draws the rest of the galaxy
            conditions.append(morphology_of(random_galaxy(SPLITS["validation"] + 1000 * label + number, name)))
            labels.append(label)
    return np.stack(conditions), np.asarray(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="galaxy-cond", help="embedded name or checkpoint (default: %(default)s)")
    parser.add_argument("--train", type=int, default=3000, help="real galaxies for the classifier (default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=16, help="generated galaxies per class (default: %(default)s)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--labelled", type=int, nargs="+", default=[1000, 2000, 3000, 6000],
                        help="labelled-set sizes of part 1 (default: %(default)s)")
    parser.add_argument("--validation", type=int, default=3000, help="validation galaxies of part 1 (default: %(default)s)")
    parser.add_argument("--classifier-seeds", type=int, default=2, help="classifier seeds of part 1 (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="record the JSON here")
    args = parser.parse_args()
    pin_threads(args.threads)
    path = results_path("galaxy_validation", parser, args)
    metadata = run_metadata()
    prior = load_prior(args.prior) if args.prior.endswith(".pt") else pretrained(args.prior)
    world, _, world_labels = galaxy_world(max(args.labelled + [args.train]), seed=SPLITS["train"])
    validation, _, validation_labels = galaxy_world(args.validation, seed=SPLITS["validation"])
    rare_label = GALAXY_CLASSES.index(RARE)
    labelled_rows = []
    for count in args.labelled:
        for seed in range(args.classifier_seeds):
            model = train_classifier(torch.from_numpy(world[:count]), torch.from_numpy(world_labels[:count]),
                                     len(GALAXY_CLASSES), epochs=args.epochs, seed=seed)
            scores = completeness_purity(model.predict(torch.from_numpy(validation)),
                                         torch.from_numpy(validation_labels), len(GALAXY_CLASSES))
            row = {"labelled": count, "rare_examples": int((world_labels[:count] == rare_label).sum()), "seed": seed,
                   "rare_completeness": scores["completeness"][rare_label], "rare_purity": scores["purity"][rare_label],
                   "accuracy": scores["accuracy"]}
            labelled_rows.append(row)
            print(json.dumps(row), flush=True)
    failing = [count for count in args.labelled
               if np.mean([r["rare_completeness"] for r in labelled_rows if r["labelled"] == count]) < 0.5]
    print(json.dumps({"labelled_choice": max(failing) if failing else None}), flush=True)
    images, labels = world[: args.train], world_labels[: args.train]
    classifier = train_classifier(torch.from_numpy(images), torch.from_numpy(labels), len(GALAXY_CLASSES),
                                  epochs=args.epochs, seed=0)
    conditions, requested = validation_conditions(args.per_class)
    seeds = [sample_seed(0, index) for index in range(len(conditions))]
    rows = []
    for steps in args.steps:
        for guidance in args.guidance:
            started = time.perf_counter()
            generated = torch.cat([
                generate(prior, conditions[start:start + 32], seeds[start:start + 32], steps=steps,
                         guidance_scale=guidance)
                for start in range(0, len(conditions), 32)
            ])
            seconds = time.perf_counter() - started
            scores = conditional_consistency(classifier, generated, torch.from_numpy(requested), len(GALAXY_CLASSES))
            rare = scores["per_class"][GALAXY_CLASSES.index(RARE)]
            row = {"steps": steps, "guidance": guidance, "rate": scores["rate"], "rare_rate": rare,
                   "per_class": dict(zip(GALAXY_CLASSES, scores["per_class"])), "seconds": seconds,
                   "score": (scores["rate"] + rare) / 2}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("steps", "guidance", "rate", "rare_rate", "seconds")}), flush=True)
    best = max(rows, key=lambda row: row["score"])
    print(json.dumps({"best": {k: best[k] for k in ("steps", "guidance", "rate", "rare_rate")}}))
    save_run(path, metadata, {"labelled": labelled_rows, "labelled_choice": max(failing) if failing else None,
                              "rows": rows, "best": best, "settings": vars(args)})


if __name__ == "__main__":
    main()
