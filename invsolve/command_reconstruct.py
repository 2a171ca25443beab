"""``invsolve reconstruct``: a measurement file in, an image file (with error bars) out.

The pieces of the command, usable on their own:

* :func:`~invsolve.measurement_files.read_array` (its own module) reads the
  measurement, reference and mask files by their extension, with the pixel
  spacing where the file states it.
* :func:`~invsolve.measurement_problems.prepare_ct` and
  :func:`~invsolve.measurement_problems.prepare_mri` (their own module) turn
  a measurement and a prior into what :func:`invsolve.reconstruct` needs: the
  operator at the prior's image size, the measurement checked against the
  operator's ``out_shape``, the noise level, and how to turn the result into
  the image written (units, magnitude, scaling).
* :func:`reconstruct_files` is the whole command: it checks everything it can
  before the (slow) reconstruction, then writes every output to a temporary
  file and renames them all at the end (:mod:`invsolve.output_files`), so a
  failure leaves no output.

Array conventions: arrays are used in the index order the file stores
(NumPy's for ``.npy`` and HDF5, nibabel's for NIfTI, ``pixel_array[row,
column]`` for DICOM); a file with several slices (a 3-D NIfTI volume along
its last axis, a DICOM series ordered by ``InstanceNumber``, the first axis
otherwise) needs ``slice_index``.  Written images are ``(H, W)`` arrays in the
same order, so reading an output back gives the same array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from invsolve._checks import check_finite, check_nonnegative, check_output_file
from invsolve.presets import PRESETS, preset_settings
from invsolve.measurement_files import REFERENCE_DATASETS, drop_leading_ones, read_array, select_plane
from invsolve.measurement_problems import prepare_ct, prepare_mri
from invsolve.operators import GaussianLikelihood
from invsolve.output_files import StagedFiles, output_paths, output_suffix, write_image
from invsolve.samplers import Problem

__all__ = [
    "OPERATORS",
    "DEFAULT_PRIORS",
    "load_prior_option",
    "parse_hyperparameters",
    "reconstruct_files",
]

#: the forward models the command builds
OPERATORS = ("ct-parallel", "mri")
#: the embedded prior used when none is named
DEFAULT_PRIORS = {"ct-parallel": "ct-ellipses", "mri": "mri-brain"}
#: PDHG iterations of the TV image a run starts from with --start-tv (as the benchmarks' TV baselines)
_START_TV_ITERATIONS = 300
_FASTMRI_IS_2D = (
    "2D multi-slice k-space, each slice Fourier-encoded on its own, not a 3D acquisition; reconstruct its slices "
    "with a 2D sampler (--slice N), or give the k-space of a 3D acquisition, (coils, D, H, W)"
)


def load_prior_option(value: str) -> tuple[Any, str]:
    """The prior named by ``--prior``: an embedded name, or a checkpoint file path.

    Returns the prior and how it was named.  A value that is an existing
    file, or ends in ``.pt``, is a checkpoint path; anything else an
    embedded name (:func:`invsolve.priors.available_pretrained`).
    """
    from invsolve.priors import load_prior, pretrained

    if Path(value).is_file() or value.endswith(".pt"):
        return load_prior(value), str(value)
    return pretrained(value), value


def parse_hyperparameters(settings: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, values as bool (true/false), int or float where they look like one."""
    parsed: dict[str, Any] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"--set expects KEY=VALUE with a hyperparameter name as KEY, got {setting!r}")
        text = text.strip()
        value: Any
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        parsed[key] = value
    return parsed


def _reference_range(reference: torch.Tensor, source: str, operator: str) -> float:
    """The data range of PSNR and SSIM against ``--reference``: its max − min.

    A reference without contrast (a constant image) has none; its largest
    magnitude is used instead, fastMRI's ``maxval``.  A reference that is
    all zeros, or holds NaN/Inf, leaves every score undefined, and fastMRI's
    scores (MRI) need a positive maximum: these are refused before the
    reconstruction starts.
    """
    check_finite(reference, f"--reference {source}")
    if operator == "mri" and not float(reference.max()) > 0:
        raise ValueError(f"--reference {source} must have a positive maximum (fastMRI's maxval), got {float(reference.max()):g}")
    span = float(reference.max() - reference.min())
    if span > 0:
        return span
    peak = float(reference.abs().max())
    if peak == 0:
        raise ValueError(f"--reference {source} is all zeros: PSNR, SSIM and NMSE against it are undefined")
    return peak


