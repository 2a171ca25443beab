"""Ultrasound dehazing on simulated frames: hazy input, non-local means and joint-dehaze, PSNR and gCNR.

Run by hand::

    python benchmarks/ultrasound_dehaze.py [--split validation|test] [--domain rf|bmode] [--scenes 4] [--gammas 0.1 0.2 0.3]
        [--nlm-strength 0 2 4 8] [--tissue-weight 1] [--haze-weight 1] [--tau 0.5] [--guidance pigdm]
        [--steps 50] [--samples 2] [--tissue-prior us-tissue] [--haze-prior us-haze] [--post-nlm 8 12]

Scenes: :func:`invsolve.operators.ultrasound.random_hazy_scene` on a 283×64 grid of
the P4-2v probe (depth 5–25 mm at its axial sample spacing, 18 mm at half-wavelength
lines — the pixel size the priors learnt), the first ``--scenes`` seeds of the split
whose scene holds a cyst (:func:`~invsolve.operators.ultrasound.split_seeds`):
``validation`` from seed 10 000 (tune here), ``test`` from 20 000 (report here, never
tuned on).  The priors were trained on scenes from seed 0.  Each scene's hazy frame is
``tissue + γ·haze`` with the haze at the tissue's RMS.

Scores (:func:`invsolve.dehazing.dehazing_scores`): PSNR of the B-mode image against
the clean frame's, both in dB relative to the clean frame's peak envelope over a 60 dB
range, and gCNR of the cysts against the ring of background around them.

Methods: ``clean`` (the clean frame itself: what a perfect dehazer would score, with
the echo levels in the cysts that explain it — the clean tissue's and the haze's mean
power in the cysts, dB relative to the tissue's in the ring), ``hazy`` (the input),
``nlm`` (:func:`invsolve.nlm_bmode` at each ``--nlm-strength``) and ``joint-dehaze``
(:func:`invsolve.dehaze` at every combination of ``--tissue-weight``, ``--haze-weight``,
``--tau`` and ``--guidance``, ``--samples`` posterior samples averaged; with
``--post-nlm``, also that mean filtered by non-local means at each strength — the
``joint-dehaze+nlm`` records, RF domain only: dehazing and speckle smoothing together,
against ``nlm`` on the hazy input).

``--domain rf`` (default): joint-dehaze on the RF with ``us-tissue``/``us-haze``,
``y = x + γh``, scored at the RF grid's rows.  ``--domain bmode``: every method sees
the B-mode image as a display shows it — the envelope averaged over 4 rows (0.28 mm
square pixels), grey levels over 60 dB (:func:`~invsolve.operators.ultrasound.grey_levels`)
— and joint-dehaze runs on the grey levels with ``us-tissue-bmode``/``us-haze-bmode``,
``y = x + h``; scores at those rows.  Every configuration is one JSON line with the
scores per scene and their means per γ; the run is recorded in
``benchmarks/results/ultrasound_dehaze[.<options>].json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from typing import Any

import torch

from _recording import pin_threads, results_path, run_metadata, save_run

import invsolve
from invsolve.command_dehaze import DOMAINS
from invsolve.command_reconstruct import load_prior_option
from invsolve.dehazing import bmode_against, bmode_from_grey, dehazing_scores
from invsolve.operators.ultrasound import (
    DISPLAY_DECIMATION,
    ConvolutionSimulator,
    HazyScene,
    decimated_envelope,
    evaluation_grid,
    grey_levels,
    random_hazy_scene,
    split_seeds,
)

GRID = evaluation_grid()
DYNAMIC_RANGE = 60.0
#: --domain → default (tissue, haze) priors
PRIORS = {domain: choice["priors"] for domain, choice in DOMAINS.items()}


def summarise(per_scene: list[dict[str, Any]], gammas: list[float]) -> dict[str, dict[str, float]]:
    """Mean of every score (PSNR, gCNR, the clean record's echo levels) per haze level."""
    means = {}
    for gamma in gammas:
        rows = [row for row in per_scene if row["gamma"] == gamma]
        scores = [key for key in rows[0] if key not in ("seed", "gamma")]
        means[str(gamma)] = {key: statistics.fmean(row[key] for row in rows) for key in scores}
    return means


def cyst_echo_levels(scene: HazyScene, gamma: float) -> dict[str, float]:
    """Mean envelope power in the cysts, dB relative to the clean tissue's in the ring around them.

    ``tissue_in_cysts_db``: the clean frame's own echo in its anechoic cysts (the
    point-spread function's spill-in); ``haze_in_cysts_db``: the haze ``γ·h`` there.
    """
    tissue, haze = decimated_envelope(scene.tissue, 1)[0, 0], decimated_envelope(gamma * scene.haze, 1)[0, 0]
    ring = tissue[scene.phantom.background].pow(2).mean()

    def level(envelope: torch.Tensor) -> float:
        return 10.0 * math.log10(float(envelope[scene.phantom.cysts].pow(2).mean() / ring))

    return {"tissue_in_cysts_db": level(tissue), "haze_in_cysts_db": level(haze)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("validation", "test"), default="validation", help="(default: %(default)s)")
    parser.add_argument("--domain", choices=sorted(PRIORS), default="rf", help="(default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=4, help="scenes with a cyst (default: %(default)s)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="(default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=("clean", "hazy", "nlm", "joint-dehaze"), default=["hazy", "nlm", "joint-dehaze"])
    parser.add_argument("--nlm-strength", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0], help="NLM h, dB (default: %(default)s)")
    parser.add_argument("--tissue-weight", type=float, nargs="+", default=[1.0], help="λ (default: %(default)s)")
    parser.add_argument("--haze-weight", type=float, nargs="+", default=[1.0], help="κ (default: %(default)s)")
    parser.add_argument("--tau", type=float, nargs="+", default=[0.5], help="start time (default: %(default)s)")
    parser.add_argument("--guidance", nargs="+", choices=("pigdm", "dps"), default=["pigdm"], help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="joint-dehaze steps (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=2, help="posterior samples averaged (default: %(default)s)")
    parser.add_argument("--post-nlm", type=float, nargs="+", default=[],
                        help="NLM h, dB, applied to joint-dehaze's mean as well (RF domain; default: none)")
    parser.add_argument("--tissue-prior", help="embedded name or checkpoint (default: the domain's, PRIORS)")
    parser.add_argument("--haze-prior", help="embedded name or checkpoint (default: the domain's, PRIORS)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/ultrasound_dehaze[.<options>].json)")
    args = parser.parse_args()
    if args.post_nlm and args.domain != "rf":
        parser.error("--post-nlm filters RF frames: it needs --domain rf")
    path = results_path("ultrasound_dehaze", parser, args)
    pin_threads(args.threads)
    metadata = run_metadata(["scikit-image"])
    simulator = ConvolutionSimulator(GRID)
    seeds = split_seeds(simulator, args.split, args.scenes)
    scenes = [random_hazy_scene(simulator, seed) for seed in seeds]
    decimation = DISPLAY_DECIMATION if args.domain == "bmode" else 1
    clean = torch.cat([scene.tissue for scene in scenes])  # (S, 1, H, W): every method sees all scenes at once
    references = decimated_envelope(clean, decimation).amax(dim=(1, 2, 3), keepdim=True)

    def hazy(gamma: float) -> torch.Tensor:
        return torch.cat([scene.hazy(gamma) for scene in scenes])

    def run(method: str, settings: dict[str, Any], restore: Any, extra: Any = None) -> dict[str, Any]:
        per_scene, started = [], time.perf_counter()
        for gamma in args.gammas:
            images = restore(gamma)
            for seed, scene, image in zip(seeds, scenes, images):
                row = {"seed": seed, "gamma": gamma, **dehazing_scores(image[None], scene, DYNAMIC_RANGE, decimation)}
                if method == "clean":  # its PSNR against itself is infinite: not recorded (JSON has no infinity)
                    del row["psnr_db"]
                per_scene.append({**row, **extra(scene, gamma)} if extra else row)
        record = {
            "method": method, "settings": settings, "split": args.split, "domain": args.domain, "mean": summarise(per_scene, args.gammas),
            "per_scene": per_scene, "seconds": time.perf_counter() - started,
        }
        print(json.dumps(record), flush=True)
        return record

    records = []

    def keep(record: dict[str, Any]) -> None:
        records.append(record)
        save_run(path, metadata, {"settings": vars(args), "grid": list(GRID.shape), "seeds": seeds, "records": records}, complete=False)

    if "clean" in args.methods:
        keep(run("clean", {}, lambda gamma: bmode_against(clean, clean, DYNAMIC_RANGE, decimation), cyst_echo_levels))
    if "hazy" in args.methods:
        keep(run("hazy", {}, lambda gamma: bmode_against(hazy(gamma), clean, DYNAMIC_RANGE, decimation)))
    if "nlm" in args.methods:
        for strength in args.nlm_strength:
            keep(run("nlm", {"strength": strength}, lambda gamma, h=strength: invsolve.nlm_bmode(
                hazy(gamma), h, dynamic_range=DYNAMIC_RANGE, axial_decimation=decimation, reference=references)))
    if "joint-dehaze" in args.methods:
        tissue_prior, _ = load_prior_option(args.tissue_prior or PRIORS[args.domain][0])
        haze_prior, _ = load_prior_option(args.haze_prior or PRIORS[args.domain][1])
        grid = itertools.product(args.tissue_weight, args.haze_weight, args.tau, args.guidance)
        for tissue_weight, haze_weight, tau, guidance in grid:
            settings = {"tissue_weight": tissue_weight, "haze_weight": haze_weight, "tau": tau, "guidance": guidance,
                        "steps": args.steps, "n_samples": args.samples}
            tissues = {}  # γ → the posterior mean, kept for --post-nlm

            def restore(gamma: float, settings: dict[str, Any] = settings) -> torch.Tensor:
                if args.domain == "rf":
                    tissues[gamma] = invsolve.dehaze(hazy(gamma), tissue_prior, haze_prior, gamma, progress=False, **settings).tissue
                    return bmode_against(tissues[gamma], clean, DYNAMIC_RANGE)
                grey = grey_levels(hazy(gamma), DYNAMIC_RANGE, references, decimation)
                result = invsolve.dehaze_grey_levels(grey, tissue_prior, haze_prior, progress=False, **settings)
                return bmode_from_grey(result.tissue, DYNAMIC_RANGE)

            keep(run("joint-dehaze", settings, restore))
            for strength in args.post_nlm:
                keep(run("joint-dehaze+nlm", {**settings, "nlm_strength": strength}, lambda gamma, h=strength: invsolve.nlm_bmode(
                    tissues[gamma], h, dynamic_range=DYNAMIC_RANGE, reference=references)))
    save_run(path, metadata, {"settings": vars(args), "grid": list(GRID.shape), "seeds": seeds, "records": records})
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
