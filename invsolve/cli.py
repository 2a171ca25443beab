"""The ``invsolve`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invsolve", description="Reconstruct images from indirect measurements with diffusion priors."
    )
    from invsolve import __version__

    parser.add_argument("--version", action="version", version=f"invsolve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="sparse-view CT with the embedded ct-ellipses prior (default) or Gaussian inpainting; writes PNG + JSON",
        description="ct (default): sparse-view CT of a held-out ellipse phantom and of pydicom's CT_small.dcm with the "
        "embedded ct-ellipses and ct-synthetic priors, DDS and DPIR (presets ct-sparse, ct-sparse-from-tv) vs FBP vs "
        "TV; writes ct.png, ct_std.png and ct_metrics.json.  inpainting: a CT slice "
        "inpainted with an exact Gaussian prior, RED-Diff and DPS vs the exact posterior; writes inpainting.png, "
        "inpainting_std.png and inpainting_metrics.json.",
    )
    demo.add_argument("problem", nargs="?", default="ct", choices=("ct", "inpainting"), help="which demo (default: ct)")
    demo.add_argument("--out", default="invsolve-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--views", type=int, help="ct: projection views over 180 degrees (default: 16)")
    demo.add_argument("--steps", type=int, help="ct: DDS steps per sample and DPIR iterations (default: the presets')")
    demo.add_argument("--size", type=int, help="inpainting: image side in pixels, 8..64 (default: 32)")
    demo.add_argument("--dps-samples", type=int, help="inpainting: DPS samples (default: 16)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    training = commands.add_parser(
        "train-prior",
        help="train a UNet diffusion prior from a TOML config; writes prior.pt, train_state.pt, log.json, samples/",
        description="Train a UNet diffusion prior from a TOML config ([data], [prior], [train], [output]; see "
        "invsolve.priors.train).  Several processes: torchrun --nproc_per_node N -m invsolve.cli train-prior ...",
    )
    training.add_argument("config", help="the TOML config file")
    training.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="STATE",
        help="continue from train_state.pt in the output folder, or from the file STATE",
    )
    training.add_argument("--out", default=None, help="output folder (default: [output] dir of the config)")
    training.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    fitting = commands.add_parser(
        "fit-gaussian",
        help="add the Gaussian fit of a recipe's training data to a prior checkpoint (rewrites PRIOR.pt)",
        description="Compute the mean and top principal components of the training images of the config's [data], "
        "in the prior's network units, and store them in the checkpoint with the rest unchanged (float16 weights "
        "stay float16).  For priors trained before train-prior did this itself; see "
        "invsolve.priors.fit_gaussian_from_config.",
    )
    fitting.add_argument("config", help="the TOML config (recipe) the prior was trained with")
    fitting.add_argument("prior", help="the prior checkpoint (.pt) to rewrite")
    fitting.add_argument(
        "--rank", type=int, default=None, help="principal components (default: [train] gaussian_rank, 64)"
    )
    fitting.add_argument(
        "--images", type=int, default=None, help="images the fit uses (default: [train] gaussian_images, 2048)"
    )
    fitting.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_reconstruct(commands)
    _add_dehaze(commands)
    _add_augment(commands)
    return parser


def _add_augment(commands: argparse._SubParsersAction) -> None:
    """The ``augment`` and ``augment-merge`` subcommands (the work is in invsolve.command_augment)."""
    augment = commands.add_parser(
        "augment",
        help="generate galaxies of chosen morphologies with a conditional prior; writes HDF5 (and FITS cutouts)",
        description="Pick Galaxy Zoo 2 morphology vectors from catalogue rows matching --query (or --oversample "
        "QUERY:FACTOR per class, or explicit --vector/--vectors) and generate one galaxy each with a conditional "
        "prior (DDIM, classifier-free guidance).  Shards (--shard K/N) run as separate processes or array tasks "
        "and are joined by `invsolve augment-merge OUT`; an interrupted run resumes where it stopped when run "
        "again with the same options.  See invsolve.galaxy.augment for the file layout.",
    )
    augment.add_argument("--prior", default="galaxy-cond", help="embedded name or checkpoint (default: %(default)s)")
    augment.add_argument("--catalog", help="catalogue file or folder (GZ2 Hart16 CSV/FITS, Kaggle CSV, Galaxy10 "
                         "HDF5, FITS cutouts)")
    augment.add_argument("--catalog-kind", default="auto", help="hart16, kaggle, galaxy10, fits or auto (default)")
    augment.add_argument("--mapping", help="hart16: the GZ2 objid -> asset_id mapping CSV")
    augment.add_argument("--query", help='rows to take conditions from, e.g. "dust_lane>0.5 and odd.yes>0.5"')
    augment.add_argument("--n", type=int, help="number of galaxies (with --query or --vector/--vectors)")
    augment.add_argument("--oversample", action="append", metavar="QUERY:FACTOR",
                         help="every row matching QUERY, FACTOR times (repeatable, one per class)")
    augment.add_argument("--vector", action="append", metavar="NAME=VALUE,...",
                         help='an explicit morphology vector, e.g. "smooth=0.9,odd.yes=0.9,dust_lane=0.8" (repeatable)')
    augment.add_argument("--vectors", help="a .npy file of vectors (M, 37)")
    augment.add_argument("--out", required=True, help="output HDF5 file (.h5 or .hdf5)")
    augment.add_argument("--guidance", type=float, help="classifier-free guidance weight (default: the prior's)")
    augment.add_argument("--steps", type=int, default=50, help="DDIM steps (default: %(default)s)")
    augment.add_argument("--batch-size", type=int, default=16, help="images per batch (default: %(default)s)")
    augment.add_argument("--seed", type=int, default=0, help="job seed (default: %(default)s)")
    augment.add_argument("--shard", metavar="K/N", help="generate only the K-th of N blocks (K from 0)")
    augment.add_argument("--fits", metavar="DIR", help="also write one FITS cutout per galaxy into DIR")
    augment.add_argument("--flip", action="store_true", help="random flips of the generated galaxies")
    augment.add_argument("--rot90", action="store_true", help="random 90-degree rotations of the generated galaxies")
    augment.add_argument("--append", action="store_true", help="add samples to an existing OUT")
    augment.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    augment.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    merge = commands.add_parser(
        "augment-merge",
        help="join the shard files OUT_STEM.shard-K-of-N.h5 of an augment job into OUT",
        description="Check that every shard of an `invsolve augment --shard K/N` job is present and from the same "
        "job, then write them, in sample order, into OUT (atomically).",
    )
    merge.add_argument("out", help="the job's --out file")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    merge.add_argument("--no-progress", action="store_true", help=argparse.SUPPRESS)


def _add_dehaze(commands: argparse._SubParsersAction) -> None:
    """The ``dehaze`` subcommand's arguments (the work is in invsolve.command_dehaze)."""
    dehaze = commands.add_parser(
        "dehaze",
        help="separate tissue from haze in ultrasound RF frames, channel data or DICOM B-mode with two diffusion "
        "priors; writes HDF5 + PNG",
        description="Dehaze beamformed RF frames (.npy, or an HDF5 dataset: zea's data/beamformed_data or --dataset; "
        "(H, W) or (frames, H, W), depth along H), PICMUS/zea channel data (beamformed first) or an ultrasound DICOM "
        "(grey levels, B-mode priors) with the joint two-prior sampler and write OUT (.h5/.hdf5: tissue, haze, with "
        "--samples > 1 tissue_std; provenance attributes) and <stem>.png.  Nothing is written if anything fails.  "
        "See invsolve.command_dehaze.",
    )
    dehaze.add_argument("input", help="the RF or channel-data file (.npy, .h5/.hdf5) or an ultrasound DICOM (.dcm)")
    dehaze.add_argument("--out", required=True, help="output HDF5 file (.h5 or .hdf5)")
    dehaze.add_argument("--gamma", type=float, help="RF: haze level gamma in [0, 1] of y = x + gamma*h (required; not for DICOM)")
    dehaze.add_argument("--dataset", help="HDF5 input: the dataset of RF frames")
    dehaze.add_argument("--frames", help="frame K or frames START:STOP (from 0; default: all)")
    dehaze.add_argument("--tissue-prior", help="embedded name or checkpoint (default: us-tissue; DICOM: us-tissue-bmode)")
    dehaze.add_argument("--haze-prior", help="embedded name or checkpoint (default: us-haze; DICOM: us-haze-bmode)")
    dehaze.add_argument("--steps", type=int, help="sampler steps (default: preset us-dehaze's or us-dehaze-bmode's)")
    dehaze.add_argument("--samples", type=int, help="posterior samples; > 1 writes tissue_std (default: the preset's)")
    dehaze.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
        help="joint-dehaze hyperparameter, repeatable (tissue_weight, haze_weight, guidance, tau)",
    )
    dehaze.add_argument("--noise-std", type=float, help="noise of the peak-normalised RF (default: the preset's)")
    dehaze.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    dehaze.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_reconstruct(commands: argparse._SubParsersAction) -> None:
    """The ``reconstruct`` subcommand's arguments (the work is in invsolve.command_reconstruct)."""
    recon = commands.add_parser(
        "reconstruct",
        help="reconstruct your own CT sinogram or MRI k-space file with a diffusion prior; writes the image, "
        "its std, a PNG and metrics",
        description="Reconstruct a measurement file (.npy, .h5/.hdf5 incl. fastMRI, .nii/.nii.gz, .dcm or a DICOM "
        "folder) at the prior's image size and write OUT (.nii/.nii.gz with the pixel spacing in the affine, .h5 "
        "dataset 'reconstruction', or .npy), with --samples > 1 also <stem>_std.<ext> (posterior std), always "
        "<stem>.png, and with --reference <stem>_metrics.json.  Nothing is written if anything fails.  See "
        "invsolve.command_reconstruct.",
    )
    recon.add_argument("--operator", required=True, help="forward model: ct-parallel or mri")
    recon.add_argument(
        "--input", required=True,
        help="the measurement file: sinogram (views, detector) or k-space (coils, H, W); for a slice-augmented "
        "sampler (dds-3d, mbir) sinograms (slices, views, detector) or 3D k-space (coils, D, H, W)",
    )
    recon.add_argument("--out", required=True, help="output file: .nii, .nii.gz, .h5, .hdf5 or .npy")
    recon.add_argument(
        "--prior", help="embedded prior name or checkpoint path (default: ct-ellipses for ct-parallel, mri-brain for mri)"
    )
    recon.add_argument("--sampler", default="dds", help="sampler name (default: %(default)s)")
    recon.add_argument("--steps", type=int, help="sampler steps (default: the sampler's)")
    recon.add_argument(
        "--samples", type=int, help="posterior samples; > 1 writes the std map (default: the preset's, else 1)"
    )
    recon.add_argument(
        "--preset", help="validated settings for the task, e.g. ct-sparse, or ct-sparse-from-tv and ct-sparse-8-from-tv "
        "(start from the TV image) (invsolve.presets); explicit options win"
    )
    recon.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    recon.add_argument(
        "--start-time", type=float,
        help="warm start at this time in (0, 1]: from the --start-tv image, else (2D) the prior's Gaussian fit",
    )
    recon.add_argument(
        "--start-tv", type=float, metavar="WEIGHT",
        help="with --start-time (or a preset that starts from TV): start from the TV reconstruction of the "
        "measurement with this weight "
        "(invsolve.tv_reconstruct, 300 iterations; the way dds-3d beats 3D TV on CT volumes)",
    )
    recon.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
        help="sampler hyperparameter, repeatable (e.g. --set eta=0.5)",
    )
    recon.add_argument("--dataset", help="HDF5 input: the dataset to read (default: kspace, or the only one)")
    recon.add_argument("--slice", type=int, dest="slice_index", metavar="K", help="the slice of a multi-slice input (from 0)")
    recon.add_argument("--reference", help="an image file to score against; writes <stem>_metrics.json")
    recon.add_argument("--noise-std", type=float, help="measurement noise std (MRI default: from the k-space corners)")
    recon.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run with --samples > 1 from its checkpoint (.<stem>.samples.pt beside --out)",
    )
    recon.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ct = recon.add_argument_group("ct-parallel")
    ct.add_argument("--views", type=int, help="number of views, evenly spread over --angle-range")
    ct.add_argument("--angles-file", help="projection angles in degrees (text or 1-D .npy) instead of --views")
    ct.add_argument("--angle-range", type=float, help="degrees covered by --views (default 180; less: limited angle)")
    ct.add_argument("--pixel-mm", type=float, help="image pixel size in mm (default: the input's, else 1)")
    ct.add_argument("--incident-flux", type=float, help="photons per detector pixel and view; sets the noise std")
    ct.add_argument("--hu", action="store_true", help="write Hounsfield units instead of the prior's 1/mm")
    mri = recon.add_argument_group("mri")
    mri.add_argument(
        "--mask",
        help="sampling mask file, or random:R:C / equispaced:R:C (2D columns), poisson:R:C (3D phase-encode plane) "
        "(default: the file's mask, else the non-zero k-space)",
    )
    mri.add_argument(
        "--resize", action="store_true", help="crop larger k-space to the prior's size (a lower-resolution image)"
    )