def _metrics(mean: torch.Tensor, reference: torch.Tensor, operator: str, data_range: float) -> dict[str, float]:
    from invsolve.metrics import fastmri_nmse, fastmri_psnr, fastmri_ssim, nmse, psnr, ssim

    image, truth = mean[None, None].to(torch.float64), reference[None, None].to(torch.float64)
    scores = {
        "psnr_db": float(psnr(image, truth, data_range=data_range)[0]),
        "ssim": float(ssim(image, truth, data_range=data_range)[0]),
        "nmse": float(nmse(image, truth)[0]),
    }
    if operator == "mri":
        scores.update(
            fastmri_nmse=float(fastmri_nmse(truth[0], image[0])),
            fastmri_psnr_db=float(fastmri_psnr(truth[0], image[0])),
            fastmri_ssim=float(fastmri_ssim(truth[0], image[0])),
        )
    return scores


# -- the command -----------------------------------------------------------------------------------


def _check_applicable(operator: str, options: Mapping[str, Any]) -> None:
    """One error for an option that belongs to the other operator."""
    only = {
        "ct-parallel": ("views", "angles_file", "angle_range", "pixel_mm", "incident_flux", "hu"),
        "mri": ("mask", "resize"),
    }
    for owner, names in only.items():
        if owner == operator:
            continue
        for name in names:
            if options.get(name) not in (None, False):
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} applies to --operator {owner}, not to {operator}")


