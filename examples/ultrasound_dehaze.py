"""Ultrasound dehazing of simulated cardiac-probe frames and of a real echo frame.

Test scenes (:func:`invsolve.operators.ultrasound.split_seeds`, split ``test``: seeds
from 20 000 whose scene holds a cyst; never used for training or tuning) are simulated
on a 283×64 grid of the P4-2v probe (depth 5–25 mm, 18 mm wide, the pixel size the
priors learnt) by :func:`~invsolve.operators.ultrasound.random_hazy_scene`, and hazed at
γ = 0.1, 0.2 and 0.3 (``y = x + γh``, the haze at the tissue's RMS).

RF (``rf`` in ``metrics.json``, scored at the RF grid's rows):

* **hazy** — the input itself;
* **non-local means** — :func:`invsolve.nlm_bmode` on the B-mode image, its strength
  tuned on the validation split (seeds from 10 000) for the best mean PSNR and, in a
  second column, for the best mean gCNR (``benchmarks/ultrasound_dehaze.py``);
* **joint-dehaze** — :func:`invsolve.dehaze` with the embedded priors ``us-tissue``
  and ``us-haze`` and the settings of preset ``us-dehaze`` (tuned on the same
  validation scenes), the mean of its posterior samples.

Displayed images (``bmode``, the envelope averaged over 4 rows to 0.28 mm square
pixels, grey levels over 60 dB, :func:`~invsolve.operators.ultrasound.grey_levels`):
the hazy grey levels and joint-dehaze on them with ``us-tissue-bmode`` and
``us-haze-bmode`` as ``y = x + h`` (preset ``us-dehaze-bmode``) — the route for frames
that come without RF.

Scores (:func:`invsolve.dehazing.dehazing_scores`): PSNR of the B-mode image against
the clean frame's (both in dB relative to the clean frame's peak, 60 dB range) and
gCNR of the cysts against the background ring around them.

A real frame: frame 0 of pydicom's echo cine ``examples_ybr_color.dcm`` (an apical
view, 240×320 grey levels), cropped to the sector and dehazed end to end with the
B-mode pair; with no clean frame to compare with, gCNR between a box in the
left-ventricular cavity and one in the septum (:data:`ECHO_REGIONS`, placed by eye)
before and after.

Writes ``ultrasound_dehaze.png`` (the first scene at every γ: clean, hazy, non-local
means, joint-dehaze and the per-pixel std of its samples), ``echo_frame.png`` (the real
frame before and after, the haze and the std) and ``metrics.json`` (means per γ and
method, every scene's scores, the real frame's gCNR).

Run: ``python examples/ultrasound_dehaze.py [--out ultrasound-dehaze] [--scenes 4]
[--gammas 0.1 0.2 0.3] [--no-progress]`` (needs scikit-image, part of the
``ultrasound`` extra); ``--quick`` for a smoke run (the presets' samplers with
10 steps and two samples, every stage as in the full run).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import pydicom.data
import torch

import invsolve
from invsolve.datasets.io.ultrasound import read_bmode_dicom
from invsolve.dehazing import bmode_against, bmode_from_grey, dehazing_scores
from invsolve.files import save_json, save_png
from invsolve.metrics import gcnr
from invsolve.operators.ultrasound import (
    DISPLAY_DECIMATION,
    ConvolutionSimulator,
    decimated_envelope,
    evaluation_grid,
    grey_levels,
    random_hazy_scene,
    split_seeds,
)
from invsolve.presets import PRESETS
from invsolve.priors import pretrained

GRID = evaluation_grid()
DYNAMIC_RANGE = 60.0
#: non-local means strengths (h, dB) chosen on the validation split, for the best mean PSNR and the best mean gCNR
#: over γ = 0.1, 0.2, 0.3 of h = 1, 2, 4, 8, 12, 16, 24 (docs/benchmarks/sweep_ultrasound_dehaze.jsonl): PSNR peaks at the
#: weakest filter (hazy input 27.68 dB, h = 1 27.65 dB), gCNR at h = 12 (0.741; 8 and 16 within 0.001)
NLM_STRENGTH = {"psnr": 1.0, "gcnr": 12.0}
#: sampler steps and samples of the --quick smoke run (two samples: the std maps stay defined)
QUICK_STEPS, QUICK_SAMPLES = 10, 2
#: column key → title in the figure and the table
METHODS = {
    "hazy": "hazy input",
    "nlm_psnr": "non-local means (PSNR-tuned)",
    "nlm_gcnr": "non-local means (gCNR-tuned)",
    "joint_dehaze": "joint-dehaze",
}
#: the echo frame's sector (rows, columns) and two boxes in it, placed by eye: the left-ventricular cavity and the septum
ECHO_CROP = (slice(20, 212), slice(60, 268))
ECHO_REGIONS = {"cavity": (slice(65, 95), slice(112, 140)), "septum": (slice(65, 95), slice(80, 96))}


def _means(rows: list[dict[str, Any]], gammas: list[float], keys: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean PSNR and gCNR per haze level and method."""
    return {
        str(gamma): {
            key: {score: statistics.fmean(row[key][score] for row in rows if row["gamma"] == gamma) for score in ("psnr_db", "gcnr")}
            for key in keys
        }
        for gamma in gammas
    }


