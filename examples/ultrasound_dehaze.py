"""Ultrasound dehazing of simulated cardiac-probe frames: hazy input vs non-local means vs joint-dehaze.

Test scenes (:func:`invsolve.operators.ultrasound.split_seeds`, split ``test``: seeds
from 20 000 whose scene holds a cyst; never used for training or tuning) are simulated
on a 283×64 grid of the P4-2v probe (depth 5–25 mm, 18 mm wide, the pixel size the
priors learnt) by :func:`~invsolve.operators.ultrasound.random_hazy_scene`, and hazed at
γ = 0.1, 0.2 and 0.3 (``y = x + γh``, the haze at the tissue's RMS).  Three methods:

* **hazy** — the input itself;
* **non-local means** — :func:`invsolve.nlm_bmode` on the B-mode image, its strength
  tuned on the validation split (seeds from 10 000) for the best mean PSNR and, in a
  second column, for the best mean gCNR (``benchmarks/ultrasound_dehaze.py``);
* **joint-dehaze** — :func:`invsolve.dehaze` with the embedded priors ``us-tissue``
  and ``us-haze`` and the settings of preset ``us-dehaze`` (tuned on the same
  validation scenes), the mean of its posterior samples.

Scores (:func:`invsolve.dehazing.dehazing_scores`): PSNR of the B-mode image against
the clean frame's (both in dB relative to the clean frame's peak, 60 dB range) and
gCNR of the cysts against the background ring around them.  Writes
``ultrasound_dehaze.png`` (the first scene at every γ: clean, hazy, non-local means,
joint-dehaze and the per-pixel std of its samples) and ``metrics.json`` (means per γ
and method, and every scene's scores).

Run: ``python examples/ultrasound_dehaze.py [--out ultrasound-dehaze] [--scenes 4]
[--gammas 0.1 0.2 0.3] [--no-progress]`` (needs scikit-image, part of the
``ultrasound`` extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


import invsolve
from invsolve.dehazing import bmode_against, dehazing_scores
from invsolve.files import save_json, save_png
from invsolve.operators.ultrasound import (
    PROBES,
    ConvolutionSimulator,
    ImagingGrid,
    envelope,
    random_hazy_scene,
    split_seeds,
)
from invsolve.presets import PRESETS
from invsolve.priors import pretrained

PROBE = PROBES["P4-2v"]
GRID = ImagingGrid(PROBE, (0.005, 0.025), 0.018, lateral_spacing=PROBE.wavelength / 2)
DYNAMIC_RANGE = 60.0
#: non-local means strengths (h, dB) chosen on the validation split, for the best mean PSNR and the best mean gCNR
#: over γ = 0.1, 0.2, 0.3 (benchmarks/results/ultrasound_dehaze.json)
NLM_STRENGTH = {"psnr": 1.0, "gcnr": 8.0}
#: column key → title in the figure and the table
METHODS = {
    "hazy": "hazy input",
    "nlm_psnr": "non-local means (PSNR-tuned)",
    "nlm_gcnr": "non-local means (gCNR-tuned)",
    "joint_dehaze": "joint-dehaze",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ultrasound-dehaze", help="output folder (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=4, help="test scenes (default: %(default)s)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="haze levels (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="joint-dehaze steps (default: the preset's)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    settings = dict(PRESETS["us-dehaze"].samplers["joint-dehaze"])
    if args.steps is not None:
        settings["steps"] = args.steps
    tissue_prior, haze_prior = pretrained("us-tissue"), pretrained("us-haze")
    simulator = ConvolutionSimulator(GRID)
    seeds = split_seeds(simulator, "test", args.scenes)
    rows, panels, titles, windows, units, colormaps = [], [], [], [], [], []
    for index, seed in enumerate(seeds):
        scene = random_hazy_scene(simulator, seed)
        peak = envelope(scene.tissue).amax()
        for gamma in args.gammas:
            hazy = scene.hazy(gamma)
            result = invsolve.dehaze(hazy, tissue_prior, haze_prior, gamma, seed=seed, progress=not args.no_progress, **settings)
            images = {
                "hazy": bmode_against(hazy, scene.tissue, DYNAMIC_RANGE),
                "nlm_psnr": invsolve.nlm_bmode(hazy, NLM_STRENGTH["psnr"], dynamic_range=DYNAMIC_RANGE, reference=peak),
                "nlm_gcnr": invsolve.nlm_bmode(hazy, NLM_STRENGTH["gcnr"], dynamic_range=DYNAMIC_RANGE, reference=peak),
                "joint_dehaze": bmode_against(result.tissue, scene.tissue, DYNAMIC_RANGE),
            }
            rows.append({"seed": seed, "gamma": gamma, **{key: dehazing_scores(image, scene, DYNAMIC_RANGE) for key, image in images.items()}})
            if index == 0:
                shown = [bmode_against(scene.tissue, scene.tissue, DYNAMIC_RANGE), images["hazy"], images["nlm_gcnr"], images["joint_dehaze"]]
                names = ["clean", f"hazy, γ = {gamma:g}", METHODS["nlm_gcnr"], METHODS["joint_dehaze"]]
                scores = [rows[-1][key] for key in ("hazy", "nlm_gcnr", "joint_dehaze")]
                names[1:] = [f"{name}\n{s['psnr_db']:.1f} dB, gCNR {s['gcnr']:.2f}" for name, s in zip(names[1:], scores)]
                panels += [*shown, result.tissue_std / peak]
                titles += [*names, f"joint-dehaze std ({settings['n_samples']} samples)"]
                windows += [(-DYNAMIC_RANGE, 0.0)] * 4 + [None]
                units += ["dB"] * 4 + ["of the clean peak"]
                colormaps += ["gray"] * 4 + ["magma"]
    means = {
        str(gamma): {
            key: {
                score: statistics.fmean(row[key][score] for row in rows if row["gamma"] == gamma)
                for score in ("psnr_db", "gcnr")
            }
            for key in METHODS
        }
        for gamma in args.gammas
    }
    metrics = {
        "scenes": seeds,
        "grid": list(GRID.shape),
        "joint_dehaze_settings": settings,
        "nlm_strength_db": NLM_STRENGTH,
        "gammas": means,
        "per_scene": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    save_png(
        out / "ultrasound_dehaze.png", panels, titles, windows, columns=5, unit=units, colormap=colormaps,
        figure_title=f"test scene {seeds[0]} (P4-2v, 5-25 mm deep, 18 mm wide): B-mode over 60 dB",
    )
    save_json(out / "metrics.json", metrics)
    print(json.dumps(means, indent=2))


if __name__ == "__main__":
    main()