def reconstruct_files(
    *,
    operator: str,
    input: str,
    out: str,
    prior: str | None = None,
    sampler: str = "dds",
    steps: int | None = None,
    samples: int | None = None,
    preset: str | None = None,
    seed: int = 0,
    start_time: float | None = None,
    start_tv: float | None = None,
    settings: Sequence[str] = (),
    dataset: str | None = None,
    slice_index: int | None = None,
    reference: str | None = None,
    progress: bool = True,
    views: int | None = None,
    angles_file: str | None = None,
    angle_range: float | None = None,
    pixel_mm: float | None = None,
    noise_std: float | None = None,
    incident_flux: float | None = None,
    hu: bool = False,
    mask: str | None = None,
    resize: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Reconstruct the measurement in ``input`` and write the image files; the command ``invsolve reconstruct``.

    Everything that can be checked is checked before the reconstruction
    starts (option combinations, output type and location — every output
    file's folder exists or can be created and takes new files, no output
    is an existing folder —, prior, measurement shape, reference shape,
    sampler and its hyperparameters), and every output is
    written to a temporary file and renamed at the end: on any error no
    output file exists.

    Writes ``out`` (the posterior mean, or the point estimate), with
    ``samples > 1`` ``<stem>_std<suffix>`` (per-pixel posterior standard
    deviation), always ``<stem>.png`` (a preview of the mean and std), and
    with ``reference`` ``<stem>_metrics.json``.  See :func:`~invsolve.measurement_problems.prepare_ct` and
    :func:`~invsolve.measurement_problems.prepare_mri` for the operators and the remaining parameters.

    With ``start_tv`` (and ``start_time``) the sampler starts from the TV
    reconstruction of the measurement (:func:`invsolve.tv_reconstruct` with
    that weight, 300 iterations, non-negative for CT), diffused to
    ``start_time`` (:func:`invsolve.reconstruct`'s ``start_image``).  A
    preset tuned from the TV image (``ct-sparse-from-tv``) supplies both.

    With ``samples > 1`` the finished samples are kept in the hidden
    checkpoint ``.<stem>.samples.pt`` beside ``out`` while the run goes on
    (:func:`invsolve.reconstruct`'s ``checkpoint``), so an interrupted run
    is continued by the same command with ``resume=True`` (``--resume``),
    to the result an uninterrupted run gives.  Without ``resume`` an existing
    checkpoint is refused rather than overwritten.

    Returns
    -------
    dict
        A summary: files written, prior, sampler, operator details, metrics.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        With one message naming the option, what was expected and what was given.
    """
    import invsolve
    from invsolve.files import save_json, save_png
    from invsolve.samplers import available_samplers, get_sampler

    if operator not in OPERATORS:
        raise ValueError(f"unknown operator {operator!r}; available: {', '.join(OPERATORS)}")
    options = dict(views=views, angles_file=angles_file, angle_range=angle_range, pixel_mm=pixel_mm,
                   incident_flux=incident_flux, hu=hu, mask=mask, resize=resize)
    _check_applicable(operator, options)
    paths = output_paths(out)
    if paths["mean"].is_dir():
        raise ValueError(f"--out {out} is a folder; give the output file, e.g. {Path(out) / 'recon.nii.gz'}")
    # every file that may be written, before anything is read or computed
    for role, path in paths.items():
        check_output_file(path, "--out" if role == "mean" else f"--out (its {role} file)")
    resumed = paths["checkpoint"].is_file()
    if resumed and not resume:
        raise ValueError(
            f"{paths['checkpoint']} holds the samples of an interrupted run for --out {out}: pass --resume to "
            "continue it, or delete it to start over"
        )
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ValueError(f"--samples must be a positive integer, got {samples!r}")
    # a preset tuned from the TV image starts from it at its start time with its weight, unless told otherwise
    preset_start = PRESETS[preset].samplers.get(sampler, {}).get("start_time") if preset in PRESETS else None
    if preset_start is not None:
        start_time = preset_start if start_time is None else start_time
        start_tv = PRESETS[preset].start_tv_weight if start_tv is None else start_tv
    if start_tv is not None:
        check_nonnegative(start_tv, "--start-tv")
        if start_time is None:
            raise ValueError("--start-tv needs --start-time: the diffusion time in (0, 1] at which the run starts "
                             "from the TV image (e.g. 0.2)")
    hyperparameters = parse_hyperparameters(settings)
    chosen = get_sampler(sampler, **hyperparameters)
    if samples is not None and samples > 1 and not chosen.draws_samples:
        posterior = [name for name in available_samplers() if type(get_sampler(name)).draws_samples]
        raise ValueError(
            f"{sampler} is a point estimator: it has no posterior std, so --samples must be 1 (got {samples}); "
            f"a std map needs a posterior sampler: {', '.join(posterior)}"
        )

    prior_name = prior if prior is not None else DEFAULT_PRIORS[operator]
    model, prior_name = load_prior_option(prior_name)
    measurement = read_array(
        input, "--input", dataset=dataset, slice_index=slice_index, allow_fastmri=operator == "mri",
        refuse_fastmri=_FASTMRI_IS_2D if chosen.volumetric else None,
    )
    if operator == "ct-parallel":
        prepared = prepare_ct(
            measurement, model, prior_name, views=views, angles_file=angles_file, angle_range=angle_range,
            pixel_mm=pixel_mm, noise_std=noise_std, incident_flux=incident_flux, hu=hu, slice_index=slice_index,
            volume=chosen.volumetric,
        )
    else:
        prepared = prepare_mri(
            measurement, model, prior_name, mask=mask, resize=resize, noise_std=noise_std, seed=seed,
            slice_index=slice_index, slice_axis=chosen.axis if chosen.volumetric else None,
        )
    if preset is not None:
        preset_samples = preset_settings(preset, sampler, prepared.operator)["n_samples"]
        samples = preset_samples if samples is None else samples
    samples = 1 if samples is None else samples
    image_shape = tuple(prepared.operator.in_shape[1:]) if chosen.volumetric else tuple(model.image_shape[-2:])
    truth, data_range = None, None
    if reference is not None:
        loaded = read_array(reference, "--reference", prefer=REFERENCE_DATASETS, allow_fastmri=False)
        values = loaded.data.abs() if loaded.data.is_complex() else loaded.data
        if chosen.volumetric:  # the whole reference volume
            truth = drop_leading_ones(values, 3)
        else:
            truth = select_plane(values, 2, loaded.source, slice_index, False, "(H, W) image")
        if tuple(truth.shape) != image_shape:
            raise ValueError(
                f"--reference {loaded.source} is an array of shape {tuple(truth.shape)}, but the reconstruction is "
                f"{image_shape} (the prior's image size{', for every slice' if chosen.volumetric else ''})"
            )
        data_range = _reference_range(truth, loaded.source, operator)

    start_image = None
    if start_tv is not None:
        batched = prepared.y if prepared.y.dim() == len(prepared.operator.out_shape) + 1 else prepared.y[None]
        # a sampler that cannot start from an image is refused before the TV run, not after it (a zero stand-in)
        stand_in = torch.zeros(batched.shape[0], *prepared.operator.in_shape, dtype=model.dtype, device=batched.device)
        problem = Problem(batched, GaussianLikelihood(prepared.operator, prepared.noise_std), start_image=stand_in)
        chosen.check(problem, model, steps or chosen.default_steps, start_time)
        start_image = invsolve.tv_reconstruct(batched, prepared.operator, start_tv, iterations=_START_TV_ITERATIONS,
                                              nonnegative=operator == "ct-parallel", progress=progress)
    result = invsolve.reconstruct(
        prepared.y,
        prepared.operator,
        model,
        sampler,
        noise_std=prepared.noise_std,
        steps=steps,
        n_samples=samples,
        seed=seed,
        progress=progress,
        preset=preset,
        start_time=start_time,
        start_image=start_image,
        checkpoint=paths["checkpoint"] if samples > 1 else None,
        **hyperparameters,
    )
    mean, std = prepared.finish(result)
    metrics = None if truth is None else _metrics(mean, truth, operator, data_range)

    suffix = output_suffix(paths["mean"])
    attrs = {
        "sampler": sampler,
        "prior": prior_name,
        "units": prepared.unit,
        "operator": operator,
        "steps": int(result.info.get("steps", steps or chosen.default_steps)),
        "samples": samples,
        "seed": seed,
    }
    written = [paths["mean"]]
    mean_attrs = {**attrs, "quantity": "posterior mean" if samples > 1 else "reconstruction"}
    std_attrs = {**attrs, "quantity": "posterior standard deviation"}
    # a volume is previewed by its middle slice
    middle = (lambda image: image[image.shape[0] // 2]) if mean.dim() == 3 else (lambda image: image)
    where = f", slice {mean.shape[0] // 2} of {mean.shape[0]}" if mean.dim() == 3 else ""
    previews, titles = [middle(mean)], [f"{'mean' if samples > 1 else 'reconstruction'} ({prepared.unit}){where}"]
    staged = StagedFiles()
    try:
        staged.write(
            paths["mean"], lambda tmp: write_image(tmp, suffix, mean, prepared.spacing, "reconstruction", mean_attrs)
        )
        if std is not None:
            staged.write(paths["std"], lambda tmp: write_image(tmp, suffix, std, prepared.spacing, "std", std_attrs))
            written.append(paths["std"])
            previews.append(middle(std))
            titles.append(f"posterior std ({prepared.unit}){where}")
        title = f"{operator}, {prior_name}, {sampler}" + (f", {samples} samples" if samples > 1 else "")
        units, colormaps = [prepared.unit, f"{prepared.unit} (std)"], ["gray", "magma"]  # mean, std: own scales
        staged.write(
            paths["png"],
            lambda tmp: save_png(
                tmp, previews, titles, figure_title=title,
                unit=units[: len(previews)], colormap=colormaps[: len(previews)],
            ),
        )
        written.append(paths["png"])
        if metrics is not None:
            report = {"reference": str(reference), "units": prepared.unit, "data_range": data_range, **metrics}
            staged.write(paths["metrics"], lambda tmp: save_json(tmp, report))
            written.append(paths["metrics"])
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    paths["checkpoint"].unlink(missing_ok=True)  # the samples are safe in the outputs now
    summary: dict[str, Any] = {
        "files": [str(path) for path in written],
        "operator": operator,
        "prior": prior_name,
        "sampler": sampler,
        "hyperparameters": hyperparameters,
        "steps": attrs["steps"],
        "samples": samples,
        "resumed": resumed,
        "seed": seed,
        "start_time": start_time,
        "start_tv": start_tv,
        "units": prepared.unit,
        "spacing_mm": None if prepared.spacing is None else list(prepared.spacing),
        "input": measurement.source,
        **prepared.details,
        "seconds": float(result.info.get("seconds", 0.0)),
    }
    if metrics is not None:
        summary["metrics"] = metrics
    return summary