def sampler_settings(preset: str, quick: bool) -> dict[str, Any]:
    """The joint-dehaze settings of ``preset``; with ``quick``, fewer steps and samples (a smoke run)."""
    settings = dict(PRESETS[preset].samplers["joint-dehaze"])
    return {**settings, "steps": QUICK_STEPS, "n_samples": QUICK_SAMPLES} if quick else settings


def simulated(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The test scenes through every method; the figure of the first."""
    rf_settings = sampler_settings("us-dehaze", args.quick)
    bmode_settings = sampler_settings("us-dehaze-bmode", args.quick)
    tissue_prior, haze_prior = pretrained("us-tissue"), pretrained("us-haze")
    tissue_bmode, haze_bmode = pretrained("us-tissue-bmode"), pretrained("us-haze-bmode")
    simulator = ConvolutionSimulator(GRID)
    seeds = split_seeds(simulator, "test", args.scenes)
    scenes = [random_hazy_scene(simulator, seed) for seed in seeds]
    clean = torch.cat([scene.tissue for scene in scenes])  # (S, 1, H, W): every method sees all scenes at once
    peaks = decimated_envelope(clean, 1).amax(dim=(1, 2, 3), keepdim=True)
    display_peaks = decimated_envelope(clean, DISPLAY_DECIMATION).amax(dim=(1, 2, 3), keepdim=True)
    rf_rows, bmode_rows, panels, titles, windows, units, colormaps = [], [], [], [], [], [], []
    for gamma in args.gammas:
        hazy = torch.cat([scene.hazy(gamma) for scene in scenes])
        result = invsolve.dehaze(hazy, tissue_prior, haze_prior, gamma, progress=not args.no_progress, **rf_settings)
        images = {
            "hazy": bmode_against(hazy, clean, DYNAMIC_RANGE),
            "nlm_psnr": invsolve.nlm_bmode(hazy, NLM_STRENGTH["psnr"], dynamic_range=DYNAMIC_RANGE, reference=peaks),
            "nlm_gcnr": invsolve.nlm_bmode(hazy, NLM_STRENGTH["gcnr"], dynamic_range=DYNAMIC_RANGE, reference=peaks),
            "joint_dehaze": bmode_against(result.tissue, clean, DYNAMIC_RANGE),
        }
        grey = grey_levels(hazy, DYNAMIC_RANGE, display_peaks, DISPLAY_DECIMATION)
        displayed = invsolve.dehaze_grey_levels(grey, tissue_bmode, haze_bmode, progress=not args.no_progress, **bmode_settings)
        bmode_images = {"hazy": bmode_from_grey(grey, DYNAMIC_RANGE), "joint_dehaze": bmode_from_grey(displayed.tissue, DYNAMIC_RANGE)}
        for index, (seed, scene) in enumerate(zip(seeds, scenes)):
            scores = {key: dehazing_scores(image[index : index + 1], scene, DYNAMIC_RANGE) for key, image in images.items()}
            rf_rows.append({"seed": seed, "gamma": gamma, **scores})
            bmode_rows.append({"seed": seed, "gamma": gamma, **{
                key: dehazing_scores(image[index : index + 1], scene, DYNAMIC_RANGE, DISPLAY_DECIMATION)
                for key, image in bmode_images.items()}})
            if index == 0:
                names = [f"{METHODS[key]}\n{scores[key]['psnr_db']:.1f} dB, gCNR {scores[key]['gcnr']:.2f}"
                         for key in ("hazy", "nlm_gcnr", "joint_dehaze")]
                names[0] = f"hazy, γ = {gamma:g}\n" + names[0].split("\n")[1]
                panels += [bmode_against(scene.tissue, scene.tissue, DYNAMIC_RANGE), images["hazy"][:1], images["nlm_gcnr"][:1],
                           images["joint_dehaze"][:1], result.tissue_std[:1] / peaks[:1]]
                titles += ["clean", *names, f"joint-dehaze std ({rf_settings['n_samples']} samples)"]
                windows += [(-DYNAMIC_RANGE, 0.0)] * 4 + [None]
                units += ["dB"] * 4 + ["of the clean peak"]
                colormaps += ["gray"] * 4 + ["magma"]
    save_png(
        out / "ultrasound_dehaze.png", panels, titles, windows, columns=5, unit=units, colormap=colormaps,
        figure_title=f"test scene {seeds[0]} (P4-2v, 5-25 mm deep, 18 mm wide): B-mode over 60 dB",
    )
    return {
        "scenes": seeds,
        "grid": list(GRID.shape),
        "nlm_strength_db": NLM_STRENGTH,
        "rf": {"settings": rf_settings, "gammas": _means(rf_rows, args.gammas, list(METHODS)), "per_scene": rf_rows},
        "bmode": {"settings": bmode_settings, "gammas": _means(bmode_rows, args.gammas, ["hazy", "joint_dehaze"]),
                  "per_scene": bmode_rows},
    }


def echo_frame(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Frame 0 of pydicom's echo cine, dehazed with the B-mode pair."""
    settings = sampler_settings("us-dehaze-bmode", args.quick)
    cine = read_bmode_dicom(pydicom.data.get_testdata_file("examples_ybr_color.dcm"))
    grey = cine.frames[0].reshape(cine.frames.shape[-2:])[ECHO_CROP].double()[None, None]
    result = invsolve.dehaze_grey_levels(grey, pretrained("us-tissue-bmode"), pretrained("us-haze-bmode"), seed=0,
                                         progress=not args.no_progress, **settings)
    masks = {}
    for name, (rows, columns) in ECHO_REGIONS.items():
        masks[name] = torch.zeros(grey.shape[-2:], dtype=torch.bool)
        masks[name][rows, columns] = True
    scores = {key: float(gcnr(image, masks["cavity"], masks["septum"])) for key, image in (("hazy", grey), ("joint_dehaze", result.tissue))}
    save_png(
        out / "echo_frame.png",
        [grey, result.tissue, result.haze, result.tissue_std],
        [f"echo frame\ngCNR {scores['hazy']:.2f}", f"joint-dehaze, B-mode priors\ngCNR {scores['joint_dehaze']:.2f}",
         "haze h\n(frame = tissue + h)", f"std\n({settings['n_samples']} samples)"],
        [(0.0, 0.8), (0.0, 0.8), (-0.3, 0.3), None],
        unit="grey level",
        colormap=["gray", "gray", "gray", "magma"],
        figure_title="examples_ybr_color.dcm, frame 0, cropped to the sector; gCNR of a cavity box against a septum box",
    )
    return {"file": "examples_ybr_color.dcm", "frame": 0, "crop": [[s.start, s.stop] for s in ECHO_CROP],
            "regions": {name: [[r.start, r.stop], [c.start, c.stop]] for name, (r, c) in ECHO_REGIONS.items()},
            "cavity_septum_gcnr": scores, "settings": settings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ultrasound-dehaze", help="output folder (default: %(default)s)")
    parser.add_argument("--scenes", type=int, default=4, help="test scenes (default: %(default)s)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="haze levels (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help=f"the samplers with {QUICK_STEPS} steps and {QUICK_SAMPLES} samples: a smoke run, "
                             "not the README's figures")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"simulated": simulated(args, out), "echo_frame": echo_frame(args, out)}
    save_json(out / "metrics.json", metrics)
    print(json.dumps({"rf": metrics["simulated"]["rf"]["gammas"], "bmode": metrics["simulated"]["bmode"]["gammas"],
                      "echo_frame": metrics["echo_frame"]["cavity_septum_gcnr"]}, indent=2))


if __name__ == "__main__":
    main()
