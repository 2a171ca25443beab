"""Named sampler settings per imaging task, each from a sweep on a validation split.

``reconstruct(..., preset="ct-sparse")`` takes a sampler's steps, number of
samples and hyperparameters from the preset; keyword arguments given
explicitly still win.  A preset only holds settings that a documented sweep
chose — ``benchmarks/sweep_presets.py`` on images that no test, demo or
README figure uses — and names that sweep in :attr:`Preset.source`; a
sampler the sweep has not covered is refused rather than guessed.  A preset
also says which instruments it was tuned for, and refuses others: the
settings of sparse-view CT do not transfer to a mask.  A sampler's settings
may hold a ``start_time``: the run then starts from an image diffused to
that time (Chung, Sim & Ye, CVPR 2022) — the TV reconstruction of weight
:attr:`Preset.start_tv_weight` the sweep started from — and
:func:`invsolve.reconstruct` asks for that ``start_image``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from invsolve.operators import LinearOperator

__all__ = ["Preset", "PRESETS", "available_presets", "preset_settings"]


@dataclass(frozen=True)
class Preset:
    """Validated sampler settings for one imaging task.

    Attributes
    ----------
    name : str
        E.g. ``"ct-sparse"``.
    task : str
        What the settings were tuned on.
    instruments : tuple of str
        Names of operator classes the task uses; an operator fits the preset
        when it is, or is composed from, one of them.
    samplers : dict
        Sampler name → ``{"steps": int, "n_samples": int, **hyperparameters}``.
    source : str
        The sweep that chose the values (script, split, criterion).
    start_tv_weight : float or None
        For settings that hold a ``start_time``: the weight of the TV
        reconstruction (:func:`invsolve.tv_reconstruct`, the measurement's
        units) they were tuned starting from.
    """

    name: str
    task: str
    instruments: tuple[str, ...]
    samplers: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    start_tv_weight: float | None = None


PRESETS: dict[str, Preset] = {
    "ct-sparse": Preset(
        name="ct-sparse",
        task="parallel-beam CT with 8-32 views over 180 degrees, post-log Poisson data",
        instruments=("RayTransform", "ConeBeamTransform"),
        samplers={
            # steps 50/100 × CG 5/10 swept, mean of 4 samples: 26.5 / 26.7 / 27.7 / 27.8 dB
            # (one sample: 24.3-25.5 dB)
            "dds": {"steps": 100, "n_samples": 4, "cg_iterations": 10},
            "red-diff": {"steps": 1000, "n_samples": 1, "obs_weight": 0.01, "regularization": 0.25},
            # ζ′ swept on single samples (18.5 / 21.1 / 17.9 dB); 4 samples averaged, as for DDS
            "dps": {"steps": 250, "n_samples": 4, "step_size": 0.1},
            # steps 50/100/200 × λ 0.01-0.3 × σ_1 0.05-0.25 (48 runs, docs/benchmarks/sweep_ct_sparse_dpir.jsonl):
            # best 33.96 dB; 100 steps 33.52 dB; σ_1 = 0.05 is the grid's lowest (σ_1 0.25: 33.46 dB)
            "dpir": {"steps": 200, "n_samples": 1, "regularization": 0.03, "highest_level": 0.05, "cg_iterations": 30},
        },
        source=(
            "benchmarks/sweep_presets.py --task ct-sparse and benchmarks/ct_demo_tuning.py: 16 views, "
            "10^5 photons, the four validation phantoms of seeds 2 000 000..2 000 003, prior ct-ellipses, "
            "best mean PSNR over 2000 HU"
        ),
    ),
    "ct-sparse-from-tv": Preset(
        name="ct-sparse-from-tv",
        task=(
            "parallel-beam CT of body slices with 8-32 views over 180 degrees, post-log Poisson data, the ct-synthetic "
            "prior, the sampler started from the TV reconstruction"
        ),
        instruments=("RayTransform",),
        samplers={
            # start_time None / 0.05 / 0.1 / 0.15 / 0.2 × CG 1/2/5 at η 0.85, 4 samples: from noise at best 30.44 dB,
            # from TV best 31.95 dB (t 0.05, CG 2; TV itself 30.83 dB); then η 1 and 8 samples: 32.11 / 32.23 / 32.37 dB
            # (docs/benchmarks/sweep_ct_synthetic.jsonl)
            "dds": {"steps": 50, "n_samples": 8, "cg_iterations": 2, "eta": 1.0, "start_time": 0.05},
        },
        source=(
            "benchmarks/sweep_presets.py --task ct-synthetic: 16 views, 10^5 photons, four validation slices of the "
            "synthetic CT family (seed 2 000 000; the prior learnt seed 0), prior ct-synthetic, started from TV of "
            "weight 0.01, best mean PSNR over 2000 HU"
        ),
        start_tv_weight=1e-2,
    ),
    "ct-sparse-8-from-tv": Preset(
        name="ct-sparse-8-from-tv",
        task=(
            "parallel-beam CT with about 8 views over 180 degrees, post-log Poisson data, the ct-ellipses prior, the "
            "sampler started from the TV reconstruction"
        ),
        instruments=("RayTransform",),
        samplers={
            # start_time 0.02 / 0.05 / 0.1 / 0.2 × λ 0.1 / 0.3 / 1 / 7, 20 steps, ζ 1, 4 samples: best 22.82 dB at
            # t 0.05 (λ 0.3: 22.79; t 0.1: 21.95; t 0.2: 20.75; TV itself 21.54 dB)
            "diffpir": {"steps": 20, "n_samples": 4, "regularization": 0.1, "zeta": 1.0, "start_time": 0.05},
            # start_time None / 0.05 / 0.1 / 0.2 / 0.3 × CG 2 / 5, 50 steps, η 1, 4 samples: best 22.31 dB
            # (from noise at best 19.9 dB)
            "dds": {"steps": 50, "n_samples": 4, "cg_iterations": 5, "eta": 1.0, "start_time": 0.1},
        },
        source=(
            "benchmarks/sweep_presets.py --task ct-sparse-8: 8 views, 10^5 photons, the four validation phantoms of "
            "seeds 2 000 000..2 000 003, prior ct-ellipses, started from TV of weight 0.01, best mean PSNR over 2000 HU "
            "(docs/benchmarks/sweep_ct_sparse_8.jsonl)"
        ),
        start_tv_weight=1e-2,
    ),
    "ct-limited": Preset(
        name="ct-limited",
        task="parallel-beam CT over a limited arc (32 views over 90 degrees), post-log Poisson data",
        instruments=("RayTransform", "ConeBeamTransform"),
        samplers={
            # CG 5 / 10 / 20 / 40 swept: 20.45 / 21.28 / 21.66 / 20.41 dB (one sample: 18.6-19.7 dB)
            "dds": {"steps": 100, "n_samples": 4, "cg_iterations": 20},
            # λ 0.03/0.1/0.3 × σ_1 0.15/0.5/1.5: best 27.75 dB, σ_1 = 1.5 loses 2.8 dB
            "dpir": {"steps": 100, "n_samples": 1, "regularization": 0.03, "highest_level": 0.15, "cg_iterations": 30},
        },
        source=(
            "benchmarks/sweep_presets.py --task ct-limited: 32 views over 90 degrees, 10^5 photons, the four "
            "validation phantoms of seeds 2 000 000..2 000 003, prior ct-ellipses, best mean PSNR over 2000 HU"
        ),
    ),
    "mri-cartesian": Preset(
        name="mri-cartesian",
        task=(
            "Cartesian multi-coil MRI at 4x-8x (fastMRI column masks), data scaled into the prior's window "
            "(invsolve.mri_prior.prior_view)"
        ),
        instruments=("CartesianMRI",),
        samplers={
            # steps 50 × CG 1/2/5/10: 22.50 / 22.97 / 22.45 / 21.08 dB; steps 100: 23.12 / 23.18 / 22.35 / 20.72 dB —
            # few CG steps: more of them fit the k-space noise
            "dds": {"steps": 100, "n_samples": 4, "cg_iterations": 2},
            # λ 1 / 7 / 30: 17.57 / 20.85 / 22.07 dB (one exact SENSE prox per step)
            "diffpir": {"steps": 100, "n_samples": 4, "regularization": 30.0},
            # λ 0.03 … 10 × σ_1 0.1/0.25/0.5: 16.6 dB at λ 0.03 rising to 22.69 at λ 10 (below DDS)
            "dpir": {"steps": 100, "n_samples": 1, "regularization": 10.0, "highest_level": 0.5, "cg_iterations": 30},
        },
        source=(
            "benchmarks/sweep_presets.py --task mri-cartesian: four axial slices of the Colin27 template (the "
            "mri-brain prior learnt coronal ones), 64x64, 8 coils, 4x and 8x random column masks, prior mri-brain, "
            "best mean fastMRI PSNR"
        ),
    ),
    "ct-sparse-3d": Preset(
        name="ct-sparse-3d",
        task="CT volumes of 64×64 slices with few views (8), post-log Poisson data, a 2D prior on the slices",
        instruments=("RayTransform", "ConeBeamTransform"),
        samplers={
            # λ 4e-5..4e-3 × ρ 1e-3..5e-2 × CG 5/10/20 (14 runs): best 26.83 dB; 3D TV's best 27.42 dB,
            # slice-wise DDS 25.28 dB (docs/benchmarks/sweep_recon_3d.jsonl)
            "dds-3d": {"steps": 50, "n_samples": 1, "tv_weight": 4e-4, "rho": 5e-3, "cg_iterations": 5},
        },
        source=(
            "benchmarks/recon_3d.py --split validation --slices 8 --views 8: the validation volume of seed "
            "2 000 000, slice-stacked parallel beam, 10^5 photons, prior ct-ellipses, best PSNR"
        ),
    ),
    "mri-cartesian-3d": Preset(
        name="mri-cartesian-3d",
        task=(
            "3D Cartesian MRI at 4x (a Poisson-disc phase-encode plane, fully sampled read-out), a 2D magnitude prior "
            "on the slices, data scaled into the prior's window"
        ),
        instruments=("CartesianMRI",),
        samplers={
            # λ 1e-4..1e-1 × ρ 0.01/0.1/1 × CG 1/2/5 (13 runs): best 40.59 dB; 3D TV's best 45.16 dB, zero-filled 37.13 dB
            # (docs/benchmarks/sweep_recon_3d_mri.jsonl)
            "dds-3d": {"steps": 50, "n_samples": 1, "tv_weight": 1e-3, "rho": 0.1, "cg_iterations": 5},
        },
        source=(
            "benchmarks/recon_3d.py --task mri --split validation: the INIA19 macaque T1 template at 64^3 (not the test "
            "brain, not the prior's training brain), 4x Poisson disc, single coil, prior mri-brain on coronal slices, "
            "best PSNR"
        ),
    ),
    "us-dehaze": Preset(
        name="us-dehaze",
        task="ultrasound dehazing of beamformed RF, y = x + gamma*h, with the us-tissue and us-haze priors on 64x64 patches",
        instruments=("HazyMeasurement",),
        samplers={
            # γ = 0.2, one sample, λ = κ = 1 (PiGDM): τ 0.1 / 0.2 / 0.3 / 0.5 / 0.7 / 1.0 gave 26.63 / 26.94 / 26.85 /
            # 16.40 / 24.47 / 26.19 dB, gCNR 0.549 / 0.580 / 0.567 / 0.589 / 0.582 / 0.584 (hazy 27.01 dB, 0.570);
            # λ = κ = 0.5 at τ = 1: 26.00 dB, 0.591; DPS (weight 1, τ = 1): 10.58 dB. Four samples averaged, all
            # three levels: τ = 0.2 mean 28.05 dB, gCNR 0.569; τ = 1 mean 27.59 dB, gCNR 0.574 (hazy 27.68 dB, 0.569)
            # (docs/benchmarks/sweep_ultrasound_dehaze.jsonl)
            "joint-dehaze": {"steps": 50, "n_samples": 4, "tissue_weight": 1.0, "haze_weight": 1.0, "tau": 1.0, "guidance": "pigdm"},
        },
        source=(
            "benchmarks/ultrasound_dehaze.py --split validation: the first four validation scenes with a cyst (seeds "
            "from 10 000; the priors learnt seeds 0-255, the example reports seeds from 20 000), P4-2v 283x64 RF, "
            "best mean gCNR over gamma = 0.1, 0.2, 0.3 among the settings within 1.5 dB of the hazy input's mean PSNR"
        ),
    ),
    "us-dehaze-bmode": Preset(
        name="us-dehaze-bmode",
        task="ultrasound dehazing of B-mode grey levels, y = x + h, with the us-tissue-bmode and us-haze-bmode priors",
        instruments=("HazyMeasurement",),
        samplers={
            # γ = 0.2, one sample, λ = κ = 1 (PiGDM): τ 0.1 / 0.2 / 1.0 gave 28.69 / 28.57 / 26.94 dB, gCNR 0.861 /
            # 0.885 / 0.881 (hazy 29.84 dB, 0.845). Four samples averaged, all three levels: τ = 0.2 mean 29.48 dB,
            # gCNR 0.864; τ = 1 mean 26.91 dB, gCNR 0.878 (hazy 30.60 dB, 0.845)
            # (docs/benchmarks/sweep_ultrasound_dehaze.jsonl, records with "domain": "bmode")
            "joint-dehaze": {"steps": 50, "n_samples": 4, "tissue_weight": 1.0, "haze_weight": 1.0, "tau": 0.2, "guidance": "pigdm"},
        },
        source=(
            "benchmarks/ultrasound_dehaze.py --split validation --domain bmode: the four validation scenes of us-dehaze "
            "as displayed grey levels (envelope over 4 rows, 60 dB), best mean gCNR over gamma = 0.1, 0.2, 0.3 among "
            "the settings within 1.5 dB of the hazy input's mean PSNR"
        ),
    ),
    "inpainting": Preset(
        name="inpainting",
        task="inpainting: 60 % of the pixels and a box hidden, noise of 10 HU",
        instruments=("Mask",),
        samplers={
            # steps 50 / 100: 18.91 / 19.57 dB (the hidden box is filled with plausible, not true, structure)
            "dds": {"steps": 100, "n_samples": 4, "cg_iterations": 5},
            # λ 1 / 7 / 30: 18.90 / 18.90 / 18.88 dB: the mask's exact prox keeps the seen pixels whatever λ
            "diffpir": {"steps": 100, "n_samples": 4, "regularization": 7.0},
            # λ 0.03-1 × σ_1 0.25/0.5/1: 16.5-17.1 dB whatever λ — starting at σ_1 <= 1 it cannot fill the box
            "dpir": {"steps": 100, "n_samples": 1, "regularization": 1.0, "highest_level": 0.5},
        },
        source=(
            "benchmarks/sweep_presets.py --task inpainting: the four validation phantoms of seeds "
            "2 000 000..2 000 003, prior ct-ellipses, best mean PSNR over 2000 HU"
        ),
    ),
}


def available_presets() -> list[str]:
    """Names of the presets."""
    return sorted(PRESETS)


def _instrument_names(operator: LinearOperator) -> set[str]:
    """Class names of ``operator`` and of every operator it is composed from."""
    names, pending = set(), [operator]
    while pending:
        current = pending.pop()
        names.add(type(current).__name__)
        pending += [child for child in current.children() if isinstance(child, LinearOperator)]
        pending += [child for child in getattr(current, "operators", []) if isinstance(child, LinearOperator)]
    return names


def preset_settings(name: str, sampler: str, operator: LinearOperator) -> dict[str, Any]:
    """The settings of preset ``name`` for ``sampler``, after checking that ``operator`` fits it.

    Returns
    -------
    dict
        ``{"steps": …, "n_samples": …, **hyperparameters}`` (a copy).

    Raises
    ------
    ValueError
        For an unknown preset (the message lists the known ones), an
        operator the preset was not tuned for, or a sampler its sweep did
        not cover (the message lists those it did).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(available_presets())}")
    preset = PRESETS[name]
    if not _instrument_names(operator) & set(preset.instruments):
        raise ValueError(
            f"preset {name!r} is tuned for {preset.task} ({' or '.join(preset.instruments)}), but the operator is "
            f"{operator.describe()}; choose a preset for this instrument or give the sampler's settings yourself"
        )
    if sampler not in preset.samplers:
        raise ValueError(
            f"preset {name!r} has no validated settings for sampler {sampler!r}; its sweep covered: "
            f"{', '.join(sorted(preset.samplers))}"
        )
    return dict(preset.samplers[sampler])
