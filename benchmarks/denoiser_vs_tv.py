"""How much better than total variation is the prior itself? Denoising, not reconstruction.

Before asking why a diffusion prior does or does not beat TV in a reconstruction,
compare the two as *denoisers*, where the sampler plays no part: the eight
*validation* phantoms of ``benchmarks/ct_demo_tuning.py`` (seeds 2 000 000…,
never a test image) are put at each noise level of the prior's schedule
(``x_t = α_t x + σ_t ε``) and restored

* by the prior's Tweedie estimate ``E[x₀ | x_t]`` (one network evaluation), and
* by TV denoising (:func:`invsolve.tv_reconstruct` with an identity mask, 300 PDHG
  iterations) of ``x_t/α_t`` at the *best* of a grid of weights for that level,
  chosen on these very images (an oracle TV, so the comparison favours TV).

``--image ct-small`` repeats it on pydicom's real ``CT_small.dcm`` (averaged to 64²,
four noise draws) — a diagnosis of why reconstructions of real anatomy do not beat TV,
not a tuning: nothing is chosen from it.

PSNR over 2000 HU, mean over the images. Prints one JSON line per level and records
the run in ``benchmarks/results/denoiser_vs_tv.json``.

    python benchmarks/denoiser_vs_tv.py [--prior ct-synthetic] [--image ct-small] [--images 8]
"""

from __future__ import annotations

import argparse
import json
import torch

from _recording import results_path, run_metadata, save_run
from invsolve.baselines import tv_reconstruct
from invsolve.datasets import ct_small_slice
from invsolve.demo import held_out_phantoms
from invsolve.operators.ct import hounsfield_to_attenuation
from invsolve.operators import Mask
from invsolve.priors import pretrained
# the sibling benchmark's score: mean PSNR over 2000 HU
from warm_start import mean_psnr

VALIDATION_SEED = 2_000_000
TIMES = (0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
#: TV weights in units of the level's noise std (physical units)
TV_WEIGHTS = (0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
TV_ITERATIONS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="ct-ellipses", help="an embedded CT prior (default %(default)s)")
    parser.add_argument("--image", choices=("validation-phantoms", "ct-small"), default="validation-phantoms")
    parser.add_argument("--images", type=int, default=8, help="how many images (noise draws of CT_small)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise")
    args = parser.parse_args()
    metadata = run_metadata()
    prior = pretrained(args.prior)
    if args.image == "ct-small":
        ct_small = torch.nn.functional.adaptive_avg_pool2d(ct_small_slice()[None], tuple(prior.image_shape[1:]))
        truth = hounsfield_to_attenuation(ct_small).expand(args.images, -1, -1, -1).clone()
    else:
        truth = held_out_phantoms(args.images, VALIDATION_SEED)
    clean = prior.to_network(truth)
    identity = Mask(torch.ones(truth.shape[-2:], dtype=torch.bool))
    generator = torch.Generator().manual_seed(args.seed)
    results = []
    for t in TIMES:
        alpha, sigma = (float(v) for v in prior.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
        noisy = alpha * clean + sigma * torch.randn(clean.shape, generator=generator)
        with torch.no_grad():
            denoised = prior.to_physical(prior.denoise(noisy, t))
        observed = prior.to_physical(noisy / alpha)
        level = sigma / alpha * prior.normalization.scale  # noise std of `observed`, physical units
        tv = {
            weight: mean_psnr(tv_reconstruct(observed, identity, weight * level, TV_ITERATIONS, progress=False), truth)
            for weight in TV_WEIGHTS
        }
        best = max(tv, key=tv.get)
        entry = {
            "time": t,
            "noise_level_network_units": sigma / alpha,
            "noisy_psnr_db": mean_psnr(observed, truth),
            "prior_denoiser_psnr_db": mean_psnr(denoised, truth),
            "oracle_tv_psnr_db": tv[best],
            "oracle_tv_weight_per_noise_std": best,
        }
        entry["advantage_db"] = entry["prior_denoiser_psnr_db"] - entry["oracle_tv_psnr_db"]
        results.append(entry)
        print(json.dumps(entry), flush=True)
    save_run(results_path("denoiser_vs_tv", parser, args), metadata, results)


if __name__ == "__main__":
    main()