def _run_file_command(name: str, function: Callable[..., dict[str, Any]], args: argparse.Namespace) -> int:
    """Run a command that reads and writes files: its options as keywords, its summary as JSON, errors as one line."""
    options = {key: value for key, value in vars(args).items() if key not in ("command", "no_progress")}
    try:
        summary = function(**options, progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as error:
        print(f"invsolve {name}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    print(f"wrote {', '.join(summary['files'])}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code.

    Bad options, inputs and output locations end the command with exit code
    2 and one line ``invsolve COMMAND: error: …`` on stderr, before any long
    computation where they can be known in advance (output folders and
    files are probed first); a sampler that diverges (``FloatingPointError``)
    ends it the same way.
    """
    from invsolve._checks import check_output_dir, check_output_file

    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        from invsolve.demo import DEMOS

        options = {"ct": ("views", "steps"), "inpainting": ("size", "dps_samples")}
        for problem, names in options.items():
            for name in names:
                if problem != args.problem and getattr(args, name) is not None:
                    flag = "--" + name.replace("_", "-")
                    print(f"invsolve demo: error: {flag} applies to the {problem} demo, not to {args.problem}", file=sys.stderr)
                    return 2
        chosen = {name: getattr(args, name) for name in options[args.problem] if getattr(args, name) is not None}
        try:
            check_output_dir(args.out, "--out")  # before the minute of computing, not after it
            metrics = DEMOS[args.problem](args.out, seed=args.seed, progress=not args.no_progress, **chosen)
        except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as error:
            print(f"invsolve demo: error: {error}", file=sys.stderr)
            return 2
        print(json.dumps(metrics, indent=2))
        print(f"wrote {args.out}/{args.problem}*.png and {args.out}/{args.problem}_metrics.json", file=sys.stderr)
    elif args.command == "train-prior":
        from invsolve.priors import train

        try:
            if args.out is not None:
                check_output_dir(args.out, "--out")
            result = train(args.config, resume=args.resume, progress=not args.no_progress, out=args.out)
        except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
            print(f"invsolve train-prior: error: {error}", file=sys.stderr)
            return 2
        summary = {
            "prior": str(result.output_dir / "prior.pt"),
            "steps": result.steps,
            "final_loss": float(result.losses[-1]),
        }
        if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
            print(json.dumps(summary, indent=2))
    elif args.command == "fit-gaussian":
        from invsolve.priors import fit_gaussian_from_config

        try:
            check_output_file(args.prior, "PRIOR")  # rewritten in place at the end
            fit = fit_gaussian_from_config(
                args.config, args.prior, rank=args.rank, images=args.images, progress=not args.no_progress
            )
        except (ValueError, TypeError, FileNotFoundError) as error:
            print(f"invsolve fit-gaussian: error: {error}", file=sys.stderr)
            return 2
        summary = {"prior": args.prior, "rank": fit.rank, "explained_variance": fit.explained_variance}
        print(json.dumps(summary, indent=2))
    elif args.command == "reconstruct":
        from invsolve.command_reconstruct import reconstruct_files

        return _run_file_command("reconstruct", reconstruct_files, args)
    elif args.command == "dehaze":
        from invsolve.command_dehaze import dehaze_file

        return _run_file_command("dehaze", dehaze_file, args)
    elif args.command == "augment":
        from invsolve.command_augment import augment_files

        return _run_file_command("augment", augment_files, args)
    elif args.command == "augment-merge":
        from invsolve.command_augment import merge_files

        return _run_file_command("augment-merge", merge_files, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
